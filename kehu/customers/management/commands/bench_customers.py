"""``manage.py bench_customers``: time the customer pages against the current database."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from kehu.core.exceptions import ServiceError
from kehu.customers.bench import bench_cases, bench_load, bench_run, bench_save


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


class Command(BaseCommand):
    help = "Benchmark the customer list, search and 360° page (median, p95, queries, rows)."

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=30)
        parser.add_argument("--user", default="sales1")
        parser.add_argument("--manager", default="manager", help="A user with scope all; '' skips.")
        parser.add_argument("--deep-page", type=int, default=100)
        parser.add_argument("--deep-page-all", type=int, default=400)
        parser.add_argument("--label", default="", help="Names this run in the saved JSON.")
        parser.add_argument("--save", help="Write the results to this JSON file.")
        parser.add_argument("--baseline", help="A saved run to print ratios against.")

    def handle(self, *args, **options):
        users = get_user_model().objects
        try:
            user = users.get(username=options["user"])
            manager = users.get(username=options["manager"]) if options["manager"] else None
        except users.model.DoesNotExist as exc:
            raise CommandError(f"No such user: {exc}") from exc
        try:
            cases = bench_cases(
                user=user,
                manager=manager,
                deep_page=options["deep_page"],
                deep_page_all=options["deep_page_all"],
            )
        except ServiceError as exc:
            raise CommandError(str(exc.message)) from exc
        results = bench_run(cases=cases, runs=options["runs"])
        base = {}
        if options["baseline"]:
            base = {r["key"]: r for r in bench_load(options["baseline"])["results"]}
        self.stdout.write(
            f"{'case':<16} {'user':<9} {'median ms':>10} {'p95 ms':>9} {'queries':>8} "
            f"{'rows':>5} {'x median':>9} {'x p95':>7}  url"
        )
        for r in results:
            b = base.get(r.key, {})
            rows = "" if r.rows is None else r.rows
            self.stdout.write(
                f"{r.key:<16} {r.user:<9} {r.median_ms:>10.1f} {r.p95_ms:>9.1f} {r.queries:>8} "
                f"{rows:>5} {_ratio(r.median_ms, b.get('median_ms')):>9} "
                f"{_ratio(r.p95_ms, b.get('p95_ms')):>7}  {r.url}"
                + ("" if r.status == 200 else f"  HTTP {r.status}")
            )
        if options["save"]:
            bench_save(path=options["save"], label=options["label"], results=results)
