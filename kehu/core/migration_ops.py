"""Migration operations for schema changes Django's own operations make needlessly costly.

Used by migrations, so importable before the app registry is ready: models come from the
migration state, never from the apps themselves.
"""

from typing import Any

from django.db import migrations, models
from django.db.migrations.operations.base import Operation


def _field_index_names(schema_editor: Any, model: type[models.Model], column: str) -> list[str]:
    """The single-column, non-unique b-tree indexes on `column` that `db_index=True` made.

    The same lookup AlterField does (indexes named in Meta.indexes are the model's own and
    stay), restricted to non-unique indexes: a unique one is a constraint, not db_index's.
    """
    return schema_editor._constraint_names(
        model,
        [column],
        unique=False,
        primary_key=False,
        index=True,
        type_=models.Index.suffix,
        exclude={index.name for index in model._meta.indexes},
    )


class DropFieldIndex(Operation):
    """Drop the index `db_index=True` gave a field, and nothing else; backwards, create it.

    The database side of a SeparateDatabaseAndState whose state side is the AlterField to
    `db_index=False`. AlterField alone rebuilds the whole table on SQLite (every row copied,
    hours on a large database) and on PostgreSQL drops and re-adds the field's foreign key
    constraint (every row checked again). Leaves the migration state as it is.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, name: str) -> None:
        self.model_name = model_name
        self.name = name

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass  # the state changes by the AlterField beside this operation

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        field = model._meta.get_field(self.name)
        if not schema_editor._field_should_be_indexed(model, field):
            return
        for index_name in _field_index_names(schema_editor, model, field.column):
            schema_editor.execute(schema_editor._delete_index_sql(model, index_name))

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        # to_state is the state before the migration: the field with its index.
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        field = model._meta.get_field(self.name)
        if schema_editor._field_should_be_indexed(model, field):
            # The statement and name Django uses for db_index=True.
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))

    def describe(self) -> str:
        return f"Drop the index of {self.model_name}.{self.name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"drop_index_{self.model_name.lower()}_{self.name.lower()}"


def drop_field_indexes(*alter_fields: migrations.AlterField) -> migrations.SeparateDatabaseAndState:
    """AlterFields of foreign keys to `db_index=False` as the state, only their indexes dropped
    as the database change (DropFieldIndex): AlterField's state and schema, without its cost."""
    for operation in alter_fields:
        if not (
            isinstance(operation, migrations.AlterField)
            and isinstance(operation.field, models.ForeignKey)
            and operation.field.deconstruct()[3].get("db_index") is False
        ):
            raise ValueError(f"Not an AlterField to a foreign key without index: {operation!r}")
    return migrations.SeparateDatabaseAndState(
        database_operations=[
            DropFieldIndex(model_name=operation.model_name, name=operation.name)
            for operation in alter_fields
        ],
        state_operations=list(alter_fields),
    )


class SubstringIndex(Operation):
    """A GIN index of the trigrams (``grams=3``: pg_trgm) or two-character substrings
    (``grams=2``: ``kehu_bigrams``, kehu/customers/textindex.py) of `columns`, upper-cased as
    `icontains` compares them, on PostgreSQL, for substring search
    (kehu/customers/linked_search.py); nothing elsewhere (SQLite has no such index). Not
    model state: Django's GinIndex cannot be built on SQLite.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, name: str, columns: list[str], grams: int = 3) -> None:
        if grams not in (2, 3):
            raise ValueError("grams: 2 or 3")
        self.model_name = model_name
        self.name = name
        self.columns = columns
        self.grams = grams

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        connection = schema_editor.connection
        if connection.vendor != "postgresql" or not self.allow_migrate_model(
            connection.alias, model
        ):
            return
        quote = schema_editor.quote_name
        if self.grams == 3:
            columns = ", ".join(f"UPPER({quote(c)}::text) gin_trgm_ops" for c in self.columns)
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        else:  # the expression the search repeats (textindex.pg_bigram_expression)
            grams = " || ".join(f"kehu_bigrams(UPPER({quote(c)}::text))" for c in self.columns)
            columns = f"({grams})"
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(self.name)} ON "
            f"{quote(model._meta.db_table)} USING gin ({columns})"
        )
        # The planner's statistics of the indexed expressions: without them it guessed a
        # term in 8 % of the rows and scanned 5,000,000 orders for one in none.
        schema_editor.execute(f"ANALYZE {quote(model._meta.db_table)}")

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(self.name)}")

    def describe(self) -> str:
        kind = "Trigram" if self.grams == 3 else "Bigram"
        return f"{kind} index {self.name} on {self.model_name} ({', '.join(self.columns)})"

    @property
    def migration_name_fragment(self) -> str:
        return self.name.lower()
