"""Every row of every table, to show that a refused request left the database as it was.

``take()`` reads each concrete model of each installed app (and the auto-created
many-to-many tables) as tuples ordered by primary key; ``diff(before, after)`` describes
what changed, table by table, so a failure names the table, the row and the columns.

What is ignored, and why (nothing else is):

* ``django_session``: the session row is rewritten by ``SessionMiddleware`` whenever the
  session is touched (a flash message queued for the refusal page, the CSRF rotation);
  it holds transport state, not business data.
* ``system_user.last_login``: Django's ``user_logged_in`` signal sets it when a test client
  logs in; a refused request never logs anyone in, but logging in is how a test starts.

Refusals a mature product records on purpose (``LOGGED_REFUSALS``): a failed login is
counted by django-axes (attempt, failure log) and written to the login log (the operation
log's ``login_failed`` rows), so that brute force can be locked out and audited. A test of
a refused login passes ``allow=LOGGED_REFUSALS``; every other refusal must write nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db import connection, models

IGNORED_TABLES = frozenset({"django_session"})
IGNORED_COLUMNS = {"system_user": frozenset({"last_login"})}

# Tables a refused *login* may write to (see the module docstring).
LOGGED_REFUSALS = frozenset(
    {
        "axes_accessattempt",
        "axes_accessattemptexpiration",
        "axes_accessfailurelog",
        "axes_accesslog",
        "system_auditlog",
    }
)

Snapshot = dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]


@functools.cache
def _models() -> list[type[models.Model]]:
    seen: set[str] = set()
    result = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed or meta.db_table in seen:
            continue
        if meta.db_table in IGNORED_TABLES:
            continue
        seen.add(meta.db_table)
        result.append(model)
    return sorted(result, key=lambda m: m._meta.db_table)


def take() -> Snapshot:
    """Each table's columns and its rows, ordered by primary key (plain SQL: it is fast)."""
    data: Snapshot = {}
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in _models():
            table = model._meta.db_table
            ignored = IGNORED_COLUMNS.get(table, frozenset())
            columns = tuple(
                field.column for field in model._meta.concrete_fields if field.column not in ignored
            )
            cursor.execute(
                f"SELECT {', '.join(map(quote, columns))} FROM {quote(table)} "
                f"ORDER BY {quote(model._meta.pk.column)}"
            )
            data[table] = (columns, [tuple(row) for row in cursor.fetchall()])
    return data


def diff(before: Snapshot, after: Snapshot, *, allow: Iterable[str] = ()) -> list[str]:
    """Human-readable differences; empty when nothing changed outside ``allow``."""
    allowed = set(allow)
    lines: list[str] = []
    for table in sorted(set(before) | set(after)):
        if table in allowed:
            continue
        columns, old_rows = before.get(table, ((), []))
        columns, new_rows = after.get(table, (columns, []))
        if old_rows == new_rows:
            continue
        old_by_pk = {row[_pk_index(table, columns)]: row for row in old_rows}
        new_by_pk = {row[_pk_index(table, columns)]: row for row in new_rows}
        for pk in sorted(set(old_by_pk) | set(new_by_pk), key=str):
            old, new = old_by_pk.get(pk), new_by_pk.get(pk)
            if old == new:
                continue
            if old is None:
                lines.append(f"{table}: row {pk} added {dict(zip(columns, new, strict=True))}")
            elif new is None:
                lines.append(f"{table}: row {pk} deleted {dict(zip(columns, old, strict=True))}")
            else:
                changed = {
                    column: (a, b) for column, a, b in zip(columns, old, new, strict=True) if a != b
                }
                lines.append(f"{table}: row {pk} changed {changed}")
    return lines


def _pk_index(table: str, columns: tuple[str, ...]) -> int:
    model = next(m for m in _models() if m._meta.db_table == table)
    return columns.index(model._meta.pk.column)


def assert_unchanged(before: Snapshot, *, allow: Iterable[str] = (), what: str = "") -> None:
    changes = diff(before, take(), allow=allow)
    assert not changes, f"{what} changed the database:\n" + "\n".join(changes[:30])
