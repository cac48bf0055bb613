"""``manage.py bench_customer_io``: customer import and export timings (BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from kehu.customers.bench_io import (
    customer_export_bench,
    customer_import_bench,
    customer_io_files_write,
)
from kehu.customers.models import Customer


class Command(BaseCommand):
    help = (
        "Write a realistic customer file (CSV and XLSX), import it through the import service "
        "and export the customer list; print median, p95, queries and peak memory."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument("--runs", type=int, default=3)
        parser.add_argument("--user", default="salesmgr1", help="who imports")
        parser.add_argument("--formats", default="csv,xlsx")
        parser.add_argument("--mode", default="good_rows", choices=["good_rows", "all_or_nothing"])
        parser.add_argument(
            "--export-user", default="manager", help="who exports (scope: all customers)"
        )
        parser.add_argument(
            "--export-steps",
            default="",
            help="comma-separated customer counts: import up to each count (kept), then export",
        )
        parser.add_argument("--no-memory", action="store_true", help="skip the traced run")
        parser.add_argument("--save", default="", help="append the results to this JSON file")

    def handle(self, *args, **options):
        users = get_user_model().objects
        try:
            user = users.get(username=options["user"])
            exporter = users.get(username=options["export_user"])
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"Unknown user: {exc}") from exc
        directory = Path(settings.VAR_DIR) / "io"
        owners = [
            u.username
            for u in users.filter(is_active=True, department=user.department).order_by("pk")
        ] or [user.username]
        stored = list(
            Customer.objects.exclude(owner=user).order_by("pk").values_list("name", flat=True)[:50]
        )
        results = []
        memory = not options["no_memory"]
        if options["export_steps"]:
            steps = [int(s) for s in options["export_steps"].split(",") if s]
            paths = customer_io_files_write(
                directory=directory, count=max(steps), owners=owners, stored_names=[]
            )
            for step in steps:
                self._fill_to(step, user=user, path=paths["csv"])
                for fmt in options["formats"].split(","):
                    result = customer_export_bench(
                        user=exporter, fmt=fmt, runs=options["runs"], trace_memory=memory
                    )
                    self.stdout.write(result.line())
                    results.append(result.as_dict())
        else:
            paths = customer_io_files_write(
                directory=directory, count=options["rows"], owners=owners, stored_names=stored
            )
            for fmt in options["formats"].split(","):
                result = customer_import_bench(
                    user=user,
                    path=paths[fmt],
                    runs=options["runs"],
                    mode=options["mode"],
                    trace_memory=memory,
                )
                self.stdout.write(result.line())
                results.append(result.as_dict())
        if options["save"]:
            target = Path(options["save"])
            saved = json.loads(target.read_text()) if target.exists() else []
            target.write_text(json.dumps(saved + results, ensure_ascii=False, indent=1))

    def _fill_to(self, count: int, *, user, path: Path) -> None:
        """Import rows of ``path`` until the database holds ``count`` owned customers."""
        from kehu.core.imports import import_run
        from kehu.customers.imports import CustomerImporter

        have = Customer.objects.filter(in_pool=False).count()
        if have >= count:
            return
        lines = path.read_bytes().split(b"\n")
        header, body = lines[0], [line for line in lines[1:] if line]
        # The file's rows are distinct companies (bar a few), so skip the ones used so far.
        start = min(len(body), max(0, have - 300))
        chunk = b"\n".join([header, *body[start : start + (count - have) * 2]]) + b"\n"
        import_run(
            importer=CustomerImporter(user=user, duplicate_policy="create"),
            data=chunk,
            filename=path.name,
            mode="good_rows",
        )
