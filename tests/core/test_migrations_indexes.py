"""The migrations that drop unused foreign-key indexes: AlterField's state, only DROP INDEX.

The suite's database is made from the models (--no-migrations), so these tests load the real
migrations and run the eight backwards and forwards on it: backwards must re-create exactly
the indexes, forwards drop exactly them and nothing else (no table rebuild, no foreign key
re-added), and the schema must come back as it was, every other index in place.
"""

import re

import pytest
from django.apps import apps
from django.db import connection, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext, override_settings

from kehu.core.migration_ops import DropFieldIndex, drop_field_indexes

NODES = [
    ("approvals", "0002_drop_unused_indexes"),
    ("core", "0002_drop_unused_indexes"),
    ("customers", "0007_drop_unused_indexes"),
    ("finance", "0002_drop_unused_indexes"),
    ("hr", "0004_drop_unused_indexes"),
    ("products", "0003_drop_unused_indexes"),
    ("sales", "0005_drop_unused_indexes"),
    ("system", "0007_drop_unused_indexes"),
]
APPS = sorted({app for app, _ in NODES})
DDL = re.compile(r"\s*(CREATE|DROP|ALTER|INSERT|UPDATE|DELETE|SET CONSTRAINTS)\b", re.I)


def _loader() -> MigrationLoader:
    with override_settings(MIGRATION_MODULES={}):  # the real ones, not pytest-django's none
        return MigrationLoader(connection, ignore_no_migrations=True)


def _altered_fields(loader) -> list[tuple[str, str, str]]:
    """(app, model, field) of every AlterField in the eight, checked against its database op."""
    fields = []
    for app, name in NODES:
        (operation,) = loader.graph.nodes[app, name].operations
        assert isinstance(operation, migrations.SeparateDatabaseAndState)
        assert len(operation.state_operations) == len(operation.database_operations) > 0
        for state_op, db_op in zip(
            operation.state_operations, operation.database_operations, strict=True
        ):
            assert isinstance(state_op, migrations.AlterField)
            assert isinstance(db_op, DropFieldIndex)
            assert (db_op.model_name, db_op.name) == (state_op.model_name, state_op.name)
            assert not _db_index(state_op.field)
            fields.append((app, state_op.model_name, state_op.name))
    return fields


def _db_index(field) -> bool:
    """A foreign key's db_index (a keyword its deconstruction keeps only when False)."""
    return field.deconstruct()[3].get("db_index", True)


def _column(app: str, model_name: str, field_name: str) -> tuple[str, str]:
    model = apps.get_model(app, model_name)
    return model._meta.db_table, model._meta.get_field(field_name).column


def _constraints() -> dict[str, dict]:
    """Every index and constraint of the eight apps' tables, as the database reports them."""
    tables = {m._meta.db_table for app in APPS for m in apps.get_app_config(app).get_models()}
    with connection.cursor() as cursor:
        return {
            table: connection.introspection.get_constraints(cursor, table)
            for table in sorted(tables)
        }


def _plain_indexes(constraints: dict[str, dict], table: str, column: str) -> list[str]:
    """Single-column, non-unique b-tree indexes on the column that db_index=True made (not
    one Meta.indexes declares)."""
    declared = {
        index.name
        for app in APPS
        for model in apps.get_app_config(app).get_models()
        for index in model._meta.indexes
    }
    return [
        name
        for name, info in constraints[table].items()
        if name not in declared
        and info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [column]
        and info.get("type") == models.Index.suffix
    ]


def _run(loader, nodes, *, backwards: bool) -> list[str]:
    """Apply (or unapply) the migrations one by one; the data-changing statements run."""
    statements: list[str] = []
    for node in nodes:
        migration = loader.graph.nodes[node]
        state = loader.project_state(node, at_end=False)
        with (
            CaptureQueriesContext(connection) as queries,
            connection.schema_editor(atomic=migration.atomic) as editor,
        ):
            if backwards:
                migration.unapply(state, editor)
            else:
                migration.apply(state, editor)
        statements += [q["sql"] for q in queries.captured_queries if DDL.match(q["sql"])]
    return statements


@pytest.mark.django_db(transaction=True)
def test_backwards_creates_and_forwards_drops_only_the_indexes():
    loader = _loader()
    fields = _altered_fields(loader)
    columns = [_column(*field) for field in fields]
    # Dependency order: a migration's plan holds its ancestors' plans.
    order = sorted(NODES, key=lambda node: len(loader.graph.forwards_plan(node)))
    before = _constraints()
    for table, column in columns:
        assert _plain_indexes(before, table, column) == [], (table, column)

    unapplied: list = []
    try:
        for node in reversed(order):
            statements = _run(loader, [node], backwards=True)
            unapplied.append(node)
            assert statements and all(s.lstrip().startswith("CREATE INDEX") for s in statements)
        middle = _constraints()
        created = set()
        for table, column in columns:
            (name,) = _plain_indexes(middle, table, column)
            created.add(name)
        # Nothing but those indexes appeared.
        for table in before:
            assert set(middle[table]) - set(before[table]) <= created, table
            assert set(before[table]) <= set(middle[table]), table

        statements = _run(loader, order, backwards=False)
        unapplied = []
    finally:
        if unapplied:  # leave the shared test database as the models make it
            _run(loader, list(reversed(unapplied)), backwards=False)

    assert len(statements) == len(fields)
    assert all(re.match(r"\s*DROP INDEX\b", s) for s in statements), statements
    dropped = {name for s in statements for name in created if f'"{name}"' in s}
    assert dropped == created
    after = _constraints()
    assert after == before
    _assert_matches_models(after, set(columns))


def _assert_matches_models(constraints: dict[str, dict], altered: set) -> None:
    """Against the model state: a foreign key without db_index has no index of its own, one
    with db_index has its index, and every index Meta declares exists."""
    for app in APPS:
        for model in apps.get_app_config(app).get_models():
            table = model._meta.db_table
            declared = {index.name for index in model._meta.indexes}
            assert declared <= set(constraints[table]), table
            for field in model._meta.local_fields:
                if not isinstance(field, models.ForeignKey):
                    continue
                plain = _plain_indexes(constraints, table, field.column)
                if _db_index(field) and not field.unique:
                    assert len(plain) == 1, (table, field.column)
                else:
                    assert plain == [], (table, field.column)
                if (table, field.column) in altered:
                    assert not _db_index(field), (table, field.column)


def test_drop_field_indexes_takes_only_alter_fields_without_index():
    user = models.ForeignKey("system.user", on_delete=models.PROTECT, db_index=False)
    operation = drop_field_indexes(migrations.AlterField("customer", "owner", user))
    assert [type(op) for op in operation.database_operations] == [DropFieldIndex]
    assert operation.state_operations[0].field is user
    indexed = models.ForeignKey("system.user", on_delete=models.PROTECT)
    with pytest.raises(ValueError):
        drop_field_indexes(migrations.AlterField("customer", "owner", indexed))
    with pytest.raises(ValueError):
        drop_field_indexes(migrations.RemoveField("customer", "owner"))


@pytest.mark.django_db
def test_schema_matches_the_models_indexes():
    _assert_matches_models(
        _constraints(), {_column(*field) for field in _altered_fields(_loader())}
    )
