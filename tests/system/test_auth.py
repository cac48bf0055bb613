"""Login hardening through the real pages: lockout, session expiry, password change/reset."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kehu.system.models import AuditLog
from tests.factories import PASSWORD

LOGIN = "/accounts/login/"


def attempt(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password})


def test_failure_limit_is_five():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_RESET_ON_SUCCESS is True


def test_lockout_after_five_failures_even_with_the_right_password(org):
    client = Client(REMOTE_ADDR="10.0.0.5")
    statuses = [attempt(client, "sales1", "wrong").status_code for _ in range(5)]
    # The first four show the form again; the fifth failure locks the account.
    assert statuses == [200, 200, 200, 200, 429]
    assert AuditLog.objects.filter(action="login_failed", username="sales1").count() == 5

    response = attempt(client, "sales1", PASSWORD)
    assert response.status_code == 429  # axes 8 answers "Too Many Requests"
    assert "registration/locked_out.html" in [t.name for t in response.templates]
    assert "_auth_user_id" not in client.session
    assert not AuditLog.objects.filter(action="login").exists()


def test_lockout_is_per_user_and_address(org):
    client = Client(REMOTE_ADDR="10.0.0.6")
    for _ in range(5):
        attempt(client, "sales1", "wrong")
    # Another account from the same address still logs in ...
    assert attempt(Client(REMOTE_ADDR="10.0.0.6"), "sales2", PASSWORD).status_code == 302
    # ... and so does the locked user from another address.
    assert attempt(Client(REMOTE_ADDR="10.0.0.7"), "sales1", PASSWORD).status_code == 302


def test_successful_login_resets_the_failure_count(org):
    client = Client(REMOTE_ADDR="10.0.0.8")
    for _ in range(4):
        assert attempt(client, "sales1", "wrong").status_code == 200
    assert attempt(client, "sales1", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    # Four more failures are not enough to lock: the count started again.
    for _ in range(4):
        assert attempt(client, "sales1", "wrong").status_code == 200
    assert attempt(client, "sales1", PASSWORD).status_code == 302


def test_inactive_user_cannot_log_in(org):
    org.sales1.is_active = False
    org.sales1.save()
    response = attempt(Client(), "sales1", PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in response.client.session


def test_session_is_an_idle_timeout():
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert settings.SESSION_REFRESH_SECONDS == 60


def test_session_expiry_moves_with_activity_without_a_write_per_request(org, monkeypatch):
    client = Client()
    assert attempt(client, "sales1", PASSWORD).status_code == 302
    key = client.session.session_key
    session = Session.objects.get(pk=key)
    first_expiry = session.expire_date

    # Logging in saved the session; within the refresh interval a page view writes nothing.
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    assert not [q for q in queries if "django_session" in q["sql"] and "SELECT" not in q["sql"]]
    assert Session.objects.get(pk=key).expire_date == first_expiry

    # Once the last save is older than the interval, the next request moves the expiry.
    later = time.time() + settings.SESSION_REFRESH_SECONDS + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/").status_code == 200
    assert Session.objects.get(pk=key).expire_date > first_expiry


def test_anonymous_requests_store_no_session(db):
    Client().get("/accounts/login/")
    assert not Session.objects.exists()


def test_session_expiry_follows_activity_and_expired_sessions_log_out(org):
    client = Client()
    assert attempt(client, "sales1", PASSWORD).status_code == 302
    session = Session.objects.get(session_key=client.session.session_key)
    age = (session.expire_date - timezone.now()).total_seconds()
    assert settings.SESSION_COOKIE_AGE - 60 < age <= settings.SESSION_COOKIE_AGE

    # Pretend the user went idle past the timeout: the next request asks to log in again.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and LOGIN in response["Location"]


def test_password_change(org, client_for):
    client = client_for(org.sales1)
    response = client.post(
        "/accounts/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "Tianjin-harbour-42",
            "new_password2": "Tianjin-harbour-42",
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith("/accounts/password/change/done/")
    org.sales1.refresh_from_db()
    assert org.sales1.check_password("Tianjin-harbour-42")


def test_password_change_with_wrong_old_password_is_a_field_error(org, client_for):
    client = client_for(org.sales1)
    response = client.post(
        "/accounts/password/change/",
        {
            "old_password": "not-my-password",
            "new_password1": "Tianjin-harbour-42",
            "new_password2": "Tianjin-harbour-42",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["old_password"]
    org.sales1.refresh_from_db()
    assert org.sales1.check_password(PASSWORD)


def test_password_change_requires_login(db):
    response = Client().get("/accounts/password/change/")
    assert response.status_code == 302 and LOGIN in response["Location"]


def test_password_reset_mails_a_known_address(org):
    response = Client().post("/accounts/password/reset/", {"email": "sales1@example.com"})
    assert response.status_code == 302
    assert response["Location"].endswith("/accounts/password/reset/done/")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["sales1@example.com"]
    assert "/accounts/reset/" in mail.outbox[0].body


def test_password_reset_link_sets_a_new_password(org):
    import re

    Client().post("/accounts/password/reset/", {"email": "sales1@example.com"})
    link = re.search(r"/accounts/reset/\S+/\S+/", mail.outbox[0].body).group(0)
    client = Client()
    form_url = client.get(link)["Location"]  # Django swaps the token for a session one
    response = client.post(
        form_url, {"new_password1": "Harbin-winter-77", "new_password2": "Harbin-winter-77"}
    )
    assert response.status_code == 302
    org.sales1.refresh_from_db()
    assert org.sales1.check_password("Harbin-winter-77")


def test_password_reset_reveals_nothing_for_an_unknown_address(org):
    known = Client().post("/accounts/password/reset/", {"email": "sales1@example.com"})
    mail.outbox.clear()
    unknown = Client().post("/accounts/password/reset/", {"email": "nobody@example.com"})
    # Same answer either way, and no mail for the unknown address.
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert mail.outbox == []


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_login_page_renders(db, language):
    response = Client(HTTP_ACCEPT_LANGUAGE=language).get(LOGIN)
    assert response.status_code == 200
