from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "kehu.customers"
    label = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from kehu.core.permissions import MenuItem, register_menu

        post_migrate.connect(_seed_customers_after_migrate, sender=self)

        from . import search, todos

        search.register()
        todos.register()

        from kehu.core.reference import register_reference
        from kehu.customers.models import CustomerTag

        register_reference("tags", CustomerTag)

        register_menu(
            MenuItem(
                "customers", _("Customers"), "customers:customer_list", "person-lines-fill", 101
            ),
            MenuItem("customers", _("Public pool"), "customers:pool_list", "water", 102),
            MenuItem("customers", _("Contacts"), "customers:contact_list", "person-vcard", 103),
            MenuItem(
                "customers", _("Follow-ups"), "customers:followup_list", "chat-left-text", 104
            ),
            MenuItem("customers", _("Opportunities"), "customers:opportunity_board", "kanban", 105),
        )


def _seed_customers_after_migrate(sender, using="default", **kwargs) -> None:
    from kehu.customers.services import customers_seed_defaults
    from kehu.customers.textindex import text_index_ensure

    customers_seed_defaults()
    # Test databases skip migrations, and SQLite table rebuilds drop triggers: re-check.
    text_index_ensure(using)
