"""Order history for the analytics jobs, written straight to the tables (fast, two years)."""

import datetime
import random
from decimal import Decimal

import pytest

from kehu.sales.models import Order, OrderLine, OrderStatus
from tests.customers.factories import CustomerFactory
from tests.products.factories import ProductFactory

AS_OF = datetime.date(2026, 11, 1)


@pytest.fixture
def history(org):
    """60 customers of sales1 and sales3 over two years: loyal ones keep buying, lapsing ones
    come back less and less often; products 0 and 1 are bought together."""
    rng = random.Random(42)
    products = [ProductFactory(cost_price=Decimal("60.00")) for _ in range(8)]
    customers = []
    number = 0
    for i in range(60):
        owner = org.sales1 if i % 2 == 0 else org.sales3
        customer = CustomerFactory(owner=owner)
        customers.append(customer)
        lapsing = i % 3 == 0
        day = AS_OF - datetime.timedelta(days=rng.randint(600, 720))
        gap = rng.randint(20, 60)
        while day < AS_OF:
            number += 1
            amount = Decimal(rng.randint(5, 50) * 100)
            order = Order.objects.create(
                number=f"DD-T-{number:06d}",
                customer=customer,
                owner=owner,
                department=owner.department,
                order_date=day,
                status=OrderStatus.COMPLETED,
                subtotal_amount=amount,
                total_amount=amount,
            )
            picks = [products[0], products[1]] if i % 4 == 0 else rng.sample(products[2:], 2)
            for product in picks:
                OrderLine.objects.create(
                    order=order,
                    product=product,
                    quantity=Decimal("1"),
                    unit_price=amount / 2,
                    subtotal=amount / 2,
                    total_amount=amount / 2,
                )
            # Lapsing customers come back less and less often until they stop.
            gap = int(gap * 1.6) if lapsing else rng.randint(20, 60)
            day += datetime.timedelta(days=gap)
    return {"customers": customers, "products": products}
