from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """A scoped business model used only by tests (never in kehu.settings)."""

    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"
