"""Orders: from a contract or standalone, shipments, returns, cancelling, and stock."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.products.models import StockLevel, StockMovement
from kehu.products.services import warehouse_create, warehouse_default_ensure
from kehu.sales import services
from kehu.sales.models import Order, OrderStatus, Shipment, ShipmentKind
from kehu.system.models import SystemSettings
from tests.customers.factories import CustomerFactory
from tests.products.factories import ProductFactory
from tests.sales.factories import line, order_for
from tests.sales.helpers import activate, confirmed_order, db_state, stock_in

pytestmark = pytest.mark.django_db


def refused(call, *, error=ServiceError, field=None, code=None):
    before = db_state()
    with pytest.raises(error) as info:
        call()
    assert db_state() == before
    if field is not None:
        assert info.value.field == field, info.value.message
    if code is not None:
        assert info.value.code == code, info.value.message
    return info.value


def stock(product, warehouse=None) -> Decimal:
    warehouse = warehouse or warehouse_default_ensure()
    level = StockLevel.objects.filter(product=product, warehouse=warehouse).first()
    return level.quantity if level else Decimal("0")


@pytest.fixture
def products(db):
    return [ProductFactory(name="打印机"), ProductFactory(name="墨盒")]


@pytest.fixture
def contract(org, products):
    """Active: 10 printers at 1,000 and 50 cartridges at 20, tax-free."""
    draft = services.contract_create(
        actor=org.sales1,
        data={"customer": CustomerFactory(owner=org.sales1), "title": "年度采购"},
        lines=[
            {"product": products[0], "quantity": "10", "unit_price": "1000.00", "tax_rate": "0"},
            {"product": products[1], "quantity": "50", "unit_price": "20.00", "tax_rate": "0"},
        ],
    )
    return activate(draft, org)


def contract_lines(contract) -> dict:
    return {line.product.name: line for line in contract.lines.select_related("product")}


def quantities(order) -> dict[str, Decimal]:
    return {line.product.name: line.quantity for line in order.lines.select_related("product")}


# --- orders from a contract -----------------------------------------------------------------


def test_an_order_from_a_contract_defaults_to_what_is_left(org, contract):
    cl = contract_lines(contract)
    first = services.order_create_from_contract(
        actor=org.sales1,
        contract=contract,
        lines=[{"contract_line": cl["打印机"], "quantity": "4"}],
        data={"ship_by": timezone.localdate(), "title": "第一批"},
    )
    assert first.title == "第一批" and first.contract == contract
    assert first.customer == contract.customer and first.owner == contract.owner
    assert first.total_amount == Decimal("4000.00")
    rest = services.order_create_from_contract(actor=org.sales1, contract=contract)
    assert quantities(rest) == {"打印机": Decimal("6"), "墨盒": Decimal("50")}
    assert rest.lines.get(product__name="打印机").unit_price == Decimal("1000.00")
    refused(
        lambda: services.order_create_from_contract(actor=org.sales1, contract=contract),
        code="nothing_left",
    )


def test_ordering_more_than_the_contract_leaves_is_refused(org, contract):
    cl = contract_lines(contract)
    services.order_create_from_contract(
        actor=org.sales1, contract=contract, lines=[{"contract_line": cl["打印机"], "quantity": 7}]
    )
    error = refused(
        lambda: services.order_create_from_contract(
            actor=org.sales1,
            contract=contract,
            lines=[{"contract_line": cl["打印机"], "quantity": "3.001"}],
        ),
        code="over_contract",
    )
    assert "only 3 of" in str(error.message)
    # The same line twice, each within what is left, is more than what is left.
    refused(
        lambda: services.order_create_from_contract(
            actor=org.sales1,
            contract=contract,
            lines=[
                {"contract_line": cl["打印机"], "quantity": "2"},
                {"contract_line": cl["打印机"], "quantity": "2"},
            ],
        ),
        code="over_contract",
    )


def test_lines_of_another_contract_are_refused(org, contract, products):
    other = activate(
        services.contract_create(
            actor=org.sales1,
            data={"customer": contract.customer, "title": "另一份"},
            lines=[{"product": products[0], "quantity": "1"}],
        ),
        org,
    )
    foreign = other.lines.get()
    refused(
        lambda: services.order_create_from_contract(
            actor=org.sales1, contract=contract, lines=[{"contract_line": foreign, "quantity": 1}]
        ),
        field="lines",
    )
    # Nor may a standalone order borrow a contract's line (and its price).
    customer = contract.customer
    refused(
        lambda: services.order_create(
            actor=org.sales1,
            data={"customer": customer},
            lines=[{"product": products[0], "quantity": 1, "contract_line": foreign}],
        ),
        field="lines",
    )


def test_cancelled_and_deleted_orders_free_their_quantities(org, contract):
    whole = services.order_create_from_contract(actor=org.sales1, contract=contract)
    services.order_cancel(actor=org.sales1, order=whole, reason="重下")
    again = services.order_create_from_contract(actor=org.sales1, contract=contract)
    assert quantities(again) == {"打印机": Decimal("10"), "墨盒": Decimal("50")}
    services.order_delete(actor=org.admin, order=again)
    third = services.order_create_from_contract(actor=org.sales1, contract=contract)
    assert third.total_amount == contract.total_amount


def test_editing_an_order_from_a_contract_stays_within_the_contract(org, contract):
    cl = contract_lines(contract)
    order = services.order_create_from_contract(
        actor=org.sales1, contract=contract, lines=[{"contract_line": cl["打印机"], "quantity": 4}]
    )
    services.order_create_from_contract(
        actor=org.sales1, contract=contract, lines=[{"contract_line": cl["打印机"], "quantity": 5}]
    )
    # 1 left, plus this order's own 4: at most 5.
    order = services.order_update(
        actor=org.sales1,
        order=order,
        expected_version=order.version,
        data={"customer": CustomerFactory(owner=org.sales1), "notes": "改量"},
        lines=[{"contract_line": cl["打印机"], "quantity": 5}],
    )
    assert quantities(order) == {"打印机": Decimal("5")}
    assert order.customer == contract.customer  # the contract's, whatever was sent
    assert order.lines.get().contract_line == cl["打印机"]
    refused(
        lambda: services.order_update(
            actor=org.sales1,
            order=order,
            expected_version=order.version,
            data={},
            lines=[{"contract_line": cl["打印机"], "quantity": "5.5"}],
        ),
        code="over_contract",
    )


def test_another_owner_for_an_order_needs_sales_assign(org, contract):
    refused(
        lambda: services.order_create_from_contract(
            actor=org.sales1, contract=contract, data={"owner": org.sales2}
        ),
        error=PermissionRefused,
    )
    order = services.order_create_from_contract(actor=org.salesmgr1, contract=contract)
    assert order.owner == org.sales1  # the contract's owner, not the manager who typed it


# --- shipping -------------------------------------------------------------------------------


def test_partial_shipments_then_the_rest(org, products):
    stock_in(org.warehouse, products[0], "10")
    order = confirmed_order(org.sales1, [line(products[0], quantity="4")])
    order_line = order.lines.get()
    first = services.order_ship(
        actor=org.warehouse, order=order, quantities={order_line.pk: "1.5"}, carrier="顺丰"
    )
    year = timezone.localdate().year
    assert first.number.startswith(f"FH-{year}-") and first.kind == ShipmentKind.SHIPMENT
    order.refresh_from_db()
    order_line.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED
    assert order_line.shipped_quantity == Decimal("1.5")
    assert order_line.outstanding_quantity == Decimal("2.5")
    assert stock(products[0]) == Decimal("8.5")
    movement = first.lines.get().stock_movement
    assert movement.quantity == Decimal("-1.5") and movement.reference == first.number
    services.order_ship(actor=org.warehouse, order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert stock(products[0]) == Decimal("6")
    assert Shipment.objects.filter(order=order).count() == 2


def test_over_shipping_is_refused(org, products):
    stock_in(org.warehouse, products[0], "10")
    order = confirmed_order(org.sales1, [line(products[0], quantity="4")])
    pk = order.lines.get().pk
    refused(
        lambda: services.order_ship(actor=org.warehouse, order=order, quantities={pk: "4.001"}),
        code="too_many",
    )
    # One line named twice (as a number and as text) adds up.
    refused(
        lambda: services.order_ship(
            actor=org.warehouse, order=order, quantities={pk: "3", str(pk): "3"}
        ),
        code="too_many",
    )
    services.order_ship(actor=org.warehouse, order=order, quantities={pk: "3"})
    refused(
        lambda: services.order_ship(actor=org.warehouse, order=order, quantities={pk: "2"}),
        code="too_many",
    )


@pytest.mark.parametrize(
    "quantities",
    [
        {"nope": "1"},
        {999999: "1"},
        {"LINE": "-1"},
        {"LINE": "NaN"},
        {"LINE": "x"},
        {"LINE": "0.0001"},
        {"LINE": "0"},
        {},
    ],
)
def test_bad_ship_input_is_a_clear_refusal(org, products, quantities):
    stock_in(org.warehouse, products[0], "10")
    order = confirmed_order(org.sales1, [line(products[0], quantity="4")])
    pk = order.lines.get().pk
    given = {pk if key == "LINE" else key: value for key, value in quantities.items()}
    refused(
        lambda: services.order_ship(actor=org.warehouse, order=order, quantities=given),
        field="lines",
    )


def test_short_stock_refuses_and_writes_nothing(org, products):
    stock_in(org.warehouse, products[0], "10")
    stock_in(org.warehouse, products[1], "2")
    order = confirmed_order(
        org.sales1, [line(products[0], quantity="4"), line(products[1], quantity="3")]
    )
    error = refused(
        lambda: services.order_ship(actor=org.warehouse, order=order), code="insufficient_stock"
    )
    assert "Not enough stock" in str(error.message)
    assert (
        not Shipment.objects.exists()
        and not StockMovement.objects.filter(kind__startswith="order").exists()
    )
    assert stock(products[0]) == Decimal("10")


def test_negative_stock_when_the_settings_allow_it(org, products):
    SystemSettings.objects.update_or_create(pk=1, defaults={"allow_negative_stock": True})
    order = confirmed_order(org.sales1, [line(products[0], quantity="4")])
    services.order_ship(actor=org.warehouse, order=order)
    assert stock(products[0]) == Decimal("-4")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED


def test_moving_goods_needs_products_change(org, products):
    stock_in(org.warehouse, products[0], "10")
    order = confirmed_order(org.sales1, [line(products[0], quantity="4")])
    refused(lambda: services.order_ship(actor=org.sales1, order=order), error=PermissionRefused)
    refused(lambda: services.order_ship(actor=org.salesmgr1, order=order), error=PermissionRefused)
    services.order_ship(actor=org.warehouse, order=order)
    refused(
        lambda: services.order_return(actor=org.sales1, order=order, quantities=None, reason="x"),
        error=PermissionRefused,
    )


def test_shipping_many_lines_writes_shipment_lines_and_counters_in_bulk(org):
    products = [ProductFactory() for _ in range(6)]
    for product in products:
        stock_in(org.warehouse, product, "5")
    order = confirmed_order(org.sales1, [line(p, quantity="2") for p in products])
    with CaptureQueriesContext(connection) as captured:
        services.order_ship(actor=org.warehouse, order=order)
    sql = [q["sql"] for q in captured.captured_queries]
    assert sum('INSERT INTO "sales_shipmentline"' in s for s in sql) == 1
    assert sum('UPDATE "sales_orderline"' in s for s in sql) == 1
    assert sum('FROM "sales_orderline"' in s for s in sql) == 1


# --- returns and cancelling -----------------------------------------------------------------


def test_a_return_restores_stock_and_reopens_the_order(org, products):
    stock_in(org.warehouse, products[0], "10")
    order = confirmed_order(org.sales1, [line(products[0], quantity="4")])
    pk = order.lines.get().pk
    services.order_ship(actor=org.warehouse, order=order)
    order = services.order_complete(actor=org.sales1, order=order)
    refused(
        lambda: services.order_return(
            actor=org.warehouse, order=order, quantities={pk: 1}, reason=""
        ),
        field="reason",
    )
    refused(
        lambda: services.order_return(
            actor=org.warehouse, order=order, quantities={pk: 5}, reason="破损"
        ),
        code="too_many",
    )
    back = services.order_return(
        actor=org.warehouse, order=order, quantities={pk: 1}, reason="破损"
    )
    assert back.number.startswith("TH-") and back.kind == ShipmentKind.RETURN
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED and order.completed_at is None
    assert stock(products[0]) == Decimal("7")
    assert order.lines.get().outstanding_quantity == Decimal("1")
    services.order_return(actor=org.warehouse, order=order, quantities=None, reason="全部退回")
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert stock(products[0]) == Decimal("10")


def test_goods_come_back_to_the_warehouse_they_left(org, products):
    second = warehouse_create(actor=org.warehouse, data={"name": "二号仓", "code": "w2"})
    stock_in(org.warehouse, products[0], "10", warehouse=second)
    stock_in(org.warehouse, products[0], "10")
    order = confirmed_order(org.sales1, [line(products[0], quantity="4")])
    pk = order.lines.get().pk
    services.order_ship(actor=org.warehouse, order=order, quantities={pk: 3}, warehouse=second)
    services.order_return(actor=org.warehouse, order=order, quantities={pk: 1}, reason="破损")
    assert stock(products[0], second) == Decimal("8")
    assert stock(products[0]) == Decimal("10")
    # Goods out from two warehouses: a return must say where to.
    services.order_ship(actor=org.warehouse, order=order, quantities={pk: 2})
    refused(
        lambda: services.order_return(
            actor=org.warehouse, order=order, quantities={pk: 1}, reason="x"
        ),
        field="warehouse",
    )
    # Cancelling sends each part home.
    services.order_cancel(actor=org.warehouse, order=order, reason="取消")
    assert stock(products[0], second) == Decimal("10")
    assert stock(products[0]) == Decimal("10")
    returns = Shipment.objects.filter(order=order, kind=ShipmentKind.RETURN)
    assert returns.count() == 3
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert all(line.outstanding_quantity == line.quantity for line in order.lines.all())


def test_cancel_with_goods_out_needs_products_change_and_restores_stock(org, products):
    stock_in(org.warehouse, products[0], "10")
    stock_in(org.warehouse, products[1], "10")
    order = confirmed_order(
        org.sales1, [line(products[0], quantity="4"), line(products[1], quantity="2")]
    )
    services.order_ship(
        actor=org.warehouse, order=order, quantities={order.lines.get(product=products[0]).pk: 3}
    )
    error = refused(
        lambda: services.order_cancel(actor=org.sales1, order=order, reason="客户取消"),
        error=PermissionRefused,
    )
    assert "warehouse" in str(error.message)
    order = services.order_cancel(actor=org.warehouse, order=order, reason="客户取消")
    assert order.status == OrderStatus.CANCELLED and order.cancel_reason == "客户取消"
    assert stock(products[0]) == Decimal("10") and stock(products[1]) == Decimal("10")
    back = Shipment.objects.get(order=order, kind=ShipmentKind.RETURN)
    assert back.number.startswith("TH-") and back.lines.get().quantity == Decimal("3")


def test_cancel_with_nothing_out_needs_sales_change(org):
    order = order_for(org.sales1)
    refused(
        lambda: services.order_cancel(actor=org.warehouse, order=order, reason="x"),
        error=PermissionRefused,
    )
    refused(
        lambda: services.order_cancel(actor=org.finance, order=order, reason="x"),
        error=PermissionRefused,
    )
    assert services.order_cancel(actor=org.sales1, order=order, reason="x").status == "cancelled"


def test_shipment_numbers_are_consecutive_per_kind(org, products):
    stock_in(org.warehouse, products[0], "100")
    numbers = []
    for _ in range(3):
        order = confirmed_order(org.sales1, [line(products[0], quantity="1")])
        numbers.append(services.order_ship(actor=org.warehouse, order=order).number)
        numbers.append(
            services.order_return(
                actor=org.warehouse, order=order, quantities=None, reason="退"
            ).number
        )
    year = timezone.localdate().year
    assert numbers == [
        f"FH-{year}-000001",
        f"TH-{year}-000001",
        f"FH-{year}-000002",
        f"TH-{year}-000002",
        f"FH-{year}-000003",
        f"TH-{year}-000003",
    ]
    assert Order.objects.filter(status=OrderStatus.CONFIRMED).count() == 3
