"""Department tree services: paths on create, subtree moves, cycles and deletes refused."""

import pytest

from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.hr.models import Department
from kehu.hr.selectors import department_subtree_ids
from kehu.hr.services import department_create, department_delete, department_update
from kehu.system.models import AuditLog


def seg(department) -> str:
    return f"{department.pk:08d}/"


def test_create_builds_the_path_and_logs(org):
    east = department_create(actor=org.hr, data={"name": "华东区", "parent": org.sales2_dept})
    assert east.path == org.sales2_dept.path + seg(east)
    assert east.path == "/" + seg(org.head) + seg(org.sales) + seg(org.sales2_dept) + seg(east)
    assert east.depth == 3
    root = department_create(actor=org.hr, data={"name": "分公司"})
    assert root.path == "/" + seg(root) and root.depth == 0
    assert AuditLog.objects.filter(action="create", model="hr.department").count() == 2


def test_create_refuses_a_duplicate_sibling_name_and_writes_nothing(org):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        department_create(actor=org.hr, data={"name": "销售一部", "parent": org.sales})
    assert Department.objects.filter(name="销售一部").count() == 1
    assert not AuditLog.objects.exists()


def test_create_needs_permission(org):
    with pytest.raises(PermissionRefused):
        department_create(actor=org.sales1, data={"name": "x"})
    assert not Department.objects.filter(name="x").exists()


def test_move_reparents_the_whole_subtree(org):
    east = department_create(actor=org.hr, data={"name": "华东区", "parent": org.sales2_dept})
    # 销售部 (with 销售一部, 销售二部 and 华东区 below) moves under 财务部.
    department_update(
        actor=org.hr, department=org.sales, expected_version=1, data={"parent": org.finance_dept}
    )
    for d in (org.sales, org.sales1_dept, org.sales2_dept, east):
        d.refresh_from_db()
    base = "/" + seg(org.head) + seg(org.finance_dept) + seg(org.sales)
    assert org.sales.path == base
    assert org.sales1_dept.path == base + seg(org.sales1_dept)
    assert org.sales2_dept.path == base + seg(org.sales2_dept)
    assert east.path == base + seg(org.sales2_dept) + seg(east)
    assert org.sales.parent == org.finance_dept and org.sales.version == 2
    # The subtree query follows the move; departments outside it are untouched.
    assert set(department_subtree_ids(org.finance_dept.pk).values_list("id", flat=True)) == {
        org.finance_dept.pk,
        org.sales.pk,
        org.sales1_dept.pk,
        org.sales2_dept.pk,
        east.pk,
    }
    org.head.refresh_from_db()
    assert org.head.path == "/" + seg(org.head)


def test_move_to_the_top_level(org):
    department_update(
        actor=org.hr, department=org.sales2_dept, expected_version=1, data={"parent": None}
    )
    org.sales2_dept.refresh_from_db()
    assert org.sales2_dept.path == "/" + seg(org.sales2_dept)


def test_rename_keeps_the_path(org):
    path = org.sales.path
    department_update(
        actor=org.hr, department=org.sales, expected_version=1, data={"name": "营销部"}
    )
    org.sales.refresh_from_db()
    assert (org.sales.name, org.sales.path) == ("营销部", path)


@pytest.mark.parametrize("target", ["sales", "sales1_dept"])
def test_move_under_itself_or_a_descendant_is_refused(org, target):
    before = {d.pk: d.path for d in Department.objects.all()}
    with pytest.raises(ServiceError) as refused:
        department_update(
            actor=org.hr,
            department=org.sales,
            expected_version=1,
            data={"parent": getattr(org, target)},
        )
    assert refused.value.field == "parent"
    assert {d.pk: d.path for d in Department.objects.all()} == before


def test_stale_move_is_a_conflict_and_moves_nothing(org):
    department_update(
        actor=org.hr, department=org.sales2_dept, expected_version=1, data={"name": "二部"}
    )
    before = {d.pk: d.path for d in Department.objects.all()}
    with pytest.raises(ConflictError):
        department_update(
            actor=org.hr, department=org.sales2_dept, expected_version=1, data={"parent": None}
        )
    assert {d.pk: d.path for d in Department.objects.all()} == before


def test_move_with_a_sibling_prefix_leaves_the_sibling_alone(org):
    # A move rewrites only the moved subtree: the sibling 销售一部 keeps its path.
    other = department_create(actor=org.hr, data={"name": "其他"})
    department_update(
        actor=org.hr, department=org.sales2_dept, expected_version=1, data={"parent": other}
    )
    org.sales1_dept.refresh_from_db()
    assert org.sales1_dept.path == org.sales.path + seg(org.sales1_dept)


def test_delete_refused_with_children_or_users(org):
    with pytest.raises(ServiceError):
        department_delete(actor=org.hr, department=org.sales)  # has sub-departments
    with pytest.raises(ServiceError):
        department_delete(actor=org.hr, department=org.sales1_dept)  # has users
    assert Department.objects.filter(pk__in=[org.sales.pk, org.sales1_dept.pk]).count() == 2
    assert not AuditLog.objects.exists()


def test_delete_an_empty_department(org):
    empty = department_create(actor=org.hr, data={"name": "空部门", "parent": org.head})
    department_delete(actor=org.hr, department=empty)
    assert not Department.objects.filter(pk=empty.pk).exists()
    assert AuditLog.objects.filter(action="delete", model="hr.department").count() == 1


def test_delete_needs_permission(org):
    empty = department_create(actor=org.hr, data={"name": "空部门"})
    with pytest.raises(PermissionRefused):
        department_delete(actor=org.sales1, department=empty)
    assert Department.objects.filter(pk=empty.pk).exists()
