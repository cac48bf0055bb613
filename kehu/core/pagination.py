"""Pagination that never counts a whole table: lists stop counting at a cap.

A full ``COUNT(*)`` over a million scoped, filtered rows costs as much as reading them; a
list page only needs to know "20 of 10,000+". The count runs over at most ``cap + 1``
rows, so it costs O(cap) at any table size. Pages stop at the cap too (500 pages of 20):
nobody pages through ten thousand rows, they narrow the filters, and deep OFFSETs are what
makes page N slow. Below the cap everything is exact, as before.
"""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.utils.functional import cached_property

DEFAULT_COUNT_CAP = 10_000


def list_count_cap() -> int:
    # A setting so tests (and a company with a strong server) can move it.
    return int(getattr(settings, "KEHU_LIST_COUNT_CAP", DEFAULT_COUNT_CAP))


class BoundedPaginator(Paginator):
    def __init__(self, *args, cap: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.cap = list_count_cap() if cap is None else cap

    @cached_property
    def _bounded_count(self) -> int:
        rows = self.object_list
        if hasattr(rows, "values"):  # a queryset: count ids only, no joins, no ordering
            return rows.values("pk").order_by()[: self.cap + 1].count()
        return min(len(rows), self.cap + 1)

    @cached_property
    def capped(self) -> bool:
        """True when there are more rows than the cap (the page says "10,000+")."""
        return self._bounded_count > self.cap

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return min(self._bounded_count, self.cap)

    @property
    def count_display(self) -> str:
        """The count as the page prints it: "10,000" (followed by "+" when capped)."""
        return f"{self.count:,}"
