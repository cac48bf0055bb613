"""Searching opportunities by title reads these PostgreSQL indexes first (trigrams for three
characters or more, two-character substrings for two; kehu/customers/linked_search.py):
without them a searched board read every opportunity (1,000,000 customers: 0.4-1.5 s)."""

from django.db import migrations

from kehu.core.migration_ops import SubstringIndex


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("customers", "0010_opportunity_closed_index")]

    operations = [
        SubstringIndex("opportunity", "opp_title_trgm", ["title"]),
        SubstringIndex("opportunity", "opp_title_bigram", ["title"], grams=2),
    ]
