"""``{% load analytics %}``: the customer insights panel and number formats of the pages."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils import formats

from kehu.analytics import selectors
from kehu.analytics.models import Segment

register = template.Library()

SEGMENT_COLOURS: dict[str, str] = {
    Segment.CHAMPIONS: "success",
    Segment.PROMISING_BIG: "primary",
    Segment.VALUABLE_AT_RISK: "warning",
    Segment.CANNOT_LOSE: "danger",
    Segment.LOYAL: "info",
    Segment.NEW: "secondary",
    Segment.NEED_ATTENTION: "warning",
    Segment.HIBERNATING: "dark",
}


@register.inclusion_tag("analytics/_customer_panel.html", takes_context=True)
def customer_insights(context, customer):
    """Segment, value, predictions, churn risk with its reasons and recommended products of
    a customer the page has already read through the user's scope; nothing for users
    without analytics.view."""
    request = context.get("request")
    user = getattr(request, "user", None)
    insights = selectors.customer_insights(user=user, customer=customer) if user else None
    return {"insights": insights, "customer": customer, "request": request}


@register.filter
def percent(value, digits: int = 0) -> str:
    """0.4213 → "42%" (locale-formatted); empty for None."""
    if value is None or value == "":
        return ""
    return f"{formats.number_format(float(value) * 100, decimal_pos=digits, use_l10n=True)}%"


@register.filter
def money(value, digits: int = 0) -> str:
    """A money amount with grouping and the ¥ sign: 1234567.8 → "¥1,234,568"."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    text = formats.number_format(
        abs(amount), decimal_pos=digits, use_l10n=True, force_grouping=True
    )
    return f"-¥{text}" if amount < 0 else f"¥{text}"


@register.filter
def number(value, digits: int = 0) -> str:
    if value is None or value == "":
        return "—"
    return formats.number_format(value, decimal_pos=digits, use_l10n=True, force_grouping=True)


@register.filter
def risk_class(value) -> str:
    """Bootstrap colour of a churn risk."""
    if value is None:
        return "secondary"
    if value >= 0.6:
        return "danger"
    if value >= 0.3:
        return "warning"
    return "success"


@register.filter
def segment_class(code: str) -> str:
    return SEGMENT_COLOURS.get(code, "secondary")


@register.filter
def segment_label(code: str) -> str:
    labels: dict[str, str] = {value: str(label) for value, label in Segment.choices}
    return labels.get(code, code)


@register.filter
def change_class(value) -> str:
    if value is None:
        return "text-body-secondary"
    return "text-success" if value >= 0 else "text-danger"


@register.filter
def signed_percent(value) -> str:
    """+12% / −8% for a change against last year."""
    if value is None:
        return ""
    text = formats.number_format(abs(float(value)) * 100, decimal_pos=0, use_l10n=True)
    return f"+{text}%" if value >= 0 else f"−{text}%"


@register.filter
def sig(value, digits: int = 4) -> str:
    """A fitted parameter with ``digits`` significant digits (1.235e+08 when huge)."""
    if value is None or value == "":
        return "—"
    return f"{float(value):.{digits}g}"
