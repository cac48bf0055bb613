"""Home-page to-do of the products module: products at or below their low-stock threshold."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from kehu.core.todos import TodoProvider, register_todo
from kehu.products.selectors import product_low_stock_list
from kehu.products.templatetags.products import qty

LIMIT = 10


def low_stock_items(user) -> list[dict]:
    products = product_low_stock_list(user=user).order_by("stock_quantity", "code")[:LIMIT]
    return [
        {
            "title": f"{p.code} {p.name}",
            "url": p.get_absolute_url(),
            "when": _("%(stock)s on hand, threshold %(threshold)s")
            % {"stock": qty(p.stock_quantity), "threshold": qty(p.low_stock_threshold)},
        }
        for p in products
    ]


def register() -> None:
    # For the people who restock (warehouse: products.change), not everyone who can view.
    register_todo(
        TodoProvider(
            label=_("Low stock"),
            permission="products.change",
            items=low_stock_items,
            empty_text=_("Every product is above its low-stock threshold."),
        )
    )
