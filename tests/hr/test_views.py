"""Department pages: tree list, create/edit with cycle refusal, delete rules."""

import pytest
from django.urls import reverse

from kehu.hr.models import Department
from tests.factories import DepartmentFactory


def test_department_list_allowed(org, client_for, django_assert_max_num_queries):
    for n in range(10):
        DepartmentFactory(name=f"组{n}", parent=org.sales2_dept)
    client = client_for(org.admin)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("hr:department_list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("总经办") < body.index("销售部") < body.index("销售一部")
    # head count is annotated: 销售一部 holds salesmgr1, sales1 and sales2
    row = next(r for r in response.context["rows"] if r["object"].pk == org.sales1_dept.pk)
    assert row["object"].head_count == 3


@pytest.mark.parametrize("name", ["hr:department_list", "hr:department_create"])
def test_department_pages_refused_for_salesperson(org, client_for, name):
    assert client_for(org.sales1).get(reverse(name)).status_code == 403


def test_department_edit_refused_for_salesperson(org, client_for):
    url = reverse("hr:department_edit", args=[org.sales1_dept.pk])
    assert client_for(org.sales1).get(url).status_code == 403
    assert client_for(org.hr).get(url).status_code == 200


def test_department_out_of_scope_is_404(org, client_for):
    # salesmgr1 sees 销售一部 and below only
    client = client_for(org.salesmgr1)
    assert client.get(reverse("hr:department_list")).status_code == 200
    # hr.view only: the edit page needs hr.change
    assert client.get(reverse("hr:department_edit", args=[org.sales2_dept.pk])).status_code == 403


def test_department_create(org, client_for):
    data = {
        "name": "市场部",
        "code": "marketing",
        "parent": org.head.pk,
        "sort_order": 3,
        "is_active": "on",
    }
    response = client_for(org.hr).post(reverse("hr:department_create"), data)
    assert response.status_code == 302
    department = Department.objects.get(code="marketing")
    assert department.path.startswith(org.head.path)


def _data(department, **overrides):
    data = {
        "name": department.name,
        "code": department.code or "",
        "parent": department.parent_id or "",
        "manager": department.manager_id or "",
        "sort_order": department.sort_order,
        "is_active": "on",
        "version": department.version,
    }
    data.update(overrides)
    return data


def test_department_move_into_own_child_refused(org, client_for):
    sales = org.sales
    response = client_for(org.admin).post(
        reverse("hr:department_edit", args=[sales.pk]), _data(sales, parent=org.sales1_dept.pk)
    )
    assert response.status_code == 400
    assert "parent" in response.context["form"].errors
    sales.refresh_from_db()
    assert sales.parent_id == org.head.pk


def test_department_move_carries_subtree(org, client_for):
    response = client_for(org.admin).post(
        reverse("hr:department_edit", args=[org.sales2_dept.pk]),
        _data(org.sales2_dept, parent=org.finance_dept.pk),
    )
    assert response.status_code == 302
    org.sales2_dept.refresh_from_db()
    assert org.sales2_dept.path.startswith(org.finance_dept.path)


def test_department_stale_version_conflict(org, client_for):
    stale = _data(org.sales2_dept, name="新名字")
    Department.objects.filter(pk=org.sales2_dept.pk).update(version=5)
    response = client_for(org.admin).post(
        reverse("hr:department_edit", args=[org.sales2_dept.pk]), stale
    )
    assert response.status_code == 400
    assert "changed by someone else" in response.content.decode()
    assert Department.objects.get(pk=org.sales2_dept.pk).name == "销售二部"


def test_department_delete_rules(org, client_for):
    client = client_for(org.admin)
    response = client.post(reverse("hr:department_delete", args=[org.sales.pk]), follow=True)
    assert "sub-departments" in response.content.decode()
    assert Department.objects.filter(pk=org.sales.pk).exists()
    empty = DepartmentFactory(name="空部门", parent=org.head)
    client.post(reverse("hr:department_delete", args=[empty.pk]))
    assert not Department.objects.filter(pk=empty.pk).exists()


def test_department_delete_refused_for_salesperson(org, client_for):
    empty = DepartmentFactory(name="空部门2", parent=org.head)
    response = client_for(org.sales1).post(reverse("hr:department_delete", args=[empty.pk]))
    assert response.status_code == 403
    assert Department.objects.filter(pk=empty.pk).exists()


def test_department_export(org, client_for):
    from kehu.system.models import AuditLog

    response = client_for(org.admin).get(reverse("hr:department_list"), {"export": "xlsx"})
    assert response.status_code == 200
    assert AuditLog.objects.filter(action="export", model="hr.department").exists()
