"""Line and document amounts: rounding never loses or invents a cent (property-based).

Each line rounds once, half up; the document adds the rounded lines. So the document
total is exactly the sum of what the lines print, and every printed figure is within half
a cent of the exact value it stands for.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kehu.approvals.models import ApprovalRule
from kehu.sales import services
from kehu.sales.models import Contract, ContractAmendment, Order, Quote
from kehu.sales.totals import document_amounts, line_amounts
from tests.customers.factories import CustomerFactory
from tests.products.factories import ProductFactory
from tests.sales.helpers import activate

CENT = Decimal("0.01")
HALF_CENT = Decimal("0.005")
EXACT = Context(prec=80)


def decimals(low: int, high: int, places: int):
    """Decimals with ``places`` decimal places from integers ``low``..``high`` (scaled)."""
    return st.integers(low, high).map(lambda n: Decimal(n).scaleb(-places))


# Quantity up to 3 decimals, price in cents, discount and tax 0-100 with 2 decimals.
quantities = decimals(1, 10**14 - 1, 3)
prices = decimals(0, 10**16 - 1, 2)
percents = decimals(0, 10_000, 2)


class Line:
    """What the documents store per line, for ``document_amounts``."""

    def __init__(self, amounts):
        self.subtotal = amounts.subtotal
        self.tax_amount = amounts.tax_amount
        self.total_amount = amounts.total_amount


def exact_subtotal(quantity, price, discount) -> Decimal:
    with localcontext(EXACT):
        return quantity * price * (100 - discount) / 100


@settings(max_examples=400, deadline=None)
@given(quantity=quantities, price=prices, discount=percents, tax=percents)
def test_a_line_rounds_once_half_up_within_half_a_cent(quantity, price, discount, tax):
    amounts = line_amounts(
        quantity=quantity, unit_price=price, discount_rate=discount, tax_rate=tax
    )
    exact = exact_subtotal(quantity, price, discount)
    with localcontext(EXACT):
        assert abs(amounts.subtotal - exact) <= HALF_CENT
        assert amounts.subtotal == exact.quantize(CENT, rounding=ROUND_HALF_UP)
        exact_tax = amounts.subtotal * tax / 100
        assert abs(amounts.tax_amount - exact_tax) <= HALF_CENT
        assert amounts.tax_amount == exact_tax.quantize(CENT, rounding=ROUND_HALF_UP)
        assert amounts.total_amount == amounts.subtotal + amounts.tax_amount
    for value in (amounts.subtotal, amounts.tax_amount, amounts.total_amount):
        assert value.as_tuple().exponent == -2  # cents, always two places
        assert value >= 0


line_inputs = st.tuples(quantities, prices, percents, percents)


@settings(max_examples=300, deadline=None)
@given(st.lists(line_inputs, min_size=1, max_size=12))
def test_the_document_is_exactly_the_sum_of_its_lines(inputs):
    lines = [
        Line(line_amounts(quantity=q, unit_price=p, discount_rate=d, tax_rate=t))
        for q, p, d, t in inputs
    ]
    document = document_amounts(lines)
    with localcontext(EXACT):
        assert document.total_amount == sum(line.total_amount for line in lines)
        assert document.subtotal_amount == sum(line.subtotal for line in lines)
        assert document.tax_amount == sum(line.tax_amount for line in lines)
        assert document.total_amount == document.subtotal_amount + document.tax_amount
        # The rounding error of the document is bounded by the lines': half a cent each for
        # the amount before tax and for the tax, never more.
        exact = sum(exact_subtotal(q, p, d) for q, p, d, _t in inputs)
        assert abs(document.subtotal_amount - exact) <= HALF_CENT * len(lines)


def test_large_amounts_are_exact_not_rounded_by_the_default_context():
    # 14-digit quantity × 16-digit price: more significant digits than Decimal's default
    # 28, so a plain multiplication rounds before the rounding to cents (…144.24 here).
    quantity, price = Decimal("23555537289.042"), Decimal("43490438586570.99")
    discount = Decimal("26.04")
    amounts = line_amounts(
        quantity=quantity, unit_price=price, discount_rate=discount, tax_rate=Decimal(0)
    )
    assert amounts.subtotal == Decimal("757676303144508260325144.23")
    exact = exact_subtotal(quantity, price, discount)
    with localcontext(EXACT):
        assert amounts.subtotal == exact.quantize(CENT, rounding=ROUND_HALF_UP)


@pytest.mark.parametrize(
    ("quantity", "price", "discount", "tax", "subtotal", "tax_amount"),
    [
        ("1", "0.05", "50", "0", "0.03", "0.00"),  # 0.025 rounds half up
        ("3", "0.33", "0", "13", "0.99", "0.13"),  # 0.1287
        ("0.001", "0.01", "0", "0", "0.00", "0.00"),  # below a cent: nothing invented
        ("2.5", "19.99", "10", "6", "44.98", "2.70"),  # 44.9775 → 44.98; 2.6988 → 2.70
        ("7", "100.00", "100", "13", "0.00", "0.00"),  # a free line
    ],
)
def test_examples_a_bookkeeper_can_check(quantity, price, discount, tax, subtotal, tax_amount):
    amounts = line_amounts(
        quantity=Decimal(quantity),
        unit_price=Decimal(price),
        discount_rate=Decimal(discount),
        tax_rate=Decimal(tax),
    )
    assert (amounts.subtotal, amounts.tax_amount) == (Decimal(subtotal), Decimal(tax_amount))
    assert amounts.total_amount == Decimal(subtotal) + Decimal(tax_amount)


# --- stored totals --------------------------------------------------------------------------

# Sizes a document really has; the service refuses amounts beyond the money field.
db_lines = st.lists(
    st.tuples(decimals(1, 10**6, 3), decimals(0, 10**7, 2), percents, percents),
    min_size=1,
    max_size=5,
)


def as_line_data(products, inputs) -> list[dict]:
    return [
        {
            "product": products[i % len(products)],
            "quantity": q,
            "unit_price": p,
            "discount_rate": d,
            "tax_rate": t,
        }
        for i, (q, p, d, t) in enumerate(inputs)
    ]


def assert_stored_totals_recompute(document) -> None:
    """Every stored line figure and the document's totals equal a fresh computation."""
    document = type(document)._base_manager.get(pk=document.pk)
    lines = list(document.lines.all())
    assert lines
    for line in lines:
        expected = line_amounts(
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount_rate=line.discount_rate,
            tax_rate=line.tax_rate,
        )
        assert (line.subtotal, line.tax_amount, line.total_amount) == (
            expected.subtotal,
            expected.tax_amount,
            expected.total_amount,
        )
    expected_document = document_amounts(lines)
    assert document.subtotal_amount == expected_document.subtotal_amount
    assert document.tax_amount == expected_document.tax_amount
    assert document.total_amount == expected_document.total_amount
    assert document.total_amount == sum(line.total_amount for line in lines)


@pytest.mark.django_db
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=db_lines, second=db_lines, third=db_lines)
def test_stored_totals_after_create_update_and_amendment(org, first, second, third):
    products = [ProductFactory(), ProductFactory()]
    customer = CustomerFactory(owner=org.sales1)
    # Quotes and orders store the same way.
    quote = services.quote_create(
        actor=org.sales1,
        data={"customer": customer, "title": "报价"},
        lines=as_line_data(products, first),
    )
    assert_stored_totals_recompute(quote)
    order = services.order_create(
        actor=org.sales1,
        data={"customer": customer, "title": "订单"},
        lines=as_line_data(products, second),
    )
    assert_stored_totals_recompute(order)
    order = services.order_update(
        actor=org.sales1,
        order=order,
        expected_version=order.version,
        data={},
        lines=as_line_data(products, first),
    )
    assert_stored_totals_recompute(order)

    contract = services.contract_create(
        actor=org.sales1,
        data={"customer": customer, "title": "合同"},
        lines=as_line_data(products, first) + [{"product": products[0], "quantity": "1"}],
    )
    assert_stored_totals_recompute(contract)
    contract = services.contract_update(
        actor=org.sales1,
        contract=contract,
        expected_version=contract.version,
        data={"title": "合同（修订）"},
        lines=as_line_data(products, second) + [{"product": products[0], "quantity": "1"}],
    )
    assert_stored_totals_recompute(contract)
    contract = activate(contract, org)
    # Amendments: keep the first line (by id), replace the rest with ``third``.
    kept = contract.lines.order_by("sort_order").first()
    amended = [
        {
            "id": kept.pk,
            "product": kept.product,
            "quantity": kept.quantity + 1,
            "unit_price": kept.unit_price,
            "discount_rate": kept.discount_rate,
            "tax_rate": kept.tax_rate,
        },
        *as_line_data(products, third),
    ]
    amendment = services.contract_amend(
        actor=org.sales1,
        contract=contract,
        expected_version=contract.version,
        reason="追加数量",
        data={},
        lines=amended,
    )
    amendment.refresh_from_db()
    assert amendment.status == "applied"  # no rule for amendments: applied at once
    assert_stored_totals_recompute(contract)
    contract.refresh_from_db()
    assert amendment.total_after == contract.total_amount


@pytest.mark.django_db
def test_amendment_approved_later_stores_recomputed_totals(org):
    from kehu.approvals.services import approval_approve
    from kehu.system.models import Role

    rule = ApprovalRule.objects.create(document_type="sales.contract_amendment", name="变更审批")
    rule.steps.create(approver_kind="role", role=Role.objects.get(code="sales_manager"))
    product = ProductFactory()
    contract = services.contract_create(
        actor=org.sales1,
        data={"customer": CustomerFactory(owner=org.sales1), "title": "合同"},
        lines=[{"product": product, "quantity": "3", "unit_price": "33.33", "discount_rate": "7"}],
    )
    contract = activate(contract, org)
    line = contract.lines.get()
    amendment = services.contract_amend(
        actor=org.sales1,
        contract=contract,
        expected_version=contract.version,
        reason="加量",
        data={},
        lines=[
            {"id": line.pk, "product": product, "quantity": "7.125", "unit_price": "33.33"},
            {"product": product, "quantity": "0.333", "unit_price": "0.07", "tax_rate": "6"},
        ],
    )
    assert Contract.objects.get(pk=contract.pk).total_amount == contract.total_amount
    from tests.sales.helpers import pending_request

    approval_approve(actor=org.salesmgr1, request=pending_request(amendment))
    assert ContractAmendment.objects.get(pk=amendment.pk).status == "applied"
    assert_stored_totals_recompute(contract)
    assert Contract.objects.get(pk=contract.pk).total_amount == amendment.total_after


@pytest.mark.django_db
def test_quote_converted_to_contract_and_order_keep_the_cents(org):
    product = ProductFactory(list_price=Decimal("0.07"), tax_rate=Decimal("13.00"))
    quote = services.quote_create(
        actor=org.sales1,
        data={"customer": CustomerFactory(owner=org.sales1), "title": "报价"},
        lines=[{"product": product, "quantity": "3.333", "discount_rate": "12.5"}],
    )
    services.quote_send(actor=org.sales1, quote=quote)
    contract = services.quote_convert_to_contract(actor=org.sales1, quote=quote)
    assert contract.total_amount == Quote.objects.get(pk=quote.pk).total_amount
    assert_stored_totals_recompute(contract)
    contract = activate(contract, org)
    order = services.order_create_from_contract(actor=org.sales1, contract=contract)
    assert Order.objects.get(pk=order.pk).total_amount == contract.total_amount
    assert_stored_totals_recompute(order)
