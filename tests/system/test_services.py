"""System services: roles, users, field rules, notifications. Refusals change nothing."""

import pytest
from django.core import mail

from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.core.scope import DataScope
from kehu.system.models import AuditLog, FieldPermission, Notification, Role
from kehu.system.services import (
    notification_mark_read,
    notification_send,
    role_create,
    role_delete,
    role_set_field_permissions,
    role_update,
    user_create,
    user_set_active,
    user_set_password,
    user_update,
)

ROLE = {"code": "auditor", "name": "审计", "data_scope": DataScope.ALL}


def test_role_create_logs_and_keeps_known_codes(org):
    role = role_create(
        actor=org.admin, data={**ROLE, "permissions": ["system.view", "customers.view"]}
    )
    assert role.permissions == ["customers.view", "system.view"]
    assert AuditLog.objects.get(action="create", model="system.role").object_id == str(role.pk)


def test_unknown_permission_code_is_a_field_error(org):
    with pytest.raises(ServiceError) as refused:
        role_create(actor=org.admin, data={**ROLE, "permissions": ["customers.fly"]})
    assert refused.value.field == "permissions"
    assert "customers.fly" in str(refused.value.message)
    assert not Role.objects.filter(code="auditor").exists()


def test_role_update_refuses_unknown_codes_and_changes_nothing(org):
    role = role_create(actor=org.admin, data={**ROLE, "permissions": ["system.view"]})
    with pytest.raises(ServiceError) as refused:
        role_update(
            actor=org.admin, role=role, expected_version=1, data={"permissions": ["nope.view"]}
        )
    assert refused.value.field == "permissions"
    role.refresh_from_db()
    assert (role.permissions, role.version) == (["system.view"], 1)


def test_role_update_stale_version(org):
    role = role_create(actor=org.admin, data=ROLE)
    role_update(actor=org.admin, role=role, expected_version=1, data={"name": "审计一"})
    with pytest.raises(ConflictError):
        role_update(actor=org.admin, role=role, expected_version=1, data={"name": "审计二"})
    assert Role.objects.get(pk=role.pk).name == "审计一"


def test_built_in_roles_cannot_be_deleted(org):
    builtin = Role.objects.get(code="warehouse")
    builtin.users.clear()
    with pytest.raises(ServiceError):
        role_delete(actor=org.admin, role=builtin)
    assert Role.objects.filter(code="warehouse").exists()


def test_roles_in_use_cannot_be_deleted(org):
    role = role_create(actor=org.admin, data=ROLE)
    org.sales3.roles.add(role)
    with pytest.raises(ServiceError):
        role_delete(actor=org.admin, role=role)
    assert Role.objects.filter(pk=role.pk).exists()

    org.sales3.roles.remove(role)
    role_delete(actor=org.admin, role=role)
    assert not Role.objects.filter(pk=role.pk).exists()
    assert AuditLog.objects.get(action="delete", model="system.role").changes["code"] == [
        "auditor",
        None,
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda org: role_create(actor=org.sales1, data=ROLE),
        lambda org: role_update(
            actor=org.sales1, role=Role.objects.get(code="hr"), expected_version=1, data={}
        ),
        lambda org: role_delete(actor=org.sales1, role=Role.objects.get(code="hr")),
        lambda org: role_set_field_permissions(
            actor=org.sales1,
            role=Role.objects.get(code="hr"),
            model="system.user",
            rules={"phone": "read"},
        ),
        lambda org: user_create(actor=org.sales1, data={"username": "x"}, roles=[]),
        lambda org: user_update(actor=org.sales1, user=org.sales2, expected_version=1, data={}),
        lambda org: user_set_password(actor=org.sales1, user=org.sales2, password="Ab-12345678"),
    ],
    ids=[
        "role_create",
        "role_update",
        "role_delete",
        "field_rules",
        "user_create",
        "user_update",
        "user_set_password",
    ],
)
def test_permission_required_and_nothing_written(org, call):
    roles_before = list(Role.objects.values_list("code", "name", "version"))
    rules_before = list(FieldPermission.objects.values_list("role", "field", "access"))
    with pytest.raises(PermissionRefused):
        call(org)
    assert list(Role.objects.values_list("code", "name", "version")) == roles_before
    assert list(FieldPermission.objects.values_list("role", "field", "access")) == rules_before
    assert not AuditLog.objects.exists()


def test_field_rules_replace_and_log(org):
    role = Role.objects.get(code="finance")
    role_set_field_permissions(
        actor=org.admin, role=role, model="system.user", rules={"phone": "read", "email": "hidden"}
    )
    role_set_field_permissions(
        actor=org.admin, role=role, model="system.user", rules={"phone": "masked"}
    )
    assert dict(role.field_permissions.values_list("field", "access")) == {"phone": "masked"}
    last = AuditLog.objects.filter(action="change", model="system.role").order_by("id").last()
    assert last.changes == {
        "system.user.email": ["hidden", None],
        "system.user.phone": ["read", "masked"],
    }


def test_field_rules_refuse_unknown_access(org):
    role = Role.objects.get(code="finance")
    with pytest.raises(ServiceError) as refused:
        role_set_field_permissions(
            actor=org.admin, role=role, model="system.user", rules={"phone": "peek"}
        )
    assert refused.value.field == "phone"
    assert not role.field_permissions.exists()


def test_user_create_with_roles_and_password(org):
    user = user_create(
        actor=org.admin,
        data={"username": "newbie", "email": "newbie@example.com", "department": org.sales1_dept},
        roles=[Role.objects.get(code="salesperson")],
        password="Chengdu-panda-88",
    )
    assert user.check_password("Chengdu-panda-88")
    assert list(user.roles.values_list("code", flat=True)) == ["salesperson"]
    row = AuditLog.objects.get(action="create", model="system.user")
    assert "password" not in row.changes


def test_user_create_refuses_a_taken_username(org):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        user_create(actor=org.admin, data={"username": "sales1"}, roles=[])
    assert "username" in refused.value.message_dict
    assert not AuditLog.objects.exists()


def test_user_set_password_validates(org):
    with pytest.raises(ServiceError) as refused:
        user_set_password(actor=org.admin, user=org.sales1, password="123")
    assert refused.value.field == "password"
    org.sales1.refresh_from_db()
    assert org.sales1.check_password("kehu-demo-2026")
    user_set_password(actor=org.admin, user=org.sales1, password="Xiamen-ferry-19")
    org.sales1.refresh_from_db()
    assert org.sales1.check_password("Xiamen-ferry-19")
    row = AuditLog.objects.get(action="change", model="system.user")
    assert org.sales1.password not in str(row.changes)


def test_cannot_deactivate_yourself(org):
    with pytest.raises(ServiceError) as refused:
        user_set_active(actor=org.admin, user=org.admin, active=False, expected_version=1)
    assert refused.value.field == "is_active"
    org.admin.refresh_from_db()
    assert org.admin.is_active


def test_deactivated_user_loses_access_at_once(org):
    from kehu.core.permissions import has_perm

    user_set_active(actor=org.admin, user=org.sales2, active=False, expected_version=1)
    org.sales2.refresh_from_db()
    assert not has_perm(org.sales2, "customers.view")


def test_user_update_changes_roles_and_logs_them(org):
    manager_role = Role.objects.get(code="sales_manager")
    user_update(actor=org.admin, user=org.sales2, expected_version=1, data={}, roles=[manager_role])
    assert list(org.sales2.roles.values_list("code", flat=True)) == ["sales_manager"]
    row = AuditLog.objects.get(action="change", model="system.user")
    assert row.changes["roles"][1] == [str(manager_role.pk)]


def test_notifications_in_app_and_by_mail_after_commit(org, django_capture_on_commit_callbacks):
    org.sales3.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        notes = notification_send(
            recipients=[org.sales1, org.sales2, org.sales3, None],
            title="跟进提醒",
            body="客户甲",
            email=True,
        )
    # Inactive users and empty slots are skipped.
    assert [n.recipient for n in notes] == [org.sales1, org.sales2]
    # One mail each, so no recipient sees the others' addresses.
    assert sorted(m.to for m in mail.outbox) == [["sales1@example.com"], ["sales2@example.com"]]

    assert notification_mark_read(user=org.sales1) == 1
    assert Notification.objects.filter(recipient=org.sales1, read_at__isnull=True).count() == 0
    assert Notification.objects.filter(recipient=org.sales2, read_at__isnull=True).count() == 1


def test_operation_log_base_manager_refuses_bulk_changes(org):
    from kehu.system.models import AuditLog

    AuditLog.objects.create(action="login", username="x")
    with pytest.raises(TypeError):
        AuditLog._base_manager.filter(username="x").update(username="y")
    with pytest.raises(TypeError):
        AuditLog._base_manager.all().delete()
