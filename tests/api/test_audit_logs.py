import datetime

import pytest
from django.utils import timezone

from kehu.system.models import AuditLog
from kehu.system.services import audit_log_record

URL = "/api/v1/audit-logs/"


@pytest.fixture
def logs(org):
    audit_log_record(user=org.sales1, action="create", obj=org.sales1.department)
    audit_log_record(user=org.sales3, action="change", obj=org.sales3.department)
    audit_log_record(user=org.admin, action="delete", obj=org.admin.department)
    audit_log_record(user=None, action="login_failed", username="ghost")
    return AuditLog.objects.all()


def test_list_newest_first(org, logs, api_for, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        response = api_for(org.admin).get(URL)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 4
    assert rows[0]["action"] == "login_failed" and rows[0]["username"] == "ghost"
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)


def test_filters(org, logs, api_for):
    client = api_for(org.admin)

    def ids(**params):
        return {r["username"] for r in client.get(URL, params).json()["results"]}

    assert ids(user=org.sales1.id) == {"sales1"}
    assert ids(username="SALES3") == {"sales3"}
    assert ids(model="hr.department") == {"sales1", "sales3", "admin"}
    assert ids(action="delete") == {"admin"}
    today = timezone.localdate()
    assert len(ids(date_from=today.isoformat(), date_to=today.isoformat())) == 4
    tomorrow = (today + datetime.timedelta(days=1)).isoformat()
    assert ids(date_from=tomorrow) == set()
    bad = client.get(URL, {"action": "fly", "date_from": "yesterday"})
    assert bad.status_code == 400
    assert set(bad.json()) == {"action", "date_from"}


def test_writes_are_405(org, logs, api_for):
    client = api_for(org.admin)
    row = logs.first()
    assert client.post(URL, {"action": "login"}).status_code == 405
    assert client.put(f"{URL}{row.id}/", {"note": "x"}).status_code == 405
    assert client.patch(f"{URL}{row.id}/", {"note": "x"}).status_code == 405
    assert client.delete(f"{URL}{row.id}/").status_code == 405
    assert AuditLog.objects.count() == 4


def test_refused_without_system_view(org, logs, api_for):
    client = api_for(org.sales1)
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{logs.first().id}/").status_code == 403


def test_scoped_admin_sees_his_subtrees_log(org, logs, api_for, sub_admin):
    client = api_for(sub_admin)
    rows = client.get(URL).json()["results"]
    assert {r["username"] for r in rows} == {"sales1"}
    other = AuditLog.objects.get(username="sales3")
    assert client.get(f"{URL}{other.id}/").status_code == 404
