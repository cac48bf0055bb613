"""Customer, contact, follow-up, opportunity and pipeline-stage forms: shape only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from kehu.core.customfields import FORM_PREFIX, custom_form_fields, custom_values_from_form
from kehu.core.fields import FieldAccess, apply_field_policy
from kehu.core.forms import KehuForm, KehuModelForm, SearchSelect, search_select_choices
from kehu.core.permissions import has_perm
from kehu.core.scope import visible_to
from kehu.customers.models import (
    Contact,
    Customer,
    FollowUp,
    Opportunity,
    PipelineStage,
)
from kehu.customers.services import CUSTOMER_EDITABLE_FIELDS
from kehu.system.models import User
from kehu.system.selectors import dictionary_items

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _dictionary(field: forms.Field, code: str) -> None:
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = dictionary_items(code)


def assignable_users(actor):
    """Users the actor may hand customers or opportunities to: active, within their scope."""
    queryset = User.objects.filter(is_active=True).select_related("department")
    if actor.is_superuser:
        return queryset.order_by("username")
    from kehu.core.scope import DataScope, user_data_scope

    scope = user_data_scope(actor)
    if scope == DataScope.ALL:
        return queryset.order_by("username")
    if scope == DataScope.OWN or actor.department_id is None:
        return queryset.filter(pk=actor.pk)
    from kehu.hr.selectors import department_subtree_ids

    if scope == DataScope.DEPARTMENT:
        return queryset.filter(department_id=actor.department_id).order_by("username")
    return queryset.filter(department_id__in=department_subtree_ids(actor.department_id)).order_by(
        "username"
    )


class PolicyFormMixin:
    """Fields the viewer may not edit are shown masked or read only, and never written."""

    policy_model: Any = None

    def apply_policy(self, policy: dict[str, str]) -> None:
        instance = getattr(self, "instance", None)
        for name, access in policy.items():
            if name not in self.fields or access == FieldAccess.EDIT:  # type: ignore[attr-defined]
                continue
            if access == FieldAccess.MASKED and not (instance and instance.pk):
                continue  # masking hides stored values; typing a new record's own is fine
            if access == FieldAccess.HIDDEN:
                del self.fields[name]  # type: ignore[attr-defined]
                continue
            field = self.fields[name]  # type: ignore[attr-defined]
            field.disabled = True
            field.required = False
            value = getattr(instance, name, "") if instance and instance.pk else ""
            self.initial[name] = apply_field_policy(  # type: ignore[attr-defined]
                self.policy_model, policy, name, value
            )

    def service_data(self) -> dict:
        data = super().service_data()  # type: ignore[misc]
        return {
            k: v
            for k, v in data.items()
            if not self.fields[k].disabled and not k.startswith(FORM_PREFIX)  # type: ignore[attr-defined]
        }


class CustomerForm(PolicyFormMixin, KehuModelForm):
    policy_model = Customer

    # A website typed without a scheme is taken as https (Django 6's default, today).
    website = forms.URLField(
        label=capfirst(Customer._meta.get_field("website").verbose_name),
        required=False,
        assume_scheme="https",
    )

    tags_text = forms.CharField(
        label=_("Tags"),
        required=False,
        max_length=500,
        help_text=_("Separate tags with commas; new tags are created."),
    )
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False)
    # Hidden until the service reports duplicates; then a visible "create anyway" box.
    allow_duplicate = forms.BooleanField(
        label=_("Create anyway: this is a different customer"),
        required=False,
        widget=forms.HiddenInput,
    )

    class Meta:
        model = Customer
        fields = list(CUSTOMER_EDITABLE_FIELDS)
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, actor, policy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        _dictionary(self.fields["industry"], "industry")
        _dictionary(self.fields["source"], "customer_source")
        _dictionary(self.fields["level"], "customer_level")
        # htmx duplicate check as the user leaves the name, phone or e-mail box.
        for name in ("name", "phone", "mobile", "email"):
            self.fields[name].widget.attrs.update(
                {
                    "hx-get": reverse("customers:customer_duplicates"),
                    "hx-trigger": "blur changed",
                    "hx-target": "#duplicate-hits",
                    "hx-include": "#id_name, #id_phone, #id_mobile, #id_email, #id_exclude",
                }
            )
        if self.instance.pk:
            self.fields["tags_text"].initial = ", ".join(t.name for t in self.instance.tags.all())
            del self.fields["owner"]  # ownership moves by transfer, with a reason
            del self.fields["allow_duplicate"]
        elif has_perm(actor, "customers.assign"):
            owner = self.fields["owner"]
            assert isinstance(owner, forms.ModelChoiceField)
            owner.queryset = assignable_users(actor)
            owner.empty_label = str(_("Me"))
            owner.help_text = _("Leave empty to own the customer yourself.")
        else:
            del self.fields["owner"]
        self.custom_keys = []
        for name, field in custom_form_fields(Customer).items():
            self.fields[name] = field
            self.custom_keys.append(name)
            if self.instance.pk:
                self.initial[name] = (self.instance.custom_fields or {}).get(
                    name[len(FORM_PREFIX) :]
                )
        self.apply_policy(policy or {})
        self.duplicate_hits: list = []

    def offer_allow_duplicate(self, hits: list) -> None:
        """After a duplicate refusal: list the hits and show the "create anyway" box."""
        self.duplicate_hits = hits
        if "allow_duplicate" in self.fields:
            self.fields["allow_duplicate"].widget = forms.CheckboxInput(
                attrs={"class": "form-check-input"}
            )

    def tags(self) -> list[str]:
        raw = self.cleaned_data.get("tags_text") or ""
        parts = [p.strip() for p in raw.replace("，", ",").replace("、", ",").split(",")]
        return list(dict.fromkeys(p[:50] for p in parts if p))

    def custom_values(self) -> dict[str, Any]:
        return custom_values_from_form(self.cleaned_data)

    def service_data(self) -> dict:
        data = super().service_data()
        data.pop("owner", None)
        return data


class ContactForm(PolicyFormMixin, KehuModelForm):
    policy_model = Contact

    class Meta:
        model = Contact
        fields = ["name", "title", "phone", "mobile", "email", "wechat", "birthday", "is_primary"]
        widgets = {"birthday": DATE}

    def __init__(self, *args, policy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.apply_policy(policy or {})


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; the attachment service checks each file's content."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        return [super().clean(data, initial)] if data else []


class FollowUpForm(KehuModelForm):
    attachments = MultipleFileField(
        label=_("Attachments"),
        required=False,
        help_text=_("Images, PDF or Office documents, up to 10 MB each."),
    )

    class Meta:
        model = FollowUp
        fields = ["method", "contact", "happened_at", "content", "next_followup_at", "next_action"]
        widgets = {
            "happened_at": DATETIME,
            "next_followup_at": DATETIME,
            "content": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        _dictionary(self.fields["method"], "followup_method")
        contact = self.fields["contact"]
        assert isinstance(contact, forms.ModelChoiceField)
        contact.queryset = Contact.objects.filter(customer=customer)
        self.fields["happened_at"].initial = timezone.localtime().replace(second=0, microsecond=0)
        for name in ("happened_at", "next_followup_at"):
            field = self.fields[name]
            assert isinstance(field, forms.DateTimeField)
            field.input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]

    def clean(self):
        cleaned = super().clean()
        happened, following = cleaned.get("happened_at"), cleaned.get("next_followup_at")
        if happened and following and following <= happened:
            self.add_error("next_followup_at", _("The next follow-up must come after this one."))
        return cleaned


class ReasonForm(KehuForm):
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )


class TransferForm(ReasonForm):
    owner = forms.ModelChoiceField(label=_("New owner"), queryset=User.objects.none())

    field_order = ["owner", "reason"]

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = assignable_users(actor)


class MergeForm(KehuForm):
    other = forms.ModelChoiceField(
        label=_("Merge this customer into"),
        queryset=Customer.objects.none(),
        help_text=_(
            "Contacts, follow-ups and opportunities move to the customer chosen here; "
            "this customer is then deleted. An administrator can revert the merge."
        ),
    )

    def __init__(self, *args, actor, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        other = self.fields["other"]
        assert isinstance(other, forms.ModelChoiceField)
        other.queryset = (
            visible_to(Customer.objects.all(), actor)
            .exclude(pk=customer.pk)
            .only("id", "name", "code")
        )
        other.label_from_instance = lambda obj: f"{obj.name} ({obj.code})"  # type: ignore[method-assign,assignment]


class OpportunityForm(KehuModelForm):
    class Meta:
        model = Opportunity
        fields = [
            "customer",
            "title",
            "amount",
            "currency",
            "expected_close_date",
            "stage",
            "probability",
            "owner",
            "lost_reason",
            "notes",
        ]
        widgets = {
            "customer": SearchSelect(
                search_url=reverse_lazy("customers:customer_options"),
                placeholder=_("Type a name, code or pinyin initials"),
            ),
            "expected_close_date": DATE,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        customer = self.fields["customer"]
        assert isinstance(customer, forms.ModelChoiceField)
        # Owned customers in the actor's scope; the pool is claimed first. The select offers
        # a few and searches the rest, so the page costs the same at any scope size.
        customer.queryset = visible_to(Customer.objects.filter(in_pool=False), actor).only(
            "id", "name"
        )
        if self.is_bound:
            selected = self.data.get(self.add_prefix("customer"))
        else:
            selected = self.initial.get("customer") or self.instance.customer_id
        search_select_choices(
            customer, customer.queryset.order_by("-id"), selected, customer.label_from_instance
        )
        stage = self.fields["stage"]
        assert isinstance(stage, forms.ModelChoiceField)
        stage.queryset = PipelineStage.objects.filter(is_active=True)
        stage.required = False
        self.fields["probability"].required = False
        self.fields["probability"].help_text = _("Leave empty to use the stage's probability.")
        if not self.instance.pk:
            self.initial.pop("probability", None)
            self.fields["probability"].initial = None
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        if has_perm(actor, "customers.assign"):
            owner.queryset = assignable_users(actor)
            owner.required = False
            owner.empty_label = str(_("Me"))
        else:
            del self.fields["owner"]
        self.fields["lost_reason"].help_text = _("Required when the stage is a lost stage.")


class PipelineStageForm(KehuModelForm):
    class Meta:
        model = PipelineStage
        fields = ["name", "name_en", "kind", "probability", "sort_order", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sort_order"].required = False


class SavedViewForm(KehuForm):
    name = forms.CharField(label=_("Name"), max_length=100)
    querystring = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
