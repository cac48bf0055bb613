"""Writers that add to the same stored aggregate rows at once lose nothing.

Threads on a committed database (PostgreSQL or a SQLite file, tests/concurrency/live.py)
confirm payments on contracts of one owner due the same day, and place orders of one
product in one month: each first write creates rows the others add to (the create-if-missing
race of the upsert), and some customers owe on contracts of two owners. Afterwards the
stored figures equal the live queries and the set-based rebuild.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.concurrency.live import live_database
from tests.concurrency.operations import ACCEPTABLE

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 6


@pytest.fixture
def live(transactional_db, tmp_path):
    with live_database(tmp_path) as database:
        yield database


def _seed() -> dict:
    from kehu.finance.services import payment_register
    from tests.conftest import make_org
    from tests.customers.factories import CustomerFactory
    from tests.finance.factories import active_contract, plan
    from tests.products.factories import ProductFactory

    org = make_org()
    due = timezone.localdate() - datetime.timedelta(days=10)
    shared = CustomerFactory(owner=org.sales1)
    payments, customers = [], []
    for writer in range(WRITERS):
        # Every other contract is the sales manager's, for the same customer: that customer
        # owes on contracts of two owners.
        owner = org.salesmgr1 if writer % 2 else org.sales1
        customer = shared if writer < 2 else CustomerFactory(owner=org.sales1)
        contract = active_contract(org, owner, amount="1000.00", customer=customer)
        plan(contract, (due, "400.00"), (due + datetime.timedelta(days=30), "600.00"))
        payment, _created = payment_register(
            actor=owner,
            data={
                "contract": contract,
                "amount": Decimal("150.00"),
                "received_on": timezone.localdate(),
                "method": "bank_transfer",
            },
        )
        payments.append(payment.pk)
        customers.append(customer.pk)
    return {
        "payments": payments,
        "customers": customers,
        "product": ProductFactory().pk,
        "finance": org.finance.pk,
        "sales1": org.sales1.pk,
    }


def confirm_one(ctx, writer):
    from kehu.finance.models import Payment
    from kehu.finance.services import payment_confirm
    from kehu.system.models import User

    payment = Payment.objects.get(pk=ctx["payments"][writer])
    return payment_confirm(actor=User.objects.get(pk=ctx["finance"]), payment=payment).number


def order_one(ctx, writer):
    from kehu.customers.models import Customer
    from kehu.products.models import Product
    from kehu.sales.services import order_create
    from kehu.system.models import User

    order = order_create(
        actor=User.objects.get(pk=ctx["sales1"]),
        data={
            "customer": Customer.objects.get(pk=ctx["customers"][writer]),
            "title": "并发订单",
            "order_date": timezone.localdate(),
        },
        lines=[{"product": Product.objects.get(pk=ctx["product"]), "quantity": Decimal("2")}],
    )
    return order.number


def test_writers_adding_to_the_same_rows_at_once_lose_nothing(live):
    from kehu.analytics.aggregates import aggregates_rebuild
    from kehu.analytics.forms import Period
    from kehu.analytics.selectors import top_products
    from kehu.core.dates import month_end, month_start
    from kehu.finance import selectors as finance_selectors
    from kehu.hr.selectors import achievement_for
    from kehu.system.models import User
    from tests.analytics.test_aggregates import stored_rows, top_products_live

    ctx = _seed()
    for op in (confirm_one, order_one):
        results = live.threads(WRITERS, op, ctx)
        assert all(r["outcome"] in ACCEPTABLE for r in results), results
        assert [r["outcome"] for r in results] == ["ok"] * WRITERS, results
    today = timezone.localdate()
    finance = User.objects.get(pk=ctx["finance"])
    assert finance_selectors.receivables_aging_totals(
        user=finance
    ) == finance_selectors.receivables_aging_totals(user=finance, live=True)
    assert finance_selectors.receivables_aging_totals(user=finance)["customers"] == WRITERS - 1
    limit = {"user": finance, "limit": 3}
    assert finance_selectors.receivables_aging(**limit) == finance_selectors.receivables_aging(
        **limit, live=True
    )
    kwargs = {"year": today.year, "month": today.month, "user_ids": [ctx["sales1"]]}
    assert achievement_for(**kwargs) == achievement_for(**kwargs, live=True)
    assert achievement_for(**kwargs)["users"][ctx["sales1"]]["payment_amount"] == Decimal("450.00")
    period = Period(month_start(today), month_end(today), "this_month")
    sales1 = User.objects.get(pk=ctx["sales1"])
    [product] = top_products(user=sales1, period=period)
    assert product == top_products_live(user=sales1, period=period)[0]
    assert product["orders"] == WRITERS and product["quantity"] == 2 * WRITERS
    incremental = stored_rows()
    aggregates_rebuild()
    assert stored_rows() == incremental
