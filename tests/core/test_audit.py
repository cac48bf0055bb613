"""The operation log: one row per action kind, and no way to change or remove a row."""

import pytest
from django.db import transaction
from django.test import Client

from kehu.core.audit import current_ip
from kehu.core.exports import ExportColumn, export_response
from kehu.core.services import model_create, soft_delete, soft_restore, versioned_update
from kehu.system.models import AuditLog
from kehu.system.services import audit_log_record, user_set_active
from tests.factories import PASSWORD
from tests.testapp.models import Widget


def test_every_write_kind_leaves_a_row(org):
    widget = model_create(model=Widget, user=org.sales1, data={"name": "a", "owner": org.sales1})
    versioned_update(instance=widget, user=org.sales1, expected_version=1, data={"name": "b"})
    soft_delete(instance=widget, user=org.sales1)
    soft_restore(instance=widget, user=org.admin)
    rows = AuditLog.objects.filter(model="testapp.widget", object_id=str(widget.pk))
    assert list(rows.order_by("id").values_list("action", "username")) == [
        ("create", "sales1"),
        ("change", "sales1"),
        ("delete", "sales1"),
        ("restore", "admin"),
    ]
    assert rows.get(action="change").changes == {"name": ["a", "b"]}


def test_status_change_row(org):
    user_set_active(actor=org.admin, user=org.sales2, active=False, expected_version=1)
    row = AuditLog.objects.get(action="status")
    assert (row.user, row.model, row.object_id) == (org.admin, "system.user", str(org.sales2.pk))
    assert row.changes == {"is_active": [True, False]}
    org.sales2.refresh_from_db()
    assert not org.sales2.is_active and org.sales2.version == 2


def test_status_change_needs_permission_and_writes_nothing(org):
    from kehu.core.exceptions import PermissionRefused

    with pytest.raises(PermissionRefused):
        user_set_active(actor=org.sales1, user=org.sales2, active=False, expected_version=1)
    org.sales2.refresh_from_db()
    assert org.sales2.is_active
    assert not AuditLog.objects.exists()


def test_login_failed_login_and_logout_through_the_real_views(org):
    client = Client(REMOTE_ADDR="10.1.2.3")
    response = client.post("/accounts/login/", {"username": "sales1", "password": "wrong"})
    assert response.status_code == 200  # the form again, with an error
    failed = AuditLog.objects.get(action="login_failed")
    # A failed login names who was tried, never the password, and has no user link.
    assert (failed.user, failed.username, failed.ip_address) == (None, "sales1", "10.1.2.3")
    assert "wrong" not in str(failed.changes) + failed.note

    response = client.post("/accounts/login/", {"username": "sales1", "password": PASSWORD})
    assert response.status_code == 302
    login = AuditLog.objects.get(action="login")
    assert (login.user, login.ip_address) == (org.sales1, "10.1.2.3")

    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert AuditLog.objects.get(action="logout").user == org.sales1


def test_export_row(org, rf):
    Widget.objects.create(name="x", owner=org.manager)
    export_response(
        user=org.manager,
        module="customers",
        model=Widget,
        queryset=Widget.objects.all(),
        columns=[ExportColumn("name", "Name")],
        fmt="csv",
        filename="widgets",
    )
    row = AuditLog.objects.get(action="export")
    assert (row.user, row.model, row.note) == (org.manager, "testapp.widget", "widgets.csv")


def test_ip_address_comes_from_the_request_context(org):
    token = current_ip.set("192.0.2.7")
    try:
        row = audit_log_record(user=org.admin, action="change", note="x")
    finally:
        current_ip.reset(token)
    assert row.ip_address == "192.0.2.7"


def test_rows_cannot_be_changed_or_removed(org):
    row = audit_log_record(user=org.admin, action="change", note="original")
    row.note = "rewritten"
    with pytest.raises(TypeError):
        row.save()
    with pytest.raises(TypeError):
        row.delete()
    with pytest.raises(TypeError):
        AuditLog.objects.filter(pk=row.pk).update(note="rewritten")
    with pytest.raises(TypeError):
        AuditLog.objects.all().delete()
    # bulk_update raises inside its own atomic block: a savepoint keeps the test usable.
    with pytest.raises(TypeError), transaction.atomic():
        AuditLog.objects.bulk_update([row], ["note"])
    assert AuditLog.objects.get(pk=row.pk).note == "original"


def test_a_user_with_log_rows_cannot_be_hard_deleted(org):
    from django.db.models import ProtectedError

    audit_log_record(user=org.sales1, action="change")
    with pytest.raises(ProtectedError):
        org.sales1.delete()
