from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.core.fields import FieldAccess, field_policy_for
from kehu.core.permissions import require_perm
from kehu.core.services import document_number_next, model_create, versioned_update
from kehu.core.tree import tree_node_update, tree_path_set
from kehu.hr.models import (
    Department,
    Employee,
    EmployeeHistory,
    EmployeeStatus,
    Handover,
    HistoryKind,
    Position,
    SalesTarget,
    TargetKind,
)


def department_create(*, actor, data: dict[str, Any]) -> Department:
    require_perm(actor, "hr.add")
    with transaction.atomic():
        department = model_create(model=Department, user=actor, data=data)
        tree_path_set(department)
    return department


def department_update(
    *, actor, department: Department, expected_version: int, data: dict[str, Any]
) -> Department:
    """Rename, re-parent or re-manage a department; moving carries its subtree along."""
    require_perm(actor, "hr.change")
    return tree_node_update(
        node=department,
        new_parent=data.get("parent", department.parent),
        cycle_message=_("A department cannot be moved under itself or one of its sub-departments."),
        apply=lambda: versioned_update(
            instance=department, user=actor, expected_version=expected_version, data=data
        ),
    )


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


# --- positions ------------------------------------------------------------------------------


def position_create(*, actor, data: dict[str, Any]) -> Position:
    require_perm(actor, "hr.add")
    return model_create(model=Position, user=actor, data=data)


def position_update(
    *, actor, position: Position, expected_version: int, data: dict[str, Any]
) -> Position:
    require_perm(actor, "hr.change")
    return versioned_update(
        instance=position, user=actor, expected_version=expected_version, data=data
    )


# --- employees ------------------------------------------------------------------------------

# Allowed status moves; a resigned employee who comes back is hired again as a new record.
STATUS_MOVES = {
    EmployeeStatus.PROBATION: {EmployeeStatus.ACTIVE, EmployeeStatus.RESIGNED},
    EmployeeStatus.ACTIVE: {EmployeeStatus.RESIGNED},
    EmployeeStatus.RESIGNED: set(),
}


def _check_fields_writable(actor, data: dict[str, Any], instance: Employee | None) -> None:
    """Refuse writing a field the actor may not edit (a hidden salary stays untouched)."""
    policy = field_policy_for(actor, Employee)
    for name, value in data.items():
        if policy.get(name, FieldAccess.EDIT) == FieldAccess.EDIT:
            continue
        current = getattr(instance, name) if instance is not None else None
        if value in (None, "") and current in (None, ""):
            continue
        if instance is not None and value == current:
            continue
        raise PermissionRefused(_("You may not change this field."), field=name)


def _check_department_position(data: dict[str, Any]) -> None:
    position, department = data.get("position"), data.get("department")
    if position is not None and position.department_id not in (
        None,
        getattr(department, "pk", None),
    ):
        raise ServiceError(_("This position belongs to another department."), field="position")


def _history(
    *, employee: Employee, kind: str, actor, effective_date, note: str = "", **changes
) -> EmployeeHistory:
    return EmployeeHistory.objects.create(
        employee=employee,
        kind=kind,
        effective_date=effective_date or timezone.localdate(),
        note=note[:300],
        by=actor if getattr(actor, "is_authenticated", False) else None,
        **changes,
    )


def employee_create(*, actor, data: dict[str, Any]) -> Employee:
    """Hire someone: numbered EMP-<year>-NNNNNN unless a number is given; history "hire"."""
    require_perm(actor, "hr.add")
    data = dict(data)
    _check_fields_writable(actor, data, None)
    status = data.setdefault("status", EmployeeStatus.PROBATION)
    if status == EmployeeStatus.RESIGNED:
        raise ServiceError(_("A new employee cannot start as resigned."), field="status")
    _check_department_position(data)
    with transaction.atomic():
        if not data.get("employee_no"):
            data["employee_no"] = document_number_next(prefix="EMP")
        employee = model_create(model=Employee, user=actor, data=data)
        _history(
            employee=employee,
            kind=HistoryKind.HIRE,
            actor=actor,
            effective_date=employee.hire_date,
            to_department=employee.department,
            to_position=employee.position,
            to_status=employee.status,
        )
    return employee


def _history_for_changes(*, actor, before: Employee, after: Employee, effective_date, note) -> None:
    """One row per kind of change: department (transfer), position (promotion), status."""
    if before.department_id != after.department_id:
        _history(
            employee=after,
            kind=HistoryKind.TRANSFER,
            actor=actor,
            effective_date=effective_date,
            note=note,
            from_department_id=before.department_id,
            to_department_id=after.department_id,
            from_position_id=before.position_id,
            to_position_id=after.position_id,
        )
    elif before.position_id != after.position_id:
        _history(
            employee=after,
            kind=HistoryKind.PROMOTION,
            actor=actor,
            effective_date=effective_date,
            note=note,
            from_position_id=before.position_id,
            to_position_id=after.position_id,
        )
    if before.status != after.status:
        resigned = after.status == EmployeeStatus.RESIGNED
        _history(
            employee=after,
            kind=HistoryKind.RESIGN if resigned else HistoryKind.STATUS,
            actor=actor,
            effective_date=after.resign_date if resigned else effective_date,
            note=after.resign_reason if resigned and not note else note,
            from_status=before.status,
            to_status=after.status,
        )


def employee_update(
    *,
    actor,
    employee: Employee,
    expected_version: int | None,
    data: dict[str, Any],
    effective_date: datetime.date | None = None,
    note: str = "",
) -> Employee:
    """Edit an employee; department, position and status changes are kept as history.

    Rules are checked against the stored row, locked, not against ``employee``: a bound
    model form has already copied the posted values onto its instance.
    """
    require_perm(actor, "hr.change")
    data = dict(data)
    if "employee_no" in data and not data["employee_no"]:
        data.pop("employee_no")  # an emptied number keeps the old one
    with transaction.atomic():
        current = Employee.all_objects.select_for_update().filter(pk=employee.pk).first()
        if current is None or current.version != expected_version:
            raise ConflictError()  # stale first: the user must reload before anything else
        _check_employee_change(actor, current, data)
        updated = versioned_update(
            instance=current, user=actor, expected_version=expected_version, data=data
        )
        _history_for_changes(
            actor=actor, before=current, after=updated, effective_date=effective_date, note=note
        )
    return updated


def _check_employee_change(actor, current: Employee, data: dict[str, Any]) -> None:
    _check_fields_writable(actor, data, current)
    _check_department_position(
        {
            "department": data.get("department", current.department),
            "position": data.get("position", current.position),
        }
    )
    new_status = data.get("status", current.status)
    if new_status != current.status:
        if new_status not in STATUS_MOVES[EmployeeStatus(current.status)]:
            raise ServiceError(
                _("An employee cannot go from %(old)s to %(new)s.")
                % {
                    "old": EmployeeStatus(current.status).label,
                    "new": EmployeeStatus(new_status).label,
                },
                field="status",
            )
        if new_status == EmployeeStatus.RESIGNED:
            if not data.get("resign_date"):
                raise ServiceError(_("Enter the date the employee leaves."), field="resign_date")
            if not (data.get("resign_reason") or "").strip():
                raise ServiceError(_("Enter the reason for leaving."), field="resign_reason")
    if data.get("manager") is not None and data["manager"].pk == current.pk:
        raise ServiceError(_("An employee cannot be their own manager."), field="manager")


def employee_transfer(
    *,
    actor,
    employee: Employee,
    department: Department,
    position: Position | None,
    effective_date: datetime.date,
    note: str = "",
    expected_version: int | None = None,
) -> Employee:
    """Move an employee to another department (and position); one "transfer" history row."""
    if department.pk == employee.department_id and position == employee.position:
        raise ServiceError(_("Choose another department or position."), field="department")
    return employee_update(
        actor=actor,
        employee=employee,
        expected_version=expected_version or employee.version,
        data={"department": department, "position": position},
        effective_date=effective_date,
        note=note,
    )


def employee_promote(
    *,
    actor,
    employee: Employee,
    position: Position,
    effective_date: datetime.date,
    note: str = "",
    expected_version: int | None = None,
) -> Employee:
    """A new position in the same department; one "promotion" history row."""
    if position == employee.position:
        raise ServiceError(_("Choose another position."), field="position")
    return employee_update(
        actor=actor,
        employee=employee,
        expected_version=expected_version or employee.version,
        data={"position": position},
        effective_date=effective_date,
        note=note,
    )


def employee_set_status(
    *,
    actor,
    employee: Employee,
    status: str,
    effective_date: datetime.date | None = None,
    resign_date: datetime.date | None = None,
    resign_reason: str = "",
    note: str = "",
    expected_version: int | None = None,
) -> Employee:
    """Probation → active, or → resigned (needs the leaving date and reason)."""
    data: dict[str, Any] = {"status": status}
    if status == EmployeeStatus.RESIGNED:
        data.update(resign_date=resign_date, resign_reason=(resign_reason or "").strip())
    elif status == employee.status:
        raise ServiceError(_("The employee already has this status."), field="status")
    return employee_update(
        actor=actor,
        employee=employee,
        expected_version=expected_version or employee.version,
        data=data,
        effective_date=effective_date,
        note=note,
    )


def employee_delete(*, actor, employee: Employee) -> None:
    from kehu.core.services import soft_delete

    require_perm(actor, "hr.delete")
    soft_delete(instance=employee, user=actor)


# --- resignation handover -------------------------------------------------------------------


def _customer_handover_func():
    """The customers module's handover service, or a clear refusal when it is missing.

    Never skipped silently: a handover that leaves the leaver's customers behind would
    orphan them once the login is deactivated.
    """
    try:
        from kehu.customers import services as customer_services
    except ImportError:
        customer_services = None
    func = getattr(customer_services, "customer_handover", None)
    if func is None:
        raise ServiceError(
            _(
                "The customers module cannot hand over customers yet, so the handover "
                "was not started. Nothing was changed."
            )
        )
    return func


def employee_handover(
    *, actor, employee: Employee, successor, reason: str, resign_date=None
) -> Handover:
    """Hand a leaver's customers and open opportunities to ``successor``, in one transaction.

    Marks the employee resigned (today, unless already), deactivates their login and
    records what moved. Any failure rolls everything back.
    """
    require_perm(actor, "hr.assign")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Enter the reason for the handover."), field="reason")
    if successor is None:
        raise ServiceError(_("Choose the successor."), field="successor")
    if employee.user_id is not None and successor.pk == employee.user_id:
        raise ServiceError(_("The successor cannot be the leaver."), field="successor")
    if not successor.is_active:
        raise ServiceError(_("The successor's account is inactive."), field="successor")
    if getattr(successor, "employee", None) is not None and successor.employee.is_resigned:
        raise ServiceError(_("The successor has left the company."), field="successor")
    if employee.user_id is not None and employee.user_id == actor.pk:
        raise ServiceError(_("You cannot hand over your own work."), field="employee")
    handover_customers = _customer_handover_func() if employee.user_id else None
    from kehu.system.services import audit_log_record, user_set_active

    with transaction.atomic():
        # Lock the employee row: two HR users handing over the same leaver queue up here.
        employee = Employee.objects.select_for_update().get(pk=employee.pk)
        counts: dict[str, int] = {}
        if handover_customers is not None:
            counts = handover_preview_counts(user_id=employee.user_id)
            handover_customers(
                actor=actor, from_user=employee.user, to_user=successor, reason=reason
            )
            left = handover_preview_counts(user_id=employee.user_id)
            if any(left.values()):
                # Whatever the customers module did, the leaver must own nothing afterwards.
                raise ServiceError(
                    _("Some of the leaver's records could not be handed over; nothing was changed.")
                )
        if not employee.is_resigned:
            employee = employee_set_status(
                actor=actor,
                employee=employee,
                status=EmployeeStatus.RESIGNED,
                resign_date=resign_date or timezone.localdate(),
                resign_reason=reason,
                expected_version=employee.version,
            )
        leaver_login = employee.user
        if leaver_login is not None and leaver_login.is_active:
            user_set_active(
                actor=actor,
                user=leaver_login,
                active=False,
                expected_version=leaver_login.version,
                permission="hr.assign",
            )
            counts["login_deactivated"] = 1
        handover = Handover.objects.create(
            employee=employee, successor=successor, reason=reason[:300], counts=counts, by=actor
        )
        audit_log_record(
            user=actor,
            action="create",
            obj=handover,
            changes={"successor": ["", str(successor)], **{k: [v, 0] for k, v in counts.items()}},
        )
    return handover


def handover_preview_counts(*, user_id: int | None) -> dict[str, int]:
    """What a handover would move from ``user_id``: customers and open opportunities."""
    from kehu.hr.selectors import handover_preview

    return {k: v for k, v in handover_preview(user_id=user_id).items() if isinstance(v, int)}


# --- sales targets --------------------------------------------------------------------------


def sales_target_set(
    *,
    actor,
    kind: str,
    year: int,
    month: int,
    user=None,
    department: Department | None = None,
    contract_amount_target: Decimal | None = None,
    payment_target: Decimal | None = None,
    expected_version: int | None = None,
) -> SalesTarget:
    """Create or update one month's target for a salesperson or a department.

    An update needs the version read (a stale one is a conflict); creating the same
    month twice at once makes the second a conflict too, never a duplicate.
    """
    require_perm(actor, "hr.change")
    if not 1 <= int(month) <= 12:
        raise ServiceError(_("The month must be between 1 and 12."), field="month")
    for name, value in (
        ("contract_amount_target", contract_amount_target),
        ("payment_target", payment_target),
    ):
        if value is not None and value < 0:
            raise ServiceError(_("A target cannot be negative."), field=name)
    if kind == TargetKind.EMPLOYEE:
        if user is None:
            raise ServiceError(_("Choose the salesperson."), field="user")
        if user.department_id is None:
            raise ServiceError(_("This user has no department."), field="user")
        lookup: dict[str, Any] = {"kind": kind, "user": user}
        department_id = user.department_id
    elif kind == TargetKind.DEPARTMENT:
        if department is None:
            raise ServiceError(_("Choose the department."), field="department")
        lookup = {"kind": kind, "department": department, "user": None}
        department_id = department.pk
    else:
        raise ServiceError(_("Unknown target kind."), field="kind")
    values = {
        k: v
        for k, v in (
            ("contract_amount_target", contract_amount_target),
            ("payment_target", payment_target),
        )
        if v is not None
    }
    existing = SalesTarget.objects.filter(year=year, month=month, **lookup).first()
    if existing is not None:
        if expected_version is None:
            raise ConflictError()
        return versioned_update(
            instance=existing, user=actor, expected_version=expected_version, data=values
        )
    data = {
        "kind": kind,
        "user": lookup.get("user"),
        "department_id": department_id,
        "year": year,
        "month": month,
        **values,
    }
    try:
        with transaction.atomic():
            return model_create(model=SalesTarget, user=actor, data=data)
    except IntegrityError as exc:
        raise ConflictError() from exc
