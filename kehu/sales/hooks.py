"""How the sales module plugs into the others: approvals, customers, HR targets."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from kehu.core.money import CENT


def _active_contract_customers(customer_ids: list[int]) -> set[int]:
    from kehu.sales.models import Contract, ContractStatus

    return set(
        Contract.objects.filter(
            customer_id__in=customer_ids, status=ContractStatus.ACTIVE
        ).values_list("customer_id", flat=True)
    )


def _contract_achievement(*, user_ids, department_ids, year: int, month: int | None) -> dict:
    """Signed amount of contracts in force or completed, by owner and by department."""
    from kehu.sales.models import Contract, ContractStatus

    period = Q(signed_on__year=year) & (Q(signed_on__month=month) if month else Q())
    base = Contract.objects.filter(
        period, status__in=[ContractStatus.ACTIVE, ContractStatus.COMPLETED]
    )
    figures: dict = {}
    total = Coalesce(Sum("total_amount"), Decimal("0"))
    if user_ids:
        for row in base.filter(owner_id__in=user_ids).values("owner_id").annotate(amount=total):
            figures[("user", row["owner_id"])] = {"contract_amount": row["amount"].quantize(CENT)}
    if department_ids:
        from kehu.hr.selectors import department_subtree_ids

        for department_id in department_ids:
            amount = base.filter(department_id__in=department_subtree_ids(department_id)).aggregate(
                amount=total
            )["amount"]
            figures[("department", department_id)] = {"contract_amount": amount.quantize(CENT)}
    return figures


def _handover_open_documents(*, actor, from_user, to_user, reason: str) -> None:
    """A leaver's open quotes, contracts and orders go to the successor with the customers;
    finished documents keep their owner, which is history."""
    from django.utils import timezone

    from kehu.analytics.aggregates import aggregates_tracked
    from kehu.core.services import _audit
    from kehu.sales.models import (
        Contract,
        ContractStatus,
        Order,
        OrderStatus,
        Quote,
        QuoteStatus,
    )

    open_statuses = {
        Quote: [QuoteStatus.DRAFT, QuoteStatus.SENT, QuoteStatus.ACCEPTED],
        Contract: [
            ContractStatus.DRAFT,
            ContractStatus.PENDING,
            ContractStatus.ACTIVE,
            ContractStatus.REJECTED,
        ],
        Order: [
            OrderStatus.PENDING,
            OrderStatus.CONFIRMED,
            OrderStatus.PARTIALLY_SHIPPED,
            OrderStatus.SHIPPED,
        ],
    }
    now = timezone.now()
    for model, statuses in open_statuses.items():
        documents = list(
            model.objects.select_for_update().filter(owner=from_user, status__in=statuses)
        )
        if not documents:
            continue
        ids = [d.pk for d in documents]
        # Contracts and orders count in the stored aggregates by owner: moved with them.
        tracked = {Contract: {"contracts": ids}, Order: {"orders": ids}}.get(model, {})
        with aggregates_tracked(**tracked):
            model.objects.filter(pk__in=ids).update(
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


def register() -> None:
    from kehu.approvals.registry import ApprovalDocumentType, approval_document_type_register
    from kehu.customers.services import (
        ACTIVE_CONTRACT_SOURCES,
        HANDOVER_SOURCES,
        customer_merge_relation_register,
    )
    from kehu.hr.selectors import ACHIEVEMENT_SOURCES
    from kehu.sales import services
    from kehu.sales.models import AmendmentStatus, Contract, ContractAmendment, Order, Quote

    approval_document_type_register(
        ApprovalDocumentType(
            code=services.CONTRACT_DOCUMENT_TYPE,
            model=Contract,
            label=_("Contract"),
            module="sales",
            amount=lambda contract: contract.total_amount,
            department=lambda contract: contract.department,
            title=lambda contract: f"{contract.number} {contract.title} · {contract.customer}",
            on_approved=services._contract_on_approved,
            on_rejected=services._contract_on_rejected,
            on_withdrawn=services._contract_on_withdrawn,
        )
    )
    approval_document_type_register(
        ApprovalDocumentType(
            code=services.AMENDMENT_DOCUMENT_TYPE,
            model=ContractAmendment,
            label=_("Contract amendment"),
            module="sales",
            amount=lambda amendment: amendment.total_after,
            department=lambda amendment: amendment.contract.department,
            title=lambda amendment: f"{amendment} {amendment.contract.title}",
            on_approved=services._amendment_apply,
            on_rejected=services._amendment_close(AmendmentStatus.REJECTED),
            on_withdrawn=services._amendment_close(AmendmentStatus.WITHDRAWN),
        )
    )
    for model in (Quote, Contract, Order):
        customer_merge_relation_register(model, "customer")
    if _handover_open_documents not in HANDOVER_SOURCES:
        HANDOVER_SOURCES.append(_handover_open_documents)
    if _active_contract_customers not in ACTIVE_CONTRACT_SOURCES:
        ACTIVE_CONTRACT_SOURCES.append(_active_contract_customers)
    if _contract_achievement not in ACHIEVEMENT_SOURCES:
        ACHIEVEMENT_SOURCES.append(_contract_achievement)
