"""Employee, position, org chart, handover and target pages: scope, field policy, queries."""

import csv
import io

import pytest
from django.urls import reverse

from kehu.customers.models import Customer
from kehu.hr.models import Employee, EmployeeHistory, EmployeeStatus, Handover, SalesTarget
from tests.hr.conftest import ID_NUMBER
from tests.querycount import warm_page_queries

MASKED = "1101**********1234"


def test_list_scope_for_sales_manager(org, staff, client_for):
    response = client_for(org.salesmgr1).get(reverse("hr:employee_list"))
    assert response.status_code == 200
    shown = {row["object"].pk for row in response.context["rows"]}
    assert shown == {staff.salesmgr1.pk, staff.sales1.pk, staff.sales2.pk}


def test_list_refused_without_hr_view(org, staff, client_for):
    assert client_for(org.sales1).get(reverse("hr:employee_list")).status_code == 403
    url = reverse("hr:employee_detail", args=[staff.sales1.pk])
    assert client_for(org.sales1).get(url).status_code == 403


def test_sales_manager_sees_masked_id_and_no_salary(org, staff, client_for):
    body = client_for(org.salesmgr1).get(reverse("hr:employee_list")).content.decode()
    assert MASKED in body and ID_NUMBER not in body
    assert "12345" not in body and "Base salary" not in body
    detail = client_for(org.salesmgr1).get(reverse("hr:employee_detail", args=[staff.sales1.pk]))
    text = detail.content.decode()
    assert MASKED in text and ID_NUMBER not in text and "12345" not in text


def test_hr_sees_id_and_salary(org, staff, client_for):
    body = client_for(org.hr).get(reverse("hr:employee_list")).content.decode()
    assert ID_NUMBER in body and "Base salary" in body
    assert "12,345.00" in body or "12345.00" in body
    detail = client_for(org.hr).get(reverse("hr:employee_detail", args=[staff.sales1.pk]))
    assert ID_NUMBER in detail.content.decode()


def test_salary_sort_is_ignored_when_hidden(org, staff, client_for):
    response = client_for(org.salesmgr1).get(reverse("hr:employee_list") + "?sort=base_salary")
    assert response.status_code == 200
    assert "base_salary" not in response.context["view"].sort_options()


def _export(client):
    response = client.get(reverse("hr:employee_list") + "?export=csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_export_masks_for_general_manager_and_shows_for_hr(org, staff, client_for):
    rows = _export(client_for(org.manager))
    header = rows[0]
    assert "Base salary" not in header
    id_col = header.index("ID number")
    assert {r[id_col] for r in rows[1:]} == {MASKED}
    assert len(rows) == 11  # all ten employees: the general manager's scope is all
    rows = _export(client_for(org.hr))
    assert "Base salary" in rows[0]
    assert {r[rows[0].index("ID number")] for r in rows[1:]} == {ID_NUMBER}


def test_export_refused_for_sales_manager(org, staff, client_for):
    response = client_for(org.salesmgr1).get(reverse("hr:employee_list") + "?export=csv")
    assert response.status_code == 403


def test_filters_department_subtree_and_search(org, staff, client_for):
    client = client_for(org.hr)
    response = client.get(reverse("hr:employee_list"), {"department": org.sales.pk})
    assert {r["object"].pk for r in response.context["rows"]} == {
        staff.salesdirector.pk, staff.salesmgr1.pk, staff.sales1.pk, staff.sales2.pk,
        staff.sales3.pk,
    }  # fmt: skip
    response = client.get(reverse("hr:employee_list"), {"q": "sales3"})
    assert [r["object"].pk for r in response.context["rows"]] == [staff.sales3.pk]
    response = client.get(reverse("hr:employee_list"), {"status": "resigned"})
    assert response.context["rows"] == []


def test_detail_out_of_scope_is_404(org, staff, client_for):
    url = reverse("hr:employee_detail", args=[staff.sales3.pk])
    assert client_for(org.salesmgr1).get(url).status_code == 404


def _count_queries(client, url) -> int:
    count, response = warm_page_queries(client, url)
    assert response.status_code == 200
    return count


def _more_employees(org, staff, n):
    for i in range(n):
        Employee.objects.create(employee_no=f"X{i:03d}", name=f"x{i}", department=org.sales2_dept,
                                position=staff.rep2, hire_date="2025-01-01")  # fmt: skip


def test_list_query_count(org, staff, client_for):
    client = client_for(org.hr)
    url = reverse("hr:employee_list")
    client.get(url)
    few = _count_queries(client, url)
    _more_employees(org, staff, 10)
    assert _count_queries(client, url) == few <= 16  # no query per row


def test_detail_query_count(org, staff, client_for):
    from kehu.hr import services

    client = client_for(org.hr)
    url = reverse("hr:employee_detail", args=[staff.sales1.pk])
    client.get(url)
    few = _count_queries(client, url)
    for n in range(5):
        staff.sales1.refresh_from_db()
        services.employee_promote(
            actor=org.hr,
            employee=staff.sales1,
            position=staff.lead1 if n % 2 == 0 else staff.rep1,
            effective_date=f"2026-01-0{n + 1}",
        )
    assert _count_queries(client, url) == few <= 15
    response = client.get(url)
    assert len(response.context["history"]) == 5


def test_org_chart(org, staff, client_for):
    from tests.factories import DepartmentFactory

    client = client_for(org.salesmgr1)
    client.get(reverse("hr:org_chart"))
    few = _count_queries(client, reverse("hr:org_chart"))
    for n in range(5):
        DepartmentFactory(name=f"组{n}", parent=org.sales2_dept, manager=org.sales3)
    _more_employees(org, staff, 5)
    assert _count_queries(client, reverse("hr:org_chart")) <= few + 1 <= 13  # + manager titles
    response = client.get(reverse("hr:org_chart"))
    (root,) = response.context["roots"]
    assert root["department"] == org.head
    sales = next(n for n in root["children"] if n["department"] == org.sales)
    assert sales["head_count"] == 1 and sales["total"] == 10
    assert client_for(org.sales1).get(reverse("hr:org_chart")).status_code == 403


def test_create_and_edit_through_pages(org, staff, client_for):
    client = client_for(org.hr)
    response = client.post(
        reverse("hr:employee_create"),
        {
            "name": "新同事",
            "department": org.sales2_dept.pk,
            "position": staff.rep2.pk,
            "hire_date": "2026-02-01",
            "status": "probation",
            "id_number": "110105199202021111",
            "base_salary": "8000",
            "salary_currency": "CNY",
        },
    )
    assert response.status_code == 302, response.context and response.context["form"].errors
    employee = Employee.objects.get(name="新同事")
    assert employee.employee_no.startswith("EMP-")
    data = {
        "employee_no": employee.employee_no,
        "name": "新同事",
        "department": org.sales1_dept.pk,
        "position": staff.rep1.pk,
        "hire_date": "2026-02-01",
        "salary_currency": "CNY",
        "base_salary": "8000",
        "version": 1,
    }
    response = client.post(reverse("hr:employee_edit", args=[employee.pk]), data)
    assert response.status_code == 302
    assert EmployeeHistory.objects.filter(employee=employee, kind="transfer").count() == 1
    # The same stale form again: a conflict, shown on the form; nothing changes.
    data["department"] = org.sales2_dept.pk
    response = client.post(reverse("hr:employee_edit", args=[employee.pk]), data)
    assert response.status_code == 400
    assert "changed by someone else" in str(response.context["form"].non_field_errors())
    employee.refresh_from_db()
    assert employee.department == org.sales1_dept


def test_edit_form_leaves_out_fields_the_role_cannot_edit(org, staff, client_for):
    from kehu.system.models import Role
    from tests.factories import UserFactory

    role = Role.objects.create(code="clerk", name="clerk", data_scope="all",
                               permissions=["hr.view", "hr.change"])  # fmt: skip
    clerk = UserFactory(username="clerk", department=org.head, roles=[role])
    response = client_for(clerk).get(reverse("hr:employee_edit", args=[staff.sales1.pk]))
    form = response.context["form"]
    assert "base_salary" not in form.fields and "id_number" not in form.fields


def test_employee_actions(org, staff, client_for):
    client = client_for(org.hr)
    url = reverse("hr:employee_transfer", args=[staff.sales2.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {"department": org.sales2_dept.pk, "position": staff.rep2.pk,
         "effective_date": "2026-03-01", "version": 1},
    )  # fmt: skip
    assert response.status_code == 302
    response = client.post(
        reverse("hr:employee_status", args=[staff.sales2.pk]),
        {"status": "resigned", "effective_date": "2026-03-05", "resign_reason": "", "version": 2},
    )
    assert response.status_code == 400
    assert "reason" in str(response.context["form"].errors)
    response = client.post(
        reverse("hr:employee_status", args=[staff.sales2.pk]),
        {"status": "resigned", "effective_date": "2026-03-05", "resign_reason": "深造",
         "version": 2},
    )  # fmt: skip
    assert response.status_code == 302
    staff.sales2.refresh_from_db()
    assert staff.sales2.status == EmployeeStatus.RESIGNED
    assert client_for(org.salesmgr1).get(url).status_code == 403


def test_positions_pages(org, staff, client_for):
    client = client_for(org.hr)
    response = client.get(reverse("hr:position_list"))
    assert response.status_code == 200
    response = client.post(
        reverse("hr:position_create"),
        {"name": "销售代表", "department": org.sales1_dept.pk, "level": 2, "is_active": "on"},
    )
    assert response.status_code == 400  # the same name twice in one department
    response = client.post(
        reverse("hr:position_create"),
        {"name": "大客户经理", "department": org.sales1_dept.pk, "level": 5, "is_active": "on"},
    )
    assert response.status_code == 302
    assert client_for(org.sales1).get(reverse("hr:position_list")).status_code == 403
    assert client_for(org.salesmgr1).get(reverse("hr:position_create")).status_code == 403


@pytest.fixture
def customers(org):
    return [
        Customer.objects.create(code=f"KH-{n}", name=f"客户{n}", owner=org.sales2,
                                department=org.sales1_dept)
        for n in range(2)
    ]  # fmt: skip


def test_handover_wizard(org, staff, customers, client_for):
    client = client_for(org.hr)
    url = reverse("hr:handover")
    response = client.get(url, {"employee": staff.sales2.pk})
    assert response.status_code == 200 and response.context["step"] == 1
    data = {"employee": staff.sales2.pk, "successor": org.sales1.pk, "reason": "离职"}
    response = client.post(url, data)
    assert response.context["step"] == 2
    assert response.context["preview"]["customers"] == 2
    assert Customer.objects.filter(owner=org.sales2).count() == 2  # preview changes nothing
    response = client.post(url, {**data, "step": "confirm"})
    handover = Handover.objects.get()
    assert response.status_code == 302 and response["Location"] == handover.get_absolute_url()
    assert Customer.objects.filter(owner=org.sales2).count() == 0
    page = client.get(handover.get_absolute_url())
    assert page.status_code == 200 and "Customers" in page.content.decode()


def test_handover_wizard_refusals(org, staff, client_for):
    url = reverse("hr:handover")
    response = client_for(org.hr).post(
        url, {"employee": staff.sales2.pk, "successor": org.sales2.pk, "reason": "x"}
    )
    assert response.status_code == 400 and "successor" in response.context["form"].errors
    assert client_for(org.salesmgr1).get(url).status_code == 403


def test_targets_page_and_inline_edit(org, staff, client_for, django_assert_max_num_queries):
    client = client_for(org.hr)
    with django_assert_max_num_queries(15):  # + finance's payments achievement
        response = client.get(reverse("hr:target_list"), {"year": 2026})
    assert response.status_code == 200
    assert "Achievement appears once" not in response.content.decode()
    cell = {"kind": "employee", "owner": org.sales1.pk, "year": 2026, "month": 4,
            "metric": "contract", "value": "1200"}  # fmt: skip
    response = client.post(reverse("hr:target_cell"), cell, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    target = SalesTarget.objects.get()
    assert target.contract_amount_target == 1200
    assert response.context["row"]["quarters"][1] == 1200
    # A second tab still holding "no target yet" gets the conflict in the row, not a duplicate.
    response = client.post(reverse("hr:target_cell"), {**cell, "value": "5"})
    assert "changed by someone else" in response.content.decode()
    response = client.post(reverse("hr:target_cell"), {**cell, "value": "5", "version": 1})
    target.refresh_from_db()
    assert target.contract_amount_target == 5
    # Department grid and payment measure.
    response = client.get(reverse("hr:target_list"), {"kind": "department", "metric": "payment"})
    assert response.status_code == 200


def test_targets_cell_refused_for_viewer(org, staff, client_for):
    response = client_for(org.salesmgr1).get(reverse("hr:target_list"))
    assert response.status_code == 200 and b"hx-post" not in response.content
    cell = {"kind": "employee", "owner": org.sales1.pk, "year": 2026, "month": 4,
            "metric": "contract", "value": "1"}  # fmt: skip
    assert client_for(org.salesmgr1).post(reverse("hr:target_cell"), cell).status_code == 403
    assert not SalesTarget.objects.exists()
