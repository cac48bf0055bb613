"""``manage.py generate --customers N``: a whole company's data at any size, for benchmarks."""

import argparse
import resource

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kehu.core.exceptions import ServiceError
from kehu.system.generate import SEED, data_generate


class Command(BaseCommand):
    help = (
        "Generate N customers with contacts, follow-ups and opportunities, and two years of "
        "contracts, orders, shipments, receivable plans, payments and invoices for them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, required=True)
        parser.add_argument(
            "--orders-per", type=float, default=5.0, help="Orders per customer on average."
        )
        parser.add_argument("--seed", type=int, default=SEED)
        parser.add_argument(
            "--batch", type=int, default=20_000, help="Customers per batch (bounds memory)."
        )
        parser.add_argument(
            "--defer-indexes",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Drop the written tables' secondary indexes during the load and build them "
            "afterwards, foreign keys checked once at the end (default: for loads of 20,000+ "
            "customers, not fewer than exist).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Run even when DEBUG is off (writes a lot)."
        )

    def handle(self, *args, **options):
        if not (settings.DEBUG or options["force"]):
            raise CommandError("Refusing to write generated rows with DEBUG off; add --force.")
        try:
            result = data_generate(
                customers=options["customers"],
                orders_per=options["orders_per"],
                seed=options["seed"],
                defer_indexes=options["defer_indexes"],
                batch=options["batch"],
                progress=self.stdout.write if options["verbosity"] > 1 else None,
            )
        except ServiceError as exc:
            raise CommandError(str(exc.message)) from exc
        width = max(len(name) for name in [*result.counts, *result.phases, *result.indexes])
        for name, count in result.counts.items():
            self.stdout.write(f"  {name:<{width}} {count:>12,}")
        for name, seconds in result.phases.items():
            cpu = f" (CPU {result.cpu[name]:.1f} s" if name in result.cpu else ""
            if name in result.server:
                cpu += f", server {result.server[name]:.1f} s"
            self.stdout.write(f"  {name:<{width}} {seconds:>10.1f} s{cpu}{')' if cpu else ''}")
        if result.indexes:
            self.stdout.write("Index builds per table:")
            for name, seconds in sorted(result.indexes.items(), key=lambda item: -item[1]):
                self.stdout.write(f"  {name:<{width}} {seconds:>10.1f} s")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        peak = usage.ru_maxrss // 1024
        self.stdout.write(
            f"Generated {result.rows:,} rows in {result.seconds:.1f} s "
            f"({result.rows_per_second:,.0f} rows/s), CPU {usage.ru_utime + usage.ru_stime:.1f} s, "
            f"peak memory {peak} MB."
        )
