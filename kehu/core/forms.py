"""Form rendering and base forms shared by every module."""

from __future__ import annotations

import django_filters
from django import forms
from django.forms.models import ModelChoiceIterator
from django.forms.renderers import TemplatesSetting
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData
from django.utils.translation import gettext_lazy as _

from kehu.core.filters import is_id
from kehu.core.reference import reference_rows


class BootstrapFormRenderer(TemplatesSetting):
    """Renders every form with Kehu's Bootstrap field template."""

    form_template_name = "core/forms/form.html"
    field_template_name = "core/forms/field.html"


# --- fast widgets ---------------------------------------------------------------------------
#
# A list page's filter form has a dozen selects, the 360° page two forms; Django renders each
# select through select.html, which includes select_option.html and attrs.html once per
# option: ~10 ms of a 35 ms page. The renderer writes the same markup from the same widget
# context in Python; any other widget template goes through the templates as before.


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


class FastFormRenderer(BootstrapFormRenderer):
    """Kehu's form renderer (FORM_RENDERER): selects and plain inputs written directly, the
    output equal to Django's templates' (tests/core/test_list_rendering.py)."""

    def render(self, template_name, context, request=None):
        widget = context.get("widget") if isinstance(context, dict) else None
        if widget is not None:
            if template_name in _SELECT_TEMPLATES and widget.get("optgroups") is not None:
                return _select_html(widget)
            if template_name in _INPUT_TEMPLATES and "type" in widget:
                return _input_html(widget)
        return super().render(template_name, context, request=request)


class _ListedChoiceIterator(ModelChoiceIterator):
    """Options read by iterating the queryset: ModelChoiceIterator reads them through
    ``queryset.iterator()``, on PostgreSQL a server-side cursor (DECLARE, FETCH, CLOSE) per
    select, a dozen round trips on every list page for a few dozen options. Reference data
    (dictionaries, departments, tags) comes from the process's cache."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in reference_rows(self.queryset):
            yield self.choice(obj)


class _ListedFilterChoiceIterator(django_filters.fields.ModelChoiceIterator, _ListedChoiceIterator):
    """django-filter's iterator (its "null" option) over ``_ListedChoiceIterator``."""


def _read_choices_in_one_query(field: forms.Field) -> None:
    """A model select reads its options with one plain query (set before a subclass gives
    the field its queryset: the queryset's setter reads the options through ``iterator``)."""
    if not isinstance(field, forms.ModelChoiceField):
        return
    if issubclass(field.iterator, django_filters.fields.ModelChoiceIterator):
        field.iterator = _ListedFilterChoiceIterator
    else:
        field.iterator = _ListedChoiceIterator
    field.widget.choices = field.choices


def _css_class(widget: forms.Widget) -> str:
    if isinstance(widget, (forms.CheckboxInput,)):
        return "form-check-input"
    if isinstance(widget, (forms.Select, forms.SelectMultiple)) and not isinstance(
        widget, (forms.CheckboxSelectMultiple, forms.RadioSelect)
    ):
        return "form-select"
    if isinstance(widget, (forms.CheckboxSelectMultiple, forms.RadioSelect)):
        return ""
    return "form-control"


class BootstrapFormMixin:
    """Adds Bootstrap classes and marks invalid fields so errors show beside them; model
    selects read their options with one plain query."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        for field in self.fields.values():  # type: ignore[attr-defined]
            _read_choices_in_one_query(field)
            css = _css_class(field.widget)
            if css:
                existing = field.widget.attrs.get("class", "")
                field.widget.attrs["class"] = f"{existing} {css}".strip()

    def full_clean(self):
        # Marked after validation, not in __init__: reading ``errors`` there would validate
        # before a subclass's __init__ has finished setting up its fields (choices, querysets).
        super().full_clean()  # type: ignore[misc]
        for name in self._errors or {}:  # type: ignore[attr-defined]
            field = self.fields.get(name)  # type: ignore[attr-defined]
            if field is not None:
                field.widget.attrs["class"] = f"{field.widget.attrs.get('class', '')} is-invalid"
                field.widget.attrs["aria-invalid"] = "true"


class KehuForm(BootstrapFormMixin, forms.Form):
    pass


class KehuModelForm(BootstrapFormMixin, forms.ModelForm):
    """A model form whose ``version`` travels as a hidden field for optimistic locking."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None and self.instance.pk and hasattr(self.instance, "version"):
            self.fields["version"].initial = self.instance.version
            self.fields["version"].required = True
            self.fields["version"].error_messages["required"] = _(
                "The form is missing its version; reload the page."
            )
        else:
            del self.fields["version"]

    def service_data(self) -> dict:
        """The cleaned model fields, without the version, for a service call."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name != "version"
            and name in self._meta.fields  # type: ignore[operator]
            and not isinstance(self.fields[name], forms.ModelMultipleChoiceField)
        }


class SearchSelect(forms.Select):
    """A select with a search box above it: typing asks the server for matching options
    (htmx), so a long list of contracts or customers never has to be sent in full."""

    template_name = "core/widgets/search_select.html"

    def __init__(self, *, search_url, placeholder=None, attrs=None):
        super().__init__(attrs=attrs)
        self.search_url = search_url
        self.placeholder = placeholder

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["search_url"] = str(self.search_url)
        context["widget"]["search_placeholder"] = str(self.placeholder or _("Type to search…"))
        return context


# How many options a search select offers before the user types.
SEARCH_SELECT_LIMIT = 100


def search_select_choices(field: forms.ModelChoiceField, queryset, selected, label) -> None:
    """Offer the first options of ``queryset`` (and the selected one) without loading all;
    validation still checks a posted id against the field's whole (scoped) queryset."""
    options = list(queryset[:SEARCH_SELECT_LIMIT])
    if selected and is_id(selected) and all(str(o.pk) != str(selected) for o in options):
        chosen = queryset.filter(pk=selected).first()
        if chosen is not None:
            options.insert(0, chosen)
    field.widget.choices = [("", field.empty_label or "---------")] + [
        (o.pk, label(o)) for o in options
    ]
