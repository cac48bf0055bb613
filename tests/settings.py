"""Test settings: the real settings, with fast hashing and in-memory side channels."""

import os

os.environ.setdefault("SECRET_KEY", "kehu-tests-only-" + "t" * 40)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("KEHU_PLAIN_STATIC", "true")
# Throttle counters live in the per-process cache and outlast a test; the suite's own API
# calls must not trip the production rates (tests/security/test_rate_limits.py sets low ones).
os.environ.setdefault("API_USER_RATE", "1000000/min")
os.environ.setdefault("API_ANON_RATE", "1000000/min")

from kehu.settings import *  # noqa: E402,F403

# A scoped business model for testing the core mechanisms; never part of kehu.settings.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
