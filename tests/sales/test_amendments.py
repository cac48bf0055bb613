"""Amendments: how an active contract changes, with a reason and a before/after record."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from kehu.approvals.models import ApprovalRule
from kehu.approvals.services import approval_approve, approval_reject
from kehu.core.exceptions import ConflictError, ServiceError
from kehu.products.models import Product
from kehu.sales import services
from kehu.sales.models import AmendmentStatus, Contract, ContractAmendment, DocumentEvent
from kehu.sales.selectors import amendment_pending_for
from kehu.system.models import AuditLog, Role
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.products.factories import ProductFactory
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


@pytest.fixture
def products(db):
    return [ProductFactory(name="打印机"), ProductFactory(name="墨盒")]


@pytest.fixture
def contract(org, products):
    """An active contract of sales1: 10 printers at 1,000 and 50 cartridges at 20, tax-free."""
    draft = services.contract_create(
        actor=org.sales1,
        data={
            "customer": CustomerFactory(owner=org.sales1),
            "title": "年度采购",
            "start_date": datetime.date(2026, 1, 1),
            "end_date": datetime.date(2026, 12, 31),
        },
        lines=[
            {"product": products[0], "quantity": "10", "unit_price": "1000.00", "tax_rate": "0"},
            {"product": products[1], "quantity": "50", "unit_price": "20.00", "tax_rate": "0"},
        ],
    )
    return activate(draft, org)


@pytest.fixture
def amendment_rule(db):
    """Amendments need the sales manager's approval (none by default: applied at once)."""
    rule = ApprovalRule.objects.create(document_type="sales.contract_amendment", name="合同变更")
    rule.steps.create(approver_kind="role", role=Role.objects.get(code="sales_manager"))
    return rule


def lines_of(contract, **changes_by_product) -> list[dict]:
    """The contract's lines as amendment input, with ``{product name: {field: value}}``."""
    result = []
    for line in contract.lines.select_related("product").order_by("sort_order"):
        data = {
            "id": line.pk,
            "product": line.product,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "discount_rate": line.discount_rate,
            "tax_rate": line.tax_rate,
        }
        data.update(changes_by_product.get(line.product.name, {}))
        result.append(data)
    return result


def amend(org, contract, *, reason="客户追加", data=None, lines=None, actor=None):
    contract = Contract.objects.get(pk=contract.pk)
    return services.contract_amend(
        actor=actor or org.sales1,
        contract=contract,
        expected_version=contract.version,
        reason=reason,
        data=data or {},
        lines=lines,
    )


def test_header_change_with_no_rule_applies_at_once_and_keeps_before_and_after(org, contract):
    contact = ContactFactory(customer=contract.customer)
    amendment = amend(
        org,
        contract,
        data={
            "title": "年度采购（补充）",
            "end_date": datetime.date(2027, 6, 30),
            "contact": contact,
        },
    )
    assert amendment.status == AmendmentStatus.APPLIED and amendment.applied_at
    assert amendment.sequence == 1 and str(amendment) == f"{contract.number}-A1"
    assert amendment.before["title"] == "年度采购" and amendment.before["end_date"] == "2026-12-31"
    assert amendment.proposed["fields"] == {
        "title": "年度采购（补充）",
        "end_date": "2027-06-30",
        "contact": contact.pk,
    }
    after = Contract.objects.get(pk=contract.pk)
    assert after.title == "年度采购（补充）" and after.end_date == datetime.date(2027, 6, 30)
    assert after.contact == contact
    assert after.version == contract.version + 1
    assert after.total_amount == contract.total_amount == amendment.total_after
    event = DocumentEvent.objects.filter(object_id=contract.pk, note__contains="A1").get()
    assert (event.from_status, event.to_status) == ("active", "active")
    log = AuditLog.objects.get(model="sales.contract", object_id=str(contract.pk), action="amend")
    assert log.changes["title"] == ["年度采购", "年度采购（补充）"]


def test_line_changes_recompute_the_contract(org, contract, products):
    new_product = ProductFactory(name="硒鼓")
    lines = lines_of(contract, 打印机={"quantity": "12"})[:1]  # cartridges removed
    lines.append({"product": new_product, "quantity": "3", "unit_price": "300.00", "tax_rate": "0"})
    amendment = amend(org, contract, lines=lines)
    assert amendment.total_before == Decimal("11000.00")
    assert amendment.total_after == Decimal("12900.00")
    assert len(amendment.before["lines"]) == 2 and len(amendment.proposed["lines"]) == 2
    after = Contract.objects.get(pk=contract.pk)
    assert after.total_amount == Decimal("12900.00")
    stored = list(after.lines.order_by("sort_order").values_list("product__name", "quantity"))
    assert stored == [("打印机", Decimal("12.000")), ("硒鼓", Decimal("3.000"))]
    # The kept line is the same row: its orders still point at it.
    assert after.lines.get(product=products[0]).pk == lines[0]["id"]


def test_with_a_rule_the_amendment_waits_then_applies_on_approval(org, contract, amendment_rule):
    amendment = amend(
        org, contract, data={"title": "新标题"}, lines=lines_of(contract, 墨盒={"quantity": "60"})
    )
    assert amendment.status == AmendmentStatus.PENDING
    unchanged = Contract.objects.get(pk=contract.pk)
    assert unchanged.title == "年度采购" and unchanged.total_amount == Decimal("11000.00")
    assert amendment_pending_for(unchanged) == amendment
    approval_approve(actor=org.salesmgr1, request=pending_request(amendment))
    amendment.refresh_from_db()
    assert amendment.status == AmendmentStatus.APPLIED
    after = Contract.objects.get(pk=contract.pk)
    assert after.title == "新标题" and after.total_amount == Decimal("11200.00")


def test_rejected_and_withdrawn_amendments_leave_the_contract(org, contract, amendment_rule):
    first = amend(org, contract, data={"title": "A"})
    approval_reject(actor=org.salesmgr1, request=pending_request(first), comment="不行")
    first.refresh_from_db()
    assert first.status == AmendmentStatus.REJECTED
    second = amend(org, contract, data={"title": "B"})
    assert second.sequence == 2
    second = services.amendment_withdraw(actor=org.sales1, amendment=second)
    assert second.status == AmendmentStatus.WITHDRAWN
    assert Contract.objects.get(pk=contract.pk).title == "年度采购"
    assert AuditLog.objects.filter(model="sales.contractamendment", action="status").count() == 2


def test_one_amendment_at_a_time(org, contract, amendment_rule):
    amend(org, contract, data={"title": "A"})
    refused(lambda: amend(org, contract, data={"title": "B"}), code="amendment_pending")


def test_a_contract_with_an_amendment_waiting_is_not_completed_or_terminated(
    org, contract, amendment_rule
):
    amend(org, contract, data={"title": "A"})
    refused(
        lambda: services.contract_complete(actor=org.sales1, contract=contract),
        code="amendment_pending",
    )
    refused(
        lambda: services.contract_terminate(actor=org.sales1, contract=contract, reason="x"),
        code="amendment_pending",
    )


def test_only_active_contracts_are_amended(org, contract):
    services.contract_complete(actor=org.sales1, contract=contract)
    refused(lambda: amend(org, contract, data={"title": "x"}), code="invalid_status")


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reason_is_required(org, contract, reason):
    refused(lambda: amend(org, contract, reason=reason, data={"title": "x"}), field="reason")


def test_refusals_on_the_header(org, contract):
    customer = CustomerFactory()
    refused(lambda: amend(org, contract, data={"customer": customer}), field="data")
    refused(lambda: amend(org, contract, data={"title": "年度采购"}), code="no_change")
    refused(lambda: amend(org, contract, data={"title": ""}), field="title")
    refused(
        lambda: amend(org, contract, data={"end_date": datetime.date(2025, 12, 31)}),
        field="end_date",
    )
    stranger = ContactFactory()
    refused(lambda: amend(org, contract, data={"contact": stranger}), field="contact")
    stale = Contract.objects.get(pk=contract.pk)
    refused(
        lambda: services.contract_amend(
            actor=org.sales1,
            contract=stale,
            expected_version=stale.version - 1,
            reason="x",
            data={"title": "x"},
        ),
        error=ConflictError,
    )


def test_refusals_on_the_lines(org, contract):
    lines = lines_of(contract)
    refused(lambda: amend(org, contract, lines=lines), code="no_change")
    refused(lambda: amend(org, contract, lines=[]), code="no_lines")
    refused(lambda: amend(org, contract, lines=[lines[0], lines[0]]), field="lines")
    other = activate(
        services.contract_create(
            actor=org.sales1,
            data={"customer": contract.customer, "title": "另一份"},
            lines=[{"product": ProductFactory(), "quantity": "1"}],
        ),
        org,
    )
    foreign = {**lines[0], "id": other.lines.get().pk}
    refused(lambda: amend(org, contract, lines=[foreign, lines[1]]), field="lines")
    refused(lambda: amend(org, contract, lines=[{**lines[0], "id": "x"}, lines[1]]), field="lines")


def _order(org, contract, quantities: dict[str, str]):
    lines = {line.product.name: line for line in contract.lines.select_related("product")}
    return services.order_create_from_contract(
        actor=org.sales1,
        contract=contract,
        lines=[{"contract_line": lines[name], "quantity": q} for name, q in quantities.items()],
    )


def test_ordered_lines_stay_and_never_drop_below_the_ordered_quantity(org, contract):
    _order(org, contract, {"打印机": "6"})
    lines = lines_of(contract)
    refused(lambda: amend(org, contract, lines=lines[1:]), code="line_ordered")
    refused(
        lambda: amend(org, contract, lines=lines_of(contract, 打印机={"quantity": "5.999"})),
        code="below_ordered",
    )
    other_product = ProductFactory()
    refused(
        lambda: amend(org, contract, lines=lines_of(contract, 打印机={"product": other_product})),
        field="lines",
    )
    # Exactly the ordered quantity is fine, and so is removing the line nobody ordered.
    amendment = amend(org, contract, lines=lines_of(contract, 打印机={"quantity": "6"})[:1])
    assert amendment.status == AmendmentStatus.APPLIED
    assert Contract.objects.get(pk=contract.pk).total_amount == Decimal("6000.00")


def test_a_line_only_a_cancelled_order_used_stays_but_may_shrink(org, contract):
    order = _order(org, contract, {"墨盒": "40"})
    services.order_cancel(actor=org.sales1, order=order, reason="客户取消")
    lines = lines_of(contract)
    # The cancelled order's line still points at it: it cannot go (it would orphan that row).
    refused(lambda: amend(org, contract, lines=lines[:1]), code="line_ordered")
    amendment = amend(org, contract, lines=lines_of(contract, 墨盒={"quantity": "1"}))
    assert amendment.status == AmendmentStatus.APPLIED


def test_a_kept_line_whose_product_was_deleted_since_can_still_be_amended(org, contract, products):
    from django.utils import timezone

    Product.all_objects.filter(pk=products[1].pk).update(deleted_at=timezone.now())
    amendment = amend(org, contract, lines=lines_of(contract, 打印机={"quantity": "11"}))
    assert amendment.status == AmendmentStatus.APPLIED
    # A new line with a deleted product is refused.
    new = {"product": Product.all_objects.get(pk=products[1].pk), "quantity": "1"}
    refused(lambda: amend(org, contract, lines=[*lines_of(contract), new]), field="lines")


def test_amendments_are_numbered_per_contract(org, contract):
    for title in ("一", "二", "三"):
        amend(org, contract, data={"title": title})
    assert list(
        ContractAmendment.objects.filter(contract=contract).values_list("sequence", flat=True)
    ) == [1, 2, 3]
