"""Global search providers for users and departments; both read through the user's scope."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kehu.core.scope import visible_to
from kehu.core.search import SearchHit, SearchProvider, register_search
from kehu.hr.models import Department
from kehu.system.selectors import user_list_visible_to


def search_users(*, user, query: str, limit: int) -> list[SearchHit]:
    # Name fields only: matching on phone or e-mail would reveal masked values.
    users = (
        user_list_visible_to(user=user)
        .filter(Q(username__icontains=query) | Q(display_name__icontains=query))
        .order_by("username")[:limit]
    )
    return [
        SearchHit(
            title=str(u),
            subtitle=" · ".join(filter(None, [u.username, str(u.department or "")])),
            url=u.get_absolute_url(),
        )
        for u in users
    ]


def search_departments(*, user, query: str, limit: int) -> list[SearchHit]:
    departments = visible_to(
        Department.objects.select_related("parent").filter(
            Q(name__icontains=query) | Q(code__icontains=query)
        ),
        user,
    ).order_by("path")[:limit]
    return [
        SearchHit(title=d.name, subtitle=str(d.parent or ""), url=d.get_absolute_url())
        for d in departments
    ]


def register() -> None:
    register_search(SearchProvider(label=_("Users"), permission="system.view", search=search_users))
    register_search(
        SearchProvider(label=_("Departments"), permission="hr.view", search=search_departments)
    )
