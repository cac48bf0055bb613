"""Stored aggregates (kehu.analytics.aggregates) equal the live queries over the documents.

A seeded random sequence of service operations (contracts approved, amended, completed,
terminated, deleted; plans set and rescheduled; payments confirmed and reversed; refunds;
orders placed, changed, confirmed, cancelled, deleted; handovers) runs through the real
services; after each one the stored figures are compared with the live computations
(target achievement, top products, receivables aging by customer, owner, department and in
total, today and on later days), for users of every scope, and the set-based rebuild gives
the rows the services kept.
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from kehu.analytics import aggregates
from kehu.analytics.forms import Period
from kehu.analytics.models import (
    ContractWithoutPlan,
    CustomerReceivable,
    ProductFigure,
    ReceivableDay,
    ReceivableGroup,
    ReceivableMonth,
    SalesFigure,
)
from kehu.analytics.selectors import top_products
from kehu.core.dates import month_end, month_start
from kehu.core.exceptions import ServiceError
from kehu.customers import services as customer_services
from kehu.finance import selectors as finance_selectors
from kehu.finance import services as finance
from kehu.finance.models import Payment, PaymentKind
from kehu.hr.selectors import achievement_for
from kehu.sales import services as sales
from kehu.sales.models import Contract, Order, OrderLine, OrderStatus
from tests.customers.factories import CustomerFactory
from tests.finance.factories import active_contract, approve_all, approved_refund, pay, plan
from tests.products.factories import ProductFactory
from tests.sales.factories import contract_for, line

pytestmark = pytest.mark.django_db(transaction=False)

ZERO = Decimal("0.00")
MODELS = (
    SalesFigure,
    ProductFigure,
    ReceivableDay,
    ReceivableMonth,
    CustomerReceivable,
    ReceivableGroup,
)


def top_products_live(*, user, period: Period, limit: int = 10) -> list[dict]:
    """The dashboard's top products as they were computed before the aggregates: the order
    lines of the order list in scope (the reference)."""
    from kehu.sales.selectors import order_list_visible_to

    orders = (
        order_list_visible_to(user=user)
        .exclude(status=OrderStatus.CANCELLED)
        .filter(order_date__gte=period.start, order_date__lte=period.end)
    )
    rows = (
        OrderLine.objects.filter(order__in=orders.values("pk"))
        .values("product", "product__name", "product__code")
        .annotate(
            amount=Sum("subtotal"), quantity=Sum("quantity"), orders=Count("order", distinct=True)
        )
        .order_by("-amount", "product")[:limit]
    )
    return [
        {
            "product_id": row["product"],
            "name": row["product__name"],
            "code": row["product__code"],
            "amount": Decimal(row["amount"] or 0).quantize(ZERO),
            "quantity": Decimal(row["quantity"]).quantize(Decimal("0.001")),
            "orders": row["orders"],
        }
        for row in rows
    ]


def stored_rows() -> dict:
    """Every stored row with a value, as plain tuples."""
    result = {}
    for model in MODELS:
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if f.attname not in ("id", "department_id", "split")
        ]
        values = [f for f in fields if f.endswith(("cents", "milli", "orders", "debtors"))]
        result[model.__name__] = sorted(
            row
            for row in model.objects.values_list(*fields)
            if any(row[fields.index(v)] for v in values)
        )
    result["without plan"] = sorted(
        ContractWithoutPlan.objects.values_list(
            "contract_id", "owner_id", "department_id", "signed_on"
        )
    )
    result["split"] = sorted(
        CustomerReceivable.objects.filter(split=True).values_list("customer_id", "owner_id")
    )
    return result


def _aging_key(rows: list[dict]) -> list[tuple]:
    return [
        (r["key"], r["label"], r["total"], *(r[b] for b in finance_selectors.AGING_BUCKETS))
        for r in rows
    ]


def check(org, *, viewers, products_period: Period) -> None:
    today = timezone.localdate()
    finance_viewers = [u for u in viewers if u.has_perm_cached("finance.view")]
    for day in (today, today + datetime.timedelta(days=1), today + datetime.timedelta(days=40)):
        for user in finance_viewers:
            stored = finance_selectors.receivables_aging_totals(user=user, today=day)
            live = finance_selectors.receivables_aging_totals(user=user, today=day, live=True)
            assert stored == live, (user.username, day)
            for group_by in ("owner", "department"):
                assert _aging_key(
                    finance_selectors.receivables_aging(user=user, group_by=group_by, today=day)
                ) == _aging_key(
                    finance_selectors.receivables_aging(
                        user=user, group_by=group_by, today=day, live=True
                    )
                ), (user.username, group_by)
            assert _aging_key(
                finance_selectors.receivables_aging(user=user, today=day, limit=3)
            ) == _aging_key(
                finance_selectors.receivables_aging(user=user, today=day, limit=3, live=True)
            ), user.username
        for user in finance_viewers:
            assert set(finance_selectors.contracts_without_plan(user=user)) == set(
                finance_selectors.contracts_without_plan(user=user, newest=None)
            )
    year = today.year
    people = [org.sales1.pk, org.sales2.pk, org.sales3.pk, org.salesmgr1.pk]
    departments = [org.head.pk, org.sales.pk, org.sales1_dept.pk, org.sales2_dept.pk]
    for month in (None, today.month, products_period.start.month):
        for y in (year, products_period.start.year):
            kwargs = {"year": y, "month": month, "user_ids": people, "department_ids": departments}
            assert achievement_for(**kwargs) == achievement_for(**kwargs, live=True)
    for user in viewers:
        if user.has_perm_cached("sales.view"):
            assert top_products(user=user, period=products_period) == top_products_live(
                user=user, period=products_period
            ), user.username


class World:
    """The documents of the run and the operations on them."""

    def __init__(self, org, rng: random.Random):
        self.org = org
        self.rng = rng
        self.today = timezone.localdate()
        # The sales manager sells too, to customers of the salespeople of the department:
        # some customers owe on contracts of several owners (the aggregates' "split" ones).
        self.sellers = [org.sales1, org.sales2, org.sales3, org.salesmgr1]
        self.products = [ProductFactory() for _ in range(3)]
        self.customers = [
            CustomerFactory(owner=owner)
            for owner in (org.sales1, org.sales1, org.sales2, org.sales3)
        ]

    def customer(self, seller):
        """One of the customers ``seller`` may sell to (in their scope)."""
        from kehu.core.scope import visible_to
        from kehu.customers.models import Customer

        ids = [c.pk for c in self.customers]
        return self.pick(visible_to(Customer.objects.filter(pk__in=ids).order_by("pk"), seller))

    def pick(self, items):
        return self.rng.choice(list(items)) if items else None

    def day(self, back: int, ahead: int) -> datetime.date:
        return self.today + datetime.timedelta(days=self.rng.randint(-back, ahead))

    def contracts(self, *statuses):
        return list(Contract.objects.filter(status__in=statuses).order_by("pk"))

    def amount(self) -> str:
        return f"{self.rng.randint(100, 5000)}.{self.rng.randint(0, 99):02d}"

    # --- operations ---------------------------------------------------------------------

    def contract_approved(self, owner=None, customer=None):
        owner = owner or self.pick(self.sellers)
        customer = customer or self.customer(owner)
        if customer is None:
            return
        active_contract(
            self.org,
            owner,
            amount=self.amount(),
            customer=customer,
            signed_on=self.day(400, 0),
        )

    def contract_deleted(self):
        owner = self.pick(self.sellers)
        customer = self.customer(owner)
        if customer is None:
            return
        draft = contract_for(owner, customer=customer)
        sales.contract_delete(actor=self.org.admin, contract=draft)

    def plan_set(self, contract=None):
        contracts = self.contracts("active", "completed")
        unplanned = [c for c in contracts if not c.instalments.exists()]
        contract = contract or self.pick(unplanned if self.rng.random() < 0.7 else contracts)
        if contract is None:
            return
        total = contract.total_amount
        parts = self.rng.randint(1, 3)
        cuts = sorted(self.rng.sample(range(1, int(total * 100)), parts - 1))
        edges = [0, *cuts, int(total * 100)]
        plan(
            contract,
            *[(self.day(150, 60), Decimal(edges[i + 1] - edges[i]) / 100) for i in range(parts)],
        )

    def payment_confirmed(self):
        contract = self.pick(self.contracts("active", "completed"))
        if contract is None:
            return
        money = finance_selectors.contract_money(contract=contract)
        room = money.total - money.received - money.pending_payments
        if room <= 0:
            return
        amount = min(room, Decimal(self.rng.randint(1, int(room * 100))) / 100 + Decimal("0.01"))
        pay(contract, amount, received_on=self.day(200, 0), confirm_by=self.org.finance)

    def payment_reversed(self):
        payment = self.pick(
            Payment.objects.filter(kind=PaymentKind.PAYMENT, status="confirmed", reversal=None)
            .exclude(refunds__isnull=False)
            .order_by("pk")
        )
        if payment is not None:
            finance.payment_reverse(actor=self.org.finance, payment=payment, reason="冲正")

    def refund_approved(self):
        payment = self.pick(
            Payment.objects.filter(kind=PaymentKind.PAYMENT, status="confirmed", reversal=None)
            .exclude(refunds__isnull=False)
            .order_by("pk")
        )
        if payment is not None:
            approved_refund(self.org, payment, (payment.amount / 2).quantize(ZERO) or "0.01")

    def contract_completed(self):
        contract = self.pick(self.contracts("active"))
        if contract is not None:
            sales.contract_complete(actor=contract.owner, contract=contract)

    def contract_terminated(self):
        contract = self.pick(self.contracts("active"))
        if contract is not None:
            sales.contract_terminate(actor=contract.owner, contract=contract, reason="客户取消")

    def contract_amended(self):
        contract = self.pick(self.contracts("active"))
        if contract is None:
            return
        kept = contract.lines.order_by("pk").first()
        amendment = sales.contract_amend(
            actor=contract.owner,
            contract=contract,
            expected_version=contract.version,
            reason="调整金额",
            data={"signed_on": self.day(400, 0)},
            lines=[
                {
                    "id": kept.pk,
                    "product": kept.product,
                    "quantity": kept.quantity,
                    "unit_price": Decimal(self.amount()),
                    "tax_rate": kept.tax_rate,
                }
            ],
        )
        approve_all(amendment, self.org)

    def order_placed(self):
        owner = self.pick(self.sellers)
        customer = self.customer(owner)
        if customer is None:
            return
        sales.order_create(
            actor=owner,
            data={
                "customer": customer,
                "title": "订单",
                "order_date": self.day(400, 0),
            },
            lines=[
                line(self.pick(self.products), quantity=str(self.rng.randint(1, 4)))
                for _ in range(self.rng.randint(1, 3))
            ],
        )

    def order_from_contract(self):
        contract = self.pick(self.contracts("active"))
        if contract is not None:
            sales.order_create_from_contract(actor=contract.owner, contract=contract)

    def order_changed(self):
        order = self.pick(Order.objects.filter(status="pending", contract=None).order_by("pk"))
        if order is not None:
            sales.order_update(
                actor=order.owner,
                order=order,
                expected_version=order.version,
                data={"order_date": self.day(400, 0)},
                lines=[line(self.pick(self.products), quantity="2")],
            )

    def order_confirmed(self):
        order = self.pick(Order.objects.filter(status="pending").order_by("pk"))
        if order is not None:
            sales.order_confirm(actor=order.owner, order=order)

    def order_cancelled(self):
        order = self.pick(Order.objects.filter(status__in=["pending", "confirmed"]).order_by("pk"))
        if order is not None:
            sales.order_cancel(actor=order.owner, order=order, reason="客户取消")

    def order_deleted(self):
        order = self.pick(Order.objects.filter(status="pending").order_by("pk"))
        if order is not None:
            sales.order_delete(actor=self.org.admin, order=order)

    def handover(self):
        source, target = self.rng.sample(self.sellers[:3], 2)
        customer_services.customer_handover(
            actor=self.org.admin, from_user=source, to_user=target, reason="交接"
        )

    OPERATIONS = (
        ("contract_approved", 4),
        ("contract_deleted", 1),
        ("plan_set", 5),
        ("payment_confirmed", 4),
        ("payment_reversed", 1),
        ("refund_approved", 1),
        ("contract_completed", 1),
        ("contract_terminated", 1),
        ("contract_amended", 2),
        ("order_placed", 3),
        ("order_from_contract", 1),
        ("order_changed", 1),
        ("order_confirmed", 1),
        ("order_cancelled", 1),
        ("order_deleted", 1),
        ("handover", 1),
    )

    def step(self, name: str | None = None) -> str:
        names = [name for name, _weight in self.OPERATIONS]
        weights = [weight for _name, weight in self.OPERATIONS]
        name = name or self.rng.choices(names, weights)[0]
        try:
            getattr(self, name)()
        except ServiceError as exc:
            # Refused by a rule (an amount floor, nothing left to order …): nothing changed.
            return f"{name} refused: {exc}"
        return name


@pytest.mark.parametrize("seed", [1, 2])
def test_random_operations_keep_the_aggregates_equal_to_the_live_queries(org, seed):
    rng = random.Random(seed)
    world = World(org, rng)
    today = timezone.localdate()
    period = Period(month_start(today, 11), month_end(today), "last_12_months")
    viewers = [org.sales1, org.salesmgr1, org.salesdirector, org.manager, org.finance]
    for user in viewers:
        user.has_perm_cached = _perm_checker(user)
    # A customer of sales1 owes on contracts of sales1 and of their manager.
    shared = world.customers[0]
    world.contract_approved(org.sales1, shared)
    world.contract_approved(org.salesmgr1, shared)
    for contract in Contract.objects.all():
        world.plan_set(contract)
    check(org, viewers=viewers, products_period=period)
    assert CustomerReceivable.objects.filter(customer=shared, split=True).count() == 2
    done = ["order_placed", world.step("order_placed")]
    reached = set()
    for _ in range(34):
        done.append(world.step())
        check(org, viewers=viewers, products_period=period)
        if ProductFigure.objects.filter(orders__gt=0).exists():
            reached.add("products")
        if CustomerReceivable.objects.exists():
            reached.add("receivables")
    incremental = stored_rows()
    aggregates.aggregates_rebuild()
    assert stored_rows() == incremental
    check(org, viewers=viewers, products_period=period)
    # The run did reach the interesting states.
    assert {"payment_confirmed", "order_placed"} <= set(done), done
    assert reached == {"products", "receivables"}, done


def _perm_checker(user):
    from kehu.core.permissions import has_perm

    return lambda perm: has_perm(user, perm)
