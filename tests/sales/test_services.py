"""Sales services: approval routing and decisions, header and line validation, owners.

Refusals are checked against a snapshot of every table a sales service may write.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kehu.approvals.models import ApprovalRequest, ApprovalRule, ApprovalStatus
from kehu.approvals.services import approval_approve, approval_reject, approval_withdraw
from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.customers.models import CustomerStage, Opportunity, PipelineStage
from kehu.products.models import Product
from kehu.sales import services
from kehu.sales.models import Contract, ContractStatus, Quote, QuoteStatus
from kehu.system.models import AuditLog
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.products.factories import ProductFactory
from tests.sales.factories import contract_for, line, quote_for
from tests.sales.helpers import activate, db_state, pending_request

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


def create_contract(actor, *, customer=None, lines=None, **data):
    """``services.contract_create`` with inputs made beforehand (factories write rows)."""
    return services.contract_create(
        actor=actor,
        data={"customer": customer, "title": "合同", **data},
        lines=lines or [line(quantity="1", unit_price="100.00")],
    )


def step_labels(contract) -> list[str]:
    request = ApprovalRequest.objects.get(object_id=contract.pk, status="pending")
    return [step.approver_label for step in request.steps.order_by("sort_order")]


# --- approval routing and decisions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "steps"),
    [
        ("150000.00", ["销售经理", "总经理"]),
        ("100000.01", ["销售经理", "总经理"]),
        ("100000.00", ["销售经理"]),
        ("0.01", ["销售经理"]),
    ],
)
def test_contracts_route_by_amount(org, amount, steps):
    contract = services.contract_submit(
        actor=org.sales1, contract=contract_for(org.sales1, amount=amount)
    )
    assert contract.status == ContractStatus.PENDING
    assert step_labels(contract) == steps


def test_two_step_contract_needs_both_approvals_in_order(org):
    contract = services.contract_submit(
        actor=org.sales1, contract=contract_for(org.sales1, amount="150000.00")
    )
    request = pending_request(contract)
    # The general manager cannot jump the queue.
    refused(lambda: approval_approve(actor=org.manager, request=request), error=PermissionRefused)
    approval_approve(actor=org.salesmgr1, request=request, comment="同意")
    contract.refresh_from_db()
    assert contract.status == ContractStatus.PENDING
    approval_approve(actor=org.manager, request=request)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE


def test_routing_follows_the_department(org):
    # 销售二部's contract: 销售一部's manager does not see it, the sales director does.
    contract = services.contract_submit(actor=org.sales3, contract=contract_for(org.sales3))
    step = pending_request(contract).steps.get()
    assert list(step.candidates.all()) == [org.salesdirector]
    refused(
        lambda: approval_approve(actor=org.salesmgr1, request=pending_request(contract)),
        error=PermissionRefused,
    )


def test_approving_your_own_contract_is_refused(org):
    contract = services.contract_submit(
        actor=org.salesmgr1, contract=contract_for(org.salesmgr1, amount="5000.00")
    )
    request = pending_request(contract)
    assert org.salesmgr1 not in request.steps.get().candidates.all()
    refused(lambda: approval_approve(actor=org.salesmgr1, request=request), error=PermissionRefused)
    approval_approve(actor=org.salesdirector, request=request)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE


def test_a_step_nobody_can_decide_refuses_the_submission(org):
    rule = ApprovalRule.objects.create(document_type="sales.contract", name="自审", sort_order=0)
    rule.steps.create(approver_kind="user", user=org.sales1)  # the submitter: never a candidate
    ApprovalRule.objects.exclude(pk=rule.pk).update(sort_order=5)
    contract = contract_for(org.sales1)
    refused(
        lambda: services.contract_submit(actor=org.sales1, contract=contract), code="no_approver"
    )


def test_no_rule_activates_at_once(org):
    ApprovalRule.objects.filter(document_type="sales.contract").update(is_active=False)
    contract = services.contract_submit(actor=org.sales1, contract=contract_for(org.sales1))
    assert contract.status == ContractStatus.ACTIVE
    request = ApprovalRequest.objects.get(object_id=contract.pk)
    assert request.status == ApprovalStatus.APPROVED
    assert request.actions.filter(kind="auto_approve").exists()


def test_activation_makes_the_customer_won_and_dates_the_contract(org):
    customer = CustomerFactory(owner=org.sales1, stage=CustomerStage.POTENTIAL)
    contract = activate(contract_for(org.sales1, customer=customer), org)
    customer.refresh_from_db()
    assert customer.stage == CustomerStage.WON
    assert customer.last_deal_at is not None
    assert timezone.now() - customer.last_deal_at < datetime.timedelta(minutes=1)
    assert contract.approved_at is not None
    assert contract.signed_on == timezone.localdate()  # none given: signed as it takes effect
    signed = activate(contract_for(org.sales1, signed_on=datetime.date(2026, 1, 2)), org)
    assert signed.signed_on == datetime.date(2026, 1, 2)


def test_rejected_contract_goes_back_to_editable_and_resubmits_as_a_new_request(org):
    contract = services.contract_submit(actor=org.sales1, contract=contract_for(org.sales1))
    first = pending_request(contract)
    refused(
        lambda: approval_reject(actor=org.salesmgr1, request=first, comment=" "), field="comment"
    )
    approval_reject(actor=org.salesmgr1, request=first, comment="金额有误")
    contract.refresh_from_db()
    assert contract.status == ContractStatus.REJECTED and contract.is_editable()
    contract = services.contract_update(
        actor=org.sales1,
        contract=contract,
        expected_version=contract.version,
        data={},
        lines=[line(quantity="2", unit_price="700.00", tax_rate=Decimal("0"))],
    )
    assert contract.total_amount == Decimal("1400.00")
    services.contract_submit(actor=org.sales1, contract=contract)
    second = pending_request(contract)
    assert second.pk != first.pk
    first.refresh_from_db()
    assert first.status == ApprovalStatus.REJECTED
    assert second.amount == Decimal("1400.00")
    assert ApprovalRequest.objects.filter(object_id=contract.pk).count() == 2


def test_withdraw_returns_the_contract_to_draft(org):
    contract = services.contract_submit(actor=org.sales1, contract=contract_for(org.sales1))
    request = pending_request(contract)
    refused(lambda: approval_withdraw(actor=org.sales2, request=request), error=PermissionRefused)
    approval_withdraw(actor=org.sales1, request=request, comment="再改改")
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT
    request.refresh_from_db()
    assert request.status == ApprovalStatus.WITHDRAWN
    # The sales service does the same in one call.
    contract = services.contract_submit(actor=org.sales1, contract=contract)
    contract = services.contract_withdraw(actor=org.sales1, contract=contract)
    assert contract.status == ContractStatus.DRAFT
    refused(
        lambda: services.contract_withdraw(actor=org.sales1, contract=contract),
        code="invalid_status",
    )


def test_a_decided_request_cannot_be_decided_again(org):
    contract = services.contract_submit(actor=org.sales1, contract=contract_for(org.sales1))
    request = pending_request(contract)
    approval_approve(actor=org.salesmgr1, request=request)
    refused(lambda: approval_approve(actor=org.salesdirector, request=request), error=ConflictError)


# --- header validation ----------------------------------------------------------------------


def test_contact_and_opportunity_must_belong_to_the_customer(org):
    customer = CustomerFactory(owner=org.sales1)
    other = CustomerFactory(owner=org.sales1)
    stranger_contact = ContactFactory(customer=other)
    stage = PipelineStage.objects.filter(kind="open").first()
    stranger_deal = Opportunity.objects.create(
        customer=other, title="别人的商机", stage=stage, owner=org.sales1
    )
    lines = [line()]
    for extra, field in (
        ({"contact": stranger_contact}, "contact"),
        ({"opportunity": stranger_deal}, "opportunity"),
    ):
        refused(
            lambda extra=extra: create_contract(
                org.sales1, customer=customer, lines=lines, **extra
            ),
            field=field,
        )
    # Changing the customer of a draft leaves its old contact behind: refused too.
    contract = contract_for(org.sales1, customer=other, contact=stranger_contact)
    refused(
        lambda: services.contract_update(
            actor=org.sales1,
            contract=contract,
            expected_version=contract.version,
            data={"customer": customer},
        ),
        field="contact",
    )


def test_pool_customers_are_claimed_first(org):
    pooled = CustomerFactory(owner=None, in_pool=True)
    lines = [line()]
    refused(lambda: create_contract(org.admin, customer=pooled, lines=lines), field="customer")


def test_dates_are_checked_on_their_field(org):
    customer, lines = CustomerFactory(owner=org.sales1), [line()]
    refused(
        lambda: create_contract(
            org.sales1,
            customer=customer,
            lines=lines,
            start_date=datetime.date(2026, 3, 1),
            end_date=datetime.date(2026, 2, 1),
        ),
        field="end_date",
    )
    refused(
        lambda: quote_for(
            org.sales1,
            customer=customer,
            lines=lines,
            quote_date=datetime.date(2026, 3, 1),
            valid_until=datetime.date(2026, 2, 1),
        ),
        field="valid_until",
    )


def test_model_validation_speaks_service_errors(org):
    customer, lines = CustomerFactory(owner=org.sales1), [line()]
    for title in ("", "长" * 201):
        refused(
            lambda title=title: create_contract(
                org.sales1, customer=customer, lines=lines, title=title
            ),
            field="title",
        )


def test_the_server_decides_number_status_amounts_and_department(org):
    contract = contract_for(
        org.sales1,
        amount="100.00",
        status="active",
        number="HT-FAKE",
        total_amount=Decimal("1"),
        department=org.sales2_dept,
        approved_at=timezone.now(),
    )
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT
    assert contract.number.startswith(f"HT-{timezone.localdate().year}-")
    assert contract.total_amount == Decimal("100.00")
    assert contract.department == org.sales1.department
    assert contract.approved_at is None


def test_assigning_another_owner_needs_sales_assign(org):
    customer, lines = CustomerFactory(owner=org.sales1), [line()]
    refused(
        lambda: create_contract(org.sales1, customer=customer, lines=lines, owner=org.sales2),
        error=PermissionRefused,
    )
    contract = create_contract(org.salesmgr1, customer=customer, lines=lines, owner=org.sales1)
    assert contract.owner == org.sales1 and contract.department == org.sales1.department
    # Editing without naming an owner keeps the owner (not the editor).
    contract = services.contract_update(
        actor=org.salesmgr1,
        contract=contract,
        expected_version=contract.version,
        data={"title": "经理改", "owner": None},
    )
    assert contract.owner == org.sales1
    contract = services.contract_update(
        actor=org.salesmgr1,
        contract=contract,
        expected_version=contract.version,
        data={"owner": org.sales2},
    )
    assert contract.owner == org.sales2
    assert contract.department == org.sales2.department


def test_reassigning_to_an_inactive_user_is_refused(org):
    org.sales2.is_active = False
    org.sales2.save(update_fields=["is_active"])
    customer, lines = CustomerFactory(owner=org.sales1), [line()]
    refused(
        lambda: create_contract(org.salesmgr1, customer=customer, lines=lines, owner=org.sales2),
        field="owner",
    )


def test_no_add_permission_no_document(org):
    customer, lines = CustomerFactory(owner=org.sales1), [line()]
    refused(
        lambda: create_contract(org.finance, customer=customer, lines=lines),
        error=PermissionRefused,
    )
    refused(
        lambda: quote_for(org.warehouse, customer=customer, lines=lines), error=PermissionRefused
    )


# --- lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"quantity": "0"},
        {"quantity": "-1"},
        {"quantity": "1.0001"},
        {"quantity": "abc"},
        {"quantity": "NaN"},
        {"quantity": "Infinity"},
        {"quantity": None},
        {"quantity": "100000000000"},
        {"unit_price": "-1"},
        {"unit_price": "1.001"},
        {"unit_price": "sNaN"},
        {"unit_price": "10000000000000000"},
        {"discount_rate": "101"},
        {"discount_rate": "-1"},
        {"discount_rate": "1.005"},
        {"tax_rate": "100.5"},
        {"product": None},
        {"contract_line": 1},
    ],
)
def test_bad_lines_are_refused_on_the_lines_field(org, bad):
    customer = CustomerFactory(owner=org.sales1)
    data = {**line(quantity="1"), **bad}
    for create in (services.quote_create, services.contract_create, services.order_create):
        error = refused(
            lambda create=create: create(
                actor=org.sales1, data={"customer": customer, "title": "x"}, lines=[data]
            ),
            field="lines",
        )
        assert str(error.message).startswith("Line 1: ")


def test_no_lines_and_deleted_products_are_refused(org):
    customer = CustomerFactory(owner=org.sales1)
    refused(
        lambda: services.contract_create(
            actor=org.sales1, data={"customer": customer, "title": "x"}, lines=[]
        ),
        code="no_lines",
    )
    product = ProductFactory()
    Product.all_objects.filter(pk=product.pk).update(deleted_at=timezone.now())
    refused(
        lambda: services.contract_create(
            actor=org.sales1, data={"customer": customer, "title": "x"}, lines=[line(product)]
        ),
        field="lines",
    )


def test_a_total_beyond_the_money_field_is_refused(org):
    product = ProductFactory()
    customer = CustomerFactory(owner=org.sales1)
    big = line(product, quantity="99999999999.999", unit_price="9999999999999.99")
    refused(lambda: create_contract(org.sales1, customer=customer, lines=[big]), field="lines")


def test_lines_default_to_the_products_price_tax_description_and_unit(org):
    product = Product.objects.get(
        pk=ProductFactory(
            name="墨盒", specification="黑色", list_price=Decimal("88.50"), tax_rate=Decimal("6")
        ).pk
    )
    contract = contract_for(org.sales1, lines=[{"product": product, "quantity": "2"}])
    stored = contract.lines.get()
    assert stored.unit_price == Decimal("88.50") and stored.tax_rate == Decimal("6.00")
    assert stored.description == "墨盒 黑色" and stored.unit == product.unit.label
    assert (stored.subtotal, stored.tax_amount) == (Decimal("177.00"), Decimal("10.62"))
    assert contract.total_amount == Decimal("187.62")


def _create_queries(org, count: int) -> int:
    customer = CustomerFactory(owner=org.sales1)
    # Fresh rows, as a form or serializer hands them over: units not loaded.
    products = list(Product.objects.filter(pk__in=[ProductFactory().pk for _ in range(count)]))
    lines = [{"product": p, "quantity": "1"} for p in products]
    with CaptureQueriesContext(connection) as queries:
        services.contract_create(
            actor=org.sales1, data={"customer": customer, "title": "x"}, lines=lines
        )
    return len(queries)


def test_creating_a_document_costs_the_same_queries_for_2_or_20_lines(org):
    _create_queries(org, 1)  # warm caches (content types, sequences)
    assert _create_queries(org, 20) == _create_queries(org, 2)


def test_replacing_lines_is_logged_with_the_new_total(org):
    contract = contract_for(org.sales1, amount="100.00")
    contract = services.contract_update(
        actor=org.sales1,
        contract=contract,
        expected_version=contract.version,
        data={},
        lines=[line(unit_price="250.00", tax_rate=Decimal("0"))],
    )
    row = (
        AuditLog.objects.filter(model="sales.contract", object_id=str(contract.pk))
        .order_by("id")
        .last()
    )
    assert row.changes["total_amount"] == ["100.00", "250.00"]


def test_deleting_a_converted_contract_gives_the_quote_back(org):
    quote = services.quote_send(actor=org.sales1, quote=quote_for(org.sales1))
    contract = services.quote_convert_to_contract(actor=org.sales1, quote=quote)
    refused(
        lambda: services.contract_delete(actor=org.sales1, contract=contract),
        error=PermissionRefused,
    )
    services.contract_delete(actor=org.admin, contract=contract)
    quote = Quote.objects.get(pk=quote.pk)
    assert quote.status == QuoteStatus.ACCEPTED
    assert not Contract.objects.filter(pk=contract.pk).exists()
    again = services.quote_convert_to_contract(actor=org.sales1, quote=quote)
    assert again.quote_id == quote.pk
