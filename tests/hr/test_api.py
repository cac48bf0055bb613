"""HR API: positions, employees (scope, field policy, 409, handover) and sales targets."""

from decimal import Decimal

from kehu.customers.models import Customer
from kehu.hr.models import Employee, EmployeeHistory, Handover, SalesTarget
from tests.hr.conftest import ID_NUMBER

EMPLOYEES = "/api/v1/employees/"


def _ids(response):
    return {row["id"] for row in response.json()["results"]}


def test_employees_scope_and_field_policy_for_sales_manager(org, staff, api_for):
    response = api_for(org.salesmgr1).get(EMPLOYEES)
    assert response.status_code == 200
    assert _ids(response) == {staff.salesmgr1.pk, staff.sales1.pk, staff.sales2.pk}
    row = response.json()["results"][0]
    assert "base_salary" not in row
    assert row["id_number"] == "1101**********1234"
    assert api_for(org.salesmgr1).get(f"{EMPLOYEES}{staff.sales3.pk}/").status_code == 404


def test_employees_full_for_hr_and_refused_for_salesperson(org, staff, api_for):
    response = api_for(org.hr).get(f"{EMPLOYEES}{staff.sales1.pk}/")
    assert response.json()["id_number"] == ID_NUMBER
    assert response.json()["base_salary"] == "12345.00"
    assert api_for(org.sales1).get(EMPLOYEES).status_code == 403


def test_create_update_and_conflict(org, staff, api_for):
    client = api_for(org.hr)
    response = client.post(
        EMPLOYEES,
        {"name": "API", "department": org.sales2_dept.pk, "hire_date": "2026-01-05"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    assert response.json()["employee_no"].startswith("EMP-")
    url = f"{EMPLOYEES}{pk}/"
    ok = client.patch(url, {"department": org.sales1_dept.pk, "version": 1}, format="json")
    assert ok.status_code == 200 and ok.json()["version"] == 2
    assert EmployeeHistory.objects.filter(employee_id=pk, kind="transfer").count() == 1
    stale = client.patch(url, {"name": "late", "version": 1}, format="json")
    assert stale.status_code == 409
    assert Employee.objects.get(pk=pk).name == "API"


def test_sales_manager_cannot_write(org, staff, api_for):
    client = api_for(org.salesmgr1)
    response = client.patch(
        f"{EMPLOYEES}{staff.sales1.pk}/", {"name": "x", "version": 1}, format="json"
    )
    assert response.status_code == 403
    assert client.post(EMPLOYEES, {"name": "x"}, format="json").status_code == 403


def test_masked_field_cannot_be_written_back(org, staff, api_for):
    from kehu.system.models import Role
    from tests.factories import UserFactory

    role = Role.objects.create(code="clerk", name="clerk", data_scope="all",
                               permissions=["hr.view", "hr.change"])  # fmt: skip
    clerk = UserFactory(username="clerk", department=org.head, roles=[role])
    response = api_for(clerk).patch(
        f"{EMPLOYEES}{staff.sales1.pk}/",
        {"id_number": "1101**********1234", "version": 1},
        format="json",
    )
    assert response.status_code == 400 and "id_number" in response.json()
    staff.sales1.refresh_from_db()
    assert staff.sales1.id_number == ID_NUMBER


def test_handover_endpoint(org, staff, api_for):
    Customer.objects.create(code="KH-1", name="甲", owner=org.sales2, department=org.sales1_dept)
    url = f"{EMPLOYEES}{staff.sales2.pk}/handover/"
    refused = api_for(org.salesmgr1).post(url, {"successor": org.sales1.pk, "reason": "x"})
    assert refused.status_code == 403
    bad = api_for(org.hr).post(url, {"successor": org.sales2.pk, "reason": "离职"}, format="json")
    assert bad.status_code == 400 and "successor" in bad.json()
    response = api_for(org.hr).post(
        url, {"successor": org.sales1.pk, "reason": "离职"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["counts"]["customers"] == 1
    assert Customer.objects.filter(owner=org.sales2).count() == 0
    assert Handover.objects.count() == 1


def test_positions_api(org, staff, api_for):
    response = api_for(org.salesmgr1).get("/api/v1/positions/")
    assert response.status_code == 200 and response.json()["count"] == 4
    created = api_for(org.hr).post(
        "/api/v1/positions/", {"name": "总监", "department": org.sales.pk, "level": 5}
    )
    assert created.status_code == 201
    assert api_for(org.salesmgr1).post("/api/v1/positions/", {"name": "x"}).status_code == 403
    assert api_for(org.sales1).get("/api/v1/positions/").status_code == 403


def test_sales_targets_api(org, staff, api_for):
    client = api_for(org.hr)
    url = "/api/v1/sales-targets/"
    body = {"kind": "employee", "user": org.sales1.pk, "year": 2026, "month": 3,
            "contract_amount_target": "1000.00", "payment_target": "800.00"}  # fmt: skip
    response = client.post(url, body, format="json")
    assert response.status_code == 201, response.json()
    assert client.post(url, body, format="json").status_code == 409
    pk = response.json()["id"]
    response = client.patch(
        f"{url}{pk}/", {"contract_amount_target": "1500", "version": 1}, format="json"
    )
    assert response.status_code == 200
    assert SalesTarget.objects.get().contract_amount_target == Decimal("1500.00")
    stale = client.patch(f"{url}{pk}/", {"payment_target": "1", "version": 1}, format="json")
    assert stale.status_code == 409
    # Scope: salesmgr1 sees 销售一部's targets only, and may not write.
    client.post(url, {**body, "user": org.sales3.pk}, format="json")
    rows = api_for(org.salesmgr1).get(url).json()["results"]
    assert {r["user"] for r in rows} == {org.sales1.pk}
    assert api_for(org.salesmgr1).post(url, {**body, "month": 4}, format="json").status_code == 403


def test_departments_api_still_works(org, staff, api_for):
    response = api_for(org.hr).get("/api/v1/departments/")
    assert response.status_code == 200
    counts = {d["id"]: d["head_count"] for d in response.json()["results"]}
    assert counts[org.sales1_dept.pk] == 3 and counts[org.sales2_dept.pk] == 1
    created = api_for(org.hr).post("/api/v1/departments/", {"name": "新部门"}, format="json")
    assert created.status_code == 201 and created.json()["head_count"] == 0
