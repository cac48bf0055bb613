from __future__ import annotations

import datetime
import decimal
import functools

from django import forms, template
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import get_language
from django.utils.translation import gettext as _

register = template.Library()


@functools.lru_cache(maxsize=4096)
def _date_text(value, offset, format_name: str, language: str | None) -> str:
    # Formatting a date walks its format string in Python (~30 µs); a list page shows the
    # same dates over and over. ``offset`` and ``language`` are part of the key because equal
    # instants in two time zones compare equal and each language has its own format.
    return formats.date_format(value, format_name)


@register.filter
def cell(value):
    """How a list cell shows a value: booleans as icons, empty as a dash, dates localised."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return format_html(
            '<i class="bi bi-{} text-{}" title="{}"></i>',
            "check-circle-fill" if value else "dash-circle",
            "success" if value else "secondary",
            _("Yes") if value else _("No"),
        )
    if isinstance(value, datetime.datetime):
        local = timezone.localtime(value)
        return _date_text(local, local.utcoffset(), "SHORT_DATETIME_FORMAT", get_language())
    if isinstance(value, datetime.date):
        return _date_text(value, None, "SHORT_DATE_FORMAT", get_language())
    if isinstance(value, decimal.Decimal):
        return formats.number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True)
    if hasattr(value, "all"):
        return ", ".join(str(item) for item in value.all()) or "—"
    return value


@register.simple_tag(takes_context=True)
def sort_querystring(context, field: str) -> str:
    request = context["request"]
    query = request.GET.copy()
    current = query.get("sort", "")
    query["sort"] = f"-{field}" if current == field else field
    query.pop("page", None)
    return query.urlencode()


@register.simple_tag(takes_context=True)
def sort_icon(context, field: str) -> str:
    current = context["request"].GET.get("sort", "")
    if current == field:
        return format_html('<i class="bi bi-{}"></i>', "caret-up-fill")
    if current == f"-{field}":
        return format_html('<i class="bi bi-{}"></i>', "caret-down-fill")
    return ""


@register.filter
def is_checkbox(bound_field) -> bool:
    return isinstance(bound_field.field.widget, forms.CheckboxInput)


@register.filter
def is_wide(bound_field) -> bool:
    return isinstance(
        bound_field.field.widget,
        (forms.Textarea, forms.CheckboxSelectMultiple, forms.SelectMultiple),
    )
