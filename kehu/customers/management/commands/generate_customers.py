"""``manage.py generate_customers --customers N``: bulk rows for benchmarks."""

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kehu.core.exceptions import ServiceError
from kehu.customers.generate import customers_generate


class Command(BaseCommand):
    help = "Generate N realistic customers with contacts, follow-ups and opportunities."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, required=True)
        parser.add_argument("--contacts-per", type=float, default=2)
        parser.add_argument("--followups-per", type=float, default=3)
        parser.add_argument("--opportunity-share", type=float, default=0.3)
        parser.add_argument("--batch", type=int, default=20_000)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--defer-indexes",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Drop the tables' secondary and search indexes during the load and build "
            "them afterwards (default: for loads of 50,000+ customers, not fewer than exist).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Run even when DEBUG is off (writes a lot)."
        )

    def handle(self, *args, **options):
        if not (settings.DEBUG or options["force"]):
            raise CommandError("Refusing to write generated rows with DEBUG off; add --force.")
        kwargs = {}
        if options["seed"] is not None:
            kwargs["seed"] = options["seed"]
        try:
            result = customers_generate(
                customers=options["customers"],
                contacts_per=options["contacts_per"],
                followups_per=options["followups_per"],
                opportunity_share=options["opportunity_share"],
                batch=options["batch"],
                defer_indexes=options["defer_indexes"],
                progress=self.stdout.write if options["verbosity"] > 1 else None,
                **kwargs,
            )
        except ServiceError as exc:
            raise CommandError(str(exc.message)) from exc
        # The rows were written without the services: the dashboard's funnel is summed anew.
        from kehu.analytics.aggregates import aggregates_funnel_rebuild

        aggregates_funnel_rebuild()
        counts = ", ".join(f"{count} {name}" for name, count in result.counts.items())
        self.stdout.write(
            f"Generated {counts}: {result.rows} rows in {result.seconds:.1f} s "
            f"({result.rows_per_second:,.0f} rows/s)."
        )
