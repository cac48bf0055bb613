from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "kehu.customers"
    label = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from kehu.core.permissions import MenuItem, register_menu

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
