from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SalesConfig(AppConfig):
    name = "kehu.sales"
    label = "sales"
    verbose_name = _("Contracts & orders")

    def ready(self) -> None:
        from kehu.core.permissions import MenuItem, register_menu

        from . import hooks, todos

        hooks.register()
        todos.register()
        register_menu(
            MenuItem("sales", _("Quotes"), "sales:quote_list", "file-earmark-ruled", 201),
            MenuItem("sales", _("Contracts"), "sales:contract_list", "file-earmark-text", 202),
            MenuItem("sales", _("Orders"), "sales:order_list", "cart-check", 203),
            MenuItem("sales", _("Shipments"), "sales:shipment_list", "truck", 204),
        )
