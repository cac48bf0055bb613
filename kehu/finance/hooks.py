"""How finance plugs into the others: approvals, HR targets, customer merge."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import IntegerField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from kehu.core.money import CENT


def _payment_achievement(*, user_ids, department_ids, year: int, month: int | None) -> dict:
    """Net money received (confirmed payments less approved refunds) per owner/department.

    A fixed number of queries however many rows the page shows: one for the users (payments
    and refunds in one UNION), two for the departments (their paths, then payments and
    refunds by department path, summed per subtree here).
    """
    from kehu.finance.models import Payment, PaymentStatus, Refund, RefundStatus

    def period(field: str) -> Q:
        return Q(**{f"{field}__year": year}) & (Q(**{f"{field}__month": month}) if month else Q())

    payments = Payment.objects.filter(period("received_on"), status=PaymentStatus.CONFIRMED)
    refunds = Refund.objects.filter(period("refunded_on"), status=RefundStatus.APPROVED)
    total = Coalesce(Sum("amount"), Decimal("0"))
    figures: dict = {}

    def add(key, amount) -> None:
        bucket = figures.setdefault(key, {"payment_amount": Decimal("0.00")})
        bucket["payment_amount"] = (bucket["payment_amount"] + amount).quantize(CENT)

    def by(queryset, field: str, sign: int):
        return (
            queryset.order_by()
            .values(field)
            .annotate(a=total, sign=Value(sign, output_field=IntegerField()))
        )

    if user_ids:
        rows = by(payments.filter(owner_id__in=user_ids), "owner_id", 1).union(
            by(refunds.filter(owner_id__in=user_ids), "owner_id", -1), all=True
        )
        for row in rows:
            add(("user", row["owner_id"]), row["sign"] * row["a"])
    if department_ids:
        from kehu.hr.models import Department

        paths = dict(Department.objects.filter(pk__in=department_ids).values_list("pk", "path"))
        amounts: dict[str, Decimal] = {}
        rows = by(payments.filter(department__isnull=False), "department__path", 1).union(
            by(refunds.filter(department__isnull=False), "department__path", -1), all=True
        )
        for row in rows:
            path = row["department__path"]
            amounts[path] = amounts.get(path, Decimal("0")) + row["sign"] * row["a"]
        for department_id in department_ids:
            prefix = paths.get(department_id)
            add(
                ("department", department_id),
                sum(
                    (a for path, a in amounts.items() if prefix and path.startswith(prefix)),
                    Decimal("0"),
                ),
            )
    return figures


def _handover_open_documents(*, actor, from_user, to_user, reason: str) -> None:
    """Open payments, invoice requests and refunds follow their contract to the successor
    (the sales module has moved it by now); decided ones keep their owner, which is history
    (HR achievement counts confirmed money for whoever owned the contract then)."""
    from django.db.models import F
    from django.utils import timezone

    from kehu.core.services import _audit
    from kehu.finance.models import (
        Invoice,
        InvoiceStatus,
        Payment,
        PaymentStatus,
        Refund,
        RefundStatus,
    )

    open_statuses: dict[Any, list[str]] = {
        Payment: [PaymentStatus.PENDING],
        Invoice: [InvoiceStatus.PENDING, InvoiceStatus.APPROVED],
        Refund: [RefundStatus.PENDING],
    }
    now = timezone.now()
    for model, statuses in open_statuses.items():
        documents = list(
            model.objects.select_for_update(of=("self",)).filter(
                owner=from_user, contract__owner=to_user, status__in=statuses
            )
        )
        if not documents:
            continue
        model.objects.filter(pk__in=[d.pk for d in documents]).update(
            owner=to_user,
            department_id=to_user.department_id,
            version=F("version") + 1,
            updated_at=now,
            updated_by=actor,
        )
        for document in documents:
            _audit(
                user=actor,
                action="status",
                obj=document,
                changes={"owner": [from_user.pk, to_user.pk]},
                note=f"handover: {reason}"[:500],
            )


def _contract_amount_floor(contract) -> Decimal:
    from kehu.finance.selectors import contract_amount_minimum

    return contract_amount_minimum(contract=contract)


def register() -> None:
    from kehu.approvals.registry import ApprovalDocumentType, approval_document_type_register
    from kehu.customers.services import HANDOVER_SOURCES, customer_merge_relation_register
    from kehu.finance import services
    from kehu.finance.models import (
        ExpenseClaim,
        ExpenseStatus,
        Invoice,
        InvoiceStatus,
        Payment,
        PaymentStatus,
        Refund,
        RefundStatus,
    )
    from kehu.hr.selectors import ACHIEVEMENT_SOURCES
    from kehu.sales.services import CONTRACT_AMOUNT_FLOORS

    def title(document) -> str:
        contract = getattr(document, "contract", None)
        parts = [document.number, f"{document.amount:,.2f}"]
        if contract is not None:
            parts.append(f"{contract.number} · {contract.customer}")
        return " ".join(parts)

    common: dict[str, Any] = {
        "module": "finance",
        "amount": lambda document: document.amount,
        "department": lambda document: document.department,
        "title": title,
    }
    approval_document_type_register(
        ApprovalDocumentType(
            code=services.PAYMENT_DOCUMENT_TYPE,
            model=Payment,
            label=_("Payment"),
            on_approved=services._payment_on_approved,
            on_rejected=services._payment_on_closed(PaymentStatus.REJECTED),
            on_withdrawn=services._payment_on_closed(PaymentStatus.CANCELLED),
            **common,
        )
    )
    approval_document_type_register(
        ApprovalDocumentType(
            code=services.INVOICE_DOCUMENT_TYPE,
            model=Invoice,
            label=_("Invoice request"),
            on_approved=services._invoice_on(InvoiceStatus.APPROVED),
            on_rejected=services._invoice_on(InvoiceStatus.REJECTED),
            on_withdrawn=services._invoice_on(InvoiceStatus.WITHDRAWN),
            **common,
        )
    )
    approval_document_type_register(
        ApprovalDocumentType(
            code=services.REFUND_DOCUMENT_TYPE,
            model=Refund,
            label=_("Refund"),
            on_approved=services._refund_on_approved,
            on_rejected=services._refund_on(RefundStatus.REJECTED),
            on_withdrawn=services._refund_on(RefundStatus.WITHDRAWN),
            **common,
        )
    )
    approval_document_type_register(
        ApprovalDocumentType(
            code=services.EXPENSE_DOCUMENT_TYPE,
            model=ExpenseClaim,
            label=_("Expense claim"),
            on_approved=services._expense_on(ExpenseStatus.APPROVED),
            on_rejected=services._expense_on(ExpenseStatus.REJECTED),
            on_withdrawn=services._expense_on(ExpenseStatus.DRAFT),
            **common,
        )
    )
    customer_merge_relation_register(ExpenseClaim, "customer")
    if _handover_open_documents not in HANDOVER_SOURCES:
        HANDOVER_SOURCES.append(_handover_open_documents)
    if _contract_amount_floor not in CONTRACT_AMOUNT_FLOORS:
        CONTRACT_AMOUNT_FLOORS.append(_contract_amount_floor)
    if _payment_achievement not in ACHIEVEMENT_SOURCES:
        ACHIEVEMENT_SOURCES.append(_payment_achievement)
