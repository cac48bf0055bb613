from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProductsConfig(AppConfig):
    name = "kehu.products"
    label = "products"
    verbose_name = _("Products")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from kehu.core.permissions import MenuItem, register_menu

        from . import search, todos

        search.register()
        todos.register()
        post_migrate.connect(_seed_after_migrate, sender=self)
        register_menu(
            MenuItem("products", _("Products"), "products:product_list", "box-seam", 401),
            MenuItem("products", _("Categories"), "products:category_list", "diagram-3", 402),
            MenuItem(
                "products", _("Stock movements"), "products:stock_list", "arrow-left-right", 403
            ),
            MenuItem("products", _("Warehouses"), "products:warehouse_list", "buildings", 404),
            MenuItem(
                "products", _("Low stock"), "products:low_stock_list", "exclamation-triangle", 405
            ),
        )


def _seed_after_migrate(sender, using="default", **kwargs) -> None:
    from kehu.products.services import warehouse_default_ensure

    warehouse_default_ensure()
