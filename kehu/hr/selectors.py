from __future__ import annotations

from django.db.models import QuerySet

from kehu.core.reference import reference_value
from kehu.hr.models import Department


def department_names() -> dict[int, str]:
    """Every department's name by id (cached: kehu.core.reference)."""
    return reference_value(
        "departments", "names", lambda: dict(Department.objects.values_list("id", "name"))
    )


def _department_paths() -> dict[int, str]:
    return reference_value(
        "departments", "paths", lambda: dict(Department.objects.values_list("id", "path"))
    )


def department_subtree_ids(department_id: int) -> QuerySet:
    """Ids of the department and all departments below it, as a subquery."""
    path = _department_paths().get(department_id)
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


# --- positions and employees ----------------------------------------------------------------


def position_list_for(*, user) -> QuerySet:
    """Positions are part of the organisation's structure: every holder of hr.view sees all."""
    from django.db.models import Count, Q

    from kehu.core.permissions import require_perm
    from kehu.hr.models import Position

    require_perm(user, "hr.view")
    return Position.objects.select_related("department").annotate(
        head_count=Count(
            "employees",
            filter=Q(employees__deleted_at__isnull=True) & ~Q(employees__status="resigned"),
        )
    )


def position_get_for(*, user, pk):
    from kehu.core.permissions import require_perm
    from kehu.hr.models import Position

    require_perm(user, "hr.view")
    from django.shortcuts import get_object_or_404

    return get_object_or_404(Position.objects.select_related("department"), pk=pk)


def employee_list_visible_to(*, user) -> QuerySet:
    """Employees in ``user``'s data scope (themself, their department tree, or all)."""
    from kehu.core.permissions import require_perm
    from kehu.core.scope import visible_to
    from kehu.hr.models import Employee

    require_perm(user, "hr.view")
    return visible_to(
        Employee.objects.select_related("department", "position", "manager", "user"), user
    )


def employee_get_for(*, user, pk):
    from kehu.core.permissions import require_perm
    from kehu.core.scope import get_visible_or_404
    from kehu.hr.models import Employee

    require_perm(user, "hr.view")
    return get_visible_or_404(
        Employee.objects.select_related("department", "position", "manager", "user"), user, pk=pk
    )


def employee_history_for(*, employee) -> list:
    from kehu.hr.models import EmployeeHistory

    return list(
        EmployeeHistory.objects.filter(employee=employee).select_related(
            "from_department", "to_department", "from_position", "to_position", "by"
        )
    )


def employees_in_subtree(queryset: QuerySet, department_id: int) -> QuerySet:
    return queryset.filter(department__in=department_subtree_ids(department_id))


# --- org chart ------------------------------------------------------------------------------


def org_chart_for(*, user) -> list[dict]:
    """The department tree as nested dicts with manager and head counts, in three queries.

    ``head_count`` counts the department's own current employees (probation and active);
    ``total`` adds everyone below it.
    """
    from django.db.models import Count

    from kehu.core.permissions import require_perm
    from kehu.hr.models import Employee

    require_perm(user, "hr.view")
    departments = list(
        Department.objects.filter(is_active=True)
        .select_related("manager")
        .order_by("path", "sort_order", "id")
    )
    counts = dict(
        Employee.objects.exclude(status="resigned")
        .values("department")
        .annotate(n=Count("id"))
        .values_list("department", "n")
    )
    # Department heads by login: the manager's employee record gives the position title.
    positions = dict(
        Employee.objects.filter(user__in=[d.manager_id for d in departments if d.manager_id])
        .select_related("position")
        .values_list("user_id", "position__name")
    )
    nodes: dict[int, dict] = {}
    roots: list[dict] = []
    for department in departments:
        node = {
            "department": department,
            "manager": department.manager,
            "manager_position": positions.get(department.manager_id) or "",
            "head_count": counts.get(department.pk, 0),
            "total": counts.get(department.pk, 0),
            "children": [],
        }
        nodes[department.pk] = node
        parent = nodes.get(department.parent_id) if department.parent_id else None
        (parent["children"] if parent else roots).append(node)
    # Totals bottom-up: paths sort parents first, so walk the list backwards.
    for department in reversed(departments):
        if department.parent_id in nodes:
            nodes[department.parent_id]["total"] += nodes[department.pk]["total"]
    return roots


# --- handover -------------------------------------------------------------------------------


def handover_preview(*, user_id: int | None) -> dict:
    """What a handover from ``user_id`` would move, per kind of record.

    Counts read the customers module's tables (read-only) when it is installed; the
    contracts and approvals lines join once the sales module exists.
    """
    from django.apps import apps

    preview: dict = {}
    if user_id is None:
        return preview
    if apps.is_installed("kehu.customers"):
        from kehu.customers.models import Customer, Opportunity, StageKind

        preview["customers"] = Customer.objects.filter(owner_id=user_id).count()
        preview["opportunities"] = Opportunity.objects.filter(
            owner_id=user_id, stage__kind=StageKind.OPEN
        ).count()
    return preview


def handover_list_for(*, user) -> QuerySet:
    from kehu.core.permissions import require_perm
    from kehu.hr.models import Handover

    require_perm(user, "hr.view")
    return Handover.objects.select_related("employee", "successor", "by")


# --- sales targets --------------------------------------------------------------------------

# Sales and finance modules register a function here that returns real figures:
# (user_ids, department_ids, year, month) -> {("user"|"department", id): {"contract_amount",
# "payment_amount"}}. Until one exists, achievement is zero and flagged as unavailable.
ACHIEVEMENT_SOURCES: list = []
# The analytics module registers its stored monthly sums here (the same signature and
# figures as all the sources together, read from a few rows instead of the documents).
# The sources above stay the definition of what counts; ``live=True`` asks them.
ACHIEVEMENT_STORED: list = []


def achievement_for(
    *,
    year: int,
    month: int | None = None,
    user_ids: list[int] | None = None,
    department_ids: list[int] | None = None,
    live: bool = False,
) -> dict:
    """Achieved contract amount and payments per user or department for a year or month.

    ``source_available`` is False while no sales or finance module provides figures, so
    pages can say so instead of showing a number that looks real.
    """
    from decimal import Decimal

    zero = {"contract_amount": Decimal("0.00"), "payment_amount": Decimal("0.00")}
    result: dict = {
        "source_available": bool(ACHIEVEMENT_SOURCES),
        "users": {pk: dict(zero) for pk in user_ids or []},
        "departments": {pk: dict(zero) for pk in department_ids or []},
    }
    sources = ACHIEVEMENT_SOURCES
    if ACHIEVEMENT_SOURCES and ACHIEVEMENT_STORED and not live:
        sources = ACHIEVEMENT_STORED
    for source in sources:
        figures = source(
            user_ids=user_ids or [], department_ids=department_ids or [], year=year, month=month
        )
        for (kind, pk), values in figures.items():
            bucket = result["users" if kind == "user" else "departments"].setdefault(pk, dict(zero))
            for key, value in values.items():
                bucket[key] = bucket.get(key, Decimal("0.00")) + value
    return result


QUARTERS = ((1, 2, 3), (4, 5, 6), (7, 8, 9), (10, 11, 12))


def target_rollup(months: dict) -> dict:
    """Quarter and year totals from month → Decimal."""
    from decimal import Decimal

    values = {m: months.get(m) or Decimal("0.00") for m in range(1, 13)}
    quarters = [sum((values[m] for m in q), Decimal("0.00")) for q in QUARTERS]
    return {"months": values, "quarters": quarters, "year": sum(quarters, Decimal("0.00"))}


def _sells(permissions: list[str]) -> bool:
    return "sales.add" in permissions and "system.change" not in permissions


def sales_target_grid(*, user, year: int, kind: str, metric: str) -> dict:
    """Rows (salespeople or departments in scope) × 12 months with roll-ups: 3 queries.

    ``metric`` is ``contract`` or ``payment``.
    """
    from kehu.core.permissions import require_perm
    from kehu.core.scope import visible_to
    from kehu.hr.models import Employee, SalesTarget, TargetKind

    require_perm(user, "hr.view")
    field = "payment_target" if metric == "payment" else "contract_amount_target"
    targets = visible_to(SalesTarget.objects.filter(year=year, kind=kind), user)
    rows: list[dict] = []
    if kind == TargetKind.DEPARTMENT:
        owners = list(visible_to(Department.objects.filter(is_active=True), user).order_by("path"))
        by_owner: dict[int, dict] = {d.pk: {} for d in owners}
        for target in targets:
            by_owner.setdefault(target.department_id, {})[target.month] = target
        achievement = achievement_for(year=year, department_ids=[d.pk for d in owners])
        ach = achievement["departments"]
        for d in owners:
            rows.append(
                {
                    "owner": d,
                    "owner_id": d.pk,
                    "label": d.name,
                    "sub": "",
                    "depth": d.depth,
                    "targets": by_owner.get(d.pk, {}),
                }
            )
    else:
        # Rows: current employees whose login may sign contracts (a role with sales.add),
        # leaving out administrators, whose all-permissions role is not a sales job.
        candidates = (
            visible_to(Employee.objects.filter(user__is_active=True), user)
            .exclude(status="resigned")
            .select_related("department", "user")
            .prefetch_related("user__roles")
            .order_by("department__path", "employee_no")
        )
        employees = [
            e for e in candidates if any(_sells(r.permissions or []) for r in e.user.roles.all())
        ]
        by_owner = {}
        for target in targets:
            by_owner.setdefault(target.user_id, {})[target.month] = target
        achievement = achievement_for(year=year, user_ids=[e.user_id for e in employees])
        ach = achievement["users"]
        for e in employees:
            rows.append(
                {
                    "owner": e.user,
                    "owner_id": e.user_id,
                    "label": e.name,
                    "sub": e.department.name,
                    "depth": 0,
                    "targets": by_owner.get(e.user_id, {}),
                }
            )
    ach_key = "payment_amount" if metric == "payment" else "contract_amount"
    for row in rows:
        row.update(target_rollup({m: getattr(t, field) for m, t in row["targets"].items()}))
        # The grid's cells in column order: three months, then their quarter, four times.
        cells: list[dict] = []
        for q, months in enumerate(QUARTERS):
            for m in months:
                cells.append(
                    {"month": m, "value": row["months"][m], "target": row["targets"].get(m)}
                )
            cells.append({"quarter": q + 1, "value": row["quarters"][q]})
        row["cells"] = cells
        row["achieved"] = ach.get(row["owner_id"], {}).get(ach_key)
    return {"rows": rows, "source_available": achievement["source_available"], "field": field}
