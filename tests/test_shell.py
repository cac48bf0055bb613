"""The shell every page shares: health, home, sidebar by permission, language, errors."""

from unittest import mock

import pytest
from django.db.utils import OperationalError


def test_healthz_ok(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_unavailable_when_database_fails(client, db):
    with mock.patch("kehu.core.views.connection") as connection:
        connection.cursor.side_effect = OperationalError("down")
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_home_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_login_page_renders(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content


@pytest.mark.parametrize(
    ("username", "sees_system", "sees_hr"),
    [("admin", True, True), ("hr", False, True), ("sales1", False, False)],
)
def test_sidebar_shows_only_permitted_modules(org, client_for, username, sees_system, sees_hr):
    response = client_for(getattr(org, username)).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert ('data-module="system"' in html) is sees_system
    assert ('data-module="hr"' in html) is sees_hr


def test_home_query_count_is_bounded(org, client_for, django_assert_max_num_queries):
    client = client_for(org.sales1)
    # One query per to-do list (follow-ups, stock, contracts, orders, approvals, money …).
    with django_assert_max_num_queries(18):
        client.get("/")


def test_language_switch_sets_cookie_and_user_preference(org, client_for):
    client = client_for(org.sales1)
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "en"
    org.sales1.refresh_from_db()
    assert org.sales1.language == "en"
    page = client.get("/")
    assert 'lang="en"' in page.content.decode()


def test_language_switch_refuses_foreign_redirect_and_unknown_language(org, client_for):
    client = client_for(org.sales1)
    response = client.post("/i18n/setlang/", {"language": "xx", "next": "https://evil.example/"})
    assert response["Location"] == "/"
    assert "django_language" not in response.cookies


def test_unknown_page_is_a_friendly_404(org, client_for):
    response = client_for(org.sales1).get("/no-such-page/")
    assert response.status_code == 404
    assert b"Back to the home page" in response.content


def test_global_search_requires_login(client, db):
    assert client.get("/search/?q=x").status_code == 302


def test_global_search_empty_query(org, client_for):
    response = client_for(org.sales1).get("/search/?q=")
    assert response.status_code == 200


def test_login_restores_the_users_language(org, client):
    org.sales1.language = "en"
    org.sales1.save(update_fields=["language"])
    response = client.post("/accounts/login/", {"username": "sales1", "password": "kehu-demo-2026"})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "en"
