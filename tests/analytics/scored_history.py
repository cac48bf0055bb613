"""A seeded order, follow-up and receivables history with the awkward cases of the customers
job: orders on the same day, on the boundaries of every churn window, cancelled, deleted or
after the run's date; fractional quantities and cost prices; follow-ups either side of local
midnight, deleted or later; instalments and payments (reversals, pending ones, a deleted
contract) that make customers overdue at the past cutoffs. Written straight to the tables.

``expected`` names customers by their position in ``customers`` (ids differ between
databases and runs).
"""

from __future__ import annotations

import datetime
import random
import zoneinfo
from decimal import Decimal

from django.utils import timezone

from kehu.customers.models import FollowUp
from kehu.finance.models import Payment, PaymentKind, PaymentStatus, ReceivableInstalment
from kehu.sales.models import Contract, ContractStatus, Order, OrderLine, OrderStatus
from tests.customers.factories import CustomerFactory
from tests.products.factories import ProductFactory

AS_OF = datetime.date(2026, 11, 1)
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
# The churn job's cutoffs (as of, 180 and 360 days before) and its window edges around them.
EDGES = [
    AS_OF - datetime.timedelta(days=back)
    for back in (0, 90, 180, 181, 360, 361, 365, 366, 540, 541, 545, 546, 720, 721, 725, 726)
]


def scored_history_build(org, *, customers: int = 90, seed: int = 7) -> dict:
    rng = random.Random(seed)
    costs = ["60.00", "33.33", "0.00", "12.35", "99.99", "1.01", "250.50", "7.77"]
    products = [ProductFactory(cost_price=Decimal(c)) for c in costs]
    owners = [org.sales1, org.sales3, org.salesmgr1]
    result: list = []
    numbers = iter(range(1, 10**6))

    def order(customer, owner, day, amount, *, status=OrderStatus.COMPLETED, deleted=False):
        created = Order.objects.create(
            number=f"DD-S-{next(numbers):06d}",
            customer=customer,
            owner=owner,
            department=owner.department,
            order_date=day,
            status=status,
            subtotal_amount=amount,
            total_amount=amount,
            deleted_at=timezone.now() if deleted else None,
        )
        for product in rng.sample(products, rng.randint(1, 3)):
            quantity = Decimal(rng.choice(["1", "2", "1.5", "2.125", "0.333", "10"]))
            OrderLine.objects.create(
                order=created,
                product=product,
                quantity=quantity,
                unit_price=amount,
                subtotal=amount,
                total_amount=amount,
            )
        return created

    for i in range(customers):
        owner = owners[i % len(owners)]
        customer = CustomerFactory(owner=owner)
        result.append(customer)
        kind = i % 5  # 0 lapsing, 1 loyal, 2 bursty, 3 new, 4 one-off
        start = AS_OF - datetime.timedelta(days=rng.randint(420, 760))
        if kind == 3:
            start = AS_OF - datetime.timedelta(days=rng.randint(10, 300))
        day, gap = start, rng.randint(15, 70)
        while day <= AS_OF + datetime.timedelta(days=30):  # a few orders after the run's date
            amount = Decimal(rng.randint(0, 8000)) / 4 if i % 17 else Decimal("0.00")
            order(customer, owner, day, amount)
            if kind == 2 and rng.random() < 0.4:  # the same day again: one purchase occasion
                order(customer, owner, day, Decimal(rng.randint(1, 900)))
            if rng.random() < 0.05:
                order(customer, owner, day, Decimal("500.00"), status=OrderStatus.CANCELLED)
            if rng.random() < 0.05:
                order(customer, owner, day, Decimal("700.00"), deleted=True)
            if kind == 4:
                break
            gap = int(gap * 1.5) + 1 if kind == 0 else rng.randint(10, 90)
            day += datetime.timedelta(days=gap)
        # Orders exactly on (and a day after) the window edges.
        if i % 7 == 0:
            edge = EDGES[(i // 7) % len(EDGES)]
            for day in (edge, edge + datetime.timedelta(days=1)):
                if day >= start:
                    order(customer, owner, day, Decimal("123.45"))
        # Follow-ups, some either side of local midnight of an edge, some deleted or later.
        for _n in range(rng.randint(0, 6)):
            day = AS_OF - datetime.timedelta(days=rng.randint(-20, 700))
            moment = datetime.datetime.combine(
                day, datetime.time(rng.randint(0, 23), rng.randint(0, 59)), TZ
            )
            FollowUp.objects.create(
                customer=customer,
                author=owner,
                content="电话",
                happened_at=moment,
                deleted_at=timezone.now() if rng.random() < 0.1 else None,
            )
        if i % 4 == 0:
            edge = EDGES[(i // 4) % len(EDGES)]
            for moment in (
                datetime.datetime.combine(edge, datetime.time(23, 59, 59), TZ),
                datetime.datetime.combine(
                    edge - datetime.timedelta(days=89), datetime.time(0, 0), TZ
                ),
                datetime.datetime.combine(
                    edge - datetime.timedelta(days=90), datetime.time(23, 30), TZ
                ),
            ):
                FollowUp.objects.create(
                    customer=customer, author=owner, content="拜访", happened_at=moment
                )
        # Receivables: a plan and payments that leave some of it overdue at the cutoffs.
        if i % 3 != 2:
            contract = Contract.objects.create(
                number=f"HT-S-{i:06d}",
                customer=customer,
                owner=owner,
                department=owner.department,
                title="合同",
                status=ContractStatus.ACTIVE,
                signed_on=start,
                total_amount=Decimal("30000.00"),
                subtotal_amount=Decimal("30000.00"),
                deleted_at=timezone.now() if i % 11 == 0 else None,
            )
            due = start + datetime.timedelta(days=30)
            for sequence in range(1, rng.randint(2, 6)):
                ReceivableInstalment.objects.create(
                    contract=contract,
                    sequence=sequence,
                    due_date=due,
                    amount=Decimal(rng.randint(100, 900000)) / 100,
                )
                due += datetime.timedelta(days=rng.randint(30, 200))
            paid: list[Payment] = []
            for n in range(rng.randint(0, 4)):
                status = rng.choice([PaymentStatus.CONFIRMED] * 3 + [PaymentStatus.PENDING])
                paid.append(
                    Payment.objects.create(
                        number=f"SK-S-{i:04d}-{n}",
                        contract=contract,
                        amount=Decimal(rng.randint(100, 700000)) / 100,
                        received_on=start + datetime.timedelta(days=rng.randint(0, 800)),
                        method="bank_transfer",
                        status=status,
                        owner=owner,
                        department=owner.department,
                    )
                )
            if paid and paid[0].status == PaymentStatus.CONFIRMED and i % 2 == 0:
                Payment.objects.create(
                    number=f"SK-S-{i:04d}-R",
                    contract=contract,
                    kind=PaymentKind.REVERSAL,
                    reverses=paid[0],
                    amount=-paid[0].amount,
                    received_on=paid[0].received_on + datetime.timedelta(days=40),
                    method="bank_transfer",
                    status=PaymentStatus.CONFIRMED,
                    owner=owner,
                    department=owner.department,
                )
    # Customers who never bought (only cancelled orders, or nothing) have no score.
    for cancelled in (True, False):
        customer = CustomerFactory(owner=org.sales1)
        result.append(customer)
        if cancelled:
            order(customer, org.sales1, AS_OF, Decimal("10.00"), status=OrderStatus.CANCELLED)
    return {"customers": result, "products": products}
