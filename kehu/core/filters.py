"""Query-string filters shared by every list."""

from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

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
