from __future__ import annotations

from django.db.models import QuerySet

from kehu.hr.models import Department


def department_subtree_ids(department_id: int) -> QuerySet:
    """Ids of the department and all departments below it, as a subquery."""
    path = Department.objects.filter(pk=department_id).values_list("path", flat=True).first()
    if not path:
        return Department.objects.filter(pk=department_id).values("id")
    return Department.objects.filter(path__startswith=path).values("id")


def department_tree() -> list[Department]:
    """All departments in tree order (parents before children), with managers."""
    return list(Department.objects.select_related("manager", "parent").order_by("path"))


def department_list_for(*, user) -> QuerySet[Department]:
    """Departments ``user`` may see, in tree order, with manager and active head count."""
    from django.db.models import Count, Q

    from kehu.core.permissions import require_perm
    from kehu.core.scope import visible_to

    require_perm(user, "hr.view")
    return (
        visible_to(Department.objects.select_related("manager"), user)
        .select_related("parent")
        .annotate(head_count=Count("users", filter=Q(users__is_active=True)))
        .order_by("path", "sort_order", "id")
    )


def department_get_for(*, user, pk) -> Department:
    from kehu.core.permissions import require_perm
    from kehu.core.scope import get_visible_or_404

    require_perm(user, "hr.view")
    return get_visible_or_404(Department.objects.select_related("parent", "manager"), user, pk=pk)
