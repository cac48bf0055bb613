"""The one data-scope mechanism. Every queryset of a scoped model goes through here.

A scoped model declares which field holds the owner and which the owner's department:

    class Customer(BusinessModel):
        scope_owner_field = "owner"
        scope_department_field = "department"

``visible_to(queryset, user)`` then narrows any queryset to what the user's roles allow:
own records, the user's department, the department and all below it, or everything.
Several roles combine as the widest scope.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _


class DataScope(models.TextChoices):
    OWN = "own", _("Own records")
    DEPARTMENT = "department", _("Own department")
    DEPARTMENT_TREE = "department_tree", _("Department and below")
    ALL = "all", _("All records")


SCOPE_RANK = {
    DataScope.OWN: 0,
    DataScope.DEPARTMENT: 1,
    DataScope.DEPARTMENT_TREE: 2,
    DataScope.ALL: 3,
}


def widest_scope(scopes) -> DataScope:
    """Several roles combine as the widest of their scopes; no role sees only its own."""
    best = DataScope.OWN
    for scope in scopes:
        scope = DataScope(scope)
        if SCOPE_RANK[scope] > SCOPE_RANK[best]:
            best = scope
    return best


def user_data_scope(user) -> DataScope:
    if not user or not user.is_authenticated or not user.is_active:
        return DataScope.OWN
    if user.is_superuser:
        return DataScope.ALL
    from kehu.system.access import access_for  # cached; see kehu/system/access.py

    return widest_scope(access_for(user)["scopes"])


def scope_q(model: type[models.Model], user, *, prefix: str = "") -> Q:
    """The filter that restricts ``model`` rows to ``user``'s data scope.

    ``prefix`` lets a related model reuse its parent's scope (``"customer__"``).
    """
    from kehu.hr.selectors import department_subtree_ids

    owner_field = prefix + getattr(model, "scope_owner_field", "owner")
    dept_field = prefix + getattr(model, "scope_department_field", "department")
    if not user or not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    scope = user_data_scope(user)
    if scope == DataScope.ALL:
        return Q()
    own = Q(**{owner_field: user.pk})
    if scope == DataScope.OWN or user.department_id is None:
        return own
    if scope == DataScope.DEPARTMENT:
        return own | Q(**{dept_field: user.department_id})
    return own | Q(**{f"{dept_field}__in": department_subtree_ids(user.department_id)})


def visible_to(queryset: QuerySet, user, *, prefix: str = "") -> QuerySet:
    return queryset.filter(scope_q(queryset.model, user, prefix=prefix))


def get_visible_or_404(queryset: QuerySet, user, **lookup: Any):
    """Missing and out-of-scope look the same: a 404, never the object's data."""
    try:
        return visible_to(queryset, user).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(str(_("Not found."))) from exc
