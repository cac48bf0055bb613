"""Form rendering and base forms shared by every module."""

from __future__ import annotations

from django import forms
from django.forms.renderers import TemplatesSetting
from django.utils.translation import gettext_lazy as _


class BootstrapFormRenderer(TemplatesSetting):
    """Renders every form with Kehu's Bootstrap field template."""

    form_template_name = "core/forms/form.html"
    field_template_name = "core/forms/field.html"


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
    """Adds Bootstrap classes and marks invalid fields so errors show beside them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        for field in self.fields.values():  # type: ignore[attr-defined]
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
