"""Filters of the finance API, and the instalment list with its derived state.

An instalment's received part, outstanding part and status are never stored: received money
(confirmed payments less approved refunds, from the contract's ledger) settles the contract's
instalments in due-date order (``kehu.finance.selectors``). To filter and page by status in
the database, the list annotates each row with ``settled_before`` (what the contract's earlier
instalments take) and ``contract_received``; the status follows from those exactly as in
``selectors._settle``.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import django_filters
from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from kehu.core.filters import IdFilter
from kehu.finance import selectors
from kehu.finance.models import (
    ExpenseClaim,
    ExpenseStatus,
    InstalmentStatus,
    Invoice,
    InvoiceStatus,
    InvoiceType,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReceivableInstalment,
    Refund,
    RefundStatus,
)

ZERO = Decimal("0.00")
HALF_CENT = selectors.HALF_CENT
MONEY = DecimalField(max_digits=18, decimal_places=2)


def instalment_list_visible_to(*, user) -> QuerySet[ReceivableInstalment]:
    """The instalments of the contracts in ``user``'s scope, annotated for their state."""
    earlier = (
        ReceivableInstalment.objects.filter(contract_id=OuterRef("contract_id"))
        .filter(
            Q(due_date__lt=OuterRef("due_date"))
            | Q(due_date=OuterRef("due_date"), sequence__lt=OuterRef("sequence"))
        )
        .order_by()
        .values("contract_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        ReceivableInstalment.objects.filter(contract__in=selectors.contracts_visible_to(user=user))
        .select_related("contract", "contract__customer")
        .annotate(
            settled_before=Coalesce(
                Subquery(earlier, output_field=MONEY), Value(ZERO), output_field=MONEY
            ),
            contract_received=Coalesce(
                F("contract__ledger__confirmed_amount") - F("contract__ledger__refunded_amount"),
                Value(ZERO),
                output_field=MONEY,
            ),
        )
    )


def instalment_state(instalment, today: datetime.date) -> dict:
    """``received``, ``outstanding``, ``status`` and ``days_overdue`` of an annotated row."""
    covering = instalment.contract_received - instalment.settled_before
    received = min(max(covering, ZERO), instalment.amount)
    outstanding = instalment.amount - received
    days = (today - instalment.due_date).days
    if outstanding == 0:
        status = InstalmentStatus.RECEIVED
    elif days > 0:
        status = InstalmentStatus.OVERDUE
    elif received > 0:
        status = InstalmentStatus.PARTLY_RECEIVED
    else:
        status = InstalmentStatus.PENDING
    return {
        "received": received,
        "outstanding": outstanding,
        "status": status,
        "days_overdue": max(days, 0),
    }


def instalment_status_q(status: str, today: datetime.date) -> Q:
    """The rows of an ``instalment_list_visible_to`` queryset that have ``status``."""
    settled = Q(contract_received__gte=F("settled_before") + F("amount") - HALF_CENT)
    if status == InstalmentStatus.RECEIVED:
        return settled
    if status == InstalmentStatus.OVERDUE:
        return ~settled & Q(due_date__lt=today)
    started = Q(contract_received__gt=F("settled_before") + HALF_CENT)
    if status == InstalmentStatus.PARTLY_RECEIVED:
        return ~settled & Q(due_date__gte=today) & started
    if status == InstalmentStatus.PENDING:
        return ~settled & Q(due_date__gte=today) & ~started
    raise ValueError(status)


class InstalmentApiFilter(django_filters.FilterSet):
    contract = IdFilter(field_name="contract")
    customer = IdFilter(field_name="contract__customer")
    owner = IdFilter(field_name="contract__owner", label=_("Contract owner"))
    status = django_filters.ChoiceFilter(
        choices=InstalmentStatus.choices, method="filter_status", label=_("Status (derived)")
    )
    due_from = django_filters.DateFilter(field_name="due_date", lookup_expr="gte")
    due_to = django_filters.DateFilter(field_name="due_date", lookup_expr="lte")

    class Meta:
        model = ReceivableInstalment
        fields = ["contract", "customer", "owner", "status", "due_from", "due_to"]

    def filter_status(self, queryset, name, value):
        if not value:
            return queryset
        from django.utils import timezone

        return queryset.filter(instalment_status_q(value, timezone.localdate()))


class PaymentApiFilter(django_filters.FilterSet):
    contract = IdFilter(field_name="contract")
    instalment = IdFilter(field_name="instalment")
    owner = IdFilter(field_name="owner")
    status = django_filters.ChoiceFilter(choices=PaymentStatus.choices)
    kind = django_filters.ChoiceFilter(choices=PaymentKind.choices)
    method = django_filters.CharFilter(field_name="method")
    received_from = django_filters.DateFilter(field_name="received_on", lookup_expr="gte")
    received_to = django_filters.DateFilter(field_name="received_on", lookup_expr="lte")

    class Meta:
        model = Payment
        fields = [
            "contract",
            "instalment",
            "owner",
            "status",
            "kind",
            "method",
            "received_from",
            "received_to",
        ]


class InvoiceApiFilter(django_filters.FilterSet):
    contract = IdFilter(field_name="contract")
    owner = IdFilter(field_name="owner")
    status = django_filters.ChoiceFilter(choices=InvoiceStatus.choices)
    invoice_type = django_filters.ChoiceFilter(choices=InvoiceType.choices)
    issued_from = django_filters.DateFilter(field_name="issued_on", lookup_expr="gte")
    issued_to = django_filters.DateFilter(field_name="issued_on", lookup_expr="lte")

    class Meta:
        model = Invoice
        fields = ["contract", "owner", "status", "invoice_type", "issued_from", "issued_to"]


class RefundApiFilter(django_filters.FilterSet):
    contract = IdFilter(field_name="contract")
    payment = IdFilter(field_name="payment")
    owner = IdFilter(field_name="owner")
    status = django_filters.ChoiceFilter(choices=RefundStatus.choices)

    class Meta:
        model = Refund
        fields = ["contract", "payment", "owner", "status"]


class ExpenseApiFilter(django_filters.FilterSet):
    owner = IdFilter(field_name="owner", label=_("Employee"))
    department = IdFilter(field_name="department")
    category = IdFilter(field_name="category")
    customer = IdFilter(field_name="customer")
    contract = IdFilter(field_name="contract")
    status = django_filters.ChoiceFilter(choices=ExpenseStatus.choices)
    spent_from = django_filters.DateFilter(field_name="spent_on", lookup_expr="gte")
    spent_to = django_filters.DateFilter(field_name="spent_on", lookup_expr="lte")

    class Meta:
        model = ExpenseClaim
        fields = [
            "owner",
            "department",
            "category",
            "customer",
            "contract",
            "status",
            "spent_from",
            "spent_to",
        ]
