"""Template filters of the products pages."""

from __future__ import annotations

import decimal

from django import template
from django.utils import formats

register = template.Library()


@register.filter
def qty(value) -> str:
    """A stock quantity without padding zeros: 12, 2.5, 0.125 (localised, grouped)."""
    if value is None or value == "":
        return "—"
    value = decimal.Decimal(value)
    places = max(-value.normalize().as_tuple().exponent, 0)  # type: ignore[operator]
    return formats.number_format(
        value, decimal_pos=min(places, 3), use_l10n=True, force_grouping=True
    )


@register.filter
def signed_qty(value) -> str:
    text = qty(value)
    return f"+{text}" if value is not None and decimal.Decimal(value) > 0 else text
