"""Substring search indexes: pg_trgm GIN on PostgreSQL, FTS5 trigram + triggers on SQLite.

Vendor-specific, so not model state: each database gets its own objects, others nothing.
See kehu/customers/textindex.py.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from kehu.customers.textindex import text_index_ensure

    text_index_ensure(schema_editor.connection.alias)


def backwards(apps, schema_editor):
    from kehu.customers.textindex import text_index_drop

    text_index_drop(schema_editor.connection.alias)


class Migration(migrations.Migration):
    # CREATE INDEX on a big table is slow; outside one long transaction on PostgreSQL.
    atomic = False

    dependencies = [("customers", "0002_phone_digits_pool_rule")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
