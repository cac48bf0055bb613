"""The path a deal takes: quote → contract → approval → order → shipment."""

from decimal import Decimal

import pytest

from kehu.approvals import services as approvals
from kehu.approvals.models import ApprovalRequest, ApprovalStatus
from kehu.products.services import stock_movement_post
from kehu.sales import services
from kehu.sales.models import ContractStatus, OrderStatus, QuoteStatus
from tests.products.factories import ProductFactory
from tests.sales.factories import contract_for, line, quote_for

pytestmark = pytest.mark.django_db


def test_large_contract_goes_through_sales_manager_then_general_manager(org):
    contract = contract_for(org.sales1, amount="150000.00")
    contract = services.contract_submit(actor=org.sales1, contract=contract)
    assert contract.status == ContractStatus.PENDING
    request = ApprovalRequest.objects.get(object_id=contract.pk)
    assert [s.approver_label for s in request.steps.all()] == ["销售经理", "总经理"]

    approvals.approval_approve(actor=org.salesmgr1, request=request, comment="ok")
    contract.refresh_from_db()
    assert contract.status == ContractStatus.PENDING
    approvals.approval_approve(actor=org.manager, request=request)
    contract.refresh_from_db()
    request.refresh_from_db()
    assert request.status == ApprovalStatus.APPROVED
    assert contract.status == ContractStatus.ACTIVE


def test_quote_to_contract_to_shipment(org):
    product = ProductFactory()
    stock_movement_post(actor=org.warehouse, product=product, kind="in", quantity=Decimal("10"))
    quote = quote_for(org.sales1, lines=[line(product, quantity="4", unit_price="100.00")])
    assert quote.total_amount == Decimal("452.00")  # 400 + 13% VAT
    quote = services.quote_send(actor=org.sales1, quote=quote)
    contract = services.quote_convert_to_contract(actor=org.sales1, quote=quote)
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.CONVERTED
    assert contract.total_amount == quote.total_amount
    services.contract_submit(actor=org.sales1, contract=contract)
    request = ApprovalRequest.objects.get(object_id=contract.pk, status="pending")
    approvals.approval_approve(actor=org.salesmgr1, request=request)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE

    order = services.order_create_from_contract(actor=org.sales1, contract=contract)
    order = services.order_confirm(actor=org.sales1, order=order)
    services.order_ship(actor=org.warehouse, order=order, quantities={order.lines.get().pk: "3"})
    order.refresh_from_db()
    product.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED
    assert product.stock_quantity == Decimal("7")
    services.order_ship(actor=org.warehouse, order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    services.order_cancel(actor=org.warehouse, order=order, reason="客户取消")
    product.refresh_from_db()
    assert product.stock_quantity == Decimal("10")
