"""Searching records that belong to customers (opportunities, contacts, contracts, orders,
payments, ...) by their own text and by their customer's name.

``title LIKE '%达安数据%' OR customer.name LIKE '%达安数据%'`` served by no index read a
whole table at a million customers: 0.4-4.5 s for a term that matches a few records (a
customer's name, a number), which is what people search for. Both sides are looked up in
indexes first, as ``customer_search_q`` does for customers: the customers by the customer
search indexes (trigram or FTS5 for three characters or more, bigram for two), the record's
own columns by PostgreSQL trigram and bigram indexes (``sales`` 0007, ``customers`` 0011;
SQLite has none on them but for contact names). Few matches become the rows' ids; many
become conditions no index serves, so a page ordered by its index walks it and stops after
its rows, as dense matches are met at once (through a trigram index PostgreSQL first
collected every match: 0.8 s for 框架合同 in the contracts).
"""

from __future__ import annotations

import operator
from functools import reduce

from django.db import connection
from django.db.models import Model, Q
from rest_framework.filters import SearchFilter

from kehu.customers import textindex
from kehu.customers.models import Customer
from kehu.customers.selectors import _LATIN, SEARCH_IDS_INLINE, _contains, _sql


def _ids_probe(parts: list[tuple[str, tuple]]) -> list[int] | None:
    """The ids the SELECTs ``parts`` find, or None if more than ``SEARCH_IDS_INLINE``. UNION
    ALL stops at the limit; UNION would first collect every match to drop repeats."""
    sql = " UNION ALL ".join(part[0] for part in parts)
    with connection.cursor() as cursor:
        params = [p for part in parts for p in part[1]]
        cursor.execute(f"{sql} LIMIT {SEARCH_IDS_INLINE + 1}", params)
        rows = cursor.fetchall()
    return None if len(rows) > SEARCH_IDS_INLINE else sorted({row[0] for row in rows})


# Columns with a GIN index of their two-character substrings on PostgreSQL (sales 0007,
# customers 0011); every record column searched has a trigram index there.
PG_BIGRAM_COLUMNS = {
    "approvals_approvalrequest": ("title",),
    "sales_quote": ("title",),
    "sales_contract": ("title",),
    "sales_order": ("title",),
    "customers_opportunity": ("title",),
}


def _searched(query: str, fields: tuple[str, ...], codes: tuple[str, ...]) -> tuple[str, ...]:
    """The columns a term is looked for in: codes (numbers) from three characters, since
    two (HT, 20) are in nearly every number."""
    return fields + codes if len(query) >= textindex.MIN_TRIGRAM else fields


def text_ids(
    model: type[Model], query: str, fields: tuple[str, ...], codes: tuple[str, ...] = ()
) -> list[int] | None:
    """Ids of ``model``'s rows (deleted ones too: the caller's queryset decides) whose
    ``fields`` or ``codes`` (``_searched``) contain ``query``, read from the indexes on them:
    PostgreSQL's trigram and bigram indexes, and for contact names the customer search's
    (FTS5 and bigrams on SQLite too). None when no index can tell (one character, a column
    SQLite does not index) or more than ``SEARCH_IDS_INLINE`` rows match."""
    table = model._meta.db_table
    columns = _searched(query, fields, codes)
    if not columns:
        return []
    if len(query) < textindex.BIGRAM:
        return None
    if table == textindex.CONTACT_TABLE and columns == textindex.CONTACT_FTS_COLUMNS:
        if len(query) == textindex.BIGRAM:
            return _ids_probe([textindex.bigram_select(table, query)])
        if textindex.fts_available():
            fts = textindex.fts_table(table)
            match = textindex.fts_match(columns, query)
            return _ids_probe([(f"SELECT rowid FROM {fts} WHERE {fts} MATCH %s", (match,))])
    if connection.vendor != "postgresql":
        return None
    if len(query) == textindex.BIGRAM:
        if not set(columns) <= set(PG_BIGRAM_COLUMNS.get(table, ())):
            return None
        return _ids_probe(
            [
                (
                    f"SELECT id FROM {table} WHERE "
                    f"({textindex.pg_bigram_expression((name,))}) @> ARRAY[UPPER(%s)]",
                    (query,),
                )
                for name in columns
            ]
        )
    manager = model._base_manager
    return _ids_probe(
        [_sql(manager.filter(**{f"{name}__icontains": query}).values("pk")) for name in columns]
    )


def customer_ids_named(query: str, *, initials: bool = False) -> list[int] | None:
    """Ids of the customers (deleted ones too) whose code is ``query`` or whose name or
    short name contains it (with ``initials``, also their pinyin initials), read from the
    customer search indexes. None for a one-character term, latin initials of two letters
    (no index holds them) or more than ``SEARCH_IDS_INLINE`` customers."""
    lowered = query.lower().replace(" ", "")
    initials = initials and bool(_LATIN.match(lowered))
    if len(query) < textindex.BIGRAM or (initials and len(lowered) < textindex.MIN_TRIGRAM):
        return None
    manager = Customer._base_manager
    parts = [_sql(manager.filter(code=query.upper()).values("pk"))]
    if len(query) == textindex.BIGRAM:
        parts.append(textindex.bigram_select(textindex.CUSTOMER_TABLE, query))
    elif textindex.fts_available():
        fts = textindex.fts_table(textindex.CUSTOMER_TABLE)
        select = f"SELECT rowid FROM {fts} WHERE {fts} MATCH %s"
        parts.append((select, (textindex.fts_match(("name", "short_name"), query),)))
        if initials:
            parts.append((select, (textindex.fts_match(("name_initials",), lowered),)))
    else:
        names = Q(name__icontains=query) | Q(short_name__icontains=query)
        if initials:
            names |= Q(name_initials__contains=lowered)
        parts.append(_sql(manager.filter(names).values("pk")))
    return _ids_probe(parts)


def _unindexed(field: str, text: str) -> Q:
    """``field`` contains ``text`` (letters in any case), as a condition the page's walk
    tests row by row: on PostgreSQL by STRPOS, which no trigram index serves; on SQLite by
    LIKE, which none serves either and which SQLite runs faster than INSTR(UPPER())."""
    if connection.vendor == "postgresql":
        return _contains(field, text)
    return Q(**{f"{field}__icontains": text})


def _rows_ids(
    model: type[Model], customer: str, own: list[int], customers: list[int]
) -> list[int] | None:
    """``own`` and the ids of the rows whose customer (path ``customer``; "": the rows are
    customers) is one of ``customers``, or None if more than ``SEARCH_IDS_INLINE``."""
    if customer and customers:
        rows = model._base_manager.filter(**{f"{customer}__pk__in": customers}).values("pk")
        found = _ids_probe([_sql(rows)])
        if found is None:
            return None
        customers = found
    ids = sorted({*own, *customers})
    return ids if len(ids) <= SEARCH_IDS_INLINE else None


def linked_search_q(
    model: type[Model],
    query: str,
    *,
    fields: tuple[str, ...] = (),
    codes: tuple[str, ...] = (),
    customer: str | None = "customer",
    initials: bool = False,
    through: str = "",
) -> Q:
    """``model``'s rows (deleted ones too: the caller's queryset decides) one of whose
    ``fields`` or ``codes`` (numbers: from three characters) contains ``query`` in any
    case, or whose customer ``customer_ids_named`` finds (``customer``: the path to it; ""
    when the rows are customers, None not to search customers). ``through``: the path from
    the filtered rows to ``model``'s, when they are another model's.

    When the indexes tell, the rows' own ids, not their customers': under a page's
    ORDER BY id LIMIT n, ``customer_id IN (…)`` had PostgreSQL walk the primary key
    expecting the rows early (0.55 s for one customer's orders among 5,000,000).
    Otherwise conditions no index serves."""
    query = query.strip()
    if not query:
        return Q()
    prefix = f"{through}__" if through else ""
    own = text_ids(model, query, fields, codes)
    customers = customer_ids_named(query, initials=initials) if customer is not None else []
    if own is not None and customers is not None:
        ids = _rows_ids(model, customer or "", own, customers)
        if ids is not None:
            return Q(**{f"{prefix}pk__in": ids})
    found = [Q(**{f"{prefix}pk__in": own})] if own else []
    if own is None:
        found += [_unindexed(f"{prefix}{name}", query) for name in _searched(query, fields, codes)]
    to_customer = f"{prefix}{customer}__" if customer else prefix
    if customers:
        found.append(Q(**{f"{to_customer}pk__in": customers}))
    elif customers is None:
        found += [_unindexed(f"{to_customer}{name}", query) for name in ("name", "short_name")]
        lowered = query.lower().replace(" ", "")
        if initials and _LATIN.match(lowered):
            found.append(_unindexed(f"{to_customer}name_initials", lowered))
        found.append(Q(**{f"{to_customer}code": query.upper()}))
    return reduce(operator.or_, found, Q(pk__in=[]))


class LinkedSearchFilter(SearchFilter):
    """``?search=`` through ``linked_search_q``, the whole text as one term: the view's
    ``search_fields`` are the model's own text columns and ``search_codes`` its numbers
    (indexed on PostgreSQL), ``search_customer`` the path to the customer (default
    ``customer``); or the view's own ``search_q(query)``."""

    def filter_queryset(self, request, queryset, view):
        query = request.query_params.get(self.search_param, "").strip()[:100]
        if not query:
            return queryset
        if hasattr(view, "search_q"):
            return queryset.filter(view.search_q(query))
        return queryset.filter(
            linked_search_q(
                queryset.model,
                query,
                fields=tuple(getattr(view, "search_fields", ())),
                codes=tuple(getattr(view, "search_codes", ())),
                customer=getattr(view, "search_customer", "customer"),
            )
        )
