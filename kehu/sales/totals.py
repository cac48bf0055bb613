"""Line and document amounts, computed on the server in Decimal.

Each line rounds once, half up to cents: the amount before tax from quantity × unit price
less the discount, then the tax on that amount. The document's figures are the sums of its
lines' rounded figures, so the printed lines always add up to the printed total, to the cent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from kehu.core.money import quantize_money

HUNDRED = Decimal("100")
# Wide enough that quantity (14 digits) × price (18) × (100 − discount) (5) is exact before
# the one rounding to cents; the default 28 digits would round large products silently.
_EXACT = Context(prec=60, rounding=ROUND_HALF_UP)


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
    """``discount_rate`` and ``tax_rate`` are percentages (13 for 13 %)."""
    with localcontext(_EXACT):
        subtotal = quantize_money(quantity * unit_price * (HUNDRED - discount_rate) / HUNDRED)
        tax = quantize_money(subtotal * tax_rate / HUNDRED)
        total = subtotal + tax
    return LineAmounts(subtotal=subtotal, tax_amount=tax, total_amount=total)


def document_amounts(lines: Iterable) -> DocumentAmounts:
    """Sums of the lines' already computed ``subtotal`` / ``tax_amount`` / ``total_amount``."""
    lines = list(lines)
    with localcontext(_EXACT):
        subtotal = sum((line.subtotal for line in lines), Decimal("0.00"))
        tax = sum((line.tax_amount for line in lines), Decimal("0.00"))
        total = subtotal + tax
    return DocumentAmounts(subtotal_amount=subtotal, tax_amount=tax, total_amount=total)
