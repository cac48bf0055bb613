from kehu.system.models import AuditLog, Role
from tests.conftest import role

URL = "/api/v1/roles/"


def test_list_roles(org, api_for, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        response = api_for(org.admin).get(URL)
    assert response.status_code == 200
    codes = [r["code"] for r in response.json()["results"]]
    assert "sales_manager" in codes
    row = next(r for r in response.json()["results"] if r["code"] == "salesperson")
    assert row["data_scope"] == "own" and row["is_system"] is True
    assert "customers.view" in row["permissions"]


def test_roles_refused_for_sales1(org, api_for):
    client = api_for(org.sales1)
    before = (Role.objects.count(), AuditLog.objects.count())
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"code": "x", "name": "x"}, format="json").status_code == 403
    target = role("salesperson")
    assert client.patch(f"{URL}{target.id}/", {"name": "y", "version": 1}).status_code == 403
    assert client.delete(f"{URL}{target.id}/").status_code == 403
    assert (Role.objects.count(), AuditLog.objects.count()) == before
    assert Role.objects.get(pk=target.pk).name == target.name


def test_create_update_delete_role(org, api_for):
    client = api_for(org.admin)
    response = client.post(
        URL,
        {
            "code": "auditor",
            "name": "审计",
            "data_scope": "all",
            "permissions": ["system.view", "finance.view", "finance.view"],
            "is_system": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["permissions"] == ["finance.view", "system.view"]
    assert body["is_system"] is False  # built-in is never set from the client
    url = f"{URL}{body['id']}/"

    response = client.patch(url, {"name": "内审", "version": 1}, format="json")
    assert response.status_code == 200 and response.json()["version"] == 2
    stale = client.patch(url, {"name": "外审", "version": 1}, format="json")
    assert stale.status_code == 409
    assert Role.objects.get(code="auditor").name == "内审"

    assert client.delete(url).status_code == 204
    assert not Role.objects.filter(code="auditor").exists()
    assert AuditLog.objects.filter(model="system.role", action="delete").exists()


def test_unknown_permission_is_refused(org, api_for):
    response = api_for(org.admin).post(
        URL, {"code": "bad", "name": "坏", "permissions": ["nope.fly"]}, format="json"
    )
    assert response.status_code == 400
    assert "nope.fly" in response.json()["permissions"][0]
    assert not Role.objects.filter(code="bad").exists()


def test_invalid_scope_and_duplicate_code(org, api_for):
    response = api_for(org.admin).post(
        URL, {"code": "salesperson", "name": "新", "data_scope": "galaxy"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"code", "data_scope"}


def test_delete_builtin_or_in_use_role_is_refused(org, api_for):
    client = api_for(org.admin)
    response = client.delete(f"{URL}{role('warehouse').id}/")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Built-in roles cannot be deleted."]}

    custom = Role.objects.create(code="temp", name="临时")
    org.sales1.roles.add(custom)
    response = client.delete(f"{URL}{custom.id}/")
    assert response.status_code == 400
    assert "still held by users" in response.json()["non_field_errors"][0]
    assert Role.objects.filter(pk=custom.pk).exists()
