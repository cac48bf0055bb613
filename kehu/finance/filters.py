"""Filters of the finance lists: status, contract, customer, owner, dates and amounts."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kehu.core.forms import KehuForm
from kehu.customers.forms import assignable_users
from kehu.customers.linked_search import linked_search_q
from kehu.finance.models import (
    ExpenseClaim,
    ExpenseStatus,
    Invoice,
    InvoiceStatus,
    InvoiceType,
    Payment,
    PaymentKind,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from kehu.hr.models import Department
from kehu.sales.models import Contract
from kehu.system.models import User
from kehu.system.selectors import dictionary_items

DATE_WIDGET = forms.DateInput(attrs={"type": "date"})


def _contract_number_or_title(value: str):
    return linked_search_q(
        Contract, value, fields=("title",), codes=("number",), customer=None, through="contract"
    )


def _date(label, field: str, lookup: str):
    return django_filters.DateFilter(
        label=label, field_name=field, lookup_expr=lookup, widget=DATE_WIDGET
    )


def _amount(label, lookup: str):
    return django_filters.NumberFilter(
        label=label,
        field_name="amount",
        lookup_expr=lookup,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    )


class _FinanceFilter(django_filters.FilterSet):
    """What every finance document list filters by; subclasses add status and dates."""

    contract = django_filters.CharFilter(
        label=_("Contract"),
        method="filter_contract",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Number or title")}),
    )
    customer = django_filters.CharFilter(
        label=_("Customer"),
        method="filter_customer",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name")}),
    )
    owner = django_filters.ModelChoiceFilter(
        label=_("Owner"), queryset=User.objects.none(), empty_label=_("All")
    )
    amount_min = _amount(_("Amount from"), "gte")
    amount_max = _amount(_("Amount to"), "lte")

    class Meta:
        fields: list[str] = []
        form = KehuForm

    # Search boxes first (the one shown on phones), then choices, dates and amounts.
    order = ("contract", "customer", "status", "owner")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["owner"].queryset = assignable_users(self.request.user)
        first = [name for name in self.order if name in self.filters]
        last = ["amount_min", "amount_max"]
        middle = [n for n in self.filters if n not in first and n not in last]
        self.filters = {name: self.filters[name] for name in first + middle + last}

    def filter_contract(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(_contract_number_or_title(value))

    def filter_customer(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(
            linked_search_q(queryset.model, value, customer="contract__customer", initials=True)
        )


class PaymentFilter(_FinanceFilter):
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=PaymentStatus.choices, empty_label=_("All")
    )
    kind = django_filters.ChoiceFilter(
        label=_("Type"), choices=PaymentKind.choices, empty_label=_("All")
    )
    method = django_filters.ChoiceFilter(label=_("Payment method"), empty_label=_("All"))
    date_from = _date(_("Received from"), "received_on", "gte")
    date_to = _date(_("Received to"), "received_on", "lte")

    class Meta(_FinanceFilter.Meta):
        model = Payment
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["method"].extra["choices"] = [
            (item.value, item.display_label) for item in dictionary_items("payment_method")
        ]


class InvoiceFilter(_FinanceFilter):
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=InvoiceStatus.choices, empty_label=_("All")
    )
    invoice_type = django_filters.ChoiceFilter(
        label=_("Invoice type"), choices=InvoiceType.choices, empty_label=_("All")
    )
    number = django_filters.CharFilter(
        label=_("Invoice number"),
        method="filter_number",
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    date_from = _date(_("Requested from"), "created_at", "date__gte")
    date_to = _date(_("Requested to"), "created_at", "date__lte")

    class Meta(_FinanceFilter.Meta):
        model = Invoice
        fields: list[str] = []

    def filter_number(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(number__icontains=value) | Q(invoice_number__icontains=value))


class RefundFilter(_FinanceFilter):
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=RefundStatus.choices, empty_label=_("All")
    )
    date_from = _date(_("Requested from"), "created_at", "date__gte")
    date_to = _date(_("Requested to"), "created_at", "date__lte")

    class Meta(_FinanceFilter.Meta):
        model = Refund
        fields: list[str] = []


class ExpenseFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=ExpenseStatus.choices, empty_label=_("All")
    )
    category = django_filters.ModelChoiceFilter(
        label=_("Category"), queryset=dictionary_items("x"), empty_label=_("All")
    )
    owner = django_filters.ModelChoiceFilter(
        label=_("Employee"), queryset=User.objects.none(), empty_label=_("All")
    )
    department = django_filters.ModelChoiceFilter(
        label=_("Department"), queryset=Department.objects.order_by("path"), empty_label=_("All")
    )
    customer = django_filters.CharFilter(
        label=_("Customer"),
        method="filter_customer",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name")}),
    )
    contract = django_filters.CharFilter(
        label=_("Contract"),
        method="filter_contract",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Number or title")}),
    )
    date_from = _date(_("From"), "spent_on", "gte")
    date_to = _date(_("To"), "spent_on", "lte")
    amount_min = _amount(_("Amount from"), "gte")
    amount_max = _amount(_("Amount to"), "lte")

    class Meta:
        model = ExpenseClaim
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["owner"].queryset = assignable_users(self.request.user)
        self.filters["category"].queryset = dictionary_items(
            "expense_category", include_inactive=True
        )

    def filter_customer(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(linked_search_q(queryset.model, value, initials=True))

    def filter_contract(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(_contract_number_or_title(value))
