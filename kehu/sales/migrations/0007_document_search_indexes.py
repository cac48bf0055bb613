"""Searching quotes, contracts and orders by number or title, shipments by number or tracking
number, reads these PostgreSQL indexes first (kehu/customers/linked_search.py): trigrams for
three characters or more, two-character substrings of the titles for two. Without them a
term found in a few documents read the whole table (1,000,000 customers: contracts 0.7-3 s,
orders 2-4.5 s, shipments 16-20 s)."""

from django.db import migrations

from kehu.core.migration_ops import SubstringIndex


class Migration(migrations.Migration):
    # CREATE INDEX on a big table is slow; outside one long transaction on PostgreSQL.
    atomic = False

    dependencies = [
        ("customers", "0006_search_bigram_index"),  # kehu_bigrams()
        ("sales", "0006_order_shipment_sort_indexes"),
    ]

    operations = [
        SubstringIndex("quote", "quote_search_trgm", ["number", "title"]),
        SubstringIndex("contract", "contract_search_trgm", ["number", "title"]),
        SubstringIndex("order", "order_search_trgm", ["number", "title"]),
        SubstringIndex("shipment", "shipment_search_trgm", ["number", "tracking_number"]),
        SubstringIndex("quote", "quote_title_bigram", ["title"], grams=2),
        SubstringIndex("contract", "contract_title_bigram", ["title"], grams=2),
        SubstringIndex("order", "order_title_bigram", ["title"], grams=2),
    ]
