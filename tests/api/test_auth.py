import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from kehu.system.api import LoginRateThrottle
from kehu.system.models import AuditLog
from tests.conftest import DEMO_PASSWORD

URL = "/api/v1/auth/token/"


def test_token_obtain_returns_a_token_that_authenticates(org):
    client = APIClient()
    response = client.post(URL, {"username": "sales1", "password": DEMO_PASSWORD}, format="json")
    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=org.sales1).key == key

    # The same token comes back on a second login (get_or_create).
    again = client.post(URL, {"username": "sales1", "password": DEMO_PASSWORD}, format="json")
    assert again.json()["token"] == key

    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "sales1"


def test_bad_password_is_400_and_logged(org):
    response = APIClient().post(URL, {"username": "sales1", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [
            "Please enter a correct username and password. "
            "Note that both fields may be case-sensitive."
        ]
    }
    assert not Token.objects.exists()
    row = AuditLog.objects.get(action="login_failed")
    assert row.username == "sales1"


def test_missing_fields_are_field_errors(org):
    response = APIClient().post(URL, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_inactive_user_gets_no_token(org):
    org.sales1.is_active = False
    org.sales1.save()
    response = APIClient().post(URL, {"username": "sales1", "password": DEMO_PASSWORD})
    assert response.status_code == 400
    assert not Token.objects.exists()


@override_settings(AXES_FAILURE_LIMIT=3)
def test_lockout_after_failure_limit_even_with_right_password(org):
    client = APIClient()
    for _ in range(3):
        response = client.post(URL, {"username": "sales2", "password": "wrong"}, format="json")
        assert response.status_code in (400, 403)
    response = client.post(URL, {"username": "sales2", "password": DEMO_PASSWORD}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "Too many failed logins. Try again in 15 minutes, or ask an administrator."
    )
    assert not Token.objects.filter(user=org.sales2).exists()
    assert AuditLog.objects.filter(action="login_failed", username="sales2").count() >= 4
    # Another account from the same client is not locked (lockout is per user and address).
    ok = client.post(URL, {"username": "sales1", "password": DEMO_PASSWORD}, format="json")
    assert ok.status_code == 200


def test_login_requests_are_throttled(org, monkeypatch):
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "2/min"})
    client = APIClient()
    for _ in range(2):
        assert client.post(URL, {"username": "x", "password": "y"}).status_code == 400
    assert client.post(URL, {"username": "x", "password": "y"}).status_code == 429


def test_revoke_token(org):
    token = Token.objects.create(user=org.sales1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.delete(URL).status_code == 204
    assert not Token.objects.exists()
    assert client.get("/api/v1/me/").status_code == 401


def test_revoke_needs_authentication(db):
    assert APIClient().delete(URL).status_code == 401


@pytest.mark.parametrize("url", ["/api/v1/me/", "/api/v1/users/", "/api/v1/dictionaries/"])
def test_anonymous_is_refused(db, url):
    assert APIClient().get(url).status_code == 401
