"""Rate limits: the API throttles per user and per anonymous address (429, translated,
Retry-After); token login has its own stricter limit; the login page locks out (axes)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from kehu import settings as production


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def low_rates(monkeypatch):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/min", "anon": "2/min"}
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", rates)


def test_production_rates_come_from_the_environment_with_sane_defaults(monkeypatch):
    framework = production.REST_FRAMEWORK
    assert framework["DEFAULT_THROTTLE_CLASSES"] == [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ]
    source = (production.BASE_DIR / "kehu" / "settings.py").read_text()
    for name, default in (
        ("API_USER_RATE", "1000/min"),
        ("API_ANON_RATE", "60/min"),
        ("API_LOGIN_RATE", "20/min"),
    ):
        assert f'os.environ.get("{name}", "{default}")' in source


def test_a_user_over_the_rate_gets_429_and_others_do_not(org, low_rates):
    api = APIClient()
    api.force_authenticate(org.sales1)
    for _ in range(3):
        assert api.get("/api/v1/me/").status_code == 200
    response = api.get("/api/v1/me/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["detail"].startswith("Request was throttled.")
    # Per user: another user from the same address still gets through.
    other = APIClient()
    other.force_authenticate(org.sales2)
    assert other.get("/api/v1/me/").status_code == 200


def test_throttled_message_is_in_the_users_language(org, low_rates):
    api = APIClient()
    api.force_authenticate(org.sales1)
    for _ in range(3):
        api.get("/api/v1/me/")
    response = api.get("/api/v1/me/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 429
    assert "限流" in response.json()["detail"]


def test_writes_count_too_and_a_throttled_write_changes_nothing(org, low_rates):
    from kehu.customers.models import Customer

    api = APIClient()
    api.force_authenticate(org.sales1)
    for _ in range(3):
        api.get("/api/v1/customers/")
    response = api.post("/api/v1/customers/", {"name": "Late Ltd", "kind": "company"})
    assert response.status_code == 429
    assert not Customer.objects.filter(name="Late Ltd").exists()


class _OpenView(APIView):
    """Stands for what anonymous callers can reach (the schema); the default throttles."""

    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True})


def test_anonymous_callers_are_limited_per_address(db, low_rates):
    # Elsewhere the 401 for a missing login comes before any throttle.
    view = _OpenView.as_view()
    factory = APIRequestFactory()
    for _ in range(2):
        assert view(factory.get("/open/")).status_code == 200
    response = view(factory.get("/open/"))
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert view(factory.get("/open/", REMOTE_ADDR="10.1.2.3")).status_code == 200


def test_pages_are_not_throttled_by_the_api_rates(org, client_for, low_rates):
    client = client_for(org.sales1)
    for _ in range(6):
        assert client.get(reverse("home")).status_code == 200


def test_login_page_locks_out_after_repeated_failures(org, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        client.post(reverse("login"), {"username": "sales1", "password": "wrong-password"})
    response = client.post(reverse("login"), {"username": "sales1", "password": "kehu-demo-2026"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
