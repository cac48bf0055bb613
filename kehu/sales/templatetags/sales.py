"""Template helpers of the sales pages: money with its currency, status badges."""

from __future__ import annotations

import decimal

from django import template
from django.utils import formats
from django.utils.html import format_html

register = template.Library()

CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "US$", "EUR": "€", "HKD": "HK$"}

# Bootstrap badge classes per status value; the same value means the same colour everywhere.
BADGES = {
    "draft": "text-bg-light border",
    "sent": "text-bg-info",
    "accepted": "text-bg-primary",
    "converted": "text-bg-success",
    "expired": "text-bg-secondary",
    "pending": "text-bg-warning",
    "active": "text-bg-success",
    "completed": "text-bg-dark",
    "rejected": "text-bg-danger",
    "terminated": "text-bg-secondary",
    "applied": "text-bg-success",
    "withdrawn": "text-bg-secondary",
    "confirmed": "text-bg-primary",
    "partially_shipped": "text-bg-info",
    "shipped": "text-bg-success",
    "cancelled": "text-bg-secondary",
    "shipment": "text-bg-primary",
    "return": "text-bg-warning",
    "approved": "text-bg-success",
}


@register.filter
def money(value, currency: str = "CNY") -> str:
    """``¥1,234.50``: two places, grouped and localised, the currency's symbol in front."""
    if value is None or value == "":
        return "—"
    amount = formats.number_format(
        decimal.Decimal(value), decimal_pos=2, use_l10n=True, force_grouping=True
    )
    symbol = CURRENCY_SYMBOLS.get(currency or "CNY", f"{currency} ")
    return f"{symbol}{amount}"


@register.filter
def percent(value) -> str:
    """13.00 → 13%, 7.50 → 7.5%."""
    if value is None or value == "":
        return "—"
    value = decimal.Decimal(value).normalize()
    places = max(-value.as_tuple().exponent, 0)  # type: ignore[operator]
    return f"{formats.number_format(value, decimal_pos=places, use_l10n=True)}%"


@register.simple_tag
def status_badge(document, field: str = "status") -> str:
    value = getattr(document, field, "")
    label = getattr(document, f"get_{field}_display")()
    return format_html(
        '<span class="badge {} kehu-status" data-status="{}">{}</span>',
        BADGES.get(value, "text-bg-light border"),
        value,
        label,
    )


@register.filter
def overdue(order) -> bool:
    """An open order past its ship-by date."""
    from django.utils import timezone

    from kehu.sales.selectors import OPEN_ORDER_STATUSES

    return bool(
        order.ship_by
        and order.status in OPEN_ORDER_STATUSES
        and order.ship_by < timezone.localdate()
    )
