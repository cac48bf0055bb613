"""Issue 9: nobody grants a role or a department wider than their own, on the page or in the
API, and nobody takes over an account that holds more than they do.

The actor is the sales director (销售部, department and below) given a "user admin" role
with system.view/add/change: they may manage the users of 销售部 within their own rights.
"""

from __future__ import annotations

import pytest

from kehu.core.exceptions import ServiceError
from kehu.core.scope import DataScope
from kehu.system import services
from kehu.system.models import AuditLog, FieldPermission, Role, User


@pytest.fixture
def director(org):
    role = Role.objects.create(
        code="sales_user_admin",
        name="Sales user admin",
        data_scope=DataScope.DEPARTMENT_TREE,
        permissions=["system.view", "system.add", "system.change"],
    )
    org.salesdirector.roles.add(role)
    return User.objects.get(pk=org.salesdirector.pk)


def _state():
    """Everything an escalation would change: users' roles, departments, passwords, roles."""
    return {
        "users": sorted(
            (u.pk, u.department_id, u.password, u.email, u.version, u.is_active)
            for u in User.objects.all()
        ),
        "grants": sorted(User.roles.through.objects.values_list("user_id", "role_id")),
        "roles": sorted(Role.objects.values_list("pk", "code", "data_scope", "permissions")),
        "fields": sorted(
            FieldPermission.objects.values_list("role_id", "model", "field", "access")
        ),
        "log": AuditLog.objects.exclude(action="login").count(),
    }


def _role(code):
    return Role.objects.get(code=code)


# --- services -------------------------------------------------------------------------------

REFUSED_SERVICE_CALLS = {
    "grant the admin role": lambda o, d: services.user_update(
        actor=d,
        user=o.sales1,
        expected_version=o.sales1.version,
        data={},
        roles=[*o.sales1.roles.all(), _role("admin")],
    ),
    "grant finance (permissions not held)": lambda o, d: services.user_update(
        actor=d,
        user=o.sales1,
        expected_version=o.sales1.version,
        data={},
        roles=[_role("finance")],
    ),
    "move a user to 财务部": lambda o, d: services.user_update(
        actor=d,
        user=o.sales1,
        expected_version=o.sales1.version,
        data={"department": o.finance_dept},
    ),
    "create a user in 财务部": lambda o, d: services.user_create(
        actor=d,
        data={"username": "mole", "department": o.finance_dept},
        roles=[],
    ),
    "create a user with the GM role": lambda o, d: services.user_create(
        actor=d,
        data={"username": "mole", "department": o.sales1_dept},
        roles=[_role("general_manager")],
    ),
    "create a role seeing all records": lambda o, d: services.role_create(
        actor=d,
        data={
            "code": "wide",
            "name": "Wide",
            "data_scope": DataScope.ALL,
            "permissions": ["system.view"],
        },
    ),
    "create a role with finance.approve": lambda o, d: services.role_create(
        actor=d,
        data={
            "code": "wide",
            "name": "Wide",
            "data_scope": DataScope.OWN,
            "permissions": ["finance.approve"],
        },
    ),
    "widen their own role": lambda o, d: services.role_update(
        actor=d,
        role=_role("sales_user_admin"),
        expected_version=1,
        data={"permissions": ["system.view", "system.add", "system.change", "system.delete"]},
    ),
    "widen the salesperson role's scope": lambda o, d: services.role_update(
        actor=d,
        role=_role("salesperson"),
        expected_version=_role("salesperson").version,
        data={"data_scope": DataScope.ALL},
    ),
    "unmask salaries for their own role": lambda o, d: services.role_set_field_permissions(
        actor=d,
        role=_role("sales_user_admin"),
        model="hr.employee",
        rules={"base_salary": "edit"},
    ),
    "set the password of the GM (holds more)": lambda o, d: services.user_set_password(
        actor=d,
        user=o.manager,
        password="Another-pass-2026!",
    ),
    "set the password of a superuser": lambda o, d: services.user_set_password(
        actor=d,
        user=_superuser(o),
        password="Another-pass-2026!",
    ),
    "change the e-mail of a department manager holding more": lambda o, d: services.user_update(
        actor=d,
        user=_wider_colleague(o),
        expected_version=_wider_colleague(o).version,
        data={"display_name": "taken"},
    ),
}


def _superuser(org):
    # A superuser inside the director's tree, so only the superuser rule stops them.
    user = org.sales2
    User.objects.filter(pk=user.pk).update(is_superuser=True)
    return User.objects.get(pk=user.pk)


def _wider_colleague(org):
    # salesmgr1 (in the director's tree) also holds finance.approve through a second role.
    extra, _ = Role.objects.get_or_create(
        code="payment_checker",
        defaults={"name": "Payment checker", "permissions": ["finance.approve"]},
    )
    org.salesmgr1.roles.add(extra)
    return User.objects.get(pk=org.salesmgr1.pk)


@pytest.mark.parametrize("name", sorted(REFUSED_SERVICE_CALLS))
def test_escalation_is_refused_and_writes_nothing(org, director, name):
    call = REFUSED_SERVICE_CALLS[name]
    # Arrange first (the helpers above add a role or a flag), then snapshot, then try.
    if "superuser" in name:
        _superuser(org)
    if "department manager" in name:
        _wider_colleague(org)
    before = _state()
    with pytest.raises(ServiceError) as error:
        call(org, director)
    assert str(error.value.message)
    assert _state() == before


def test_what_is_within_their_own_rights_is_allowed(org, director):
    """The same director may do all of this: the rule refuses escalation, not management."""
    user = services.user_create(
        actor=director,
        data={"username": "newrep", "department": org.sales2_dept},
        roles=[_role("salesperson")],
    )
    assert user.roles.get().code == "salesperson"
    org.sales1.refresh_from_db()
    moved = services.user_update(
        actor=director,
        user=org.sales1,
        expected_version=org.sales1.version,
        data={"department": org.sales2_dept},
    )
    assert moved.department == org.sales2_dept
    services.user_set_password(actor=director, user=org.sales3, password="Fresh-pass-2026!")
    role = services.role_create(
        actor=director,
        data={
            "code": "viewer",
            "name": "Viewer",
            "data_scope": DataScope.OWN,
            "permissions": ["system.view"],
        },
    )
    services.role_set_field_permissions(
        actor=director, role=role, model="hr.employee", rules={"base_salary": "hidden"}
    )
    assert FieldPermission.objects.filter(role=role, access="hidden").exists()


def test_a_superuser_may_grant_anything(org):
    User.objects.filter(pk=org.admin.pk).update(is_superuser=True)
    admin = User.objects.get(pk=org.admin.pk)
    services.user_update(
        actor=admin,
        user=org.sales1,
        expected_version=org.sales1.version,
        data={},
        roles=[_role("admin")],
    )
    assert org.sales1.roles.filter(code="admin").exists()


# --- the API and the pages ------------------------------------------------------------------


def test_api_refuses_escalation_and_writes_nothing(org, director, api_for):
    api = api_for(director)
    before = _state()
    answers = [
        api.patch(
            f"/api/v1/users/{org.sales1.pk}/",
            {"roles": [_role("admin").pk], "version": org.sales1.version},
            format="json",
        ),
        api.patch(
            f"/api/v1/users/{org.sales1.pk}/",
            {"department": org.finance_dept.pk, "version": org.sales1.version},
            format="json",
        ),
        api.post(
            "/api/v1/users/",
            {
                "username": "mole",
                "department": org.sales1_dept.pk,
                "roles": [_role("finance").pk],
                "password": "Mole-pass-2026!",
            },
            format="json",
        ),
        api.post(
            "/api/v1/roles/",
            {"code": "wide", "name": "Wide", "data_scope": "all", "permissions": ["system.view"]},
            format="json",
        ),
        api.patch(
            f"/api/v1/roles/{_role('sales_user_admin').pk}/",
            {
                "permissions": ["system.view", "system.add", "system.change", "finance.approve"],
                "version": _role("sales_user_admin").version,
            },
            format="json",
        ),
    ]
    statuses = [response.status_code for response in answers]
    assert all(status in (400, 403) for status in statuses), [
        (r.status_code, r.content[:200]) for r in answers
    ]
    assert _state() == before


def test_api_refuses_taking_over_a_wider_account(org, director, api_for):
    api = api_for(director)
    colleague = _wider_colleague(org)
    before = _state()
    password = api.post(
        f"/api/v1/users/{colleague.pk}/set-password/", {"password": "Taken-2026!x"}, format="json"
    )
    email = api.patch(
        f"/api/v1/users/{colleague.pk}/",
        {"display_name": "taken", "version": colleague.version},
        format="json",
    )
    assert (password.status_code, email.status_code) == (403, 403), email.content
    assert _state() == before


def test_api_allows_what_is_within_their_rights(org, director, api_for):
    api = api_for(director)
    response = api.patch(
        f"/api/v1/users/{org.sales1.pk}/",
        {"department": org.sales2_dept.pk, "version": org.sales1.version},
        format="json",
    )
    assert response.status_code == 200, response.content
    org.sales1.refresh_from_db()
    assert org.sales1.department == org.sales2_dept


def test_page_refuses_escalation_and_writes_nothing(org, director, client_for):
    client = client_for(director)
    before = _state()
    response = client.post(
        f"/system/users/{org.sales1.pk}/",
        {
            "username": "sales1",
            "display_name": "sales1",
            "email": "sales1@example.com",
            "department": org.sales1_dept.pk,
            "roles": [_role("salesperson").pk, _role("admin").pk],
            "version": org.sales1.version,
            "is_active": "on",
        },
    )
    assert response.status_code in (400, 403)
    assert _state() == before
    response = client.post(
        "/system/roles/new/",
        {"code": "wide", "name": "Wide", "data_scope": "all", "permissions": ["system.view"]},
    )
    assert response.status_code in (400, 403)
    assert _state() == before
