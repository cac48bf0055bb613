"""Helpers for the sales service tests: database snapshots, activation, stock."""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps

from kehu.approvals.models import ApprovalRequest, ApprovalStatus
from kehu.approvals.services import approval_approve
from kehu.products.services import stock_movement_post
from kehu.sales import services
from kehu.sales.models import Contract, ContractStatus, Order

# Every table a sales service may write, directly or through another module.
WRITTEN_MODELS = [
    "sales.Quote",
    "sales.QuoteLine",
    "sales.Contract",
    "sales.ContractLine",
    "sales.ContractAmendment",
    "sales.Order",
    "sales.OrderLine",
    "sales.Shipment",
    "sales.ShipmentLine",
    "sales.DocumentEvent",
    "approvals.ApprovalRequest",
    "approvals.ApprovalStep",
    "approvals.ApprovalAction",
    "products.Product",
    "products.StockLevel",
    "products.StockMovement",
    "customers.Customer",
    "core.DocumentSequence",
    "system.AuditLog",
    "system.Notification",
]


def db_state() -> dict[str, list[dict]]:
    """Every row of every table a sales service may write, to compare before and after."""
    state = {}
    for label in WRITTEN_MODELS:
        model = apps.get_model(label)
        state[label] = list(model._base_manager.order_by("pk").values())
    return state


def approvers_for(request: ApprovalRequest, org) -> list:
    """Who decides each step of ``request``: the department's sales manager and the general
    manager where they may, else the first candidate (the sales director for 销售二部)."""
    chosen = []
    for step in request.steps.order_by("sort_order"):
        candidates = list(step.candidates.order_by("id"))
        preferred = [user for user in (org.salesmgr1, org.manager) if user in candidates]
        chosen.append((preferred or candidates)[0])
    return chosen


def pending_request(document) -> ApprovalRequest:
    from kehu.approvals.services import approval_pending_for_document

    request = approval_pending_for_document(document)
    assert request is not None, "nothing is waiting for approval"
    return request


def activate(contract: Contract, org, *, submitter=None) -> Contract:
    """Submit ``contract`` and approve every step with the org's default approvers."""
    submitter = submitter or contract.owner
    contract = services.contract_submit(actor=submitter, contract=contract)
    if contract.status == ContractStatus.PENDING:
        request = pending_request(contract)
        for approver in approvers_for(request, org):
            approval_approve(actor=approver, request=request)
        request.refresh_from_db()
        assert request.status == ApprovalStatus.APPROVED
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE
    return contract


def stock_in(actor, product, quantity, warehouse=None) -> None:
    stock_movement_post(
        actor=actor, product=product, warehouse=warehouse, kind="in", quantity=Decimal(quantity)
    )


def confirmed_order(owner, lines) -> Order:
    from tests.sales.factories import order_for

    order = order_for(owner, lines=lines)
    return services.order_confirm(actor=owner, order=order)
