from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat, Substr
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError
from kehu.core.permissions import require_perm
from kehu.core.services import model_create, versioned_update
from kehu.hr.models import Department

PATH_WIDTH = 8


def _segment(pk: int) -> str:
    return f"{pk:0{PATH_WIDTH}d}/"


def department_create(*, actor, data: dict[str, Any]) -> Department:
    require_perm(actor, "hr.add")
    with transaction.atomic():
        department = model_create(model=Department, user=actor, data=data)
        parent_path = department.parent.path if department.parent else "/"
        department.path = parent_path + _segment(department.pk)
        department.save(update_fields=["path"])
    return department


def department_update(
    *, actor, department: Department, expected_version: int, data: dict[str, Any]
) -> Department:
    """Rename, re-parent or re-manage a department; moving carries its subtree along."""
    require_perm(actor, "hr.change")
    new_parent = data.get("parent", department.parent)
    with transaction.atomic():
        # Lock both rows (in id order, so two moves cannot deadlock) and check the cycle
        # against paths read under the lock: two simultaneous moves cannot make a loop.
        locked = {
            d.pk: d
            for d in Department.objects.select_for_update()
            .filter(pk__in=[department.pk, getattr(new_parent, "pk", None)])
            .order_by("pk")
        }
        old_path = locked[department.pk].path
        parent_path = locked[new_parent.pk].path if new_parent is not None else "/"
        if new_parent is not None and parent_path.startswith(old_path):
            raise ServiceError(
                _("A department cannot be moved under itself or one of its sub-departments."),
                field="parent",
            )
        department = versioned_update(
            instance=department, user=actor, expected_version=expected_version, data=data
        )
        new_path = parent_path + _segment(department.pk)
        if new_path != old_path:
            # Rewrite the prefix of every path in the subtree in one statement.
            Department.objects.filter(path__startswith=old_path).update(
                path=Concat(Value(new_path), Substr("path", len(old_path) + 1))
            )
            department.refresh_from_db()
    return department


def department_delete(*, actor, department: Department) -> None:
    require_perm(actor, "hr.delete")
    if department.children.exists():
        raise ServiceError(_("Move or delete the sub-departments first."))
    if department.users.exists():
        raise ServiceError(_("This department still has users; move them first."))
    from kehu.system.services import audit_log_record

    with transaction.atomic():
        audit_log_record(user=actor, action="delete", obj=department)
        department.delete()
