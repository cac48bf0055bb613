"""Figures the security and concurrency tests report at the end of a run.

``record("endpoints x roles checked", 312)`` from any test (also in an xdist worker); the
controller sums each name over the run and prints the totals after the test summary, so CI
output shows how much was checked (issue 9: "with figures printed").
"""

import json
import os
import tempfile
from pathlib import Path

ENV = "KEHU_FIGURES_DIR"


def start() -> None:
    """Called once by the controlling pytest process, before any worker starts."""
    os.environ[ENV] = tempfile.mkdtemp(prefix="kehu-figures-")


def record(name: str, count: int = 1) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    with open(Path(folder) / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as file:
        file.write(json.dumps([name, count]) + "\n")


def totals() -> dict[str, int]:
    folder = os.environ.get(ENV)
    sums: dict[str, int] = {}
    if not folder or not Path(folder).is_dir():
        return sums
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            name, count = json.loads(line)
            sums[name] = sums.get(name, 0) + count
    return sums
