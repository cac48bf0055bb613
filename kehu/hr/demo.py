"""HR demo rows: positions per department, an employee for every demo user and thirty
more, some history, and this year's sales targets. Idempotent: rows are looked up by
login, name or month first, so a second run creates nothing."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.utils import timezone

from kehu.hr.models import Department, Employee, EmployeeStatus, Position, SalesTarget, TargetKind
from kehu.hr.services import (
    employee_create,
    employee_promote,
    employee_set_status,
    employee_transfer,
    position_create,
    sales_target_set,
)

# department code → [(position, level)]
POSITIONS: dict[str, list[tuple[str, int]]] = {
    "gm-office": [("总经理", 6), ("总经理助理", 3), ("系统管理员", 3)],
    "sales-1": [("销售经理", 4), ("销售主管", 3), ("销售代表", 2), ("销售助理", 1)],
    "sales-2": [("销售经理", 4), ("销售主管", 3), ("销售代表", 2), ("销售助理", 1)],
    "finance": [("财务经理", 4), ("会计", 2), ("出纳", 1)],
    "hr": [("人事经理", 4), ("人事专员", 2)],
    "warehouse": [("仓库主管", 3), ("仓管员", 1)],
}

ROLE_POSITION = {
    "admin": "系统管理员",
    "general_manager": "总经理",
    "sales_manager": "销售经理",
    "salesperson": "销售代表",
    "finance": "财务经理",
    "hr": "人事经理",
    "warehouse": "仓库主管",
}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
GIVEN = ["子涵", "浩然", "欣怡", "宇轩", "梓萱", "俊杰", "雨桐", "思远", "嘉怡", "明哲"]
# Where the thirty extra people work: department code, position.
EXTRA_PLACES = [
    ("sales-1", "销售代表"),
    ("sales-1", "销售助理"),
    ("sales-2", "销售代表"),
    ("sales-2", "销售主管"),
    ("finance", "会计"),
    ("warehouse", "仓管员"),
    ("hr", "人事专员"),
    ("gm-office", "总经理助理"),
]


def _id_number(n: int, birth: datetime.date, female: bool) -> str:
    """A well-formed (fictional) 18-digit resident ID with a valid check digit."""
    body = f"110105{birth:%Y%m%d}{n % 100:02d}{(n * 2 + (0 if female else 1)) % 10}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


def demo_load(*, admin, users: dict) -> dict[str, int]:
    from kehu.system.demo import USERS

    created = {"positions": 0, "employees": 0, "employee_history": 0, "sales_targets": 0}
    today = timezone.localdate()
    departments = {d.code: d for d in Department.objects.filter(code__in=list(POSITIONS))}
    positions: dict[tuple[str, str], Position] = {
        (getattr(p.department, "code", None) or "", p.name): p
        for p in Position.objects.filter(department__in=departments.values()).select_related(
            "department"
        )
    }
    for code, specs in POSITIONS.items():
        for name, level in specs:
            if code in departments and (code, name) not in positions:
                positions[(code, name)] = position_create(
                    actor=admin,
                    data={"name": name, "department": departments[code], "level": level},
                )
                created["positions"] += 1

    # Every demo user gets a linked employee record.
    linked = {e.user_id: e for e in Employee.all_objects.filter(user__in=users.values())}
    for index, spec in enumerate(USERS, start=1):
        user = users.get(spec.username)
        if user is None or user.pk in linked:
            continue
        birth = datetime.date(1980 + index * 2 % 15, index % 12 + 1, index * 3 % 27 + 1)
        linked[user.pk] = employee_create(
            actor=admin,
            data={
                "name": spec.display_name,
                "gender": "female" if index % 2 == 0 else "male",
                "birth_date": birth,
                "id_number": _id_number(index, birth, index % 2 == 0),
                "phone": spec.phone,
                "email": user.email,
                "department": departments[spec.department],
                "position": positions[(spec.department, ROLE_POSITION[spec.role])],
                "hire_date": today.replace(year=today.year - 1 - index % 4, day=1),
                "status": EmployeeStatus.ACTIVE,
                "base_salary": Decimal(8000 + index * 1500),
                "user": user,
            },
        )
        created["employees"] += 1
        created["employee_history"] += 1

    heads = {
        d.pk: linked.get(d.manager_id) for d in departments.values() if d.manager_id is not None
    }
    names = [f"{SURNAMES[i % len(SURNAMES)]}{GIVEN[i % len(GIVEN)]}" for i in range(30)]
    existing = set(Employee.all_objects.filter(name__in=names).values_list("name", flat=True))
    for i, name in enumerate(names):
        if name in existing:
            continue
        code, position_name = EXTRA_PLACES[i % len(EXTRA_PLACES)]
        department = departments[code]
        birth = datetime.date(1985 + i % 14, i % 12 + 1, i % 27 + 1)
        hired = today - datetime.timedelta(days=40 + i * 37)
        employee = employee_create(
            actor=admin,
            data={
                "name": name,
                "gender": "female" if i % 3 == 0 else "male",
                "birth_date": birth,
                "id_number": _id_number(100 + i, birth, i % 3 == 0),
                "phone": f"139{i:04d}{(i * 7919) % 10000:04d}",
                "department": department,
                "position": positions[(code, position_name)],
                "manager": heads.get(department.pk),
                "hire_date": hired,
                "status": EmployeeStatus.PROBATION if i % 7 == 3 else EmployeeStatus.ACTIVE,
                "base_salary": Decimal(5000 + i * 250),
            },
        )
        created["employees"] += 1
        created["employee_history"] += 1
        # A few careers with history: a promotion, a transfer, a departure.
        if i % 8 == 0 and code == "sales-1":
            employee_promote(
                actor=admin,
                employee=employee,
                position=positions[("sales-1", "销售主管")],
                effective_date=hired + datetime.timedelta(days=30),
                note="季度考核优秀",
            )
            created["employee_history"] += 1
        elif i % 8 == 2 and "sales-1" in departments:
            employee_transfer(
                actor=admin,
                employee=employee,
                department=departments["sales-1"],
                position=positions[("sales-1", "销售代表")],
                effective_date=hired + datetime.timedelta(days=20),
                note="区域调整",
            )
            created["employee_history"] += 1
        elif i in (13, 21):
            employee_set_status(
                actor=admin,
                employee=employee,
                status=EmployeeStatus.RESIGNED,
                resign_date=today - datetime.timedelta(days=10),
                resign_reason="个人发展",
            )
            created["employee_history"] += 1

    created["sales_targets"] += _targets_ensure(admin, users, departments, today.year)
    return created


def _targets_ensure(admin, users: dict, departments: dict, year: int) -> int:
    count = 0
    existing_users = set(
        SalesTarget.objects.filter(year=year, kind=TargetKind.EMPLOYEE).values_list(
            "user_id", "month"
        )
    )
    existing_depts = set(
        SalesTarget.objects.filter(year=year, kind=TargetKind.DEPARTMENT).values_list(
            "department_id", "month"
        )
    )
    people = [users[n] for n in ("salesmgr1", "sales1", "sales2", "sales3") if n in users]
    for n, person in enumerate(people):
        for month in range(1, 13):
            if (person.pk, month) in existing_users:
                continue
            base = Decimal(150000 + n * 30000 + (month % 3) * 20000)
            sales_target_set(
                actor=admin,
                kind=TargetKind.EMPLOYEE,
                user=person,
                year=year,
                month=month,
                contract_amount_target=base,
                payment_target=(base * Decimal("0.8")).quantize(Decimal("1")),
            )
            count += 1
    for n, code in enumerate(("sales-1", "sales-2")):
        department = departments.get(code)
        if department is None:
            continue
        for month in range(1, 13):
            if (department.pk, month) in existing_depts:
                continue
            base = Decimal(600000 - n * 200000 + (month % 3) * 50000)
            sales_target_set(
                actor=admin,
                kind=TargetKind.DEPARTMENT,
                department=department,
                year=year,
                month=month,
                contract_amount_target=base,
                payment_target=(base * Decimal("0.8")).quantize(Decimal("1")),
            )
            count += 1
    return count
