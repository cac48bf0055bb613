"""Global search: employees by name, number or phone, within the searcher's scope."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kehu.core.search import SearchHit, SearchProvider, register_search
from kehu.hr.selectors import employee_list_visible_to


def search_employees(*, user, query: str, limit: int) -> list[SearchHit]:
    # Not the ID number: searching a masked field would reveal it digit by digit.
    employees = (
        employee_list_visible_to(user=user)
        .filter(Q(name__icontains=query) | Q(employee_no__icontains=query))
        .order_by("employee_no")[:limit]
    )
    return [
        SearchHit(
            title=e.name,
            subtitle=" · ".join(
                filter(None, [e.employee_no, str(e.department), str(e.position or "")])
            ),
            url=e.get_absolute_url(),
        )
        for e in employees
    ]


def register() -> None:
    register_search(
        SearchProvider(label=_("Employees"), permission="hr.view", search=search_employees)
    )
