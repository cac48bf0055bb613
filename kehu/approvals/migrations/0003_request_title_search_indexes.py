"""Searching approval requests by their title (the document's number, title and customer)
reads these PostgreSQL indexes first (kehu/customers/linked_search.py): without them a term
found in a few requests read all of them (1,900,000 at 1,000,000 customers: 2.6-3.8 s)."""

from django.db import migrations

from kehu.core.migration_ops import SubstringIndex


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("approvals", "0002_drop_unused_indexes"),
        ("customers", "0006_search_bigram_index"),  # kehu_bigrams()
    ]

    operations = [
        SubstringIndex("approvalrequest", "approval_title_trgm", ["title"]),
        SubstringIndex("approvalrequest", "approval_title_bigram", ["title"], grams=2),
    ]
