import datetime
from decimal import Decimal

import pytest

from kehu.hr.models import Employee, EmployeeStatus, Position

ID_NUMBER = "110105199001011234"


@pytest.fixture
def staff(org):
    """Positions and an employee record for every ``org`` user (linked login), with salary
    and ID number; returns a namespace keyed by username, plus ``positions``."""

    class Staff:
        pass

    s = Staff()
    s.rep1 = Position.objects.create(name="销售代表", department=org.sales1_dept, level=2)
    s.lead1 = Position.objects.create(name="销售主管", department=org.sales1_dept, level=3)
    s.rep2 = Position.objects.create(name="销售代表", department=org.sales2_dept, level=2)
    s.clerk = Position.objects.create(name="专员", department=None, level=1)
    places = {
        "sales1": (org.sales1_dept, s.rep1),
        "sales2": (org.sales1_dept, s.rep1),
        "salesmgr1": (org.sales1_dept, s.lead1),
        "sales3": (org.sales2_dept, s.rep2),
    }
    for n, username in enumerate(
        [
            "admin",
            "manager",
            "salesdirector",
            "salesmgr1",
            "sales1",
            "sales2",
            "sales3",
            "finance",
            "hr",
            "warehouse",
        ],  # noqa: E501
        start=1,
    ):
        user = getattr(org, username)
        department, position = places.get(username, (user.department, s.clerk))
        employee = Employee.objects.create(
            employee_no=f"E{n:03d}",
            name=f"{username}-name",
            department=department,
            position=position,
            hire_date=datetime.date(2024, 1, 1),
            status=EmployeeStatus.ACTIVE,
            id_number=ID_NUMBER,
            phone=f"1380000{n:04d}",
            base_salary=Decimal("12345.00"),
            user=user,
        )
        setattr(s, username, employee)
    return s
