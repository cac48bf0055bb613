"""Employee services: numbering, history on every move, status rules, versions, rights."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.hr import services
from kehu.hr.models import Employee, EmployeeHistory, EmployeeStatus, HistoryKind
from kehu.system.models import FieldPermission, Role
from tests.factories import UserFactory

TODAY = datetime.date(2026, 3, 1)


def test_create_numbers_and_records_hire(org, staff):
    employee = services.employee_create(
        actor=org.hr,
        data={
            "name": "新人",
            "department": org.sales2_dept,
            "position": staff.rep2,
            "hire_date": TODAY,
        },
    )
    year = timezone.localdate().year
    assert employee.employee_no == f"EMP-{year}-000001"
    assert employee.status == EmployeeStatus.PROBATION
    (row,) = EmployeeHistory.objects.filter(employee=employee)
    assert row.kind == HistoryKind.HIRE and row.to_department == org.sales2_dept
    assert row.by == org.hr


def test_create_with_login_link(org, staff):
    user = UserFactory(username="newbie", department=org.sales2_dept)
    employee = services.employee_create(
        actor=org.hr,
        data={"name": "N", "department": org.sales2_dept, "hire_date": TODAY, "user": user},
    )
    assert user.employee == employee


def test_create_refused_without_permission_changes_nothing(org, staff):
    before = Employee.objects.count()
    with pytest.raises(PermissionRefused):
        services.employee_create(
            actor=org.salesmgr1,
            data={"name": "X", "department": org.sales1_dept, "hire_date": TODAY},
        )
    assert Employee.objects.count() == before


def test_position_must_belong_to_department(org, staff):
    with pytest.raises(ServiceError) as exc:
        services.employee_create(
            actor=org.hr,
            data={
                "name": "X",
                "department": org.sales2_dept,
                "position": staff.rep1,
                "hire_date": TODAY,
            },
        )
    assert exc.value.field == "position"


def test_transfer_writes_history(org, staff):
    employee = services.employee_transfer(
        actor=org.hr,
        employee=staff.sales2,
        department=org.sales2_dept,
        position=staff.rep2,
        effective_date=TODAY,
        note="区域调整",
    )
    assert employee.department == org.sales2_dept and employee.version == 2
    (row,) = EmployeeHistory.objects.filter(employee=employee)
    assert row.kind == HistoryKind.TRANSFER
    assert (row.from_department, row.to_department) == (org.sales1_dept, org.sales2_dept)
    assert (row.from_position, row.to_position) == (staff.rep1, staff.rep2)
    assert row.effective_date == TODAY and row.note == "区域调整" and row.by == org.hr


def test_promotion_writes_history(org, staff):
    employee = services.employee_promote(
        actor=org.hr, employee=staff.sales1, position=staff.lead1, effective_date=TODAY
    )
    (row,) = EmployeeHistory.objects.filter(employee=employee)
    assert row.kind == HistoryKind.PROMOTION
    assert (row.from_position, row.to_position) == (staff.rep1, staff.lead1)


def test_status_moves_write_history(org, staff):
    employee = staff.sales1
    Employee.objects.filter(pk=employee.pk).update(status=EmployeeStatus.PROBATION)
    employee.refresh_from_db()
    employee = services.employee_set_status(
        actor=org.hr, employee=employee, status=EmployeeStatus.ACTIVE, effective_date=TODAY
    )
    employee = services.employee_set_status(
        actor=org.hr,
        employee=employee,
        status=EmployeeStatus.RESIGNED,
        resign_date=TODAY,
        resign_reason="回老家",
    )
    rows = list(EmployeeHistory.objects.filter(employee=employee).order_by("id"))
    assert [(r.kind, r.from_status, r.to_status) for r in rows] == [
        (HistoryKind.STATUS, "probation", "active"),
        (HistoryKind.RESIGN, "active", "resigned"),
    ]
    assert rows[1].note == "回老家"
    assert employee.resign_date == TODAY


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"resign_reason": "x"}, "resign_date"),
        ({"resign_date": TODAY, "resign_reason": "  "}, "resign_reason"),
    ],
)
def test_resigning_needs_date_and_reason(org, staff, kwargs, field):
    with pytest.raises(ServiceError) as exc:
        services.employee_set_status(
            actor=org.hr, employee=staff.sales1, status=EmployeeStatus.RESIGNED, **kwargs
        )
    assert exc.value.field == field
    staff.sales1.refresh_from_db()
    assert staff.sales1.status == EmployeeStatus.ACTIVE
    assert not EmployeeHistory.objects.exists()


def test_resigned_cannot_come_back(org, staff):
    employee = services.employee_set_status(
        actor=org.hr,
        employee=staff.sales1,
        status=EmployeeStatus.RESIGNED,
        resign_date=TODAY,
        resign_reason="x",
    )
    with pytest.raises(ServiceError):
        services.employee_set_status(actor=org.hr, employee=employee, status="active")


def test_stale_version_conflicts_and_changes_nothing(org, staff):
    employee = staff.sales1
    services.employee_update(
        actor=org.hr, employee=employee, expected_version=1, data={"phone": "1"}
    )
    with pytest.raises(ConflictError):
        services.employee_update(
            actor=org.hr,
            employee=employee,
            expected_version=1,
            data={"department": org.sales2_dept, "position": None},
        )
    employee.refresh_from_db()
    assert employee.department == org.sales1_dept and employee.phone == "1"
    assert not EmployeeHistory.objects.exists()


def test_hidden_salary_cannot_be_written(org, staff):
    # A role may change employees but, without a salary rule, not see or set the salary.
    clerk_role = Role.objects.create(code="hr_clerk", name="HR clerk", data_scope="all",
                                     permissions=["hr.view", "hr.change", "hr.add"])  # fmt: skip
    clerk = UserFactory(username="clerk", department=org.head, roles=[clerk_role])
    with pytest.raises(PermissionRefused) as exc:
        services.employee_update(
            actor=clerk,
            employee=staff.sales1,
            expected_version=1,
            data={"base_salary": Decimal("99999")},
        )
    assert exc.value.field == "base_salary"
    # Unchanged values pass (an edit form posts what it shows).
    services.employee_update(
        actor=clerk, employee=staff.sales1, expected_version=1, data={"phone": "2"}
    )
    FieldPermission.objects.create(role=clerk_role, model="hr.employee", field="base_salary",
                                   access="edit")  # fmt: skip
    clerk = type(clerk).objects.get(pk=clerk.pk)  # fresh policy cache
    services.employee_update(
        actor=clerk,
        employee=staff.sales1,
        expected_version=2,
        data={"base_salary": Decimal("99999")},
    )
