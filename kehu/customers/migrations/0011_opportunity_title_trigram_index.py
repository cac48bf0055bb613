"""Searching opportunities by title reads this PostgreSQL trigram index first
(kehu/customers/linked_search.py): without it a searched board read every opportunity
(1,000,000 customers: 0.4-1.5 s)."""

from django.db import migrations

from kehu.core.migration_ops import TrigramIndex


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("customers", "0010_opportunity_closed_index")]

    operations = [TrigramIndex("opportunity", "opp_title_trgm", ["title"])]
