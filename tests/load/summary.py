"""Print a locust stats CSV as the table BENCHMARKS.md keeps; exit 1 when a request failed."""

import csv
import sys


def main(path: str) -> int:
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    print(f"{'request':34} {'count':>7} {'fail':>5} {'req/s':>6} {'p50':>5} {'p95':>5} {'p99':>5}")
    failures = 0
    for row in rows:
        failures += int(row["Failure Count"]) if row["Name"] == "Aggregated" else 0
        print(
            f"{row['Name'][:34]:34} {row['Request Count']:>7} {row['Failure Count']:>5} "
            f"{float(row['Requests/s']):6.1f} {row['50%']:>5} {row['95%']:>5} {row['99%']:>5}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
