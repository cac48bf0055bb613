import pytest

from kehu.system.models import AuditLog, FieldPermission, User
from tests.conftest import role

URL = "/api/v1/users/"


def test_list_is_paginated_and_masks_contact_details(org, api_for, django_assert_max_num_queries):
    client = api_for(org.admin)
    FieldPermission.objects.filter(role=role("admin")).delete()
    with django_assert_max_num_queries(8):
        response = client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "count_capped", "next", "previous", "results"}
    assert body["count_capped"] is False
    assert body["count"] == User.objects.count()
    row = next(r for r in body["results"] if r["username"] == "sales1")
    # Without the admin role's seeded field rules, phone/e-mail are masked like for anyone.
    assert row["phone"] == "138****5678"
    assert row["email"] == "s***@example.com"
    assert row["department"] == org.sales1.department_id
    assert row["roles"] == [role("salesperson").id]
    assert "password" not in row


def test_list_query_count_does_not_grow_per_row(org, api_for, django_assert_max_num_queries):
    from tests.factories import UserFactory

    for n in range(15):
        UserFactory(
            username=f"extra{n}", department=org.sales3.department, roles=[role("salesperson")]
        )
    with django_assert_max_num_queries(8):
        assert api_for(org.admin).get(URL, {"page_size": 50}).status_code == 200


def test_field_rule_unmasks_phone(org, api_for):
    FieldPermission.objects.filter(role=role("admin")).delete()
    FieldPermission.objects.create(
        role=role("admin"), model="system.user", field="phone", access="edit"
    )
    row = api_for(org.admin).get(f"{URL}{org.sales1.id}/").json()
    assert row["phone"] == "13812345678"
    assert row["email"] == "s***@example.com"


def test_filters_and_search(org, api_for):
    client = api_for(org.admin)
    # (org.sales1 is the user; his department 销售一部 is reached through salesmgr1.)
    rows = client.get(URL, {"department": org.salesmgr1.department_id}).json()["results"]
    names = {r["username"] for r in rows}
    assert names == {"salesmgr1", "sales1", "sales2"}
    by_role = client.get(URL, {"role": role("salesperson").id}).json()["results"]
    assert {r["username"] for r in by_role} == {"sales1", "sales2", "sales3"}
    found = client.get(URL, {"search": "sales2"}).json()["results"]
    assert [r["username"] for r in found] == ["sales2"]
    ordered = client.get(URL, {"ordering": "-username"}).json()["results"]
    assert ordered[0]["username"] == "warehouse"
    org.sales3.is_active = False
    org.sales3.save()
    inactive = client.get(URL, {"is_active": "false"}).json()["results"]
    assert [r["username"] for r in inactive] == ["sales3"]


@pytest.mark.parametrize("who", ["sales1", "salesmgr1", "finance", "hr"])
def test_users_refused_without_system_view(org, api_for, who):
    client = api_for(getattr(org, who))
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{org.sales1.id}/").status_code == 403


def test_sales1_cannot_write_users(org, api_for):
    client = api_for(org.sales1)
    before = AuditLog.objects.count()
    assert client.post(URL, {"username": "newbie"}, format="json").status_code == 403
    response = client.patch(f"{URL}{org.sales2.id}/", {"display_name": "x", "version": 1})
    assert response.status_code == 403
    assert client.post(f"{URL}{org.sales2.id}/deactivate/", {"version": 1}).status_code == 403
    assert not User.objects.filter(username="newbie").exists()
    org.sales2.refresh_from_db()
    assert org.sales2.display_name == "sales2" and org.sales2.is_active
    assert AuditLog.objects.count() == before


def test_scoped_admin_sees_only_his_subtree(org, api_for, sub_admin):
    client = api_for(sub_admin)
    names = {r["username"] for r in client.get(URL).json()["results"]}
    assert names == {"salesmgr1", "sales1", "sales2"}
    assert client.get(f"{URL}{org.sales1.id}/").status_code == 200
    # Outside the subtree: the same 404 as a missing user, for reads and writes alike.
    assert client.get(f"{URL}{org.sales3.id}/").status_code == 404
    assert client.get(f"{URL}{org.admin.id}/").status_code == 404
    assert client.get(f"{URL}999999/").status_code == 404
    response = client.patch(f"{URL}{org.sales3.id}/", {"display_name": "x", "version": 1})
    assert response.status_code == 404
    assert client.post(f"{URL}{org.sales3.id}/deactivate/", {"version": 1}).status_code == 404
    org.sales3.refresh_from_db()
    assert org.sales3.display_name == "sales3" and org.sales3.is_active


def test_scoped_admin_may_not_write_masked_fields(org, api_for, sub_admin):
    response = api_for(sub_admin).patch(
        f"{URL}{org.sales1.id}/", {"phone": "13900000000", "version": 1}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"phone": ["You may not change this field."]}
    org.sales1.refresh_from_db()
    assert org.sales1.phone == "13812345678"


def test_create_user_with_roles_and_password(org, api_for):
    # The admin role is seeded with edit access to phone and e-mail.
    payload = {
        "username": "sales4",
        "display_name": "销售四",
        "email": "sales4@example.com",
        "phone": "13700001111",
        "department": org.sales3.department_id,
        "roles": [role("salesperson").id],
        "password": "a-long-Secret-2026",
        "version": 99,
        "is_active": False,
    }
    response = api_for(org.admin).post(URL, payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1  # the client never sets the version
    assert body["is_active"] is True  # nor activation, which has its own actions
    user = User.objects.get(username="sales4")
    assert user.check_password("a-long-Secret-2026")
    assert list(user.roles.values_list("code", flat=True)) == ["salesperson"]
    assert AuditLog.objects.filter(action="create", model="system.user", object_id=user.id)


def test_create_without_password_cannot_log_in(org, api_for):
    response = api_for(org.admin).post(URL, {"username": "nopass"}, format="json")
    assert response.status_code == 201
    assert not User.objects.get(username="nopass").has_usable_password()


def test_create_validation_errors_write_nothing(org, api_for):
    before = (User.objects.count(), AuditLog.objects.count())
    client = api_for(org.admin)
    response = client.post(
        URL,
        {"username": "sales1", "roles": [999999], "department": 999999, "password": "123"},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) >= {"username", "roles", "department"}
    response = client.post(URL, {"username": "fine", "password": "123"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()
    response = client.post(URL, {"display_name": "x"}, format="json")
    assert response.json()["username"] == ["This field is required."]
    assert (User.objects.count(), AuditLog.objects.count()) == before


def test_update_needs_version_and_refuses_stale(org, api_for):
    client = api_for(org.admin)
    url = f"{URL}{org.sales1.id}/"
    response = client.patch(url, {"display_name": "新名字"}, format="json")
    assert response.status_code == 400
    assert "version" in response.json()

    response = client.patch(url, {"display_name": "新名字", "version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["version"] == 2

    before = AuditLog.objects.count()
    stale = client.patch(url, {"display_name": "覆盖", "version": 1}, format="json")
    assert stale.status_code == 409
    assert "changed by someone else" in stale.json()["non_field_errors"][0]
    org.sales1.refresh_from_db()
    assert org.sales1.display_name == "新名字" and org.sales1.version == 2
    assert AuditLog.objects.count() == before


def test_update_roles(org, api_for):
    response = api_for(org.admin).patch(
        f"{URL}{org.sales1.id}/",
        {"roles": [role("salesperson").id, role("finance").id], "version": 1},
        format="json",
    )
    assert response.status_code == 200
    assert set(org.sales1.roles.values_list("code", flat=True)) == {"salesperson", "finance"}


def test_deactivate_and_activate(org, api_for):
    client = api_for(org.admin)
    response = client.post(f"{URL}{org.sales1.id}/deactivate/", {"version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert AuditLog.objects.filter(action="status", object_id=str(org.sales1.id)).exists()
    stale = client.post(f"{URL}{org.sales1.id}/activate/", {"version": 1}, format="json")
    assert stale.status_code == 409
    response = client.post(f"{URL}{org.sales1.id}/activate/", {"version": 2}, format="json")
    assert response.json()["is_active"] is True
    missing = client.post(f"{URL}{org.sales1.id}/activate/", {}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()


def test_cannot_deactivate_self(org, api_for):
    response = api_for(org.admin).post(
        f"{URL}{org.admin.id}/deactivate/", {"version": 1}, format="json"
    )
    assert response.status_code == 400
    assert "is_active" in response.json()
    org.admin.refresh_from_db()
    assert org.admin.is_active


def test_no_delete(org, api_for):
    assert api_for(org.admin).delete(f"{URL}{org.sales1.id}/").status_code == 405


def test_set_password(org, api_for):
    client = api_for(org.admin)
    url = f"{URL}{org.sales1.id}/set-password/"
    weak = client.post(url, {"password": "123"}, format="json")
    assert weak.status_code == 400 and "password" in weak.json()
    org.sales1.refresh_from_db()
    assert org.sales1.check_password("kehu-demo-2026")
    assert client.post(url, {"password": "Brand-new-2026!"}, format="json").status_code == 204
    org.sales1.refresh_from_db()
    assert org.sales1.check_password("Brand-new-2026!")


def test_set_password_refused_for_salesperson(org, api_for):
    response = api_for(org.sales1).post(
        f"{URL}{org.sales2.id}/set-password/", {"password": "Brand-new-2026!"}, format="json"
    )
    assert response.status_code == 403
    org.sales2.refresh_from_db()
    assert org.sales2.check_password("kehu-demo-2026")
