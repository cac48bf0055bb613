from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import DEMO_PASSWORD


def test_schema_endpoint(org, api_for):
    response = api_for(org.sales1).get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for path in (
        "/api/v1/auth/token/",
        "/api/v1/me/",
        "/api/v1/users/",
        "/api/v1/roles/",
        "/api/v1/departments/",
        "/api/v1/dictionaries/{code}/",
        "/api/v1/dictionary-items/",
        "/api/v1/audit-logs/",
        "/api/v1/notifications/mark-read/",
    ):
        assert path in text


def test_docs_page_for_logged_in_user(org, client_for):
    assert client_for(org.sales1).get("/api/docs/").status_code == 200


def test_chinese_field_message(org, api_for):
    response = api_for(org.admin).post(
        "/api/v1/users/", {"display_name": "x"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 400
    # Kehu's catalogue (LOCALE_PATHS) wins over DRF's 该字段是必填项。
    # and Django's 这个字段是必填项。
    assert response.json()["username"] == ["此字段为必填项。"]


def test_chinese_login_message(org):
    response = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "sales1", "password": "wrong"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 400
    # Django's own login message, as the login page shows it.
    assert response.json()["non_field_errors"] == [
        "请输入一个正确的用户名和密码。注意，两者都区分大小写。"
    ]
    ok = APIClient().post(
        "/api/v1/auth/token/", {"username": "sales1", "password": DEMO_PASSWORD}, format="json"
    )
    assert ok.status_code == 200


@override_settings(AXES_FAILURE_LIMIT=1)
def test_chinese_lockout_message(org):
    client = APIClient()
    client.post("/api/v1/auth/token/", {"username": "sales1", "password": "x"}, format="json")
    response = client.post(
        "/api/v1/auth/token/",
        {"username": "sales1", "password": DEMO_PASSWORD},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "登录失败次数过多。请在 15 分钟后重试，或联系管理员。"


def test_english_on_request(org, api_for):
    response = api_for(org.admin).post(
        "/api/v1/users/", {"display_name": "x"}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.json()["username"] == ["This field is required."]
