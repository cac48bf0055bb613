"""Money is Decimal with two places and a stored currency; never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

CENT = Decimal("0.01")


class Currency(models.TextChoices):
    CNY = "CNY", _("Chinese yuan (CNY)")
    USD = "USD", _("US dollar (USD)")
    EUR = "EUR", _("Euro (EUR)")
    HKD = "HKD", _("Hong Kong dollar (HKD)")


def quantize_money(value: Decimal | int | str) -> Decimal:
    """Round half up to cents, the way invoices and receipts round."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def from_cents(cents: int | None) -> Decimal:
    """An amount stored as whole cents (the stored aggregates), as money."""
    return quantize_money(Decimal(int(cents or 0)) / 100)


class MoneyField(models.DecimalField):
    """Decimal(18, 2): up to 9,999,999,999,999,999.99, enough for any SME ledger."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, path, args, kwargs


class CurrencyField(models.CharField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("choices", Currency.choices)
        kwargs.setdefault("default", Currency.CNY)
        kwargs.setdefault("verbose_name", _("currency"))
        super().__init__(*args, **kwargs)
