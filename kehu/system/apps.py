from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SystemConfig(AppConfig):
    name = "kehu.system"
    label = "system"
    verbose_name = _("System management")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from kehu.core.permissions import MenuItem, register_menu

        from . import access, search, signals, todos  # noqa: F401  (signals: audit, access cache)

        search.register()
        todos.register()

        from kehu.core.reference import register_reference
        from kehu.system.models import Dictionary, DictionaryItem, SystemSettings

        register_reference("dictionaries", Dictionary, DictionaryItem)
        register_reference("settings", SystemSettings)

        post_migrate.connect(_seed_after_migrate, sender=self)

        register_menu(
            MenuItem("system", _("Users"), "system:user_list", "people", 901),
            MenuItem("system", _("Roles"), "system:role_list", "shield-lock", 902),
            MenuItem("system", _("Dictionaries"), "system:dictionary_list", "book", 903),
            MenuItem("system", _("Settings"), "system:settings", "sliders", 904),
            MenuItem(
                "system", _("Custom fields"), "system:customfield_list", "ui-checks", 906, "change"
            ),
            MenuItem("system", _("Operation log"), "system:audit_list", "journal-text", 905),
        )


def _seed_after_migrate(sender, using="default", **kwargs) -> None:
    from kehu.system.defaults import seed_defaults

    seed_defaults()
