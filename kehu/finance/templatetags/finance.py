"""Finance template tags: money, status badges and the contracts' finance panels.

    {% load finance %}{% contract_money_panel contract %}

shows a contract's receivable plan, payments, invoices, refunds and totals (the contract
page); ``{% customer_receivables_panel contracts %}`` shows the figures of several contracts
in one table (the customer 360° page).
"""

from __future__ import annotations

import decimal

from django import template
from django.utils import formats
from django.utils.html import format_html

register = template.Library()

# Bootstrap colour of each status; refunds are done when approved, invoices and claims not yet.
BADGES = {
    "pending": "warning",
    "confirmed": "success",
    "approved": "info",
    "issued": "success",
    "paid": "success",
    "received": "success",
    "partly_received": "info",
    "overdue": "danger",
    "rejected": "danger",
    "cancelled": "secondary",
    "withdrawn": "secondary",
    "voided": "dark",
    "draft": "light",
    "waiting": "light",
}
# Where "approved" is the end of the road (a refund paid back, an approval decided).
MODEL_BADGES = {
    ("refund", "approved"): "success",
    ("approvalrequest", "approved"): "success",
    ("approvalstep", "approved"): "success",
}


@register.filter
def money(value) -> str:
    """An amount with two decimals, grouped per the locale (1,234.50); a dash when empty."""
    if value is None or value == "":
        return "—"
    try:
        value = decimal.Decimal(value)
    except (decimal.InvalidOperation, TypeError, ValueError):
        return str(value)
    return formats.number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True)


def badge_colour(model_name: str, status: str) -> str:
    return MODEL_BADGES.get((model_name, status), BADGES.get(status, "secondary"))


@register.simple_tag
def status_badge(obj, status: str | None = None, label=None):
    """A document's status as a coloured badge (or any status with its label)."""
    if status is None:
        status = obj.status
        label = obj.get_status_display()
    model_name = getattr(getattr(obj, "_meta", None), "model_name", "")
    colour = badge_colour(model_name, status)
    text = "text-bg-light border" if colour == "light" else f"text-bg-{colour}"
    return format_html(
        '<span class="badge {} kehu-status" data-status="{}">{}</span>', text, status, label
    )


@register.inclusion_tag("finance/_contract_money.html", takes_context=True)
def contract_money_panel(context, contract):
    from kehu.finance.views import contract_money_context

    request = context.get("request")
    if request is None or contract is None:
        return {"visible": False}
    return {"request": request, **contract_money_context(request.user, contract)}


@register.inclusion_tag("finance/_customer_receivables.html", takes_context=True)
def customer_receivables_panel(context, contracts):
    """Per billable contract of ``contracts`` (already in the user's sales scope): amount,
    received, invoiced, outstanding and overdue, in a fixed number of queries."""
    from kehu.core.permissions import has_perm
    from kehu.finance.selectors import contracts_money
    from kehu.finance.services import BILLABLE_STATUSES

    request = context.get("request")
    if request is None or not has_perm(request.user, "finance.view"):
        return {"visible": False}
    billable = [c for c in contracts if c.status in BILLABLE_STATUSES]
    if not billable:
        return {"visible": False}
    return {
        "visible": True,
        "rows": list(zip(billable, contracts_money(contracts=billable), strict=True)),
        "can_register": has_perm(request.user, "finance.add"),
    }


@register.filter
def dict_get(mapping, key):
    """``{{ labels|dict_get:value }}``: a dictionary value in a template."""
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""


@register.simple_tag
def instalment_badge(state):
    """An instalment's derived status (pending, partly received, received, overdue)."""
    from kehu.finance.models import InstalmentStatus

    return status_badge(None, state.status, InstalmentStatus(state.status).label)
