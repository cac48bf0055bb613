"""Forms of the approvals pages: a decision, and an approval rule with its ordered steps."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from kehu.approvals.models import ApprovalRule, ApproverKind
from kehu.approvals.selectors import approval_document_type_choices
from kehu.core.forms import KehuForm, KehuModelForm


class ApprovalDecisionForm(KehuForm):
    """Approve, reject or withdraw: an optional comment (required to reject) and the version
    the user was looking at, so a click on a page that has moved on is refused (409)."""

    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)
    next = forms.CharField(widget=forms.HiddenInput, required=False, max_length=500)


class ApprovalRuleStepForm(KehuForm):
    """One step of a rule. Rows share field names; ``auto_id`` keeps their ids apart."""

    approver_kind = forms.ChoiceField(label=_("Approver"), choices=ApproverKind.choices)
    role: forms.ModelChoiceField = forms.ModelChoiceField(
        label=_("Role"), queryset=None, required=False
    )
    user: forms.ModelChoiceField = forms.ModelChoiceField(
        label=_("User"), queryset=None, required=False
    )

    def __init__(self, *args, row_id: str = "", **kwargs):
        from kehu.system.models import Role, User

        self.row_id = row_id or uuid.uuid4().hex[:8]
        kwargs.setdefault("auto_id", f"id_step_{self.row_id}_%s")
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        role.queryset = Role.objects.order_by("id")  # type: ignore[attr-defined]
        role.empty_label = _("Choose a role")  # type: ignore[attr-defined]
        user = self.fields["user"]
        user.queryset = User.objects.filter(is_active=True).order_by("username")  # type: ignore[attr-defined]
        user.empty_label = _("Choose a user")  # type: ignore[attr-defined]

    def clean(self):
        data = super().clean() or {}
        kind = data.get("approver_kind")
        if kind == ApproverKind.ROLE:
            if not data.get("role"):
                self.add_error("role", _("Choose a role."))
            data["user"] = None
        elif kind == ApproverKind.USER:
            if not data.get("user"):
                self.add_error("user", _("Choose a user."))
            data["role"] = None
        else:
            data["role"] = data["user"] = None
        return data

    def step_data(self) -> dict[str, Any]:
        return {
            "approver_kind": self.cleaned_data["approver_kind"],
            "role": self.cleaned_data.get("role"),
            "user": self.cleaned_data.get("user"),
        }


def _step_rows_from_post(data) -> list[dict[str, str]]:
    kinds = data.getlist("approver_kind")
    roles = data.getlist("role")
    users = data.getlist("user")
    rows = []
    for index, kind in enumerate(kinds):
        rows.append(
            {
                "approver_kind": kind,
                "role": roles[index] if index < len(roles) else "",
                "user": users[index] if index < len(users) else "",
            }
        )
    return rows


class ApprovalRuleForm(KehuModelForm):
    """The rule's fields plus its steps (``self.step_forms``), validated together."""

    document_type = forms.ChoiceField(label=_("Document type"))
    departments: forms.ModelMultipleChoiceField = forms.ModelMultipleChoiceField(
        label=_("Departments"),
        queryset=None,
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_(
            "Leave empty for every department; a department includes those below it. "
            "Hold Ctrl (⌘ on a Mac) to choose several."
        ),
    )

    class Meta:
        model = ApprovalRule
        fields = [
            "name",
            "document_type",
            "amount_over",
            "amount_up_to",
            "departments",
            "sort_order",
            "is_active",
        ]
        help_texts = {
            "amount_over": _("The rule applies above this amount (leave empty for no minimum)."),
            "amount_up_to": _("…and up to this amount, included (leave empty for no maximum)."),
            "sort_order": _("Rules are tried in this order; the first that applies routes."),
        }

    def __init__(self, *args, **kwargs):
        from kehu.hr.models import Department

        super().__init__(*args, **kwargs)
        self.fields["document_type"].choices = [  # type: ignore[attr-defined]
            ("", "---------"),
            *approval_document_type_choices(),
        ]
        departments = self.fields["departments"]
        departments.queryset = Department.objects.order_by("path")  # type: ignore[attr-defined]
        departments.label_from_instance = lambda d: f"{'— ' * d.depth}{d.name}"  # type: ignore[attr-defined]
        current = self.instance.document_type
        if current and current not in dict(self.fields["document_type"].choices):  # type: ignore[attr-defined]
            # A type whose module is gone keeps its rules editable (and deactivatable).
            self.fields["document_type"].choices.append((current, current))  # type: ignore[attr-defined]
        if self.is_bound:
            self.step_forms = [
                ApprovalRuleStepForm(row, row_id=str(index))
                for index, row in enumerate(_step_rows_from_post(self.data))
            ]
        elif self.instance.pk:
            self.step_forms = [
                ApprovalRuleStepForm(
                    initial={
                        "approver_kind": step.approver_kind,
                        "role": step.role_id,
                        "user": step.user_id,
                    },
                    row_id=str(index),
                )
                for index, step in enumerate(self.instance.steps.all())
            ]
        else:
            self.step_forms = [
                ApprovalRuleStepForm(initial={"approver_kind": ApproverKind.ROLE}, row_id="0")
            ]
        self.steps_error = ""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        steps_valid = all([form.is_valid() for form in self.step_forms])
        if not self.step_forms:
            self.steps_error = str(_("A rule needs at least one step."))
            steps_valid = False
        return valid and steps_valid

    def clean(self):
        data = super().clean() or {}
        over, up_to = data.get("amount_over"), data.get("amount_up_to")
        if over is not None and up_to is not None and up_to <= over:
            self.add_error("amount_up_to", _("Must be more than “amount over”."))
        return data

    def steps(self) -> list[dict[str, Any]]:
        return [form.step_data() for form in self.step_forms]
