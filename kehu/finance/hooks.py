"""How finance plugs into the others: approvals, HR targets, customer merge."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from kehu.core.money import CENT


def _payment_achievement(*, user_ids, department_ids, year: int, month: int | None) -> dict:
    """Net money received (confirmed payments less approved refunds) per owner/department."""
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

    if user_ids:
        for queryset, sign in ((payments, 1), (refunds, -1)):
            for row in queryset.filter(owner_id__in=user_ids).values("owner_id").annotate(a=total):
                add(("user", row["owner_id"]), sign * row["a"])
    if department_ids:
        from kehu.hr.selectors import department_subtree_ids

        for department_id in department_ids:
            subtree = department_subtree_ids(department_id)
            received = payments.filter(department_id__in=subtree).aggregate(a=total)["a"]
            refunded = refunds.filter(department_id__in=subtree).aggregate(a=total)["a"]
            add(("department", department_id), received - refunded)
    return figures


def register() -> None:
    from kehu.approvals.registry import ApprovalDocumentType, approval_document_type_register
    from kehu.customers.services import customer_merge_relation_register
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
    if _payment_achievement not in ACHIEVEMENT_SOURCES:
        ACHIEVEMENT_SOURCES.append(_payment_achievement)
