"""Reference data (dictionaries, departments, tags, custom field definitions, company
settings) read once per process, not on every page.

Every page shows some: a list's filter selects, the top bar's company name and the user's
department, the custom fields of a form. Read from the database they were five to eight
queries (and a few hundred model instances) a page. Each kind of reference data has a stamp,
a row of ``ReferenceStamp``; a page reads every stamp in one query and finds the rows in this
process's memory under the stamp it read.

Every write to a reference model gives its kind a new random stamp inside the writing
transaction: ``save`` and ``delete`` (signals; the services write in transactions, a bare
``save`` in autocommit renews the stamp just after), and ``update``, ``bulk_create`` and
``bulk_update`` of the models' querysets (``ReferenceQuerySet``). Other processes see the new
stamp when the write commits and read the rows afresh; a rolled-back stamp never comes back.
So nothing stale is served, in any process, and old entries are dropped when a kind's stamp
changes.

The cached rows are shared by every request of the process: read them, never change them.
A queryset is cached only if it reads nothing but its kind's tables.
"""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

T = TypeVar("T")

# Model → kind, and kind → the tables its cached querysets may read.
_KINDS: dict[type[models.Model], str] = {}
_TABLES: dict[str, set[str]] = {}
# kind → (stamp, {key: value}); this process's copies.
_entries: dict[str, tuple[str, dict[Any, Any]]] = {}
_MAX_ENTRIES = 256  # per kind and stamp; a kind's querysets are a handful of shapes


class _RequestStamps:
    """The stamps as the current request read them (once, on first use)."""

    stamps: dict[str, str] | None = None


# Set by ReferenceStampMiddleware; None outside a request, where every lookup reads the
# stamps afresh (the worker and commands run for long).
_request: contextvars.ContextVar[_RequestStamps | None] = contextvars.ContextVar(
    "kehu_reference_stamps", default=None
)


class ReferenceQuerySet(models.QuerySet):
    """The queryset of a reference model: its bulk writes renew the kind's stamp in their
    transaction."""

    def update(self, **kwargs):
        with transaction.atomic(using=self.db):
            rows = super().update(**kwargs)
            reference_changed(self.model)
        return rows

    def bulk_create(self, *args, **kwargs):
        with transaction.atomic(using=self.db):
            created = super().bulk_create(*args, **kwargs)
            reference_changed(self.model)
        return created

    def bulk_update(self, *args, **kwargs):
        with transaction.atomic(using=self.db):
            rows = super().bulk_update(*args, **kwargs)
            reference_changed(self.model)
        return rows


ReferenceManager = models.Manager.from_queryset(ReferenceQuerySet)


def register_reference(kind: str, *model_classes: type[models.Model]) -> None:
    """Cache ``model_classes``' rows as ``kind`` (AppConfig.ready); their managers must be
    ``ReferenceManager``s so that bulk writes renew the stamp."""
    for model in model_classes:
        _KINDS[model] = kind
        _TABLES.setdefault(kind, set()).add(model._meta.db_table)
        post_save.connect(_saved_or_deleted, sender=model, weak=False)
        post_delete.connect(_saved_or_deleted, sender=model, weak=False)


def _saved_or_deleted(sender, **kwargs) -> None:
    reference_changed(sender)


def reference_changed(*changed: type[models.Model] | str) -> None:
    """Give the kinds of ``changed`` (models or kind names) a new stamp, in the current
    transaction."""
    kinds = {item if isinstance(item, str) else _KINDS.get(item, "") for item in changed} - {""}
    if not kinds:  # not reference data (versioned_update calls this for every model)
        return
    from kehu.core.models import ReferenceStamp

    for kind in sorted(kinds):
        ReferenceStamp.objects.update_or_create(kind=kind, defaults={"stamp": secrets.token_hex(8)})
    request = _request.get()
    if request is not None:  # this request reads the stamps again: it sees its own change
        request.stamps = None


def reference_changed_all() -> None:
    """Every kind afresh: after writes past the managers (data migrations, a restore)."""
    reference_changed(*set(_KINDS.values()))


def _stamps() -> dict[str, str]:
    from kehu.core.models import ReferenceStamp

    request = _request.get()
    if request is not None and request.stamps is not None:
        return request.stamps
    stamps = dict(ReferenceStamp.objects.values_list("kind", "stamp"))
    if request is not None:
        request.stamps = stamps
    return stamps


def _remember(kind: str, key: Any, load: Callable[[], T]) -> T:
    stamp = _stamps().get(kind, "")
    held = _entries.get(kind)
    if held is None or held[0] != stamp or len(held[1]) >= _MAX_ENTRIES:
        held = (stamp, {})
        _entries[kind] = held
    try:
        return held[1][key]
    except KeyError:
        value = held[1][key] = load()
        return value


def reference_rows(queryset: models.QuerySet) -> list:
    """``list(queryset)``, from this process's memory when the queryset reads only the rows
    of one reference kind (otherwise from the database)."""
    kind = _KINDS.get(queryset.model)
    if kind is None or queryset._result_cache is not None:
        return list(queryset)
    query = queryset.query
    sql, params = query.sql_with_params()  # compiling fills alias_map with every table read
    if query.select_related or any(
        alias.table_name not in _TABLES[kind] for alias in query.alias_map.values()
    ):
        return list(queryset)
    try:
        key = (queryset.db, sql, tuple(params))
        hash(key)
    except TypeError:  # a list parameter (``__in``)
        return list(queryset)
    return _remember(kind, key, lambda: list(queryset))


def reference_value(kind: str, name: str, load: Callable[[], T]) -> T:
    """A value derived from one kind's rows only (``load`` reads nothing else), cached as
    the rows are."""
    return _remember(kind, ("value", name), load)


class ReferenceStampMiddleware:
    """Read the reference stamps at most once per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(_RequestStamps())
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def forget_reference_rows() -> None:
    """Drop this process's copies (tests start from the database)."""
    _entries.clear()
