"""PostgreSQL: drop the customer table's ``varchar_pattern_ops`` twins that no query reads.

Django gives every indexed or unique ``CharField`` a second index on PostgreSQL, ``…_like``
(``varchar_pattern_ops``), for ``LIKE 'prefix%'`` under a non-C collation. Among the
customer's columns only the name search's prefix lookups (``_prefix_q`` on
``name_normalized`` and ``name_initials``) ask for a prefix; code, phone, mobile, their
digits and the e-mail are compared for equality (the duplicate check, the code lookup) or
sorted, which the plain B-tree twin (or the unique constraint, for code) serves. Each index
costs every insert: the six are about a tenth of the server's CPU of a 100,000-row import.

Not part of the migration state (Django never records the ``_like`` twins; an AlterField of
one of these columns drops it with IF EXISTS and may create it again). Backwards creates
them under Django's names. SQLite has no such indexes: nothing to do.
"""

from django.db import migrations

COLUMNS = ("code", "phone", "mobile", "phone_digits", "mobile_digits", "email")


def _names(schema_editor, model) -> list[tuple[str, str]]:
    table = model._meta.db_table
    return [
        (schema_editor._create_index_name(table, [column], suffix="_like"), column)
        for column in COLUMNS
    ]


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("customers", "Customer")
    for name, _column in _names(schema_editor, model):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("customers", "Customer")
    quote = schema_editor.quote_name
    for name, column in _names(schema_editor, model):
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(model._meta.db_table)} "
            f"({quote(column)} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("customers", "0007_drop_unused_indexes")]

    operations = [migrations.RunPython(drop, create, elidable=False)]
