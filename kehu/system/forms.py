"""Forms of the system pages: they check shape; the services enforce the rules."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.http import QueryDict
from django.utils.dates import MONTHS
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from kehu.core.fields import FieldAccess, apply_field_policy, sensitive_default_access
from kehu.core.forms import KehuForm, KehuModelForm
from kehu.core.permissions import Action, registry
from kehu.hr.models import Department
from kehu.system.models import DictionaryItem, FieldPermission, Role, SystemSettings, User

LOGO_MAX_BYTES = 2 * 1024 * 1024


def field_permission_targets() -> list[tuple[Any, tuple[str, ...]]]:
    """Every model's sensitive fields, in app order: the role editor's second table.

    A module makes a field rule-able just by listing it in its model's ``sensitive_fields``.
    """
    return [
        (model, tuple(model.sensitive_fields))  # type: ignore[attr-defined]
        for model in apps.get_models()
        if getattr(model, "sensitive_fields", None)
    ]


def _check_password_pair(form: forms.Form, user: User) -> str:
    password1 = form.cleaned_data.get("password1") or ""
    password2 = form.cleaned_data.get("password2") or ""
    if password1 != password2:
        form.add_error("password2", _("The two passwords do not match."))
        return ""
    if password1:
        try:
            validate_password(password1, user)
        except forms.ValidationError as exc:
            form.add_error("password1", exc)
            return ""
    return password1


class UserForm(KehuModelForm):
    """Create or edit a user; sensitive fields follow the viewer's field policy."""

    roles = forms.ModelMultipleChoiceField(
        label=_("Roles"),
        queryset=Role.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = User
        fields = [
            "username",
            "display_name",
            "email",
            "phone",
            "department",
            "roles",
            "is_active",
            "language",
        ]

    def __init__(self, *args, policy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        policy = policy or {}
        department = self.fields["department"]
        assert isinstance(department, forms.ModelChoiceField)
        department.queryset = Department.objects.order_by("path")
        department.label_from_instance = _indented  # type: ignore[assignment]
        if "language" in self.fields:
            language = self.fields["language"]
            assert isinstance(language, forms.ChoiceField)
            language.choices = [("", _("Browser default")), *settings.LANGUAGES]
        for name, access in policy.items():
            if name not in self.fields or access == FieldAccess.EDIT:
                continue
            if access == FieldAccess.MASKED and not self.instance.pk:
                continue  # masking hides stored values; typing a new user's own is fine
            if access == FieldAccess.HIDDEN:
                del self.fields[name]
                continue
            # Masked or read only: shown (masked where it must be), never written.
            field = self.fields[name]
            field.disabled = True
            field.required = False
            value = getattr(self.instance, name, "") if self.instance.pk else ""
            self.initial[name] = apply_field_policy(User, policy, name, value)

    def service_data(self) -> dict:
        data = super().service_data()
        return {k: v for k, v in data.items() if not self.fields[k].disabled}


class UserCreateForm(UserForm):
    password1 = forms.CharField(
        label=_("Initial password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Repeat the password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    send_set_password_email = forms.BooleanField(
        label=_("Instead, e-mail the user a link to set their own password"), required=False
    )

    def clean(self):
        cleaned = super().clean()
        candidate = User(
            username=cleaned.get("username") or "",
            display_name=cleaned.get("display_name") or "",
            email=cleaned.get("email") or "",
        )
        password = _check_password_pair(self, candidate)
        if cleaned.get("send_set_password_email"):
            if not cleaned.get("email") and "email" not in self.errors:
                self.add_error("email", _("An e-mail address is needed to send the link."))
        elif not password and "password1" not in self.errors and "password2" not in self.errors:
            self.add_error(
                "password1", _("Give an initial password or choose to send the set-password link.")
            )
        cleaned["password"] = password
        return cleaned


class SetPasswordForm(KehuForm):
    password1 = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Repeat the password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, user: User, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        cleaned["password"] = _check_password_pair(self, self.user)
        return cleaned


def _indented(department: Department) -> str:
    return f"{'— ' * department.depth}{department.name}"


class RoleForm(KehuModelForm):
    """Name, scope, the permission matrix and the field rules; rendered by its own template."""

    template_name = "system/forms/role_form.html"

    permissions = forms.MultipleChoiceField(
        label=_("Permissions"), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Role
        fields = ["name", "code", "description", "data_scope", "permissions"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from kehu.core.permissions import all_permission_codes

        self.fields["permissions"].choices = [(c, c) for c in all_permission_codes()]
        existing: dict[tuple[str, str], str] = {}
        if self.instance.pk:
            existing = {
                (model, field): access
                for model, field, access in FieldPermission.objects.filter(
                    role=self.instance
                ).values_list("model", "field", "access")
            }
        self.field_rule_names: list[tuple[str, str, str]] = []
        for model, names in field_permission_targets():
            label = model._meta.label_lower
            for name in names:
                key = f"field__{label}__{name}"
                default = sensitive_default_access(model, name)
                self.fields[key] = forms.ChoiceField(
                    label=capfirst(model._meta.get_field(name).verbose_name),
                    choices=FieldAccess.choices,
                    initial=existing.get((label, name), default),
                    # Absent from a post (a client unaware of a newly added field): unchanged.
                    required=False,
                    widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
                )
                self.field_rule_names.append((key, label, name))

    def basic_fields(self):
        return [self[name] for name in ("name", "code", "data_scope", "description")]

    def field_rule_rows(self):
        return [
            {"model": self._model_name(label), "field": self[key]}
            for key, label, _name in self.field_rule_names
        ]

    @staticmethod
    def _model_name(label: str) -> str:
        for model, _names in field_permission_targets():
            if model._meta.label_lower == label:
                return capfirst(model._meta.verbose_name)
        return label

    def permission_matrix(self) -> dict:
        """Rows = modules in menu order, columns = actions; a cell only where it applies."""
        if self.is_bound:
            chosen = set(cast(QueryDict, self.data).getlist("permissions"))
        else:
            chosen = set(self.initial.get("permissions") or [])
        modules = sorted(registry.modules.values(), key=lambda m: m.order)
        used = {action for m in modules for action in m.actions}
        actions = [(value, label) for value, label in Action.choices if value in used]
        rows = []
        for module in modules:
            cells = []
            for action, _label in actions:
                code = f"{module.code}.{action}"
                cells.append(
                    {"code": code, "checked": code in chosen} if action in module.actions else None
                )
            rows.append({"module": module, "cells": cells})
        return {"actions": actions, "rows": rows}

    def field_rules(self) -> dict[str, dict[str, str]]:
        rules: dict[str, dict[str, str]] = {}
        for key, label, name in self.field_rule_names:
            rules.setdefault(label, {})[name] = self.cleaned_data[key] or self.fields[key].initial
        return rules

    def service_data(self) -> dict:
        data = super().service_data()
        data["permissions"] = list(self.cleaned_data.get("permissions") or [])
        return data


class DictionaryItemForm(KehuModelForm):
    class Meta:
        model = DictionaryItem
        fields = ["value", "label", "label_en", "sort_order", "is_active"]

    def __init__(self, *args, dictionary, **kwargs):
        self.dictionary = dictionary
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if "form-control" in field.widget.attrs.get("class", ""):
                field.widget.attrs["class"] += " form-control-sm"

    def clean_value(self):
        # The (dictionary, value) constraint is not checked by the model form because the
        # dictionary is not one of its fields; say it on the field instead of a 500.
        value = self.cleaned_data["value"]
        duplicates = DictionaryItem.objects.filter(dictionary=self.dictionary, value=value)
        if self.instance.pk:
            duplicates = duplicates.exclude(pk=self.instance.pk)
        if duplicates.exists():
            raise forms.ValidationError(_("This value is already used in this dictionary."))
        return value


class SystemSettingsForm(KehuModelForm):
    fiscal_year_start_month = forms.TypedChoiceField(
        label=_("Fiscal year starts in"),
        coerce=int,
        choices=[(number, name) for number, name in MONTHS.items()],
    )

    class Meta:
        model = SystemSettings
        fields = [
            "company_name",
            "logo",
            # Printed on contracts and quotes.
            "company_address",
            "company_phone",
            "company_tax_number",
            "company_bank",
            "currency",
            "fiscal_year_start_month",
            "pool_no_followup_days",
            "pool_no_deal_days",
            "pool_reclaim_block_days",
            "pool_daily_claim_limit",
            "pool_max_owned_customers",
            "allow_negative_stock",
            "contract_expiry_reminder_days",
            "quote_validity_days",
        ]
        widgets = {
            "logo": forms.ClearableFileInput(
                attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}
            )
        }

    def clean_logo(self):
        logo = self.cleaned_data.get("logo")
        # A new upload has a content type; the stored file does not and was checked before.
        if logo and hasattr(logo, "content_type") and logo.size > LOGO_MAX_BYTES:
            raise forms.ValidationError(_("The logo may be at most 2 MB."))
        return logo
