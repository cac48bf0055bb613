"""Custom fields: extra fields administrators add to a model without a migration.

Definitions are ``CustomFieldDefinition`` rows per model label (``customers.customer``);
values live in the model's ``custom_fields`` JSON column, keyed by the definition's ``key``:
text as a string, number as a decimal string (exact, never float), date as ISO
``YYYY-MM-DD``, choice as one of the definition's options.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from django import forms
from django.db import transaction
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError
from kehu.core.models import CustomFieldDefinition, CustomFieldType
from kehu.core.permissions import require_perm
from kehu.core.reference import reference_rows

FORM_PREFIX = "cf_"


def _label(model) -> str:
    return model if isinstance(model, str) else model._meta.label_lower


def custom_field_definitions(model, *, include_inactive: bool = False) -> list:
    """The model's definitions in display order (one query)."""
    queryset = CustomFieldDefinition.objects.filter(model=_label(model))
    if not include_inactive:
        queryset = queryset.filter(is_active=True)
    return list(reference_rows(queryset.order_by("sort_order", "id")))


def definition_label(definition: CustomFieldDefinition) -> str:
    if definition.label_en and (get_language() or "").startswith("en"):
        return definition.label_en
    return definition.label


def _choices(definition: CustomFieldDefinition) -> list[str]:
    return [str(c) for c in (definition.choices or []) if str(c).strip()]


def custom_form_fields(model) -> dict[str, forms.Field]:
    """Form fields for the model's active custom fields, named ``cf_<key>``."""
    fields: dict[str, forms.Field] = {}
    for d in custom_field_definitions(model):
        common: dict[str, Any] = {"label": definition_label(d), "required": d.required}
        field: forms.Field
        if d.field_type == CustomFieldType.NUMBER:
            field = forms.DecimalField(max_digits=20, decimal_places=6, **common)
        elif d.field_type == CustomFieldType.DATE:
            field = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
        elif d.field_type == CustomFieldType.CHOICE:
            options = [("", "---------")] + [(c, c) for c in _choices(d)]
            field = forms.ChoiceField(choices=options, **common)
        else:
            field = forms.CharField(max_length=500, **common)
        fields[FORM_PREFIX + d.key] = field
    return fields


def custom_values_from_form(cleaned_data: dict[str, Any]) -> dict[str, Any]:
    """``cf_<key>`` entries of a form's cleaned data, keyed by ``key`` (for the service)."""
    return {
        name[len(FORM_PREFIX) :]: value
        for name, value in cleaned_data.items()
        if name.startswith(FORM_PREFIX)
    }


def _clean_one(d: CustomFieldDefinition, value: Any) -> Any:
    """The stored form of one value, or ServiceError on the field's key."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if d.field_type == CustomFieldType.NUMBER:
        try:
            number = decimal.Decimal(str(value).strip().replace(",", ""))
        except (decimal.InvalidOperation, ValueError) as exc:
            raise ServiceError(_("Enter a number."), field=d.key) from exc
        if not number.is_finite():
            raise ServiceError(_("Enter a number."), field=d.key)
        return format(number.normalize(), "f")
    if d.field_type == CustomFieldType.DATE:
        if isinstance(value, datetime.datetime):
            value = value.date()
        if isinstance(value, datetime.date):
            return value.isoformat()
        try:
            return datetime.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError as exc:
            raise ServiceError(_("Enter a date as YYYY-MM-DD."), field=d.key) from exc
    if d.field_type == CustomFieldType.CHOICE:
        text = str(value).strip()
        if text not in _choices(d):
            raise ServiceError(
                _("“%(value)s” is not one of the options.") % {"value": text}, field=d.key
            )
        return text
    text = str(value).strip()
    if len(text) > 500:
        raise ServiceError(_("At most 500 characters."), field=d.key)
    return text


def custom_values_clean(
    *,
    model,
    values: dict[str, Any] | None,
    existing: dict[str, Any] | None = None,
    definitions: list | None = None,
) -> dict[str, Any]:
    """Validate ``values`` against the model's definitions and return what to store.

    ``existing`` (the record's current values) is kept for keys not given, so a partial
    update does not wipe other fields; values of keys that have no active definition are
    kept as they were but never accepted as new input.
    """
    # Bulk writers pass the definitions they read once.
    by_key = {
        d.key: d
        for d in (definitions if definitions is not None else custom_field_definitions(model))
    }
    values = values or {}
    unknown = sorted(set(values) - set(by_key))
    if unknown:
        raise ServiceError(
            _("Unknown custom field “%(key)s”.") % {"key": unknown[0]}, field=unknown[0]
        )
    result = dict(existing or {})
    for key, d in by_key.items():
        if key in values:
            cleaned = _clean_one(d, values[key])
            if cleaned is None:
                result.pop(key, None)
            else:
                result[key] = cleaned
        if d.required and result.get(key) in (None, ""):
            raise ServiceError(_("This field is required."), field=key)
    return result


def custom_filter_q(model, key: str, value: Any) -> Q:
    """A list filter on one custom field; an unknown key or bad value matches nothing.

    Text matches a substring; number, date and choice match exactly (values are stored as
    strings, so the JSON key lookup behaves the same on SQLite and PostgreSQL).
    """
    definitions = {d.key: d for d in custom_field_definitions(model)}
    d = definitions.get(key)
    if d is None or value in (None, ""):
        return Q(pk__in=[]) if d is None else Q()
    lookup = f"custom_fields__{key}"
    if d.field_type == CustomFieldType.TEXT:
        return Q(**{f"{lookup}__icontains": str(value)})
    try:
        stored = _clean_one(d, value)
    except ServiceError:
        return Q(pk__in=[])
    return Q(**{lookup: stored})


def custom_values_display(model, values: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """(label, value) pairs in definition order, for detail pages and exports."""
    values = values or {}
    return [(definition_label(d), values.get(d.key, "")) for d in custom_field_definitions(model)]


# --- definitions (the admin page) -------------------------------------------------------------

DEFINITION_FIELDS = (
    "key",
    "label",
    "label_en",
    "field_type",
    "choices",
    "required",
    "sort_order",
    "is_active",
)


def _definition_data_clean(data: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in data.items() if k in DEFINITION_FIELDS}
    choices = data.get("choices")
    if isinstance(choices, str):
        choices = [c.strip() for c in choices.splitlines()]
    if choices is not None:
        data["choices"] = [c for c in dict.fromkeys(str(c).strip() for c in choices) if c]
    if data.get("field_type") == CustomFieldType.CHOICE and not data.get("choices"):
        raise ServiceError(_("A choice field needs at least one option."), field="choices")
    return data


def customfield_definition_create(*, actor, model, data: dict[str, Any]) -> CustomFieldDefinition:
    from kehu.core.services import model_create

    require_perm(actor, "system.change")
    data = _definition_data_clean(data)
    label = _label(model)
    if CustomFieldDefinition.objects.filter(model=label, key=data.get("key")).exists():
        raise ServiceError(_("A custom field with this key already exists."), field="key")
    with transaction.atomic():
        return model_create(model=CustomFieldDefinition, user=actor, data={**data, "model": label})


def customfield_definition_update(
    *, actor, definition: CustomFieldDefinition, expected_version: int, data: dict[str, Any]
) -> CustomFieldDefinition:
    """Change a definition; the key and type are fixed once values may exist."""
    from kehu.core.services import versioned_update

    require_perm(actor, "system.change")
    data = _definition_data_clean(data)
    for fixed in ("key", "field_type"):
        if fixed in data and data[fixed] != getattr(definition, fixed):
            raise ServiceError(
                _("The key and type cannot change once a field exists; add a new field."),
                field=fixed,
            )
        data.pop(fixed, None)
    if (
        definition.field_type == CustomFieldType.CHOICE
        and "choices" in data
        and not data["choices"]
    ):
        raise ServiceError(_("A choice field needs at least one option."), field="choices")
    return versioned_update(
        instance=definition, user=actor, expected_version=expected_version, data=data
    )
