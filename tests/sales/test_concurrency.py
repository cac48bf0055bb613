"""Sales under concurrency (PostgreSQL; threads cannot share SQLite's in-memory test database).

Run with ``DATABASE_URL=postgres://… pytest tests/sales/test_concurrency.py``. Each test
starts its threads together at a barrier, then checks that exactly one of the competing
requests won, that the losers were refused cleanly, and that the stored figures add up.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from kehu.approvals.models import ApprovalAction, ApprovalRequest, ApprovalStatus
from kehu.approvals.services import approval_approve
from kehu.core.exceptions import ConflictError, ServiceError
from kehu.products.models import Product, StockLevel, StockMovement
from kehu.sales import services
from kehu.sales.models import (
    Contract,
    ContractStatus,
    DocumentEvent,
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
)
from tests.core.conftest import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("threads share the test database on PostgreSQL only")


@pytest.fixture
def product(org):
    from kehu.products.services import stock_movement_post, warehouse_default_ensure
    from tests.products.factories import ProductFactory

    warehouse_default_ensure()
    product = ProductFactory()
    stock_movement_post(actor=org.warehouse, product=product, kind="in", quantity=Decimal("5"))
    return product


@pytest.fixture
def customer(org):
    from tests.customers.factories import CustomerFactory

    return CustomerFactory(owner=org.sales1)


def confirmed(org, customer, product, quantity: str) -> Order:
    order = services.order_create(
        actor=org.sales1,
        data={"customer": customer, "title": "抢货"},
        lines=[{"product": product, "quantity": quantity}],
    )
    return services.order_confirm(actor=org.sales1, order=order)


def winners_and_losers(results):
    unexpected = [r for r in results if isinstance(r, BaseException)]
    unexpected = [r for r in unexpected if not isinstance(r, ServiceError)]
    assert not unexpected, unexpected
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, ServiceError)]
    return won, lost


def assert_stock_consistent(product) -> Decimal:
    """Level = sum of movements = product total, and no balance ever went below zero."""
    level = StockLevel.objects.get(product=product).quantity
    moved = StockMovement.objects.filter(product=product).aggregate(s=Sum("quantity"))["s"]
    assert level == moved == Product.objects.get(pk=product.pk).stock_quantity
    running = Decimal("0")
    for movement in StockMovement.objects.filter(product=product).order_by("id"):
        running += movement.quantity
        assert movement.balance_after == running >= 0
    return level


def test_two_people_shipping_the_last_units_of_one_order_ship_once(org, customer, product):
    order = confirmed(org, customer, product, "5")
    results = run_in_threads(
        4, lambda i: services.order_ship(actor=org.warehouse, order=order).number
    )
    won, lost = winners_and_losers(results)
    assert len(won) == 1 and len(lost) == 3
    assert all(error.code == "invalid_status" for error in lost), lost
    assert Shipment.objects.filter(order=order).count() == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    assert OrderLine.objects.get(order=order).shipped_quantity == Decimal("5")
    assert assert_stock_consistent(product) == Decimal("0")


def test_partial_shipments_racing_never_ship_more_than_ordered(org, customer, product):
    order = confirmed(org, customer, product, "5")
    pk = order.lines.get().pk
    results = run_in_threads(
        4, lambda i: services.order_ship(actor=org.warehouse, order=order, quantities={pk: "2"})
    )
    won, lost = winners_and_losers(results)
    assert len(won) == 2 and len(lost) == 2  # 2 + 2 fit in 5; a third 2 does not
    assert all(error.code == "too_many" for error in lost), lost
    line = OrderLine.objects.get(pk=pk)
    assert line.shipped_quantity == Decimal("4")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PARTIALLY_SHIPPED
    assert assert_stock_consistent(product) == Decimal("1")


def test_two_orders_competing_for_the_last_units_one_ships(org, customer, product):
    orders = [confirmed(org, customer, product, "4") for _ in range(2)]
    results = run_in_threads(
        2, lambda i: services.order_ship(actor=org.warehouse, order=orders[i]).number
    )
    won, lost = winners_and_losers(results)
    assert len(won) == 1 and len(lost) == 1
    assert lost[0].code == "insufficient_stock"
    assert Shipment.objects.count() == 1
    statuses = sorted(
        Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True)
    )
    assert statuses == [OrderStatus.CONFIRMED, OrderStatus.SHIPPED]
    assert assert_stock_consistent(product) == Decimal("1")


def test_contract_numbers_are_gap_free_and_unique_under_concurrent_creation(org, customer, product):
    def work(index):
        numbers = []
        for _ in range(5):
            contract = services.contract_create(
                actor=org.sales1,
                data={"customer": customer, "title": f"并发{index}"},
                lines=[{"product": product, "quantity": "1"}],
            )
            numbers.append(contract.number)
        return numbers

    results = run_in_threads(8, work)
    assert not any(isinstance(r, BaseException) for r in results), results
    numbers = [number for numbers in results for number in numbers]
    assert len(numbers) == len(set(numbers)) == 40
    sequence = sorted(int(number.rsplit("-", 1)[1]) for number in numbers)
    assert sequence == list(range(sequence[0], sequence[0] + 40))
    assert Contract.objects.count() == 40


def test_two_approvers_deciding_one_step_make_one_decision(org, customer, product):
    contract = services.contract_create(
        actor=org.sales1,
        data={"customer": customer, "title": "一人拍板"},
        lines=[{"product": product, "quantity": "1", "unit_price": "5000.00"}],
    )
    contract = services.contract_submit(actor=org.sales1, contract=contract)
    request = ApprovalRequest.objects.get(object_id=contract.pk, status="pending")
    step = request.steps.get()
    approvers = [org.salesmgr1, org.salesdirector]
    assert set(step.candidates.all()) == set(approvers)
    results = run_in_threads(
        2, lambda i: approval_approve(actor=approvers[i], request=request, comment=str(i))
    )
    won, lost = winners_and_losers(results)
    assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], ConflictError)
    request.refresh_from_db()
    assert request.status == ApprovalStatus.APPROVED
    assert ApprovalAction.objects.filter(request=request, kind="approve").count() == 1
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.ACTIVE
    activations = DocumentEvent.objects.filter(object_id=contract.pk, to_status="active")
    assert activations.count() == 1


def test_two_orders_for_what_is_left_of_a_contract_one_is_placed(org, customer, product):
    from tests.sales.helpers import activate

    contract = services.contract_create(
        actor=org.sales1,
        data={"customer": customer, "title": "余量"},
        lines=[{"product": product, "quantity": "3", "unit_price": "10.00"}],
    )
    contract = activate(contract, org)
    results = run_in_threads(
        3, lambda i: services.order_create_from_contract(actor=org.sales1, contract=contract).pk
    )
    won, lost = winners_and_losers(results)
    assert len(won) == 1 and len(lost) == 2
    assert all(error.code == "nothing_left" for error in lost), lost
    ordered = OrderLine.objects.filter(order__contract=contract).aggregate(s=Sum("quantity"))["s"]
    assert ordered == Decimal("3")
