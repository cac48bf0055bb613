"""``manage.py aggregates_rebuild``: recompute the stored aggregates from the documents."""

from __future__ import annotations

import resource
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Recompute the stored totals behind the dashboard, sales targets and the receivables "
        "aging report from the documents (after a bulk load, or as a repair)."
    )

    def handle(self, *args, **options):
        from kehu.analytics.services import aggregates_rebuild

        started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        rows = aggregates_rebuild()
        after = resource.getrusage(resource.RUSAGE_SELF)
        seconds = time.monotonic() - started
        used = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
        for name, count in rows.items():
            self.stdout.write(f"{name}: {count} rows")
        self.stdout.write(f"rebuilt in {seconds:.1f} s ({used:.1f} s CPU in this process)")
