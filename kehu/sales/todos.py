"""Home-page to-dos of the sales module: contracts ending soon, orders overdue for
shipment (for the people who sell), and orders waiting to be shipped (for the warehouse)."""

from __future__ import annotations

from django.db.models import F
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kehu.core.permissions import has_perm
from kehu.core.todos import TodoProvider, register_todo
from kehu.sales.selectors import (
    contracts_ending_soon,
    orders_overdue_for_shipment,
    orders_to_ship,
)

LIMIT = 10


def _date(value) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT") if value else ""


def _title(document) -> str:
    return " ".join(part for part in (document.number, document.customer.name) if part)


def contracts_ending_items(user) -> list[dict]:
    from kehu.system.services import system_settings_get

    days = system_settings_get().contract_expiry_reminder_days
    contracts = contracts_ending_soon(user=user, days=days).order_by("end_date", "pk")[:LIMIT]
    today = timezone.localdate()
    return [
        {
            "title": _title(contract),
            "url": contract.get_absolute_url(),
            "when": _("ends %(date)s (in %(days)d days)")
            % {"date": _date(contract.end_date), "days": (contract.end_date - today).days},
        }
        for contract in contracts
    ]


def orders_overdue_items(user) -> list[dict]:
    orders = orders_overdue_for_shipment(user=user).order_by("ship_by", "pk")[:LIMIT]
    return [
        {
            "title": _title(order),
            "url": order.get_absolute_url(),
            "when": _("to ship by %(date)s") % {"date": _date(order.ship_by)},
        }
        for order in orders
    ]


def orders_to_ship_items(user) -> list[dict]:
    if not has_perm(user, "sales.view"):  # the provider is gated on products.change only
        return []
    orders = orders_to_ship(user=user).order_by(
        F("ship_by").asc(nulls_last=True), "order_date", "pk"
    )[:LIMIT]
    return [
        {
            "title": _title(order),
            "url": order.get_absolute_url(),
            "when": _("to ship by %(date)s") % {"date": _date(order.ship_by)}
            if order.ship_by
            else order.get_status_display(),
        }
        for order in orders
    ]


def register() -> None:
    register_todo(
        TodoProvider(
            label=gettext_lazy("Contracts ending soon"),
            permission="sales.view",
            items=contracts_ending_items,
            empty_text=gettext_lazy("No contract ends soon."),
        )
    )
    register_todo(
        TodoProvider(
            label=gettext_lazy("Orders overdue for shipment"),
            permission="sales.view",
            items=orders_overdue_items,
            empty_text=gettext_lazy("No order is overdue for shipment."),
        )
    )
    # For the people who move the goods (warehouse: products.change).
    register_todo(
        TodoProvider(
            label=gettext_lazy("Orders to ship"),
            permission="products.change",
            items=orders_to_ship_items,
            empty_text=gettext_lazy("No order is waiting to be shipped."),
        )
    )
