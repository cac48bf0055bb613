"""Password policy: at least 10 characters, not common, not all digits, not like the
user's own name; refused on the pages and in the API alike, nothing changed."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from kehu.system.models import Role, User

WEAK = {
    "short": "Ab3$xyz9",
    "common": "qwertyuiop",
    "numeric": "4829301756",
    "like the name": "chenxiaoming1",
}
STRONG = "amber-kettle-49-orbit"


def test_validators_configured():
    names = [v["NAME"].rsplit(".", 1)[1] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert names == [
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    ]
    length = settings.AUTH_PASSWORD_VALIDATORS[1]["OPTIONS"]["min_length"]
    assert length >= 10


def _create_page(client, password):
    return client.post(
        reverse("system:user_create"),
        {
            "username": "chenxiaoming1",
            "first_name": "",
            "last_name": "",
            "email": "",
            "department": "",
            "roles": [Role.objects.get(code="salesperson").pk],
            "is_active": "on",
            "password1": password,
            "password2": password,
        },
    )


@pytest.mark.parametrize("kind", WEAK)
def test_page_refuses_a_weak_initial_password(org, client_for, kind):
    response = _create_page(client_for(org.admin), WEAK[kind])
    assert response.status_code in (200, 400)
    assert not User.objects.filter(username="chenxiaoming1").exists()


def test_page_accepts_a_strong_initial_password(org, client_for):
    response = _create_page(client_for(org.admin), STRONG)
    assert response.status_code in (200, 302), response.content[:2000]
    user = User.objects.get(username="chenxiaoming1")
    assert user.check_password(STRONG)


@pytest.mark.parametrize("kind", WEAK)
def test_api_refuses_a_weak_initial_password(org, api_for, kind):
    response = api_for(org.admin).post(
        "/api/v1/users/",
        {
            "username": "chenxiaoming1",
            "roles": [Role.objects.get(code="salesperson").pk],
            "password": WEAK[kind],
        },
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert "password" in response.json()
    assert not User.objects.filter(username="chenxiaoming1").exists()


@pytest.mark.parametrize("kind", ["short", "common", "numeric"])
def test_api_set_password_refuses_weak_ones(org, api_for, kind):
    before = User.objects.get(pk=org.sales1.pk).password
    response = api_for(org.admin).post(
        f"/api/v1/users/{org.sales1.pk}/set-password/", {"password": WEAK[kind]}, format="json"
    )
    assert response.status_code == 400
    assert User.objects.get(pk=org.sales1.pk).password == before


@pytest.mark.parametrize("kind", ["short", "common", "numeric"])
def test_own_password_change_refuses_weak_ones(org, client_for, kind):
    before = User.objects.get(pk=org.sales1.pk).password
    response = client_for(org.sales1).post(
        reverse("password_change"),
        {
            "old_password": "kehu-demo-2026",
            "new_password1": WEAK[kind],
            "new_password2": WEAK[kind],
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert User.objects.get(pk=org.sales1.pk).password == before


def test_admin_set_password_page_refuses_weak_ones(org, client_for):
    before = User.objects.get(pk=org.sales1.pk).password
    response = client_for(org.admin).post(
        reverse("system:user_password", args=[org.sales1.pk]),
        {"password1": WEAK["short"], "password2": WEAK["short"]},
    )
    assert response.status_code in (200, 400)
    assert User.objects.get(pk=org.sales1.pk).password == before
