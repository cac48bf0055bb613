"""System management pages: allowed and refused, validation, conflicts, masking, export."""

import pytest
from django.core import mail
from django.urls import NoReverseMatch, reverse

from kehu.system.models import (
    AuditLog,
    DictionaryItem,
    FieldPermission,
    Notification,
    Role,
    SystemSettings,
    User,
)
from kehu.system.services import audit_log_record, notification_send
from tests.factories import UserFactory

PAGES = [
    ("system:user_list", None),
    ("system:user_create", None),
    ("system:user_edit", "sales2"),
    ("system:user_password", "sales2"),
    ("system:role_list", None),
    ("system:role_create", None),
    ("system:role_edit", "role"),
    ("system:dictionary_list", None),
    ("system:dictionary_detail", "dictionary"),
    ("system:settings", None),
    ("system:audit_list", None),
]


def _url(org, name, arg):
    if arg is None:
        return reverse(name)
    if arg == "role":
        return reverse(name, args=[Role.objects.get(code="salesperson").pk])
    if arg == "dictionary":
        from kehu.system.models import Dictionary

        return reverse(name, args=[Dictionary.objects.get(code="industry").pk])
    return reverse(name, args=[getattr(org, arg).pk])


@pytest.mark.parametrize(("name", "arg"), PAGES)
def test_pages_allowed_for_admin(org, client_for, name, arg):
    response = client_for(org.admin).get(_url(org, name, arg))
    assert response.status_code == 200


@pytest.mark.parametrize(("name", "arg"), PAGES)
def test_pages_refused_for_salesperson(org, client_for, name, arg):
    response = client_for(org.sales1).get(_url(org, name, arg))
    assert response.status_code == 403


def test_pages_need_login(client, org):
    response = client.get(reverse("system:user_list"))
    assert response.status_code == 302


# --- users ----------------------------------------------------------------------------------


def test_user_list_filters_and_query_count(org, client_for, django_assert_max_num_queries):
    for n in range(15):
        UserFactory(username=f"bulk{n}", department=org.sales1_dept, roles=[Role.objects.first()])
    client = client_for(org.admin)
    with django_assert_max_num_queries(18):  # +1: the approvals count in the top bar
        response = client.get(reverse("system:user_list"))
    assert response.status_code == 200
    response = client.get(reverse("system:user_list"), {"q": "sales2"})
    assert "sales2" in response.content.decode()
    assert "bulk3" not in response.content.decode()
    response = client.get(reverse("system:user_list"), {"department": org.sales2_dept.pk})
    assert "sales3" in response.content.decode() and "sales2" not in response.content.decode()


def test_user_create(org, client_for):
    data = {
        "username": "newbie",
        "display_name": "New Bie",
        "email": "newbie@example.com",
        "department": org.sales1_dept.pk,
        "roles": [Role.objects.get(code="salesperson").pk],
        "is_active": "on",
        "password1": "Tr1cky-horse-battery",
        "password2": "Tr1cky-horse-battery",
    }
    response = client_for(org.admin).post(reverse("system:user_create"), data)
    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert user.check_password("Tr1cky-horse-battery")
    assert list(user.roles.values_list("code", flat=True)) == ["salesperson"]
    assert AuditLog.objects.filter(action="create", model="system.user", object_id=user.pk)


def test_user_create_bad_email_creates_nothing(org, client_for):
    before = User.objects.count()
    data = {
        "username": "bademail",
        "email": "not-an-address",
        "password1": "Tr1cky-horse-battery",
        "password2": "Tr1cky-horse-battery",
    }
    response = client_for(org.admin).post(reverse("system:user_create"), data)
    assert response.status_code == 400
    assert "email" in response.context["form"].errors
    assert User.objects.count() == before


def test_user_create_weak_password_refused(org, client_for):
    data = {"username": "weakling", "password1": "123", "password2": "123"}
    response = client_for(org.admin).post(reverse("system:user_create"), data)
    assert response.status_code == 400
    assert "password1" in response.context["form"].errors
    assert not User.objects.filter(username="weakling").exists()


def test_user_create_with_set_password_email(org, client_for):
    data = {
        "username": "invited",
        "email": "invited@example.com",
        "is_active": "on",
        "send_set_password_email": "on",
    }
    response = client_for(org.admin).post(reverse("system:user_create"), data)
    assert response.status_code == 302
    user = User.objects.get(username="invited")
    assert not user.has_usable_password()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["invited@example.com"]


def _edit_data(user, **overrides):
    data = {
        "username": user.username,
        "display_name": user.display_name,
        "department": user.department_id or "",
        "roles": list(user.roles.values_list("pk", flat=True)),
        "is_active": "on" if user.is_active else "",
        "version": user.version,
    }
    data.update(overrides)
    return data


def test_user_edit_stale_version_conflict(org, client_for):
    user = org.sales2
    client = client_for(org.admin)
    stale = _edit_data(user, display_name="First")
    User.objects.filter(pk=user.pk).update(version=user.version + 1)
    response = client.post(reverse("system:user_edit", args=[user.pk]), stale)
    assert response.status_code == 400
    assert "changed by someone else" in response.content.decode()
    user.refresh_from_db()
    assert user.display_name == "sales2"


def test_user_cannot_deactivate_self(org, client_for):
    admin = org.admin
    response = client_for(admin).post(
        reverse("system:user_edit", args=[admin.pk]), _edit_data(admin, is_active="")
    )
    assert response.status_code == 400
    assert "is_active" in response.context["form"].errors
    admin.refresh_from_db()
    assert admin.is_active


def test_bulk_deactivate_and_self_refused(org, client_for):
    client = client_for(org.admin)
    url = reverse("system:user_list")
    client.post(url, {"bulk_action": "deactivate", "selected": [org.sales2.pk, org.sales3.pk]})
    assert not User.objects.get(pk=org.sales2.pk).is_active
    assert not User.objects.get(pk=org.sales3.pk).is_active
    client.post(url, {"bulk_action": "deactivate", "selected": [org.sales1.pk, org.admin.pk]})
    assert User.objects.get(pk=org.sales1.pk).is_active  # all or nothing
    assert User.objects.get(pk=org.admin.pk).is_active


def test_salesperson_cannot_reach_other_users_edit_page(org, client_for):
    client = client_for(org.sales1)
    assert client.get(reverse("system:user_edit", args=[org.sales2.pk])).status_code == 403
    response = client.post(
        reverse("system:user_edit", args=[org.sales2.pk]), _edit_data(org.sales2, display_name="X")
    )
    assert response.status_code == 403
    assert User.objects.get(pk=org.sales2.pk).display_name == "sales2"


def test_out_of_scope_user_is_404(org, client_for):
    role = Role.objects.create(
        code="dept_admin",
        name="Dept admin",
        data_scope="department",
        permissions=["system.view", "system.change"],
    )
    viewer = UserFactory(username="deptadmin", department=org.sales2_dept, roles=[role])
    client = client_for(viewer)
    assert client.get(reverse("system:user_edit", args=[org.sales1.pk])).status_code == 404


def test_masked_phone_for_role_granted_masked(org, client_for):
    role = Role.objects.create(
        code="helpdesk", name="Helpdesk", data_scope="all", permissions=["system.view"]
    )
    FieldPermission.objects.create(role=role, model="system.user", field="phone", access="masked")
    viewer = UserFactory(username="helpdesk1", roles=[role])
    client = client_for(viewer)
    body = client.get(reverse("system:user_list")).content.decode()
    assert "138****5678" in body
    assert "13812345678" not in body
    # The phone search does not match masked values either.
    body = client.get(reverse("system:user_list"), {"q": "1381234"}).content.decode()
    assert "sales2" not in body


def test_set_password_and_send_reset(org, client_for):
    client = client_for(org.admin)
    url = reverse("system:user_password", args=[org.sales2.pk])
    response = client.post(url, {"password1": "short", "password2": "short"})
    assert response.status_code == 400
    response = client.post(
        url, {"password1": "Another-long-pass9", "password2": "Another-long-pass9"}
    )
    assert response.status_code == 302
    assert User.objects.get(pk=org.sales2.pk).check_password("Another-long-pass9")
    response = client.post(reverse("system:user_send_reset", args=[org.sales2.pk]))
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["sales2@example.com"]


def test_export_users_xlsx_and_csv_logged(org, client_for):
    # Without the admin role's seeded field rules, contact details are masked.
    FieldPermission.objects.filter(role__code="admin").delete()
    client = client_for(org.admin)
    response = client.get(reverse("system:user_list"), {"export": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    response = client.get(reverse("system:user_list"), {"export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "sales1" in body and "13812345678" not in body  # masked in exports too
    assert AuditLog.objects.filter(action="export", model="system.user").count() == 2


def test_export_refused_without_permission(org, client_for):
    role = Role.objects.create(
        code="viewer", name="Viewer", data_scope="all", permissions=["system.view"]
    )
    viewer = UserFactory(username="viewer1", roles=[role])
    response = client_for(viewer).get(reverse("system:user_list"), {"export": "csv"})
    assert response.status_code == 403
    assert not AuditLog.objects.filter(action="export").exists()


# --- roles ----------------------------------------------------------------------------------


def test_role_list_query_count(org, client_for, django_assert_max_num_queries):
    client = client_for(org.admin)
    with django_assert_max_num_queries(13):  # +1: the approvals count in the top bar
        response = client.get(reverse("system:role_list"))
    assert response.status_code == 200


def test_role_matrix_shows_only_module_actions(org, client_for):
    body = client_for(org.admin).get(reverse("system:role_create")).content.decode()
    assert 'value="customers.approve"' in body
    assert 'value="analytics.view"' in body
    assert 'value="analytics.add"' not in body


def test_role_create_with_matrix_and_field_rules(org, client_for):
    data = {
        "name": "Auditor",
        "code": "auditor",
        "data_scope": "all",
        "permissions": ["system.view", "customers.view"],
        "field__system.user__phone": "read",
        "field__system.user__email": "hidden",
    }
    response = client_for(org.admin).post(reverse("system:role_create"), data)
    assert response.status_code == 302, response.content.decode()
    role = Role.objects.get(code="auditor")
    assert role.permissions == ["customers.view", "system.view"]
    rules = dict(
        FieldPermission.objects.filter(role=role, model="system.user").values_list(
            "field", "access"
        )
    )
    assert rules == {"phone": "read", "email": "hidden"}


def test_role_create_unknown_permission_refused(org, client_for):
    data = {"name": "Bad", "code": "bad", "data_scope": "own", "permissions": ["nope.view"]}
    response = client_for(org.admin).post(reverse("system:role_create"), data)
    assert response.status_code == 400
    assert not Role.objects.filter(code="bad").exists()


def test_role_delete_refused_for_builtin(org, client_for):
    role = Role.objects.get(code="warehouse")
    role.users.clear()
    response = client_for(org.admin).post(
        reverse("system:role_delete", args=[role.pk]), follow=True
    )
    assert "Built-in roles cannot be deleted." in response.content.decode()
    assert Role.objects.filter(pk=role.pk).exists()


def test_role_delete_refused_in_use_and_allowed_unused(org, client_for):
    client = client_for(org.admin)
    role = Role.objects.create(code="temp", name="Temp", data_scope="own")
    org.sales1.roles.add(role)
    response = client.post(reverse("system:role_delete", args=[role.pk]), follow=True)
    assert "still held by users" in response.content.decode()
    org.sales1.roles.remove(role)
    client.post(reverse("system:role_delete", args=[role.pk]))
    assert not Role.objects.filter(pk=role.pk).exists()


def test_role_delete_refused_for_salesperson(org, client_for):
    role = Role.objects.create(code="temp2", name="Temp2", data_scope="own")
    response = client_for(org.sales1).post(reverse("system:role_delete", args=[role.pk]))
    assert response.status_code == 403
    assert Role.objects.filter(pk=role.pk).exists()


# --- dictionaries ---------------------------------------------------------------------------


def _industry():
    from kehu.system.models import Dictionary

    return Dictionary.objects.get(code="industry")


def test_dictionary_item_add_and_duplicate(org, client_for):
    client = client_for(org.admin)
    dictionary = _industry()
    url = reverse("system:dictionary_item_create", args=[dictionary.pk])
    data = {
        "new-value": "energy",
        "new-label": "能源",
        "new-label_en": "Energy",
        "new-sort_order": 5,
    }
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert DictionaryItem.objects.filter(dictionary=dictionary, value="energy").exists()
    count = DictionaryItem.objects.count()
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert "already used" in response.content.decode()
    assert DictionaryItem.objects.count() == count


def test_dictionary_item_edit_inline(org, client_for):
    client = client_for(org.admin)
    item = DictionaryItem.objects.get(dictionary=_industry(), value="retail")
    url = reverse("system:dictionary_item_edit", args=[item.pk])
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 200
    p = f"item{item.pk}-"
    data = {
        p + "value": "retail",
        p + "label": "零售业",
        p + "sort_order": 1,
        p + "version": item.version,
    }
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert "零售业" in response.content.decode()
    item.refresh_from_db()
    assert item.label == "零售业" and not item.is_active
    # the same (now stale) version again is a conflict and changes nothing
    data[p + "label"] = "Stale"
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert "changed by someone else" in response.content.decode()
    item.refresh_from_db()
    assert item.label == "零售业"


def test_dictionary_item_edit_refused_for_salesperson(org, client_for):
    item = DictionaryItem.objects.filter(dictionary=_industry()).first()
    response = client_for(org.sales1).post(
        reverse("system:dictionary_item_edit", args=[item.pk]), {}
    )
    assert response.status_code == 403


def test_dictionary_list_query_count(org, client_for, django_assert_max_num_queries):
    client = client_for(org.admin)
    with django_assert_max_num_queries(13):  # +1: the approvals count in the top bar
        assert client.get(reverse("system:dictionary_list")).status_code == 200


# --- settings -------------------------------------------------------------------------------


def _settings_data(**overrides):
    row = SystemSettings.objects.get(pk=1)
    data = {
        "company_name": row.company_name,
        "currency": row.currency,
        "fiscal_year_start_month": row.fiscal_year_start_month,
        "pool_no_followup_days": 30,
        "pool_no_deal_days": 90,
        "pool_reclaim_block_days": 15,
        "pool_daily_claim_limit": 20,
        "pool_max_owned_customers": 500,
        "contract_expiry_reminder_days": 30,
        "quote_validity_days": 30,
        "version": row.version,
    }
    data.update(overrides)
    return data


def test_settings_update_and_stale_version(org, client_for, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = client_for(org.admin)
    response = client.post(reverse("system:settings"), _settings_data(company_name="示例公司"))
    assert response.status_code == 302
    assert SystemSettings.objects.get(pk=1).company_name == "示例公司"
    stale = _settings_data(company_name="Stale")
    stale["version"] = 1
    response = client.post(reverse("system:settings"), stale)
    assert response.status_code == 400
    assert SystemSettings.objects.get(pk=1).company_name == "示例公司"


def test_settings_company_details_for_documents(org, client_for, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    details = {
        "company_address": "杭州市西湖区文三路 90 号",
        "company_phone": "0571-88886666",
        "company_tax_number": "91330106MA2B3C4D5E",
        "company_bank": "招商银行杭州高新支行 571908888810001",
        "contract_expiry_reminder_days": 45,
        "quote_validity_days": 15,
    }
    response = client_for(org.admin).post(reverse("system:settings"), _settings_data(**details))
    assert response.status_code == 302
    row = SystemSettings.objects.get(pk=1)
    assert {name: getattr(row, name) for name in details} == details
    page = client_for(org.admin).get(reverse("system:settings")).content.decode()
    assert 'name="company_tax_number"' in page and 'name="quote_validity_days"' in page


def test_settings_bad_month_and_logo(org, client_for, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    client = client_for(org.admin)
    response = client.post(reverse("system:settings"), _settings_data(fiscal_year_start_month=13))
    assert "fiscal_year_start_month" in response.context["form"].errors
    fake = SimpleUploadedFile("logo.png", b"not an image", content_type="image/png")
    response = client.post(reverse("system:settings"), {**_settings_data(), "logo": fake})
    assert "logo" in response.context["form"].errors


def test_settings_logo_upload(org, client_for, settings, tmp_path):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, "PNG")
    logo = SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")
    response = client_for(org.admin).post(
        reverse("system:settings"), {**_settings_data(), "logo": logo}
    )
    assert response.status_code == 302
    row = SystemSettings.objects.get(pk=1)
    assert row.logo.name.startswith("settings/") and row.logo.storage.exists(row.logo.name)


# --- operation log --------------------------------------------------------------------------


def test_audit_list_shows_rows_readably(org, client_for, django_assert_max_num_queries):
    audit_log_record(
        user=org.admin,
        action="change",
        obj=org.sales2,
        changes={"display_name": ["Old Name", "New Name"]},
    )
    client = client_for(org.admin)
    client.get(reverse("system:audit_list"))  # the reference data, read once and then held
    # A filtered list counts within a time budget: on PostgreSQL four statements around
    # the count (savepoint, SET LOCAL statement_timeout and back).
    with django_assert_max_num_queries(15):
        response = client.get(reverse("system:audit_list"), {"action": "change"})
    body = response.content.decode()
    assert "Old Name" in body and "New Name" in body and "display name" in body
    response = client.get(reverse("system:audit_list"), {"action": "login"})
    assert "Old Name" not in response.content.decode()


def test_audit_log_has_no_edit_route(org, client_for):
    for name in ("system:audit_edit", "system:audit_delete", "system:audit_create"):
        with pytest.raises(NoReverseMatch):
            reverse(name)
    client = client_for(org.admin)
    audit_log_record(user=org.admin, action="login")
    count = AuditLog.objects.count()
    response = client.post(reverse("system:audit_list"), {"bulk_action": "delete"})
    assert response.status_code == 405
    assert AuditLog.objects.count() == count


def test_audit_date_filter(org, client_for):
    audit_log_record(user=org.admin, action="login")
    client = client_for(org.admin)
    response = client.get(
        reverse("system:audit_list"), {"date_from": "2000-01-01", "date_to": "2000-01-02"}
    )
    assert response.status_code == 200
    assert not response.context["object_list"]


def test_audit_export_csv(org, client_for):
    audit_log_record(user=org.admin, action="change", obj=org.sales2, changes={"phone": ["1", "2"]})
    response = client_for(org.admin).get(reverse("system:audit_list"), {"export": "csv"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "1 → 2" in body


# --- notifications --------------------------------------------------------------------------


def test_notifications_list_and_mark_read(org, client_for, django_assert_max_num_queries):
    notes = notification_send(recipients=[org.sales1], title="Follow up ACME", url="/customers/1/")
    notification_send(recipients=[org.sales2], title="Not yours")
    client = client_for(org.sales1)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("system:notification_list"))
    body = response.content.decode()
    assert "Follow up ACME" in body and "Not yours" not in body
    response = client.post(
        reverse("system:notification_read", args=[notes[0].pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert Notification.objects.get(pk=notes[0].pk).read_at is not None


def test_notification_of_another_user_is_404(org, client_for):
    (note,) = notification_send(recipients=[org.sales2], title="Private")
    client = client_for(org.sales1)
    assert client.post(reverse("system:notification_read", args=[note.pk])).status_code == 404
    assert Notification.objects.get(pk=note.pk).read_at is None


def test_notifications_mark_all_read(org, client_for):
    notification_send(recipients=[org.sales1, org.sales1], title="Twice")
    client_for(org.sales1).post(reverse("system:notification_read_all"))
    assert not Notification.objects.filter(recipient=org.sales1, read_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/customers/7/", "/customers/7/"),
        ("https://evil.example/", "/system/notifications/"),
        ("//evil.example/", "/system/notifications/"),
        ("/\\evil.example/", "/system/notifications/"),
        ("", "/system/notifications/"),
    ],
)
def test_notification_open_marks_read_and_redirects_locally(org, client_for, url, expected):
    (note,) = notification_send(recipients=[org.sales1], title="Go", url=url)
    response = client_for(org.sales1).get(reverse("system:notification_open", args=[note.pk]))
    assert response.status_code == 302
    assert response["Location"] == expected
    assert Notification.objects.get(pk=note.pk).read_at is not None


def test_home_todo_lists_unread_notifications(org, client_for):
    notification_send(recipients=[org.sales1], title="Call back Mr Wang")
    body = client_for(org.sales1).get("/").content.decode()
    assert "Unread notifications" in body and "Call back Mr Wang" in body


# --- global search --------------------------------------------------------------------------


def test_global_search_users_and_departments(org, client_for):
    body = client_for(org.admin).get(reverse("search"), {"q": "sales"}).content.decode()
    assert "sales3" in body
    body = client_for(org.admin).get(reverse("search"), {"q": "销售一"}).content.decode()
    assert "销售一部" in body
    # A salesperson has neither system.view nor hr.view: nothing of either.
    body = client_for(org.sales1).get(reverse("search"), {"q": "sales"}).content.decode()
    assert "sales3" not in body
