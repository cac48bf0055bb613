"""Test settings: the real settings, with fast hashing and in-memory side channels."""

import os

os.environ.setdefault("SECRET_KEY", "kehu-tests-only-" + "t" * 40)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("KEHU_PLAIN_STATIC", "true")

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
