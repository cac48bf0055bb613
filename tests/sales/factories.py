"""Sales documents built through the services, as a user would make them."""

from decimal import Decimal

from kehu.sales import services
from tests.customers.factories import CustomerFactory
from tests.products.factories import ProductFactory


def line(product=None, quantity="1", unit_price=None, **extra) -> dict:
    product = product or ProductFactory()
    data = {"product": product, "quantity": Decimal(quantity)}
    if unit_price is not None:
        data["unit_price"] = Decimal(unit_price)
    data.update(extra)
    return data


def contract_for(owner, *, customer=None, amount="1000.00", lines=None, **data):
    """A draft contract of ``owner``; one tax-free line worth ``amount`` unless ``lines``."""
    customer = customer or CustomerFactory(owner=owner)
    lines = lines or [line(quantity="1", unit_price=amount, tax_rate=Decimal("0"))]
    return services.contract_create(
        actor=owner, data={"customer": customer, "title": "年度采购合同", **data}, lines=lines
    )


def quote_for(owner, *, customer=None, lines=None, **data):
    customer = customer or CustomerFactory(owner=owner)
    return services.quote_create(
        actor=owner,
        data={"customer": customer, "title": "设备报价", **data},
        lines=lines or [line(quantity="2")],
    )


def order_for(owner, *, customer=None, lines=None, **data):
    customer = customer or CustomerFactory(owner=owner)
    return services.order_create(
        actor=owner, data={"customer": customer, "title": "订单", **data}, lines=lines or [line()]
    )
