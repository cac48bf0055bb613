"""The bulk sales and finance history: every invariant the services keep holds afterwards.

Runs on SQLite and (with DATABASE_URL pointing at PostgreSQL) on PostgreSQL, where the rows
go in by COPY.
"""

import datetime
import re
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db.models import Max
from django.utils import timezone

from kehu.approvals.models import ApprovalAction, ApprovalRequest, ApprovalStatus
from kehu.core.models import DocumentSequence
from kehu.customers.models import Customer, CustomerEvent, CustomerStage
from kehu.finance import services as finance_services
from kehu.finance.generate import FinanceHistory
from kehu.finance.models import (
    ContractLedger,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    ReceivableInstalment,
)
from kehu.products.models import Product, StockLevel, StockMovement
from kehu.products.services import stock_movement_post, warehouse_default_ensure
from kehu.sales import services as sales_services
from kehu.sales.generate import (
    HISTORY_RULE_NAME,
    DemandCalendar,
    HistoryMix,
    day_weight,
    sales_history_generate,
)
from kehu.sales.models import (
    Contract,
    ContractLine,
    ContractStatus,
    DocumentEvent,
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
    ShipmentLine,
)
from kehu.sales.totals import line_amounts
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.products.factories import CategoryFactory, ProductFactory
from tests.sales.factories import contract_for, line

pytestmark = pytest.mark.django_db

NUMBER = re.compile(r"^([A-Z]+)-(\d{4})-(\d{6,})$")


def _catalogue() -> list[Product]:
    """Goods in four categories, list price above cost."""
    products = []
    for c in range(4):
        category = CategoryFactory(name=f"品类{c}")
        for i in range(6):
            price = Decimal(200 + 450 * i + 97 * c)
            products.append(
                ProductFactory(
                    category=category,
                    list_price=price,
                    cost_price=(price * Decimal("0.7")).quantize(Decimal("0.01")),
                    tax_rate=Decimal("13.00") if i % 3 else Decimal("6.00"),
                    low_stock_threshold=Decimal(5),
                )
            )
    return products


@pytest.fixture
def generated(org):
    """Existing business first (a contract made through the services, stock received now
    and one receipt dated inside the period), then two years of history for 40 customers
    and two pool customers."""
    today = timezone.localdate()
    end = today - datetime.timedelta(days=30)
    start = end - datetime.timedelta(days=730)
    products = _catalogue()
    owners = [org.sales1, org.sales2, org.sales3, org.salesmgr1]
    customers = []
    for i in range(40):
        customer = CustomerFactory(owner=owners[i % 4])
        if i % 2:
            ContactFactory(customer=customer, is_primary=True)
        customers.append(customer)
    pool = [CustomerFactory(owner=None, in_pool=True) for _ in range(2)]
    before = contract_for(org.sales1, customer=customers[0])
    warehouse = warehouse_default_ensure()
    stock_movement_post(actor=org.warehouse, product=products[0], kind="in", quantity=50)
    inside = stock_movement_post(actor=org.warehouse, product=products[1], kind="in", quantity=7)
    StockMovement.objects.filter(pk=inside.pk).update(
        at=timezone.make_aware(datetime.datetime.combine(start, datetime.time(12)))
        + datetime.timedelta(days=200)
    )
    sequences_before = {(s.prefix, s.year): s.last_value for s in DocumentSequence.objects.all()}
    result = sales_history_generate(
        customers=Customer.objects.filter(pk__in=[c.pk for c in customers + pool]),
        products=products,
        start=start,
        end=end,
        seed=7,
        mix=HistoryMix(buyers=0.9),
        sinks=[FinanceHistory(seed=7, confirmer=org.finance)],
        pool_owners=[org.sales3],
        shipper=org.warehouse,
        pairs=[(products[0].pk, products[13].pk)],
        batch=15,  # several batches
    )
    return {
        "result": result,
        "start": start,
        "end": end,
        "before": before,
        "customers": customers,
        "pool": pool,
        "products": products,
        "warehouse": warehouse,
        "sequences_before": sequences_before,
    }


# --- the invariants, reusable on any database (the demo test runs them too) ----------------


def assert_documents_add_up() -> None:
    for model, line_model, parent in (
        (Contract, ContractLine, "contract_id"),
        (Order, OrderLine, "order_id"),
    ):
        sums: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
        for row in line_model.objects.values(
            parent, "quantity", "unit_price", "discount_rate", "tax_rate", "subtotal",
            "tax_amount", "total_amount",
        ):  # fmt: skip
            amounts = line_amounts(
                quantity=row["quantity"],
                unit_price=row["unit_price"],
                discount_rate=row["discount_rate"],
                tax_rate=row["tax_rate"],
            )
            assert (amounts.subtotal, amounts.tax_amount, amounts.total_amount) == (
                row["subtotal"],
                row["tax_amount"],
                row["total_amount"],
            )
            total = sums[row[parent]]
            total[0] += row["subtotal"]
            total[1] += row["tax_amount"]
            total[2] += row["total_amount"]
        for pk, subtotal, tax, total in model.all_objects.values_list(
            "pk", "subtotal_amount", "tax_amount", "total_amount"
        ):
            assert [subtotal, tax, total] == sums[pk], (model, pk)
            assert subtotal + tax == total


def assert_orders_follow_contracts() -> None:
    ordered: dict[int, Decimal] = defaultdict(Decimal)
    shipped: dict[int, Decimal] = defaultdict(Decimal)
    for order_line, quantity in ShipmentLine.objects.filter(shipment__kind="shipment").values_list(
        "order_line_id", "quantity"
    ):
        shipped[order_line] += quantity
    returned: dict[int, Decimal] = defaultdict(Decimal)
    for order_line, quantity in ShipmentLine.objects.filter(shipment__kind="return").values_list(
        "order_line_id", "quantity"
    ):
        returned[order_line] += quantity
    for row in OrderLine.objects.values(
        "pk", "quantity", "shipped_quantity", "returned_quantity", "contract_line_id",
        "contract_line__contract_id", "contract_line__product_id", "product_id",
        "order__contract_id", "order__customer_id", "order__contract__customer_id",
        "order__order_date", "order__contract__signed_on", "order__status",
    ):  # fmt: skip
        assert row["shipped_quantity"] == shipped[row["pk"]]
        assert row["returned_quantity"] == returned[row["pk"]]
        if row["contract_line_id"]:
            assert row["contract_line__contract_id"] == row["order__contract_id"]
            assert row["contract_line__product_id"] == row["product_id"]
            assert row["order__customer_id"] == row["order__contract__customer_id"]
            assert row["order__order_date"] >= row["order__contract__signed_on"]
            if row["order__status"] != OrderStatus.CANCELLED:
                ordered[row["contract_line_id"]] += row["quantity"]
        if row["order__status"] in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
            assert row["shipped_quantity"] - row["returned_quantity"] == row["quantity"]
    for pk, quantity in ContractLine.objects.values_list("pk", "quantity"):
        assert ordered[pk] <= quantity
    for shipment in Shipment.objects.select_related("order"):
        assert shipment.shipped_on >= shipment.order.order_date


def assert_events_match_statuses() -> None:
    from django.contrib.contenttypes.models import ContentType

    for model in (Contract, Order):
        content_type = ContentType.objects.get_for_model(model)
        last: dict[int, tuple] = {}
        for object_id, to_status, at, _pk in (
            DocumentEvent.objects.filter(content_type=content_type)
            .order_by("at", "pk")
            .values_list("object_id", "to_status", "at", "pk")
        ):
            last[object_id] = (to_status, at)
        for pk, status in model.all_objects.values_list("pk", "status"):
            assert last[pk][0] == status, (model, pk)


def assert_approvals_recorded() -> None:
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(Contract)
    approved = set(
        ApprovalRequest.objects.filter(
            content_type=content_type, status=ApprovalStatus.APPROVED
        ).values_list("object_id", flat=True)
    )
    in_force = Contract.objects.filter(
        status__in=[ContractStatus.ACTIVE, ContractStatus.COMPLETED]
    ).values_list("pk", flat=True)
    assert set(in_force) <= approved


def assert_money_adds_up() -> None:
    totals = dict(Contract.all_objects.values_list("pk", "total_amount"))
    planned: dict[int, Decimal] = defaultdict(Decimal)
    for contract, amount in ReceivableInstalment.objects.values_list("contract_id", "amount"):
        planned[contract] += amount
    for contract, amount in planned.items():
        assert amount == totals[contract], contract
    confirmed: dict[int, Decimal] = defaultdict(Decimal)
    for contract, amount in Payment.objects.filter(status=PaymentStatus.CONFIRMED).values_list(
        "contract_id", "amount"
    ):
        confirmed[contract] += amount
    for ledger in ContractLedger.objects.all():
        assert ledger.confirmed_amount == confirmed[ledger.contract_id], ledger.contract_id
        assert 0 <= ledger.received_amount <= totals[ledger.contract_id]
    assert set(confirmed) <= set(ContractLedger.objects.values_list("contract_id", flat=True))
    invoiced: dict[int, Decimal] = defaultdict(Decimal)
    for contract, amount in Invoice.objects.filter(status=InvoiceStatus.ISSUED).values_list(
        "contract_id", "amount"
    ):
        invoiced[contract] += amount
    for ledger in ContractLedger.objects.all():
        assert ledger.invoiced_amount == invoiced[ledger.contract_id], ledger.contract_id
        assert ledger.invoiced_amount <= totals[ledger.contract_id]
    numbers = [n for n in Invoice.objects.values_list("invoice_number", flat=True) if n]
    assert len(numbers) == len(set(numbers))
    for payment in Payment.objects.select_related("instalment"):
        if payment.instalment_id:
            assert payment.instalment.contract_id == payment.contract_id


def assert_stock_consistent() -> None:
    movements = defaultdict(list)
    for product, warehouse, quantity, balance in StockMovement.objects.order_by(
        "at", "pk"
    ).values_list("product_id", "warehouse_id", "quantity", "balance_after"):
        movements[(product, warehouse)].append((quantity, balance))
    for (product, warehouse), rows in movements.items():
        running = Decimal(0)
        for quantity, balance in rows:
            running += quantity
            assert balance == running >= 0, (product, warehouse)
        level = StockLevel.objects.get(product_id=product, warehouse_id=warehouse)
        assert level.quantity == running
    per_product: dict[int, Decimal] = defaultdict(Decimal)
    for product, quantity in StockLevel.objects.values_list("product_id", "quantity"):
        per_product[product] += quantity
    for pk, stock in Product.all_objects.values_list("pk", "stock_quantity"):
        assert stock == per_product[pk], pk


def assert_scope_set() -> None:
    from kehu.system.models import User

    departments = dict(User.objects.values_list("pk", "department_id"))
    for model in (Contract, Order, Payment, Invoice):
        manager = getattr(model, "all_objects", model.objects)
        for owner, department in manager.values_list("owner_id", "department_id"):
            assert owner is not None and department is not None
            assert department == departments[owner]


def assert_numbers_gap_free() -> None:
    seen: dict[tuple[str, int], list[int]] = defaultdict(list)
    for model in (Contract, Order, Shipment, Payment, Invoice):
        manager = getattr(model, "all_objects", model.objects)
        for number in manager.values_list("number", flat=True):
            match = NUMBER.match(number)
            assert match, number
            seen[(match[1], int(match[2]))].append(int(match[3]))
    sequences = {(s.prefix, s.year): s.last_value for s in DocumentSequence.objects.all()}
    for key, values in seen.items():
        assert sorted(values) == list(range(1, len(values) + 1)), key
        assert sequences[key] == len(values), key


def assert_history_consistent() -> None:
    assert_documents_add_up()
    assert_orders_follow_contracts()
    assert_events_match_statuses()
    assert_approvals_recorded()
    assert_money_adds_up()
    assert_stock_consistent()
    assert_scope_set()
    assert_numbers_gap_free()


# --- tests ----------------------------------------------------------------------------------


def test_history_is_consistent(generated):
    counts = generated["result"].counts
    for key in (
        "contracts", "contract lines", "approval requests", "approval actions", "orders",
        "order lines", "shipments", "shipment lines", "stock movements", "document events",
        "receivable instalments", "payments", "contract ledgers",
    ):  # fmt: skip
        assert counts.get(key, 0) > 0, key
    assert generated["result"].rows_per_second > 0
    assert_history_consistent()


def test_history_shapes(generated, org):
    start, end = generated["start"], generated["end"]
    history = Contract.objects.exclude(pk=generated["before"].pk)
    assert set(history.values_list("status", flat=True)) == {
        ContractStatus.ACTIVE,
        ContractStatus.COMPLETED,
    }
    assert set(Order.objects.values_list("status", flat=True)) <= {
        OrderStatus.SHIPPED,
        OrderStatus.COMPLETED,
    }
    assert Order.objects.filter(status=OrderStatus.COMPLETED).exists()
    for contract in history:
        assert start <= contract.signed_on <= end
        assert contract.approved_at is not None
        assert timezone.localtime(contract.created_at).date() <= contract.signed_on
    assert Order.objects.aggregate(m=Max("order_date"))["m"] <= end
    assert Payment.objects.aggregate(m=Max("received_on"))["m"] <= end
    # Pool customers' history belongs to the former owner given.
    pool_orders = Order.objects.filter(customer__in=generated["pool"])
    assert set(pool_orders.values_list("owner_id", flat=True)) <= {org.sales3.pk}
    # A customer with a primary contact signs through it.
    with_contact = Contract.objects.filter(contact__isnull=False).first()
    assert with_contact is not None and with_contact.contact.customer_id == with_contact.customer_id
    # Most money due is paid, some of it late, and some instalments are overdue at the end.
    due: dict[int, Decimal] = defaultdict(Decimal)
    for contract, amount in ReceivableInstalment.objects.filter(due_date__lte=end).values_list(
        "contract_id", "amount"
    ):
        due[contract] += amount
    received = dict(ContractLedger.objects.values_list("contract_id", "confirmed_amount"))
    overdue = [c for c, amount in due.items() if amount > received.get(c, 0)]
    assert 0 < len(overdue) < len(due) / 2
    late = [
        p
        for p in Payment.objects.select_related("instalment")
        if p.received_on > p.instalment.due_date + datetime.timedelta(days=7)
    ]
    assert 0 < len(late) < Payment.objects.count() / 2
    approvals = ApprovalRequest.objects.filter(rule_name=HISTORY_RULE_NAME)
    assert approvals.count() == history.count()
    assert ApprovalAction.objects.filter(request__in=approvals, kind="auto_approve").count() == (
        history.count()
    )


def test_customers_deal_times_and_creation(generated):
    start = generated["start"]
    touched = Customer.objects.filter(pk__in=Contract.objects.values("customer_id"))
    latest = dict(
        Contract.objects.values("customer_id")
        .annotate(m=Max("approved_at"))
        .values_list("customer_id", "m")
    )
    assert touched.exists()
    for customer in touched:
        if customer.pk == generated["before"].customer_id and customer.pk not in latest:
            continue
        assert customer.stage == CustomerStage.WON
        assert customer.last_deal_at == latest[customer.pk]
        first = Contract.objects.filter(customer=customer).order_by("created_at").first()
        assert customer.created_at < first.created_at
        event = CustomerEvent.objects.filter(customer=customer, kind="created").first()
        if event is not None:
            assert event.at <= first.created_at
    assert any(c.created_at.date() < start + datetime.timedelta(days=400) for c in touched)


def test_numbers_continue_through_the_services(generated, org):
    year = timezone.localdate().year
    before = generated["sequences_before"]
    assert before[("HT", year)] == 1  # the contract made first keeps its number
    assert generated["before"].number == f"HT-{year}-000001"
    history_years = set(int(n[3:7]) for n in Contract.objects.values_list("number", flat=True))
    assert len(history_years) >= 2  # numbered by the year of their date
    contract = contract_for(org.sales2)
    order = sales_services.order_create(
        actor=org.sales2,
        data={"customer": contract.customer, "title": "追加订单"},
        lines=[line(generated["products"][2], quantity="1")],
    )
    active = (
        Contract.objects.filter(status=ContractStatus.ACTIVE, ledger__isnull=False)
        .select_related("ledger")
        .order_by("pk")
    )
    target = next(c for c in active if c.ledger.received_amount < c.total_amount)
    payment, _created = finance_services.payment_register(
        actor=org.finance,
        data={
            "contract": target,
            "amount": Decimal("1.00"),
            "received_on": timezone.localdate(),
            "method": "bank_transfer",
        },
    )
    payment = finance_services.payment_confirm(actor=org.finance, payment=payment)
    for number in (contract.number, order.number, payment.number):
        assert number.split("-")[1] == str(year)
    # Receive and ship through the services: the balances carry on from the history's.
    stock_movement_post(
        actor=org.warehouse, product=generated["products"][2], kind="in", quantity=3
    )
    order = sales_services.order_confirm(actor=org.sales2, order=order)
    sales_services.order_ship(actor=org.warehouse, order=order)
    assert_numbers_gap_free()
    assert_stock_consistent()
    assert_money_adds_up()


def test_generation_is_deterministic_and_refuses_an_empty_period(org):
    from kehu.core.exceptions import ServiceError

    products = _catalogue()
    customers = [CustomerFactory(owner=org.sales1) for _ in range(8)]
    end = datetime.date(2025, 6, 30)
    kwargs = {
        "customers": Customer.objects.filter(pk__in=[c.pk for c in customers]),
        "products": products,
        "start": end - datetime.timedelta(days=365),
        "end": end,
        "seed": 3,
        "mix": HistoryMix(buyers=1.0),
    }
    with pytest.raises(ServiceError):
        sales_history_generate(**{**kwargs, "start": end})
    from django.db import transaction

    def snapshot():
        return list(
            Order.objects.order_by("number").values_list(
                "number", "customer_id", "order_date", "total_amount"
            )
        )

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        sales_history_generate(**kwargs)
        first = snapshot()
        raise Rollback
    sales_history_generate(**kwargs)
    assert snapshot() == first and first


def test_calendar_has_seasons():
    def mean(days):
        return sum(day_weight(d) for d in days) / len(days)

    def month(year, number):
        first = datetime.date(year, number, 1)
        return [first + datetime.timedelta(days=i) for i in range(28)]

    december, february, august = month(2025, 12), month(2026, 2), month(2025, 8)
    assert mean(december) > mean(august) and mean(december) > mean(february)
    before_festival = [datetime.date(2026, 2, 1) + datetime.timedelta(days=i) for i in range(10)]
    festival = [datetime.date(2026, 2, 16) + datetime.timedelta(days=i) for i in range(7)]
    assert mean(before_festival) > 3 * mean(festival)
    calendar = DemandCalendar(datetime.date(2025, 1, 1), datetime.date(2025, 12, 31))
    assert abs(calendar.length - 365) < 1e-6
    assert calendar.day(0) == datetime.date(2025, 1, 1)
    assert calendar.day(calendar.tau(datetime.date(2025, 7, 1)) + 0.5) == datetime.date(2025, 7, 1)
