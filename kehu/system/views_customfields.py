"""Custom fields of customers: administrators list, add and edit them (system.change)."""

from __future__ import annotations

from django import forms
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kehu.core.customfields import customfield_definition_create, customfield_definition_update
from kehu.core.forms import KehuModelForm
from kehu.core.models import CustomFieldDefinition
from kehu.core.permissions import require_perm
from kehu.core.views import Column, KehuFormView, KehuListView, ModulePermissionMixin

CUSTOMER_MODEL = "customers.customer"


def customfield_list(*, user):
    require_perm(user, "system.view")
    return CustomFieldDefinition.objects.filter(model=CUSTOMER_MODEL)


class CustomFieldForm(KehuModelForm):
    choices = forms.CharField(
        label=_("Options"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For choice fields: one option per line."),
    )

    class Meta:
        model = CustomFieldDefinition
        fields = [
            "label",
            "label_en",
            "key",
            "field_type",
            "choices",
            "required",
            "sort_order",
            "is_active",
        ]
        help_texts = {
            "key": _("Letters, digits and underscores; used in imports, exports and the API."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Values are stored under the key in the chosen type: both are fixed once made.
            for name in ("key", "field_type"):
                self.fields[name].disabled = True
            self.initial["choices"] = "\n".join(self.instance.choices or [])

    def clean_choices(self) -> list[str]:
        text = self.cleaned_data.get("choices") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def _post_clean(self):
        # The service validates and saves; the model form must not touch the instance.
        pass


class CustomFieldListView(KehuListView):
    module = "system"
    title = _("Custom fields of customers")
    default_sort = "sort_order"
    create_url_name = "system:customfield_create"
    columns = [
        Column("label", _("Label"), template="system/customfield_link.html"),
        Column("label_en", _("English label")),
        Column("key", _("Key")),
        Column("get_field_type_display", _("Type")),
        Column("required", _("Required")),
        Column("sort_order", _("Order")),
        Column("is_active", _("Active")),
    ]

    def selector(self, user):
        return customfield_list(user=user)


class CustomFieldFormView(KehuFormView):
    module = "system"
    perm_action = "change"
    form_class = CustomFieldForm
    template_name = "system/customfield_form.html"
    success_url_name = "system:customfield_list"

    def dispatch(self, request, *args, **kwargs):
        # Adding a field is changing the system's configuration: system.change either way.
        return ModulePermissionMixin.dispatch(self, request, *args, **kwargs)

    def get_object(self):
        if self.creating:
            return None
        obj = customfield_list(user=self.request.user).filter(pk=self.kwargs["pk"]).first()
        if obj is None:
            raise Http404
        return obj

    def get_title(self, obj):
        if obj is None:
            return _("New custom field")
        return _("Custom field “%(label)s”") % {"label": obj.label}

    def save(self, form, obj):
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        if obj is None:
            return customfield_definition_create(
                actor=self.request.user, model=CUSTOMER_MODEL, data=data
            )
        return customfield_definition_update(
            actor=self.request.user,
            definition=obj,
            expected_version=form.cleaned_data["version"],
            data=data,
        )

    def get_success_url(self, obj) -> str:
        return reverse(self.success_url_name)
