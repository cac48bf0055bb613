"""Nobody hands out more rights than they hold."""

import pytest

from kehu.core.exceptions import ServiceError
from kehu.core.scope import DataScope
from kehu.system.models import Role
from kehu.system.services import role_create, user_create, user_update


@pytest.fixture
def user_admin_of_sales(org):
    """A sales director who may manage users (system.*) within his department tree."""
    role = Role.objects.create(
        code="sales_user_admin",
        name="Sales user admin",
        data_scope=DataScope.DEPARTMENT_TREE,
        permissions=["system.view", "system.add", "system.change", "customers.view"],
    )
    org.salesdirector.roles.add(role)
    return org.salesdirector


def test_cannot_grant_a_role_wider_than_own(org, user_admin_of_sales):
    admin_role = Role.objects.get(code="admin")
    before = list(org.sales1.roles.values_list("code", flat=True))
    with pytest.raises(ServiceError) as error:
        user_update(
            actor=user_admin_of_sales,
            user=org.sales1,
            expected_version=org.sales1.version,
            data={},
            roles=[*org.sales1.roles.all(), admin_role],
        )
    assert error.value.field == "roles"
    assert list(org.sales1.roles.values_list("code", flat=True)) == before


def test_cannot_place_user_outside_own_scope(org, user_admin_of_sales):
    with pytest.raises(ServiceError) as error:
        user_update(
            actor=user_admin_of_sales,
            user=org.sales1,
            expected_version=org.sales1.version,
            data={"department": org.finance_dept},
        )
    assert error.value.field == "department"
    org.sales1.refresh_from_db()
    assert org.sales1.department == org.sales1_dept


def test_may_move_user_within_own_tree_and_keep_existing_roles(org, user_admin_of_sales):
    updated = user_update(
        actor=user_admin_of_sales,
        user=org.sales1,
        expected_version=org.sales1.version,
        data={"department": org.sales2_dept, "display_name": "张伟"},
        roles=list(org.sales1.roles.all()),
    )
    assert updated.department == org.sales2_dept


def test_cannot_create_user_with_wider_role(org, user_admin_of_sales):
    with pytest.raises(ServiceError):
        user_create(
            actor=user_admin_of_sales,
            data={"username": "newbie", "department": org.sales1_dept},
            roles=[Role.objects.get(code="finance")],
        )
    assert not type(org.sales1).objects.filter(username="newbie").exists()


def test_cannot_create_role_wider_than_own(org, user_admin_of_sales):
    with pytest.raises(ServiceError):
        role_create(
            actor=user_admin_of_sales,
            data={"code": "x", "name": "X", "data_scope": DataScope.ALL, "permissions": []},
        )
    assert not Role.objects.filter(code="x").exists()


def test_superuser_may_grant_anything(org):
    org.admin.is_superuser = True
    org.admin.save()
    user = user_create(
        actor=org.admin,
        data={"username": "boss2", "department": org.head},
        roles=[Role.objects.get(code="admin")],
    )
    assert user.roles.get().code == "admin"
