"""Permissions, data scope and field rules are cached across requests (kehu/system/access.py);
every change of roles, grants or field rules must reach the very next request."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kehu.core.permissions import has_perm
from kehu.system.access import access_for, forget_cached_access
from kehu.system.models import FieldPermission, Role, User
from kehu.system.services import role_set_field_permissions, role_update
from tests.conftest import role as seeded_role
from tests.customers.factories import CustomerFactory

LIST = "/customers/"


def _role_queries(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if '"system_role"' in q["sql"] or '"system_fieldpermission"' in q["sql"]
    ]


@pytest.fixture
def sales1_client(org, client_for):
    client = client_for(org.sales1)
    assert client.get(LIST).status_code == 200  # the cache now holds sales1's access
    return client


def test_second_request_reads_no_role_tables(org, sales1_client):
    with CaptureQueriesContext(connection) as ctx:
        assert sales1_client.get(LIST).status_code == 200
    assert _role_queries(ctx.captured_queries) == []


def test_permission_revoked_through_the_service_is_refused_on_the_next_request(org, sales1_client):
    salesperson = seeded_role("salesperson")
    role_update(
        actor=org.admin,
        role=salesperson,
        expected_version=salesperson.version,
        data={"permissions": [p for p in salesperson.permissions if p != "customers.view"]},
    )
    assert sales1_client.get(LIST).status_code == 403


def test_permission_revoked_by_saving_the_role_is_refused_on_the_next_request(org, sales1_client):
    salesperson = seeded_role("salesperson")
    salesperson.permissions = [p for p in salesperson.permissions if p != "customers.view"]
    salesperson.save()
    assert sales1_client.get(LIST).status_code == 403


def test_permission_granted_counts_on_the_next_request(org, client_for):
    client = client_for(org.warehouse)
    assert client.get(LIST).status_code == 403
    warehouse = seeded_role("warehouse")
    warehouse.permissions = [*warehouse.permissions, "customers.view"]
    warehouse.save()
    assert client.get(LIST).status_code == 200


def test_role_taken_from_the_user_is_refused_on_the_next_request(org, sales1_client):
    org.sales1.roles.clear()
    assert sales1_client.get(LIST).status_code == 403


def test_user_removed_from_the_role_side_is_refused_on_the_next_request(org, sales1_client):
    seeded_role("salesperson").users.remove(org.sales1)
    assert sales1_client.get(LIST).status_code == 403


def test_all_holders_cleared_from_the_role_are_refused(org, sales1_client, client_for):
    other = client_for(org.sales2)
    assert other.get(LIST).status_code == 200
    seeded_role("salesperson").users.clear()
    assert sales1_client.get(LIST).status_code == 403
    assert other.get(LIST).status_code == 403


def test_role_added_from_the_role_side_counts_on_the_next_request(org, client_for):
    client = client_for(org.warehouse)
    assert client.get(LIST).status_code == 403
    seeded_role("salesperson").users.add(org.warehouse)
    assert client.get(LIST).status_code == 200


def test_deleted_role_no_longer_grants(org, client_for):
    extra = Role.objects.create(code="viewer", name="Viewer", permissions=["customers.view"])
    org.warehouse.roles.add(extra)
    client = client_for(org.warehouse)
    assert client.get(LIST).status_code == 200
    extra.delete()
    assert client.get(LIST).status_code == 403


def test_narrowed_data_scope_answers_404_on_the_next_request(org, client_for):
    theirs = CustomerFactory(owner=org.sales3)
    client = client_for(org.manager)
    assert client.get(f"/customers/{theirs.pk}/").status_code == 200
    manager = seeded_role("general_manager")
    manager.data_scope = "own"
    manager.save()
    assert client.get(f"/customers/{theirs.pk}/").status_code == 404


def test_field_rule_set_by_the_service_hides_the_column_on_the_next_request(org, client_for):
    CustomerFactory(owner=org.sales1, phone="010-88886666")
    client = client_for(org.sales1)
    assert 'data-label="Phone"' in client.get(LIST).content.decode()
    role_set_field_permissions(
        actor=org.admin,
        role=seeded_role("salesperson"),
        model="customers.customer",
        rules={"phone": "hidden"},
    )
    assert 'data-label="Phone"' not in client.get(LIST).content.decode()


def test_field_rule_deleted_shows_the_column_again(org, client_for):
    CustomerFactory(owner=org.sales1, phone="010-88886666")
    # The seeded salesperson role edits phones; a rule saved on its own hides them.
    rule = FieldPermission.objects.get(
        role=seeded_role("salesperson"), model="customers.customer", field="phone"
    )
    client = client_for(org.sales1)
    assert 'data-label="Phone"' in client.get(LIST).content.decode()
    rule.access = "hidden"
    rule.save()
    assert 'data-label="Phone"' not in client.get(LIST).content.decode()
    rule.delete()  # back to the field's default (masked): the column shows
    assert 'data-label="Phone"' in client.get(LIST).content.decode()


def test_api_refuses_on_the_next_call_too(org, api_for):
    client = api_for(org.sales1)
    assert client.get("/api/v1/customers/").status_code == 200
    org.sales1.roles.clear()
    assert client.get("/api/v1/customers/").status_code == 403


def test_a_held_user_object_sees_its_own_role_change(org):
    assert has_perm(org.sales1, "customers.view")
    org.sales1.roles.clear()  # the receiver gives this object the new stamp too
    assert not has_perm(org.sales1, "customers.view")


def test_forget_cached_access_reads_the_new_grants(org):
    assert has_perm(org.sales1, "customers.view")
    salesperson = seeded_role("salesperson")
    salesperson.permissions = []
    salesperson.save()
    forget_cached_access(org.sales1)
    assert not has_perm(org.sales1, "customers.view")


def test_users_get_distinct_stamps_and_cache_entries(org):
    assert org.sales1.access_stamp != org.sales2.access_stamp
    fresh = User.objects.get(pk=org.sales1.pk)
    assert access_for(fresh)["permissions"] == access_for(org.sales1)["permissions"]
