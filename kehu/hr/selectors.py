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
