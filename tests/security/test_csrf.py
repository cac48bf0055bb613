"""CSRF: every form that posts carries the token, htmx and fetch send it as a header, and
a write without it is refused (403) and changes nothing, on pages and on the session API.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from kehu.customers.models import Customer
from tests.conftest import DEMO_PASSWORD
from tests.customers.factories import CustomerFactory

TEMPLATES = Path(__file__).resolve().parents[2] / "kehu" / "templates"
STATIC_JS = Path(__file__).resolve().parents[2] / "kehu" / "static" / "kehu"
FORM = re.compile(r"<form\b[^>]*>", re.I | re.S)
POSTS = re.compile(r"""method\s*=\s*["']?post""", re.I)
HX_WRITE = re.compile(r"\bhx-(post|put|patch|delete)=", re.I)


def templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_every_post_form_in_the_templates_has_the_token():
    missing = []
    for path in templates():
        text = path.read_text()
        for match in FORM.finditer(text):
            if not POSTS.search(match.group(0)):
                continue
            end = text.find("</form>", match.end())
            if "{% csrf_token %}" not in text[match.end() : end if end != -1 else None]:
                missing.append(f"{path.relative_to(TEMPLATES)}: {match.group(0)[:80]}")
    assert not missing, "POST forms without {% csrf_token %}:\n" + "\n".join(missing)
    assert len(templates()) > 100  # the walk found the templates


def test_htmx_writes_live_only_in_pages_that_send_the_token_header():
    # A full page of its own (with <body>) that issues htmx writes must set hx-headers;
    # partials and pages extending base.html inherit base.html's.
    base = (TEMPLATES / "base.html").read_text()
    assert """hx-headers='{"X-CSRFToken": "{{ csrf_token }}"}'""" in base
    for path in templates():
        text = path.read_text()
        if HX_WRITE.search(text) and "<body" in text and path.name != "base.html":
            assert "X-CSRFToken" in text, path


def test_scripts_that_post_send_the_token():
    for path in STATIC_JS.glob("*.js"):
        text = path.read_text()
        if re.search(r"method:\s*[\"']POST", text, re.I):
            assert "X-CSRFToken" in text, path


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._open = {"attrs": attrs, "token": False}
            self.forms.append(self._open)
        elif tag == "input" and self._open and attrs.get("name") == "csrfmiddlewaretoken":
            self._open["token"] = bool(attrs.get("value"))

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


PAGES = [
    "home",
    "customers:customer_list",
    "customers:customer_create",
    "customers:opportunity_board",
    "sales:contract_list",
    "finance:payment_list",
    "finance:expense_create",
    "products:product_list",
    "products:product_create",
    "hr:department_list",
    "hr:target_list",
    "system:user_list",
    "system:user_create",
    "system:role_create",
    "system:settings",
    "approvals:rule_create",
    "password_change",
]


@pytest.mark.parametrize("name", PAGES)
def test_rendered_post_forms_carry_a_token_and_the_body_the_header(org, name):
    client = csrf_client(org.admin)
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.content.decode()
    parser = _Forms()
    parser.feed(html)
    posting = [f for f in parser.forms if f["attrs"].get("method", "").lower() == "post"]
    assert posting, f"{url}: no POST form (the language and logout forms at least)"
    assert all(f["token"] for f in posting), [f["attrs"] for f in posting if not f["token"]]
    headers = re.search(r"<body[^>]*hx-headers='([^']*)'", html)
    assert headers and json.loads(headers.group(1))["X-CSRFToken"]


def test_page_post_without_token_is_refused_and_changes_nothing(org):
    client = csrf_client(org.sales1)
    response = client.post(
        reverse("customers:customer_create"), {"name": "CSRF Ltd", "kind": "company"}
    )
    assert response.status_code == 403
    assert not Customer.objects.filter(name="CSRF Ltd").exists()


def test_htmx_post_with_the_header_from_the_page_passes_the_check(org):
    customer = CustomerFactory(owner=org.sales1)
    client = csrf_client(org.sales1)
    page = client.get(reverse("customers:customer_detail", args=[customer.pk])).content.decode()
    token = json.loads(re.search(r"<body[^>]*hx-headers='([^']*)'", page).group(1))["X-CSRFToken"]
    url = reverse("set_language")
    refused = client.post(url, {"language": "en", "next": "/"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    accepted = client.post(
        url, {"language": "en", "next": "/"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 302


def test_session_api_write_without_token_is_refused(org):
    client = csrf_client(org.sales1)
    response = client.post(
        "/api/v1/customers/",
        data=json.dumps({"name": "API CSRF Ltd", "kind": "company"}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Customer.objects.filter(name="API CSRF Ltd").exists()


def test_token_api_needs_no_csrf_token(org):
    # An API token is not sent by the browser on its own, so CSRF does not apply to it.
    client = Client(enforce_csrf_checks=True)
    token = client.post(
        "/api/v1/auth/token/",
        data=json.dumps({"username": "sales1", "password": DEMO_PASSWORD}),
        content_type="application/json",
    )
    assert token.status_code == 200, token.content
    response = client.post(
        "/api/v1/customers/",
        data=json.dumps({"name": "Token Ltd", "kind": "company"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token.json()['token']}",
    )
    assert response.status_code == 201, response.content


def test_login_form_is_protected_too(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "x", "password": "y"})
    assert response.status_code == 403
