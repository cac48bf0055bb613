"""Finance forms: shape only. Amounts, limits and states are checked by kehu.finance.services."""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.db.models import F, Q, QuerySet, Sum
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from kehu.core.exceptions import ServiceError
from kehu.core.filters import is_id
from kehu.core.forms import KehuForm, SearchSelect, search_select_choices
from kehu.core.scope import visible_to
from kehu.customers.linked_search import linked_search_q
from kehu.customers.models import Customer
from kehu.finance import selectors, services
from kehu.finance.models import (
    ExpenseClaim,
    Invoice,
    InvoiceStatus,
    InvoiceType,
    Payment,
    ReceivableInstalment,
    Refund,
    RefundStatus,
)
from kehu.sales.models import Contract
from kehu.system.selectors import dictionary_items

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
ZERO = Decimal("0.00")
WIDE_FIELD = "finance/forms/wide_field.html"  # a field on a row of its own


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


def contract_label(contract: Contract) -> str:
    return f"{contract.number} · {contract.customer} · {contract.title}"


def contract_search(queryset: QuerySet[Contract], query: str) -> QuerySet[Contract]:
    query = (query or "").strip()[:100]
    if not query:
        return queryset
    return queryset.filter(
        linked_search_q(Contract, query, fields=("title",), codes=("number",), initials=True)
    )


def billable_contracts(user) -> QuerySet[Contract]:
    """The user's visible contracts money can be recorded on, newest first."""
    return (
        selectors.contracts_visible_to(user=user)
        .filter(status__in=services.BILLABLE_STATUSES)
        .select_related("customer")
        .order_by("-signed_on", "-id")
    )


def customer_search(queryset: QuerySet[Customer], query: str) -> QuerySet[Customer]:
    query = (query or "").strip()[:100]
    if not query:
        return queryset
    return queryset.filter(linked_search_q(Customer, query, customer="", initials=True))


def visible_customers(user) -> QuerySet[Customer]:
    return visible_to(Customer.objects.filter(in_pool=False), user).order_by("-id")


class SearchableContractField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return contract_label(obj)


def _selected(form: forms.Form, name: str):
    if form.is_bound:
        return form.data.get(form.add_prefix(name))
    value = form.initial.get(name) or form.fields[name].initial
    return getattr(value, "pk", value)


def payment_methods() -> list[tuple[str, str]]:
    return [(item.value, item.display_label) for item in dictionary_items("payment_method")]


def payment_method_labels() -> dict[str, str]:
    return {
        item.value: item.display_label
        for item in dictionary_items("payment_method", include_inactive=True)
    }


# --- payments -------------------------------------------------------------------------------


class PaymentForm(KehuForm):
    """Register money received. ``idempotency_key`` is made when the form is first shown, so
    submitting the same form twice records one payment."""

    contract = SearchableContractField(
        label=_("Contract"),
        queryset=Contract.objects.none(),
        empty_label=_("Choose a contract"),
        widget=SearchSelect(
            search_url=reverse_lazy("finance:contract_options"),
            placeholder=_("Search by number, title or customer"),
        ),
    )
    instalment = forms.ModelChoiceField(
        label=_("Instalment"),
        queryset=ReceivableInstalment.objects.none(),
        required=False,
        empty_label=_("(not tied to an instalment)"),
    )
    amount = forms.DecimalField(label=_("Amount"), max_digits=18, decimal_places=2)
    received_on = forms.DateField(label=_("Received on"), widget=DATE)
    method = forms.ChoiceField(label=_("Payment method"))
    account = forms.CharField(label=_("Receiving account"), max_length=100, required=False)
    reference = forms.CharField(
        label=_("Bank reference"),
        max_length=100,
        required=False,
        help_text=_("The bank's transaction number, so finance can find the money."),
    )
    note = forms.CharField(
        label=_("Note"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        contracts = billable_contracts(actor)
        field = self.fields["contract"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = contracts
        field.template_name = WIDE_FIELD
        selected = _selected(self, "contract")
        search_select_choices(field, contracts, selected, contract_label)
        # The contract's instalments reload when the contract changes (the whole form is
        # fetched again with what was typed, see the template).
        field.widget.attrs.update(
            {
                "hx-get": str(reverse_lazy("finance:payment_create")),
                "hx-trigger": "change",
                "hx-target": "#form-container",
                "hx-include": "closest form",
            }
        )
        instalment = self.fields["instalment"]
        assert isinstance(instalment, forms.ModelChoiceField)
        if selected and is_id(selected):
            instalment.queryset = ReceivableInstalment.objects.filter(
                contract__in=contracts, contract_id=selected
            ).order_by("due_date", "sequence")
        instalment.label_from_instance = lambda i: (
            _("#%(n)s due %(date)s · %(amount)s")
            % {
                "n": i.sequence,
                "date": i.due_date.isoformat(),
                "amount": f"{i.amount:,.2f}",
            }
        )
        self.fields["received_on"].initial = timezone.localdate()
        self.fields["received_on"].widget.attrs["max"] = timezone.localdate().isoformat()
        self.fields["method"].choices = [("", "---------"), *payment_methods()]
        self.fields["method"].initial = "bank_transfer"
        self.fields["amount"].widget.attrs.update({"min": "0.01", "step": "0.01"})
        if not self.is_bound and not self.initial.get("idempotency_key"):
            self.initial["idempotency_key"] = uuid.uuid4().hex

    def selected_contract(self) -> Contract | None:
        selected = _selected(self, "contract")
        if not selected or not is_id(selected):
            return None
        field = self.fields["contract"]
        assert isinstance(field, forms.ModelChoiceField) and field.queryset is not None
        return field.queryset.filter(pk=selected).first()

    def service_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("idempotency_key", None)
        return data


class ReasonForm(KehuForm):
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )


class RefundForm(KehuForm):
    amount = forms.DecimalField(label=_("Amount to refund"), max_digits=18, decimal_places=2)
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, payment: Payment, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].initial = refundable(payment)
        self.fields["amount"].widget.attrs.update({"min": "0.01", "step": "0.01"})


def refundable(payment: Payment) -> Decimal:
    """What is left of ``payment`` to refund (the service has the last word)."""
    taken = (
        Refund.objects.filter(
            payment=payment, status__in=[RefundStatus.PENDING, RefundStatus.APPROVED]
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    return max(payment.amount - taken, ZERO)


# --- invoices -------------------------------------------------------------------------------


def invoice_room(contract: Contract) -> Decimal:
    """The contract amount less what is invoiced or requested (the default of a request)."""
    committed = (
        Invoice.objects.filter(
            contract=contract,
            status__in=[InvoiceStatus.PENDING, InvoiceStatus.APPROVED, InvoiceStatus.ISSUED],
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    return max(contract.total_amount - committed, ZERO)


class InvoiceRequestForm(KehuForm):
    contract = SearchableContractField(
        label=_("Contract"),
        queryset=Contract.objects.none(),
        empty_label=_("Choose a contract"),
        widget=SearchSelect(
            search_url=reverse_lazy("finance:contract_options"),
            placeholder=_("Search by number, title or customer"),
        ),
    )
    invoice_type = forms.ChoiceField(
        label=_("Invoice type"), choices=InvoiceType.choices, widget=forms.RadioSelect
    )
    amount = forms.DecimalField(label=_("Amount"), max_digits=18, decimal_places=2)
    title = forms.CharField(
        label=_("Invoice title"), max_length=200, help_text=_("The buyer's registered name.")
    )
    tax_number = forms.CharField(label=_("Taxpayer identification number"), max_length=30)
    address_phone = forms.CharField(label=_("Address and phone"), max_length=300, required=False)
    bank_account = forms.CharField(
        label=_("Bank and account"),
        max_length=200,
        required=False,
        help_text=_("Required for a VAT special invoice."),
    )
    note = forms.CharField(
        label=_("Note"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        contracts = billable_contracts(actor)
        field = self.fields["contract"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = contracts
        field.template_name = WIDE_FIELD
        selected = _selected(self, "contract")
        search_select_choices(field, contracts, selected, contract_label)
        field.widget.attrs.update(
            {
                "hx-get": str(reverse_lazy("finance:invoice_create")),
                "hx-trigger": "change",
                "hx-target": "#form-container",
                "hx-include": "this",
            }
        )
        self.fields["invoice_type"].initial = InvoiceType.VAT_ORDINARY
        self.fields["amount"].widget.attrs.update({"min": "0.01", "step": "0.01"})
        contract = (
            contracts.filter(pk=selected).first()
            if selected and is_id(selected) and not self.is_bound
            else None
        )
        if contract is not None:
            self.initial.setdefault("title", contract.customer.name)
            self.initial.setdefault("amount", invoice_room(contract))


class InvoiceIssueForm(KehuForm):
    invoice_number = forms.CharField(label=_("Invoice number"), max_length=50)
    issued_on = forms.DateField(label=_("Issued on"), widget=DATE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["issued_on"].initial = timezone.localdate()
        self.fields["issued_on"].widget.attrs["max"] = timezone.localdate().isoformat()


class PayForm(KehuForm):
    paid_on = forms.DateField(label=_("Paid on"), widget=DATE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["paid_on"].initial = timezone.localdate()


# --- expense claims -------------------------------------------------------------------------


class ExpenseForm(KehuForm):
    category = forms.ModelChoiceField(label=_("Category"), queryset=dictionary_items("x"))
    amount = forms.DecimalField(label=_("Amount"), max_digits=18, decimal_places=2)
    spent_on = forms.DateField(label=_("Date"), widget=DATE)
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
    customer = forms.ModelChoiceField(
        label=_("Customer"),
        queryset=Customer.objects.none(),
        required=False,
        empty_label=_("(none)"),
        widget=SearchSelect(
            search_url=reverse_lazy("finance:customer_options"),
            placeholder=_("Search customers"),
        ),
    )
    contract = SearchableContractField(
        label=_("Contract"),
        queryset=Contract.objects.none(),
        required=False,
        empty_label=_("(none)"),
        widget=SearchSelect(
            search_url=format_lazy("{}?all=1", reverse_lazy("finance:contract_options")),
            placeholder=_("Search by number, title or customer"),
        ),
    )
    receipts = MultipleFileField(
        label=_("Receipts"),
        required=False,
        help_text=_("Photos or scans: images, PDF or Office documents, up to 10 MB each."),
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    # Short fields in pairs, then the description across, then what it was for.
    field_order = ["category", "amount", "spent_on", "receipts", "description"]

    def __init__(self, *args, actor, instance: ExpenseClaim | None = None, **kwargs):
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "category": instance.category_id,
                    "amount": instance.amount,
                    "spent_on": instance.spent_on,
                    "description": instance.description,
                    "customer": instance.customer_id,
                    "contract": instance.contract_id,
                    "version": instance.version,
                },
            )
        super().__init__(*args, **kwargs)
        self.instance = instance
        if instance is None:
            del self.fields["version"]
        category = self.fields["category"]
        assert isinstance(category, forms.ModelChoiceField)
        category.queryset = dictionary_items("expense_category")
        self.fields["spent_on"].initial = timezone.localdate()
        self.fields["spent_on"].widget.attrs["max"] = timezone.localdate().isoformat()
        self.fields["amount"].widget.attrs.update({"min": "0.01", "step": "0.01"})
        customers = visible_customers(actor)
        customer = self.fields["customer"]
        assert isinstance(customer, forms.ModelChoiceField)
        customer.queryset = customers
        search_select_choices(customer, customers, _selected(self, "customer"), str)
        contracts = (
            selectors.contracts_visible_to(user=actor)
            .select_related("customer")
            .order_by("-signed_on", "-id")
        )
        contract = self.fields["contract"]
        assert isinstance(contract, forms.ModelChoiceField)
        contract.queryset = contracts
        search_select_choices(contract, contracts, _selected(self, "contract"), contract_label)

    def service_data(self) -> dict[str, Any]:
        return {
            name: self.cleaned_data.get(name)
            for name in ("category", "amount", "spent_on", "description", "customer", "contract")
        }


# --- receivable plan ------------------------------------------------------------------------


@dataclass
class PlanRow:
    due_date: str = ""
    amount: str = ""
    note: str = ""
    errors: list[str] = field(default_factory=list)
    status: str = ""

    def parsed_amount(self) -> Decimal | None:
        try:
            value = Decimal(self.amount.replace(",", "").strip())
        except (InvalidOperation, ValueError):
            return None
        return value if value.is_finite() else None


class PlanEditor:
    """The rows of a receivable plan as typed (due date, amount, note), kept as text so a
    half-typed row comes back as it was, with its own errors beside it."""

    def __init__(self, rows: list[PlanRow], *, total: Decimal, percentages: str = ""):
        self.rows = rows
        self.total = total
        self.percentages = percentages
        self.errors: list[str] = []
        self.percentage_errors: list[str] = []

    @classmethod
    def from_instalments(cls, instalments, *, total: Decimal) -> PlanEditor:
        rows = [
            PlanRow(due_date=i.due_date.isoformat(), amount=f"{i.amount:.2f}", note=i.note)
            for i in instalments
        ]
        return cls(rows or [PlanRow()], total=total)

    @classmethod
    def from_post(cls, data, *, total: Decimal) -> PlanEditor:
        dues, amounts, notes = (data.getlist(n) for n in ("due_date", "amount", "note"))
        size = max(len(dues), len(amounts), len(notes))

        def at(values, index):
            return (values[index] if index < len(values) else "").strip()

        rows = [
            PlanRow(at(dues, i), at(amounts, i), at(notes, i)[:200]) for i in range(min(size, 60))
        ]
        return cls(rows, total=total, percentages=(data.get("percentages") or "").strip()[:200])

    @property
    def allocated(self) -> Decimal:
        return sum((row.parsed_amount() or ZERO for row in self.rows), ZERO)

    @property
    def difference(self) -> Decimal:
        return self.total - self.allocated

    @property
    def excess(self) -> Decimal:
        return -self.difference

    def add_row(self) -> None:
        self.rows.append(PlanRow())

    def remove_row(self, index: int) -> None:
        if 0 <= index < len(self.rows):
            del self.rows[index]
        if not self.rows:
            self.rows.append(PlanRow())

    def split(self) -> bool:
        """Amounts for the typed percentages (30/40/30), adding up to the contract amount."""
        parts = [p for p in re.split(r"[\s,/;+%，、]+", self.percentages) if p]
        try:
            percentages = [Decimal(p) for p in parts]
        except InvalidOperation:
            percentages = []
        if not percentages or any(not p.is_finite() or p <= 0 for p in percentages):
            self.percentage_errors.append(
                str(_("Enter percentages separated by “/”, for example 30/40/30."))
            )
            return False
        try:
            amounts = services.receivable_plan_split(total=self.total, percentages=percentages)
        except ServiceError as exc:
            self.percentage_errors.append(str(exc.message))
            return False
        old = [row for row in self.rows if row.due_date or row.amount or row.note]
        self.rows = [
            PlanRow(
                due_date=old[i].due_date if i < len(old) else "",
                amount=f"{amount:.2f}",
                note=old[i].note if i < len(old) else "",
            )
            for i, amount in enumerate(amounts)
        ]
        return True

    def cleaned(self) -> list[dict[str, Any]] | None:
        """The rows for ``receivable_plan_set``, or None with errors on the rows. Rows left
        entirely empty are skipped."""
        result = []
        valid = True
        for row in self.rows:
            row.errors = []
            if not (row.due_date or row.amount or row.note):
                continue
            due = None
            try:
                due = datetime.date.fromisoformat(row.due_date)
            except ValueError:
                row.errors.append(str(_("Enter a due date.")))
            amount = row.parsed_amount()
            if amount is None:
                row.errors.append(str(_("Enter an amount.")))
            elif amount <= 0:
                row.errors.append(str(_("The amount must be more than 0.")))
            elif amount != amount.quantize(Decimal("0.01")):
                row.errors.append(str(_("Enter an amount in yuan and cents.")))
            if row.errors:
                valid = False
                continue
            result.append({"due_date": due, "amount": amount, "note": row.note})
        if valid and not result:
            self.errors.append(str(_("Add at least one instalment.")))
            return None
        return result if valid else None


# --- report filters -------------------------------------------------------------------------


class DateRangeForm(KehuForm):
    start = forms.DateField(label=_("From"), widget=DATE, required=False)
    end = forms.DateField(label=_("To"), widget=DATE, required=False)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", _("The end date must not be before the start date."))
        if start and end and (end - start).days > 3660:
            self.add_error("start", _("Choose a range of at most ten years."))
        return cleaned

    def dates(self) -> tuple[datetime.date, datetime.date]:
        today = timezone.localdate()
        default = (today.replace(month=1, day=1), today)
        if not self.is_valid():
            return default
        return (
            self.cleaned_data.get("start") or default[0],
            self.cleaned_data.get("end") or default[1],
        )


RECONCILIATION_STATES = (
    ("outstanding", _("Money outstanding")),
    ("overdue", _("Overdue")),
    ("settled", _("Fully received")),
    ("uninvoiced", _("Not fully invoiced")),
)


# The "Show" choices over ``contract_reconciliation``'s money annotations.
RECONCILIATION_STATE_FILTERS = {
    "outstanding": Q(rec_outstanding__gt=selectors.HALF_CENT),
    "overdue": Q(rec_overdue__gt=selectors.HALF_CENT),
    "settled": Q(rec_outstanding__lte=selectors.HALF_CENT),
    "uninvoiced": Q(rec_invoiced__lt=F("total_amount") - selectors.HALF_CENT),
}


class ReconciliationFilterForm(KehuForm):
    """Filters of the per-contract reconciliation (applied to the selector's rows)."""

    contract = forms.CharField(
        label=_("Contract"),
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Number or title")}),
    )
    customer = forms.CharField(
        label=_("Customer"),
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name")}),
    )
    owner = forms.ModelChoiceField(
        label=_("Owner"), queryset=Contract.objects.none(), required=False, empty_label=_("All")
    )
    department = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Contract.objects.none(),
        required=False,
        empty_label=_("All"),
    )
    state = forms.ChoiceField(
        label=_("Show"), choices=[("", _("All")), *RECONCILIATION_STATES], required=False
    )

    def __init__(self, *args, actor, **kwargs):
        from kehu.customers.forms import assignable_users
        from kehu.hr.models import Department

        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = assignable_users(actor)
        department = self.fields["department"]
        assert isinstance(department, forms.ModelChoiceField)
        department.queryset = Department.objects.order_by("path")

    def apply(self, contracts: QuerySet[Contract]) -> QuerySet[Contract]:
        """``contracts`` (``contract_reconciliation``) narrowed by the filters, in the query."""
        data = self.cleaned_data
        text = (data.get("contract") or "").strip()
        if text:
            contracts = contracts.filter(
                linked_search_q(Contract, text, fields=("title",), codes=("number",), customer=None)
            )
        customer = (data.get("customer") or "").strip()
        if customer:
            contracts = contracts.filter(linked_search_q(Contract, customer))
        if data.get("owner") is not None:
            contracts = contracts.filter(owner=data["owner"])
        if data.get("department") is not None:
            from kehu.hr.selectors import department_subtree_ids

            contracts = contracts.filter(
                department_id__in=department_subtree_ids(data["department"].pk)
            )
        state = data.get("state")
        if state:
            contracts = contracts.filter(RECONCILIATION_STATE_FILTERS[state])
        return contracts

    def is_filtering(self) -> bool:
        return self.is_bound and self.is_valid() and any(self.cleaned_data.values())
