from kehu.system.models import Notification
from kehu.system.services import notification_send

URL = "/api/v1/notifications/"


def test_only_own_notifications(org, api_for, django_assert_max_num_queries):
    notification_send(recipients=[org.sales1], title="跟进提醒")
    notification_send(recipients=[org.sales1], title="合同审批")
    notification_send(recipients=[org.sales2], title="别人的")
    with django_assert_max_num_queries(4):
        response = api_for(org.sales1).get(URL)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert {r["title"] for r in rows} == {"跟进提醒", "合同审批"}
    assert all(r["is_read"] is False for r in rows)


def test_mark_read_some_then_all(org, api_for):
    mine = notification_send(recipients=[org.sales1, org.sales1], title="x")
    theirs = notification_send(recipients=[org.sales2], title="y")
    client = api_for(org.sales1)
    ids = [Notification.objects.filter(recipient=org.sales1).first().id, theirs[0].id]
    response = client.post(f"{URL}mark-read/", {"ids": ids}, format="json")
    assert response.status_code == 200
    assert response.json() == {"marked": 1}  # someone else's notification is untouched
    assert Notification.objects.get(recipient=org.sales2).read_at is None
    assert client.get(URL, {"unread": "true"}).json()["count"] == len(mine) - 1
    assert client.post(f"{URL}mark-read/", {}, format="json").json() == {"marked": 1}
    assert client.get(URL, {"unread": "true"}).json()["count"] == 0


def test_mark_read_validation(org, api_for):
    response = api_for(org.sales1).post(f"{URL}mark-read/", {"ids": ["a"]}, format="json")
    assert response.status_code == 400
    assert "ids" in response.json()


def test_anonymous_refused(db):
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401
