"""Query-string filters shared by every list."""

from __future__ import annotations

import django_filters
from django import forms
from django.forms.models import ModelChoiceIterator
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from kehu.core.forms import BootstrapFormRenderer

# The range of the database's integer keys: a larger number in a query string is bad input,
# not a query (SQLite and psycopg cannot even bind it, which used to end in a 500).
ID_MAX = 2**63 - 1


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A record's id (``?owner=12``): a whole number within the key range, else 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -ID_MAX)
        kwargs.setdefault("max_value", ID_MAX)
        kwargs.setdefault("error_messages", {"invalid": _("Enter a valid id.")})
        super().__init__(*args, **kwargs)

    def get_max_validator(self):
        return None  # the field's own max_value bounds it


def is_id(value: object) -> bool:
    """``value`` reads as a record id: ASCII digits within the key range.

    ``str.isdigit`` is not enough: it accepts "²" (which ``int`` refuses) and "١٢٣", and
    any length; a hand-edited query string must never end in a 500.
    """
    text = "" if value is None else str(value)
    return text.isascii() and text.isdigit() and int(text) <= ID_MAX


# --- fast rendering of filter forms -----------------------------------------------------------
#
# A list page's filter form has a dozen selects; Django renders each through select.html,
# which includes select_option.html and attrs.html once per option: ~10 ms of a 35 ms page.
# This renderer writes the same markup from the same widget context in Python; any other
# widget template goes through the templates as before.


def _attr_value(value) -> str:
    # ``{{ value|stringformat:'s' }}`` escapes unless the value is already safe.
    return conditional_escape(value if isinstance(value, SafeData) else str(value))


def _attrs_html(attrs: dict) -> str:
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {conditional_escape(name)}")
        else:
            parts.append(f' {conditional_escape(name)}="{_attr_value(value)}"')
    return "".join(parts)


def _option_html(option: dict) -> str:
    return (
        f'<option value="{_attr_value(option["value"])}"{_attrs_html(option["attrs"])}>'
        f"{conditional_escape(localize(option['label']))}</option>"
    )


def _select_html(widget: dict) -> str:
    out = [f'<select name="{conditional_escape(widget["name"])}"{_attrs_html(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            out.append(f'\n  <optgroup label="{conditional_escape(group_name)}">')
        for option in group_choices:
            # select_option.html ends in a newline, which its include keeps.
            out.append("\n  " + _option_html(option) + "\n")
        if group_name:
            out.append("\n  </optgroup>")
    out.append("\n</select>")
    return "".join(out)


def _input_html(widget: dict) -> str:
    value = widget["value"]
    shown = "" if value is None else f' value="{_attr_value(value)}"'
    return (
        f'<input type="{conditional_escape(widget["type"])}" '
        f'name="{conditional_escape(widget["name"])}"{shown}{_attrs_html(widget["attrs"])}>'
    )


_SELECT_TEMPLATES = {"django/forms/widgets/select.html"}
_INPUT_TEMPLATES = {
    f"django/forms/widgets/{name}.html"
    for name in ("input", "text", "search", "date", "number", "email", "url", "tel", "hidden")
}


class FastWidgetRenderer(BootstrapFormRenderer):
    """Selects and plain inputs written directly; the output equals Django's templates'."""

    def render(self, template_name, context, request=None):
        widget = context.get("widget") if isinstance(context, dict) else None
        if widget is not None:
            if template_name in _SELECT_TEMPLATES and widget.get("optgroups") is not None:
                return _select_html(widget)
            if template_name in _INPUT_TEMPLATES and "type" in widget:
                return _input_html(widget)
        return super().render(template_name, context, request=request)


fast_widget_renderer = FastWidgetRenderer()


class _ListedChoiceIterator(ModelChoiceIterator):
    """Options read by iterating the queryset: ModelChoiceIterator reads them through
    ``queryset.iterator()``, on PostgreSQL a server-side cursor (DECLARE, FETCH, CLOSE) per
    select, a dozen round trips on every list page for a few dozen options."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


class _ListedFilterChoiceIterator(django_filters.fields.ModelChoiceIterator, _ListedChoiceIterator):
    """django-filter's iterator (its "null" option) over ``_ListedChoiceIterator``."""


def read_choices_in_one_query(form) -> None:
    """Every model select of ``form`` reads its options with one plain query."""
    for field in form.fields.values():
        if not isinstance(field, forms.ModelChoiceField):
            continue
        if isinstance(field.iterator, type) and issubclass(
            field.iterator, django_filters.fields.ModelChoiceIterator
        ):
            field.iterator = _ListedFilterChoiceIterator
        else:
            field.iterator = _ListedChoiceIterator
        field.widget.choices = field.choices
