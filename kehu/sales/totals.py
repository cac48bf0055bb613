"""Line and document amounts, computed on the server in Decimal.

Each line rounds once, half up to cents: the amount before tax from quantity × unit price
less the discount, then the tax on that amount. The document's figures are the sums of its
lines' rounded figures, so the printed lines always add up to the printed total, to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kehu.core.money import quantize_money

HUNDRED = Decimal("100")


@dataclass(frozen=True)
class LineAmounts:
    subtotal: Decimal
    tax_amount: Decimal
    total_amount: Decimal


@dataclass(frozen=True)
class DocumentAmounts:
    subtotal_amount: Decimal
    tax_amount: Decimal
    total_amount: Decimal


def line_amounts(
    *, quantity: Decimal, unit_price: Decimal, discount_rate: Decimal, tax_rate: Decimal
) -> LineAmounts:
    subtotal = quantize_money(quantity * unit_price * (HUNDRED - discount_rate) / HUNDRED)
    tax = quantize_money(subtotal * tax_rate / HUNDRED)
    return LineAmounts(subtotal=subtotal, tax_amount=tax, total_amount=subtotal + tax)


def document_amounts(lines) -> DocumentAmounts:
    """Sums of the lines' already computed ``subtotal`` / ``tax_amount`` / ``total_amount``."""
    subtotal = sum((line.subtotal for line in lines), Decimal("0.00"))
    tax = sum((line.tax_amount for line in lines), Decimal("0.00"))
    return DocumentAmounts(subtotal_amount=subtotal, tax_amount=tax, total_amount=subtotal + tax)
