"""Two-character search: bigram GIN indexes on PostgreSQL, bigram tables + triggers on SQLite.

Vendor-specific, so not model state (as 0003). See kehu/customers/textindex.py.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from kehu.customers.textindex import text_index_ensure

    text_index_ensure(schema_editor.connection.alias)


class Migration(migrations.Migration):
    # CREATE INDEX on a big table is slow; outside one long transaction on PostgreSQL.
    atomic = False

    dependencies = [("customers", "0005_list_sort_indexes")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
