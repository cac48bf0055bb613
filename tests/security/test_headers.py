"""Production settings: security headers, cookie flags, the Content-Security-Policy, and
secrets only from the environment.

The values are those ``kehu.settings`` computes from a production environment (DEBUG
off, a secret set), read in a subprocess; the requests then run here under them.
(``manage.py check --deploy`` and the refusal to start without SECRET_KEY: tests/test_setup.py.)
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "kehu" / "settings.py"
NAMES = [
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
]


@pytest.fixture(scope="module")
def production() -> dict:
    code = (
        "import json, kehu.settings as s; "
        f"print(json.dumps({{n: getattr(s, n, None) for n in {NAMES!r}}}))"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "KEHU_DEMO", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith(("SECURE_", "SESSION_", "CSRF_", "KEHU_PLAIN"))
    }
    env.update(SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="kehu.example.com")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


def test_production_values(production):
    assert production["DEBUG"] is False
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 31536000
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["X_FRAME_OPTIONS"] == "DENY"


@pytest.fixture
def as_production(settings, production):
    for name, value in production.items():
        setattr(settings, name, value)
    settings.ALLOWED_HOSTS = ["kehu.example.com"]
    return settings


def https_client() -> Client:
    return Client(HTTP_HOST="kehu.example.com", HTTP_X_FORWARDED_PROTO="https")


def test_plain_http_is_redirected_to_https(db, as_production):
    response = Client(HTTP_HOST="kehu.example.com").get(reverse("login"))
    assert response.status_code == 301
    assert response["Location"].startswith("https://kehu.example.com/")


def test_headers_on_a_page(db, as_production):
    response = https_client().get(reverse("login"))
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_content_security_policy(db, as_production):
    policy = https_client().get(reverse("login"))["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]  # style attributes only
    assert directives["img-src"] == ["'self'", "data:", "blob:"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_the_api_answers_with_the_same_headers(org, as_production):
    response = https_client().get("/api/v1/me/")
    assert response.status_code == 401
    assert "Content-Security-Policy" in response
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Strict-Transport-Security"].startswith("max-age=")


def test_api_docs_run_without_inline_script(db, as_production, org):
    client = https_client()
    client.force_login(org.admin)
    html = client.get(reverse("api_docs")).content.decode()
    assert "<script>" not in html.replace(" ", "")
    assert "<script src=" in html


def test_cookie_flags(org, as_production):
    client = https_client()
    page = client.get(reverse("login"))
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"
    response = client.post(
        reverse("login"),
        {"username": "sales1", "password": "kehu-demo-2026"},
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"


def test_healthz_stays_reachable_over_http_for_the_load_balancer(db, as_production):
    response = Client(HTTP_HOST="kehu.example.com").get(reverse("healthz"))
    assert response.status_code == 200


SECRETISH = ("SECRET", "PASSWORD", "TOKEN", "API_KEY", "PRIVATE")


def test_secrets_have_no_default_in_settings():
    """Every environment read of a secret defaults to nothing."""
    tree = ast.parse(SETTINGS.read_text())
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and ast.unparse(node.func.value) == "os.environ"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            name = node.args[0].value
            if any(word in name for word in SECRETISH) and not name.endswith(("_RATE", "_LENGTH")):
                default = ast.literal_eval(node.args[1]) if len(node.args) > 1 else None
                found.append(name)
                assert default in (None, ""), f"{name} has a default"
    assert {"SECRET_KEY", "EMAIL_HOST_PASSWORD"} <= set(found)


def test_development_key_only_under_debug():
    source = SETTINGS.read_text()
    # The well-known development key sits behind DEBUG; production raises instead.
    block = source[source.index('SECRET_KEY = os.environ.get("SECRET_KEY", "")') :]
    block = block[: block.index("ALLOWED_HOSTS")]
    assert "if not DEBUG:" in block and "raise ImproperlyConfigured" in block
