"""Scoped reads and reports of the finance module.

Instalments are settled in due-date order by the money a contract has received (confirmed
payments minus approved refunds): an instalment's received and outstanding amounts and its
status follow from the ledger and are never stored, so they cannot disagree with it.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F, QuerySet, Sum, Window
from django.db.models.functions import TruncMonth
from django.utils import timezone

from kehu.core.permissions import require_perm
from kehu.core.scope import get_visible_or_404, visible_to
from kehu.finance.models import (
    ContractLedger,
    ExpenseClaim,
    ExpenseStatus,
    InstalmentStatus,
    Invoice,
    Payment,
    PaymentStatus,
    ReceivableInstalment,
    Refund,
    RefundStatus,
)
from kehu.sales.models import Contract

ZERO = Decimal("0.00")


# --- lists ----------------------------------------------------------------------------------


def payment_list_visible_to(*, user) -> QuerySet[Payment]:
    require_perm(user, "finance.view")
    return visible_to(
        Payment.objects.select_related(
            "contract", "contract__customer", "owner", "instalment", "reverses", "confirmed_by"
        ),
        user,
    )


def payment_get_for(*, user, pk) -> Payment:
    return get_visible_or_404(payment_list_visible_to(user=user), user, pk=pk)


def invoice_list_visible_to(*, user) -> QuerySet[Invoice]:
    require_perm(user, "finance.view")
    return visible_to(
        Invoice.objects.select_related("contract", "contract__customer", "owner", "issued_by"),
        user,
    )


def invoice_get_for(*, user, pk) -> Invoice:
    return get_visible_or_404(invoice_list_visible_to(user=user), user, pk=pk)


def refund_list_visible_to(*, user) -> QuerySet[Refund]:
    require_perm(user, "finance.view")
    return visible_to(
        Refund.objects.select_related("contract", "contract__customer", "payment", "owner"), user
    )


def refund_get_for(*, user, pk) -> Refund:
    return get_visible_or_404(refund_list_visible_to(user=user), user, pk=pk)


def expense_list_visible_to(*, user) -> QuerySet[ExpenseClaim]:
    require_perm(user, "finance.view")
    return visible_to(
        ExpenseClaim.objects.select_related(
            "owner", "department", "category", "customer", "contract"
        ),
        user,
    )


def expense_get_for(*, user, pk) -> ExpenseClaim:
    return get_visible_or_404(expense_list_visible_to(user=user), user, pk=pk)


def contracts_visible_to(*, user) -> QuerySet[Contract]:
    require_perm(user, "finance.view")
    return visible_to(Contract.objects.all(), user)


# --- one contract ---------------------------------------------------------------------------


@dataclass
class InstalmentState:
    instalment: ReceivableInstalment
    received: Decimal
    outstanding: Decimal
    status: str
    days_overdue: int


@dataclass
class ContractMoney:
    total: Decimal
    confirmed: Decimal
    refunded: Decimal
    received: Decimal
    invoiced: Decimal
    outstanding: Decimal
    overdue: Decimal
    pending_payments: Decimal
    planned: Decimal
    instalments: list[InstalmentState] = field(default_factory=list)


def _settle(instalments, received: Decimal, today: datetime.date) -> list[InstalmentState]:
    """Spread ``received`` over instalments in due-date order."""
    left = max(received, ZERO)
    states = []
    for instalment in sorted(instalments, key=lambda i: (i.due_date, i.sequence)):
        paid = min(left, instalment.amount)
        left -= paid
        outstanding = instalment.amount - paid
        days = (today - instalment.due_date).days
        if outstanding == 0:
            status = InstalmentStatus.RECEIVED
        elif days > 0:
            status = InstalmentStatus.OVERDUE
        elif paid > 0:
            status = InstalmentStatus.PARTLY_RECEIVED
        else:
            status = InstalmentStatus.PENDING
        states.append(InstalmentState(instalment, paid, outstanding, status, max(days, 0)))
    return states


def contract_money(*, contract: Contract, today: datetime.date | None = None) -> ContractMoney:
    """Everything finance knows about one contract (the caller has checked scope)."""
    today = today or timezone.localdate()
    ledger = ContractLedger.objects.filter(contract=contract).first()
    confirmed = ledger.confirmed_amount if ledger else ZERO
    refunded = ledger.refunded_amount if ledger else ZERO
    invoiced = ledger.invoiced_amount if ledger else ZERO
    received = confirmed - refunded
    states = _settle(list(contract.instalments.all()), received, today)
    pending = (
        Payment.objects.filter(contract=contract, status=PaymentStatus.PENDING).aggregate(
            total=Sum("amount")
        )["total"]
        or ZERO
    )
    return ContractMoney(
        total=contract.total_amount,
        confirmed=confirmed,
        refunded=refunded,
        received=received,
        invoiced=invoiced,
        outstanding=contract.total_amount - received,
        overdue=sum((s.outstanding for s in states if s.status == InstalmentStatus.OVERDUE), ZERO),
        pending_payments=pending,
        planned=sum((s.instalment.amount for s in states), ZERO),
        instalments=states,
    )


# --- reports --------------------------------------------------------------------------------


def _instalment_states(*, contracts: QuerySet[Contract], today: datetime.date):
    """(contract id, InstalmentState) for every instalment of ``contracts``.

    One query: a running total per contract (window function) against the ledger's received
    amount gives each instalment's settled part without loading payments.
    """
    rows = (
        ReceivableInstalment.objects.filter(contract__in=contracts)
        .annotate(
            cumulative=Window(
                Sum("amount"),
                partition_by=[F("contract_id")],
                order_by=[F("due_date").asc(), F("sequence").asc()],
            ),
            confirmed=F("contract__ledger__confirmed_amount"),
            refunded=F("contract__ledger__refunded_amount"),
        )
        .select_related("contract", "contract__customer", "contract__owner", "contract__department")
    )
    for row in rows:
        received = (row.confirmed or ZERO) - (row.refunded or ZERO)
        before = row.cumulative - row.amount
        paid = min(max(received - before, ZERO), row.amount)
        outstanding = row.amount - paid
        days = (today - row.due_date).days
        if outstanding == 0:
            status = InstalmentStatus.RECEIVED
        elif days > 0:
            status = InstalmentStatus.OVERDUE
        elif paid > 0:
            status = InstalmentStatus.PARTLY_RECEIVED
        else:
            status = InstalmentStatus.PENDING
        yield row.contract, InstalmentState(row, paid, outstanding, status, max(days, 0))


AGING_BUCKETS = ("not_due", "d0_30", "d31_60", "d61_90", "d90_plus")


def aging_bucket(days_past_due: int) -> str:
    """Days past the due date → bucket; due today is 0 days (the 0–30 bucket)."""
    if days_past_due < 0:
        return "not_due"
    if days_past_due <= 30:
        return "d0_30"
    if days_past_due <= 60:
        return "d31_60"
    if days_past_due <= 90:
        return "d61_90"
    return "d90_plus"


def receivables_aging(
    *, user, group_by: str = "customer", today: datetime.date | None = None
) -> list[dict]:
    """Outstanding instalment amounts by age, per customer, owner or department.

    Each row: ``key``, ``label``, one amount per bucket of ``AGING_BUCKETS`` and ``total``.
    Sorted by total, largest first. Contracts without a plan are not aged (see
    ``contracts_without_plan``).
    """
    if group_by not in ("customer", "owner", "department"):
        raise ValueError(group_by)
    today = today or timezone.localdate()
    grouped: dict = defaultdict(lambda: {bucket: ZERO for bucket in AGING_BUCKETS})
    labels: dict = {}
    for contract, state in _instalment_states(
        contracts=contracts_visible_to(user=user), today=today
    ):
        if state.outstanding <= 0:
            continue
        target = getattr(contract, group_by)
        key = getattr(target, "pk", None)
        labels[key] = str(target) if target is not None else ""
        days = (today - state.instalment.due_date).days
        grouped[key][aging_bucket(days)] += state.outstanding
    rows = []
    for key, buckets in grouped.items():
        rows.append(
            {"key": key, "label": labels[key], **buckets, "total": sum(buckets.values(), ZERO)}
        )
    return sorted(rows, key=lambda r: (-r["total"], r["label"]))


def contracts_without_plan(*, user) -> QuerySet[Contract]:
    from kehu.finance.services import BILLABLE_STATUSES

    return contracts_visible_to(user=user).filter(
        status__in=BILLABLE_STATUSES, instalments__isnull=True
    )


def contract_reconciliation(*, user, today: datetime.date | None = None) -> list[dict]:
    """Per contract in force (or that was): amount, received, invoiced, outstanding, overdue."""
    from kehu.finance.services import BILLABLE_STATUSES

    today = today or timezone.localdate()
    contracts = (
        contracts_visible_to(user=user)
        .filter(status__in=BILLABLE_STATUSES)
        .select_related("customer", "owner", "ledger")
        .order_by("-signed_on", "-id")
    )
    overdue: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for contract, state in _instalment_states(contracts=contracts, today=today):
        if state.status == InstalmentStatus.OVERDUE:
            overdue[contract.pk] += state.outstanding
    rows = []
    for contract in contracts:
        ledger = getattr(contract, "ledger", None)
        received = ledger.received_amount if ledger else ZERO
        rows.append(
            {
                "contract": contract,
                "total": contract.total_amount,
                "received": received,
                "invoiced": ledger.invoiced_amount if ledger else ZERO,
                "outstanding": contract.total_amount - received,
                "overdue": overdue[contract.pk],
            }
        )
    return rows


def collections_by_month(*, user, start: datetime.date, end: datetime.date) -> list[dict]:
    """Net money received per month: confirmed payments (reversals negative) less refunds."""
    payments = (
        payment_list_visible_to(user=user)
        .filter(status=PaymentStatus.CONFIRMED, received_on__gte=start, received_on__lte=end)
        .annotate(month=TruncMonth("received_on"))
        .values("month")
        .annotate(amount=Sum("amount"))
    )
    refunds = (
        refund_list_visible_to(user=user)
        .filter(status=RefundStatus.APPROVED, refunded_on__gte=start, refunded_on__lte=end)
        .annotate(month=TruncMonth("refunded_on"))
        .values("month")
        .annotate(amount=Sum("amount"))
    )
    months: dict = defaultdict(lambda: {"received": ZERO, "refunded": ZERO})
    for row in payments:
        months[_month(row["month"])]["received"] += row["amount"]
    for row in refunds:
        months[_month(row["month"])]["refunded"] += row["amount"]
    return [
        {"month": month, **values, "net": values["received"] - values["refunded"]}
        for month, values in sorted(months.items())
    ]


def _month(value) -> datetime.date:
    if isinstance(value, datetime.datetime):
        value = value.date()
    return value.replace(day=1)


def expenses_by_category(*, user, start: datetime.date, end: datetime.date) -> list[dict]:
    """Approved and paid expense claims by category and department."""
    rows = (
        expense_list_visible_to(user=user)
        .filter(
            status__in=[ExpenseStatus.APPROVED, ExpenseStatus.PAID],
            spent_on__gte=start,
            spent_on__lte=end,
        )
        .values("category__label", "department__name")
        .annotate(amount=Sum("amount"))
        .order_by("category__label", "department__name")
    )
    return [
        {
            "category": row["category__label"],
            "department": row["department__name"] or "",
            "amount": row["amount"],
        }
        for row in rows
    ]
