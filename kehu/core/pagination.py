"""Pagination that never counts a whole table: lists stop counting at a cap.

A full ``COUNT(*)`` over a million scoped, filtered rows costs as much as reading them; a
list page only needs to know "20 of 10,000+". The count runs over at most ``cap + 1``
rows, so it costs O(cap) at any table size. Pages stop at the cap too (500 pages of 20):
nobody pages through ten thousand rows, they narrow the filters, and deep OFFSETs are what
makes page N slow. Below the cap everything is exact, as before.

A filtered or searched list can still read its whole scope to count: a term in a few
hundred of a salesperson's 180,000 customers is met a few hundred times, never the cap.
Given a time budget, the count is stopped when it runs over it (PostgreSQL's
statement_timeout, SQLite's progress handler) and the list pages on without a total
("open-ended"): each page reads one row more than it shows to know whether another follows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.paginator import EmptyPage, Paginator
from django.db import OperationalError, connections, transaction
from django.utils.functional import cached_property

DEFAULT_COUNT_CAP = 10_000
DEFAULT_COUNT_BUDGET_MS = 50
SQLITE_PROGRESS_STEPS = 10_000  # how often SQLite asks whether the budget is spent
T = TypeVar("T")


def list_count_cap() -> int:
    # A setting so tests (and a company with a strong server) can move it.
    return int(getattr(settings, "KEHU_LIST_COUNT_CAP", DEFAULT_COUNT_CAP))


def list_count_budget_ms() -> int:
    return int(getattr(settings, "KEHU_LIST_COUNT_BUDGET_MS", DEFAULT_COUNT_BUDGET_MS))


def count_within(queryset, budget_ms: int) -> int | None:
    """``queryset.count()``, or None when the database needs longer than ``budget_ms``."""
    return within_budget(queryset.count, budget_ms, using=queryset.db)


def within_budget(read: Callable[[], T], budget_ms: int, *, using: str = "default") -> T | None:
    """``read()`` (queries of database ``using``), or None when the database needs longer
    than ``budget_ms`` for them."""
    connection = connections[using]
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        deadline = time.perf_counter() + budget_ms / 1000
        # Asked every SQLITE_PROGRESS_STEPS virtual machine steps; true interrupts the query.
        connection.connection.set_progress_handler(
            lambda: time.perf_counter() > deadline, SQLITE_PROGRESS_STEPS
        )
        try:
            return read()
        except OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            return None
        finally:
            connection.connection.set_progress_handler(None, 0)
    if connection.vendor != "postgresql":
        return read()
    try:
        # SET LOCAL inside a transaction (a savepoint when one is open): a cancelled count
        # rolls it back with the limit, and no later statement of the connection, nor
        # another client's behind a transaction-pooling proxy, inherits the limit.
        nested = connection.in_atomic_block
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {max(1, int(budget_ms))}")  # 0: none
            result = read()
            if nested:  # the enclosing transaction goes on after the savepoint
                cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
        return result
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "57014":  # query_canceled
            raise
        return None


class BoundedPaginator(Paginator):
    def __init__(self, *args, cap: int | None = None, budget_ms: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.cap = list_count_cap() if cap is None else cap
        self.budget_ms = budget_ms
        self.open_ended = False
        self._more = False  # open-ended: the page read a row past its end

    @cached_property
    def _bounded_count(self) -> int:
        rows = self.object_list
        if hasattr(rows, "values"):  # a queryset: count ids only, no joins, no ordering
            ids = rows.values("pk").order_by()[: self.cap + 1]
            if self.budget_ms is None:
                return ids.count()
            count = count_within(ids, self.budget_ms)
            if count is not None:
                return count
            self.open_ended = True
            return 0  # replaced by what the page reads (``page``)
        return min(len(rows), self.cap + 1)

    @cached_property
    def capped(self) -> bool:
        """True when there are more rows than the count says (the page says "10,000+")."""
        if self.open_ended:
            return self._more
        return self._bounded_count > self.cap

    @property
    def exact(self) -> bool:
        """The count is every row: neither stopped at the cap nor left open past its budget."""
        self._bounded_count  # noqa: B018 (decides whether the list is open-ended)
        return not self.open_ended and not self.capped

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return min(self._bounded_count, self.cap)

    @property
    def num_pages(self) -> int:  # type: ignore[override]
        self._bounded_count  # noqa: B018 (decides whether the list is open-ended)
        if self.open_ended:
            return getattr(self, "_open_number", 1) + (1 if self._more else 0)
        return super().num_pages

    @property
    def count_display(self) -> str:
        """The count as the page prints it: "10,000" (followed by "+" when capped)."""
        return f"{self.count:,}"

    def page(self, number):
        self._bounded_count  # noqa: B018 (counts, or finds the count over its budget)
        if not self.open_ended:
            return super().page(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            number = 1
        number = max(1, min(number, -(-self.cap // self.per_page)))
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage(self.error_messages["no_results"])
        self._more = len(rows) > self.per_page
        rows = rows[: self.per_page]
        self._open_number = number
        # What is known: the rows up to this page's end (``capped`` says more follow).
        self.__dict__["count"] = bottom + len(rows)
        self.__dict__.pop("capped", None)
        return self._get_page(rows, number, self)
