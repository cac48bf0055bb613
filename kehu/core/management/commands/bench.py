"""``manage.py bench``: time the key operations against the current database (BENCHMARKS.md)."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from kehu.core import bench
from kehu.core.exceptions import ServiceError


def _num(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


class Command(BaseCommand):
    help = (
        "Benchmark the key operations (median, p95, queries, peak memory, rows; bare SQL "
        "overhead for lists; ratios to a saved baseline)."
    )
    default_only = ""

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=30)
        parser.add_argument("--user", default="sales1", help="A salesperson (own scope).")
        parser.add_argument("--manager", default="manager", help="A user with scope all; '' skips.")
        parser.add_argument("--finance", default="finance", help="A finance user; '' skips.")
        parser.add_argument(
            "--dept-manager", default="salesmgr1", help="A sales manager; '' skips."
        )
        parser.add_argument("--deep-page", type=int, default=100)
        parser.add_argument("--deep-page-all", type=int, default=400)
        parser.add_argument(
            "--only", default=self.default_only, help="Comma-separated patterns (key or group)."
        )
        parser.add_argument("--skip", default="", help="Comma-separated patterns to leave out.")
        parser.add_argument("--list", action="store_true", help="List the cases, run nothing.")
        parser.add_argument("--label", default="", help="Names this run in the saved JSON.")
        parser.add_argument("--save", help="Write the results to this JSON file.")
        parser.add_argument("--baseline", help="A saved run (e.g. 10k) to print ratios against.")
        parser.add_argument("--show-sql", action="store_true", help="Print each list query.")

    def _user(self, username: str, *, required: bool = False):
        if not username:
            return None
        users = get_user_model().objects
        try:
            return users.get(username=username)
        except users.model.DoesNotExist as exc:
            if required:
                raise CommandError(f"No such user: {username}") from exc
            return None

    def handle(self, *args, **options):
        ctx = bench.BenchContext(
            user=self._user(options["user"], required=True),
            manager=self._user(options["manager"], required=True) if options["manager"] else None,
            finance=self._user(options["finance"]),
            dept_manager=self._user(options["dept_manager"]),
            deep_page=options["deep_page"],
            deep_page_all=options["deep_page_all"],
        )
        try:
            cases = bench.select(bench.collect(ctx), only=options["only"], skip=options["skip"])
        except ServiceError as exc:
            raise CommandError(str(exc.message)) from exc
        if options["list"]:
            for case in cases:
                self.stdout.write(f"{case.group:<10} {case.key:<26} {case.label}  {case.url}")
            return
        baseline = {}
        if options["baseline"]:
            baseline = {r["key"]: r for r in bench.load(options["baseline"])["results"]}
        env = bench.environment()
        self.stdout.write(
            f"{env['database']}: {env['customers']:,} customers, {env['contracts']:,} contracts; "
            f"{options['runs']} runs per case; load average "
            + " ".join(f"{x:.2f}" for x in env["load_average"])
        )
        self.stdout.write(
            f"{'case':<26} {'user':<8} {'median':>8} {'p95':>8} {'cpu':>7} {'q':>4} {'db':>7} "
            f"{'peak KiB':>9} {'rows':>5} {'sql ms':>8} {'overhd':>7} {'x med':>6} {'x p95':>6}"
            f" {'rows ms':>8} {'rows sql':>8} {'rows x':>7} {'min':>7} {'rows x min':>10}"
        )

        def show(r: bench.Result) -> None:
            cmp = bench.compare(r, baseline)
            rows = "" if r.rows is None else r.rows
            self.stdout.write(
                f"{r.key:<26} {r.user[:8]:<8} {r.median_ms:>8.1f} {r.p95_ms:>8.1f} "
                f"{r.cpu_median_ms:>7.1f} "
                f"{r.queries:>4} {r.db_ms:>7.1f} {r.peak_kib:>9.0f} {rows!s:>5} "
                f"{_num(r.sql_median_ms, '.2f'):>8} {_ratio(r.overhead):>7} "
                f"{_ratio(cmp.median):>6} {_ratio(cmp.p95):>6}"
                f" {_num(r.rows_median_ms, '.2f'):>8} {_num(r.rows_sql_median_ms, '.2f'):>8}"
                f" {_ratio(r.rows_overhead):>7} {_num(r.min_ms, '.1f'):>7}"
                f" {_ratio(r.rows_overhead_min):>10}"
                + ("" if r.status in (0, 200, 201) else f"  HTTP {r.status}")
                + ("" if r.sql_rows in (None, r.rows) else f"  (bare SQL rows {r.sql_rows})")
            )
            if options["show_sql"] and r.sql:
                self.stdout.write(f"    {r.sql}")

        results = bench.run_cases(cases, runs=options["runs"], progress=show)
        env["load_average_end"] = list(os.getloadavg())
        self.stdout.write(
            "ms = milliseconds per request; cpu = CPU time of this process per request "
            "(median; includes SQLite, not a PostgreSQL server); q = queries; "
            "db = time inside the database of one "
            "request (SQLite: execute only); peak = Python memory (tracemalloc); sql ms = the "
            "list query alone on a cursor; overhd = median / sql ms; x = ratio to the baseline; "
            "rows ms = the page's rows evaluated and formatted as the view does (ORM, "
            "prefetches, cells or serializer), rows sql = the same queries on a cursor, "
            "rows x = rows ms / rows sql; min = fastest request; rows x min = fastest rows / "
            "fastest bare (the better estimate when the machine is shared). "
            "fixed_* = the cost every request pays."
        )
        if options["save"]:
            env["runs"] = options["runs"]
            bench.save(path=options["save"], label=options["label"], results=results, env=env)
