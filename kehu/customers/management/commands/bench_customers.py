"""``manage.py bench_customers``: ``manage.py bench --only customers`` (kept for old scripts)."""

from kehu.core.management.commands.bench import Command as BenchCommand


class Command(BenchCommand):
    help = "Benchmark the customer cases of `manage.py bench` (same options)."
    default_only = "customers"
