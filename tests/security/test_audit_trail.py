"""Permission changes and exports leave operation-log rows with before → after."""

from __future__ import annotations

from django.urls import reverse

from kehu.system import services
from kehu.system.models import AuditLog, Role
from tests.customers.factories import CustomerFactory
from tests.sales.factories import contract_for


def last(action: str, model: str) -> AuditLog:
    return AuditLog.objects.filter(action=action, model=model).latest("id")


def test_granting_and_removing_a_role_logs_both_sets(org):
    finance = Role.objects.get(code="finance")
    salesperson = Role.objects.get(code="salesperson")
    user = org.sales1
    services.user_update(
        actor=org.admin,
        user=user,
        expected_version=user.version,
        data={},
        roles=[salesperson, finance],
    )
    row = last("change", "system.user")
    assert row.object_id == str(user.pk) and row.user == org.admin
    assert row.changes["roles"] == [
        [str(salesperson.pk)],
        sorted([str(salesperson.pk), str(finance.pk)]),
    ]

    user.refresh_from_db()
    services.user_update(
        actor=org.admin, user=user, expected_version=user.version, data={}, roles=[finance]
    )
    row = last("change", "system.user")
    assert row.changes["roles"][1] == [str(finance.pk)]
    assert str(salesperson.pk) in row.changes["roles"][0]


def test_saving_the_same_roles_logs_no_role_change(org):
    user = org.sales1
    services.user_update(
        actor=org.admin,
        user=user,
        expected_version=user.version,
        data={"email": "s1@example.com"},
        roles=list(user.roles.all()),
    )
    row = last("change", "system.user")
    assert "roles" not in row.changes and row.changes["email"][1] == "s1@example.com"


def test_new_user_logs_the_roles_given(org):
    salesperson = Role.objects.get(code="salesperson")
    user = services.user_create(
        actor=org.admin,
        data={"username": "newbie", "department": org.sales1_dept},
        roles=[salesperson],
        password="a-long-enough-passphrase",
    )
    row = last("create", "system.user")
    assert row.object_id == str(user.pk)
    assert row.changes["roles"] == [[], [str(salesperson.pk)]]
    assert "password" not in row.changes


def test_role_permissions_and_data_scope_changes_log_before_and_after(org):
    role = Role.objects.create(
        code="auditor", name="Auditor", data_scope="own", permissions=["customers.view"]
    )
    services.role_update(
        actor=org.admin,
        role=role,
        expected_version=role.version,
        data={"data_scope": "all", "permissions": ["customers.view", "customers.export"]},
    )
    row = last("change", "system.role")
    assert row.changes["data_scope"] == ["own", "all"]
    assert row.changes["permissions"] == [
        ["customers.view"],
        ["customers.export", "customers.view"],
    ]


def test_field_permission_change_is_logged(org):
    role = Role.objects.get(code="salesperson")
    services.role_set_field_permissions(
        actor=org.admin, role=role, model="customers.customer", rules={"phone": "hidden"}
    )
    row = last("change", "system.role")
    assert row.object_id == str(role.pk)
    assert any("phone" in key for key in row.changes), row.changes


def test_list_export_is_logged_with_the_file(org, client_for):
    CustomerFactory(owner=org.sales1)
    response = client_for(org.admin).get(reverse("customers:customer_list") + "?export=csv")
    assert response.status_code == 200
    b"".join(response.streaming_content)
    row = AuditLog.objects.filter(action="export").latest("id")
    assert row.user == org.admin and row.model == "customers.customer"
    assert row.note.endswith(".csv")


def test_printing_a_contract_is_logged_as_an_export(org, client_for, api_for):
    contract = contract_for(org.sales1)
    response = client_for(org.sales1).get(reverse("sales:contract_pdf", args=[contract.pk]))
    assert response.status_code == 200
    row = last("export", "sales.contract")
    assert row.user == org.sales1 and row.object_id == str(contract.pk)
    assert row.note == f"{contract.number}.pdf"
    response = api_for(org.sales1).get(f"/api/v1/contracts/{contract.pk}/pdf/")
    assert response.status_code == 200
    assert AuditLog.objects.filter(action="export", model="sales.contract").count() == 2


def test_refused_print_is_not_logged(org, client_for):
    contract = contract_for(org.sales3)
    response = client_for(org.sales1).get(reverse("sales:contract_pdf", args=[contract.pk]))
    assert response.status_code == 404
    assert not AuditLog.objects.filter(action="export").exists()
