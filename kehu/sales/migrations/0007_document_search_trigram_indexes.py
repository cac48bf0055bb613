"""Searching quotes, contracts and orders by number or title, shipments by number or tracking
number, reads these PostgreSQL trigram indexes first (kehu/customers/linked_search.py):
without them a term found in a few documents read the whole table (1,000,000 customers:
contracts 0.7-3 s, orders 2-4.5 s, shipments 16-20 s)."""

from django.db import migrations

from kehu.core.migration_ops import TrigramIndex


class Migration(migrations.Migration):
    # CREATE INDEX on a big table is slow; outside one long transaction on PostgreSQL.
    atomic = False

    dependencies = [("sales", "0006_order_shipment_sort_indexes")]

    operations = [
        TrigramIndex("quote", "quote_search_trgm", ["number", "title"]),
        TrigramIndex("contract", "contract_search_trgm", ["number", "title"]),
        TrigramIndex("order", "order_search_trgm", ["number", "title"]),
        TrigramIndex("shipment", "shipment_search_trgm", ["number", "tracking_number"]),
    ]
