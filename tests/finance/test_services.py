"""Finance services: the money rules, and that every refusal writes nothing."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kehu.approvals.models import ApprovalRequest, ApprovalRule, ApprovalRuleStep, ApproverKind
from kehu.approvals.services import approval_approve, approval_reject
from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.finance import selectors, services
from kehu.finance.models import (
    ContractLedger,
    ExpenseStatus,
    IdempotencyKey,
    InvoiceStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    RefundStatus,
)
from kehu.system.models import Notification, Role
from tests.finance.factories import (
    TAX_NUMBER,
    active_contract,
    approve_all,
    approved_refund,
    department_managers,
    expense_category,
    expense_for,
    finance_snapshot,
    invoice_for,
    issued_invoice,
    pay,
    plan,
)

pytestmark = pytest.mark.django_db


def today():
    return timezone.localdate()


def days(n):
    return today() + datetime.timedelta(days=n)


def refused(call, *, code=None, field=None, error=ServiceError):
    """Run ``call``, expect ``error``, and check that nothing finance-related changed."""
    before = finance_snapshot()
    with pytest.raises(error) as info:
        call()
    assert finance_snapshot() == before
    if code is not None:
        assert info.value.code == code, info.value.message
    if field is not None:
        assert info.value.field == field, info.value.message
    return info.value


def ledger(contract):
    return ContractLedger.objects.get(contract=contract)


def assert_ledger_matches_rows(contract):
    row = ledger(contract)
    figures = selectors.ledger_from_rows(contract=contract)
    assert row.confirmed_amount == figures["confirmed_amount"]
    assert row.refunded_amount == figures["refunded_amount"]
    assert row.invoiced_amount == figures["invoiced_amount"]


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["", None, "abc", "0", "-1", "0.001", "NaN", "Infinity", "1e30", True, "10000000000000000"],
)
def test_bad_amounts_are_refused_on_the_field(org, value):
    contract = active_contract(org)
    error = refused(
        lambda: services.payment_register(
            actor=org.sales1,
            data={
                "contract": contract,
                "amount": value,
                "received_on": today(),
                "method": "bank_transfer",
            },
        ),
        field="amount",
    )
    assert error.message


def test_amounts_are_stored_with_cents(org):
    contract = active_contract(org)
    payment, _ = services.payment_register(
        actor=org.sales1,
        data={"contract": contract, "amount": "100", "received_on": today(), "method": "cash"},
    )
    assert payment.amount == Decimal("100.00")


def test_payment_input_is_checked(org):
    contract = active_contract(org)
    base = {"contract": contract, "amount": "1", "received_on": today(), "method": "cash"}
    cases = [
        ({"contract": None}, "contract"),
        ({"received_on": None}, "received_on"),
        ({"received_on": days(1)}, "received_on"),
        ({"method": "barter"}, "method"),
        ({"reference": "x" * 101}, "reference"),
    ]
    for change, field in cases:
        refused(
            lambda change=change: services.payment_register(
                actor=org.sales1, data={**base, **change}
            ),
            field=field,
        )
    other = active_contract(org, amount="500.00")
    [instalment] = plan(other, (days(10), "500.00"))
    refused(
        lambda: services.payment_register(
            actor=org.sales1, data={**base, "instalment": instalment}
        ),
        field="instalment",
    )


def test_money_only_on_contracts_in_force(org):
    from tests.sales.factories import contract_for

    draft = contract_for(org.sales1, amount="1000.00")
    error = refused(lambda: pay(draft, "10"), code="contract_not_billable", field="contract")
    assert "Draft" in error.message
    refused(lambda: invoice_for(draft, "10"), code="contract_not_billable")
    refused(lambda: plan(draft, (days(1), "1000.00")), code="contract_not_billable")


# --- overpayment ----------------------------------------------------------------------------


def test_overpayment_is_refused_with_the_figures(org):
    contract = active_contract(org, amount="10000.00")
    pay(contract, "6000.00", confirm_by=org.finance)
    error = refused(lambda: pay(contract, "4000.01"), code="overpayment", field="amount")
    assert error.message == (
        "This payment would exceed the contract amount: 10,000.00, already received "
        "6,000.00, so at most 4,000.00 can still be recorded."
    )
    pay(contract, "4000.00", confirm_by=org.finance)
    assert ledger(contract).received_amount == Decimal("10000.00")
    refused(lambda: pay(contract, "0.01"), code="overpayment")


def test_pending_payments_count_against_the_room(org):
    contract = active_contract(org, amount="1000.00")
    pay(contract, "700.00")
    error = refused(lambda: pay(contract, "300.01"), code="overpayment")
    assert "awaiting confirmation 700.00" in error.message
    assert "at most 300.00" in error.message


def test_confirmation_rechecks_the_room(org):
    """A pending payment written by an import, not through the register check."""
    contract = active_contract(org, amount="1000.00")
    pay(contract, "800.00", confirm_by=org.finance)
    stray = Payment.objects.create(
        number="HK-TEST-1",
        contract=contract,
        amount=Decimal("300.00"),
        received_on=today(),
        method="cash",
        owner=org.sales1,
    )
    refused(lambda: services.payment_confirm(actor=org.finance, payment=stray), code="overpayment")


# --- idempotency ----------------------------------------------------------------------------


def test_same_key_same_request_records_one_payment(org):
    contract = active_contract(org)
    first = pay(contract, "100.00", key="abc")
    again, created = services.payment_register(
        actor=org.sales1,
        data={
            "contract": contract,
            "amount": "100",
            "received_on": today(),
            "method": "bank_transfer",
        },
        idempotency_key=" abc ",
    )
    assert not created and again.pk == first.pk
    assert Payment.objects.count() == 1
    assert IdempotencyKey.objects.get().object_id == first.pk


def test_same_key_after_confirmation_answers_the_confirmed_payment(org):
    contract = active_contract(org, amount="100.00")
    first = pay(contract, "100.00", key="k", confirm_by=org.finance)
    # The contract is paid in full now; the repeat is still answered, not refused.
    again = pay(contract, "100.00", key="k")
    assert again.pk == first.pk and again.status == PaymentStatus.CONFIRMED


def test_same_key_different_request_is_refused(org):
    contract = active_contract(org)
    pay(contract, "100.00", key="abc")
    refused(lambda: pay(contract, "100.01", key="abc"), code="idempotency_mismatch")
    refused(
        lambda: pay(contract, "100.00", key="abc", reference="other"),
        code="idempotency_mismatch",
    )


def test_keys_are_per_user(org):
    contract = active_contract(org)
    pay(contract, "100.00", key="abc", actor=org.sales1)
    pay(contract, "100.00", key="abc", actor=org.salesmgr1)
    assert Payment.objects.count() == 2


def test_a_refused_request_does_not_use_up_its_key(org):
    contract = active_contract(org, amount="100.00")
    refused(lambda: pay(contract, "200.00", key="retry"), code="overpayment")
    assert pay(contract, "100.00", key="retry").amount == Decimal("100.00")


def test_overlong_key_is_refused(org):
    contract = active_contract(org)
    refused(lambda: pay(contract, "1", key="k" * 101), code="idempotency_key_invalid")


def test_old_idempotency_keys_are_forgotten(org):
    from kehu.finance.tasks import finance_idempotency_keys_prune

    contract = active_contract(org)
    pay(contract, "100.00", key="old")
    pay(contract, "100.00", key="new")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=timezone.now() - datetime.timedelta(days=31)
    )
    assert finance_idempotency_keys_prune.enqueue().return_value == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert Payment.objects.count() == 2  # the payments stay
    pay(contract, "100.00", key="old")  # a new request may use the key again
    assert Payment.objects.count() == 3


# --- confirm, reject, cancel, reverse -------------------------------------------------------


def test_confirm_reject_cancel_only_from_pending(org, django_capture_on_commit_callbacks):
    contract = active_contract(org)
    confirmed = pay(contract, "100.00", confirm_by=org.finance)
    assert confirmed.confirmed_by == org.finance and confirmed.confirmed_at
    refused(lambda: services.payment_confirm(actor=org.finance, payment=confirmed))
    refused(lambda: services.payment_reject(actor=org.finance, payment=confirmed, reason="x"))
    refused(lambda: services.payment_cancel(actor=org.sales1, payment=confirmed))
    pending = pay(contract, "50.00")
    refused(
        lambda: services.payment_reject(actor=org.finance, payment=pending, reason=" "),
        field="reason",
    )
    with django_capture_on_commit_callbacks(execute=True):
        rejected = services.payment_reject(actor=org.finance, payment=pending, reason="未到账")
    assert rejected.status == PaymentStatus.REJECTED and rejected.decision_note == "未到账"
    assert Notification.objects.filter(recipient=org.sales1, title__contains=pending.number)
    cancelled = services.payment_cancel(actor=org.sales1, payment=pay(contract, "20.00"))
    assert cancelled.status == PaymentStatus.CANCELLED
    assert ledger(contract).received_amount == Decimal("100.00")
    assert_ledger_matches_rows(contract)


def test_stale_version_is_a_conflict(org):
    contract = active_contract(org)
    payment = pay(contract, "100.00")
    refused(
        lambda: services.payment_confirm(
            actor=org.finance, payment=payment, expected_version=payment.version + 1
        ),
        error=ConflictError,
    )


def test_only_the_registrant_or_finance_cancels(org):
    contract = active_contract(org)
    payment = pay(contract, "100.00", actor=org.salesmgr1)
    refused(
        lambda: services.payment_cancel(actor=org.sales1, payment=payment),
        error=PermissionRefused,
    )
    assert services.payment_cancel(actor=org.finance, payment=payment).status == "cancelled"


def test_finance_is_told_of_a_payment_to_confirm(org, django_capture_on_commit_callbacks):
    contract = active_contract(org)
    with django_capture_on_commit_callbacks(execute=True):
        payment = pay(contract, "100.00")
    assert Notification.objects.filter(recipient=org.finance, title__contains=payment.number)
    # The general manager may confirm but is not finance staff: no notice.
    assert not Notification.objects.filter(recipient=org.manager, title__contains=payment.number)


def test_reversal_entry_corrects_a_confirmed_payment(org):
    contract = active_contract(org)
    payment = pay(contract, "300.00", confirm_by=org.finance)
    refused(
        lambda: services.payment_reverse(actor=org.finance, payment=payment, reason=""),
        field="reason",
    )
    reversal = services.payment_reverse(actor=org.finance, payment=payment, reason="录错金额")
    assert reversal.kind == PaymentKind.REVERSAL and reversal.reverses_id == payment.pk
    assert reversal.amount == Decimal("-300.00") and reversal.status == PaymentStatus.CONFIRMED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CONFIRMED  # both entries stay
    assert ledger(contract).received_amount == Decimal("0.00")
    assert_ledger_matches_rows(contract)
    refused(
        lambda: services.payment_reverse(actor=org.finance, payment=payment, reason="again"),
        code="already_reversed",
    )
    refused(
        lambda: services.payment_reverse(actor=org.finance, payment=reversal, reason="x"),
        code="invalid_status",
    )
    refused(
        lambda: services.refund_request(actor=org.sales1, payment=payment, amount="1", reason="x"),
        field="payment",
    )
    # The money can be recorded again after the correction.
    pay(contract, "10000.00", confirm_by=org.finance)


def test_pending_payment_cannot_be_reversed(org):
    contract = active_contract(org)
    pending = pay(contract, "100.00")
    refused(
        lambda: services.payment_reverse(actor=org.finance, payment=pending, reason="x"),
        code="invalid_status",
    )


def test_payment_with_refunds_cannot_be_reversed(org):
    contract = active_contract(org)
    payment = pay(contract, "300.00", confirm_by=org.finance)
    services.refund_request(actor=org.sales1, payment=payment, amount="10", reason="x")
    refused(
        lambda: services.payment_reverse(actor=org.finance, payment=payment, reason="x"),
        code="has_refunds",
    )


def test_rejected_refund_no_longer_blocks_a_reversal(org):
    contract = active_contract(org)
    payment = pay(contract, "300.00", confirm_by=org.finance)
    refund = services.refund_request(actor=org.sales1, payment=payment, amount="10", reason="x")
    request = ApprovalRequest.objects.get(object_id=refund.pk, document_type="finance.refund")
    approval_reject(actor=org.manager, request=request, comment="不退")
    refund.refresh_from_db()
    assert refund.status == RefundStatus.REJECTED
    services.payment_reverse(actor=org.finance, payment=payment, reason="录错")
    assert ledger(contract).received_amount == 0


# --- payments through an approval rule ------------------------------------------------------


@pytest.fixture
def payment_rule(org):
    rule = ApprovalRule.objects.create(document_type="finance.payment", name="回款审批")
    ApprovalRuleStep.objects.create(
        rule=rule,
        sort_order=0,
        approver_kind=ApproverKind.ROLE,
        role=Role.objects.get(code="finance"),
    )
    return rule


def test_payment_rule_routes_confirmation_through_approval(org, payment_rule):
    contract = active_contract(org)
    payment = pay(contract, "100.00")
    assert payment.status == PaymentStatus.PENDING
    refused(
        lambda: services.payment_confirm(actor=org.finance, payment=payment),
        code="awaiting_approval",
    )
    refused(
        lambda: services.payment_reject(actor=org.finance, payment=payment, reason="x"),
        code="awaiting_approval",
    )
    assert not selectors.payments_to_confirm(user=org.finance).exists()
    approve_all(payment, org)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CONFIRMED and payment.confirmed_by == org.finance
    assert ledger(contract).received_amount == Decimal("100.00")


def test_cancelling_a_payment_in_approval_withdraws_the_request(org, payment_rule):
    contract = active_contract(org)
    payment = pay(contract, "100.00")
    cancelled = services.payment_cancel(actor=org.sales1, payment=payment)
    assert cancelled.status == PaymentStatus.CANCELLED
    assert ApprovalRequest.objects.get(
        object_id=payment.pk, document_type="finance.payment"
    ).status == ("withdrawn")


# --- invoices -------------------------------------------------------------------------------


def test_invoice_request_input_is_checked(org):
    contract = active_contract(org)
    cases = [
        ({"invoice_type": "receipt"}, "invoice_type"),
        ({"title": " "}, "title"),
        ({"tax_number": "123"}, "tax_number"),
        ({"tax_number": "测试公司纳税人识别号码一二三四五六"}, "tax_number"),
        ({"invoice_type": "vat_special"}, "address_phone"),
        ({"invoice_type": "vat_special", "address_phone": "上海 021-1"}, "bank_account"),
    ]
    for change, field in cases:
        refused(lambda change=change: invoice_for(contract, "100", **change), field=field)
    refused(lambda: invoice_for(contract, "0"), field="amount")
    special = invoice_for(
        contract,
        "100",
        invoice_type="vat_special",
        address_phone="上海市浦东新区 021-12345678",
        bank_account="工商银行 6222 0000",
        tax_number=TAX_NUMBER.lower(),
    )
    assert special.tax_number == TAX_NUMBER and special.status == InvoiceStatus.PENDING


def test_over_invoicing_is_refused_at_request_and_issue(org):
    contract = active_contract(org, amount="1000.00")
    first = invoice_for(contract, "600.00")
    error = refused(lambda: invoice_for(contract, "400.01"), code="overinvoicing")
    assert "already invoiced or requested 600.00" in error.message
    assert "at most 400.00" in error.message
    invoice_for(contract, "400.00")
    approve_all(first, org)
    first.refresh_from_db()
    assert first.status == InvoiceStatus.APPROVED
    issued = services.invoice_issue(actor=org.finance, invoice=first, invoice_number="No.1")
    assert issued.status == InvoiceStatus.ISSUED and issued.issued_by == org.finance
    assert ledger(contract).invoiced_amount == Decimal("600.00")
    # Voiding frees the room again.
    services.invoice_void(actor=org.finance, invoice=issued, reason="抬头错误")
    assert ledger(contract).invoiced_amount == Decimal("0.00")
    invoice_for(contract, "600.00")
    assert_ledger_matches_rows(contract)


def test_issue_checks_the_ledger_again(org):
    """An approved invoice cannot be issued past the contract amount, however it got there."""
    contract = active_contract(org, amount="1000.00")
    first = invoice_for(contract, "800.00")
    approve_all(first, org)
    first.refresh_from_db()
    from kehu.finance.models import Invoice

    Invoice.objects.filter(pk=first.pk).update(amount=Decimal("1000.01"))  # a stray edit
    first.refresh_from_db()
    refused(
        lambda: services.invoice_issue(actor=org.finance, invoice=first, invoice_number="X"),
        code="overinvoicing",
    )


def test_issue_rules(org):
    contract = active_contract(org, amount="1000.00")
    pending = invoice_for(contract, "100.00")
    refused(
        lambda: services.invoice_issue(actor=org.finance, invoice=pending, invoice_number="A"),
        code="invalid_status",
    )
    approve_all(pending, org)
    pending.refresh_from_db()
    refused(
        lambda: services.invoice_issue(actor=org.finance, invoice=pending, invoice_number=" "),
        field="invoice_number",
    )
    refused(
        lambda: services.invoice_issue(
            actor=org.finance, invoice=pending, invoice_number="A", issued_on=days(1)
        ),
        field="issued_on",
    )
    refused(
        lambda: services.invoice_issue(
            actor=org.finance, invoice=pending, invoice_number="A", issued_on=days(-1)
        ),
        field="issued_on",
    )
    issued_invoice(org, contract, "100.00", number="DUP-1")
    refused(
        lambda: services.invoice_issue(actor=org.finance, invoice=pending, invoice_number="DUP-1"),
        field="invoice_number",
    )
    done = services.invoice_issue(actor=org.finance, invoice=pending, invoice_number="B-2")
    refused(
        lambda: services.invoice_issue(actor=org.finance, invoice=done, invoice_number="B-3"),
        code="invalid_status",
    )


def test_void_rules(org):
    contract = active_contract(org, amount="1000.00")
    pending = invoice_for(contract, "100.00")
    refused(
        lambda: services.invoice_void(actor=org.finance, invoice=pending, reason="x"),
        code="invalid_status",
    )
    approve_all(pending, org)
    pending.refresh_from_db()
    refused(
        lambda: services.invoice_void(actor=org.finance, invoice=pending, reason=" "),
        field="reason",
    )
    voided = services.invoice_void(actor=org.finance, invoice=pending, reason="客户取消")
    assert voided.status == InvoiceStatus.VOIDED and voided.void_reason == "客户取消"
    assert ledger(contract).invoiced_amount == 0
    refused(
        lambda: services.invoice_void(actor=org.finance, invoice=voided, reason="again"),
        code="invalid_status",
    )


def test_invoice_rejection_and_withdrawal_free_the_room(org):
    from kehu.approvals.services import approval_withdraw

    contract = active_contract(org, amount="1000.00")
    first = invoice_for(contract, "1000.00")
    request = ApprovalRequest.objects.get(object_id=first.pk, document_type="finance.invoice")
    approval_reject(actor=org.finance, request=request, comment="抬头不对")
    first.refresh_from_db()
    assert first.status == InvoiceStatus.REJECTED
    second = invoice_for(contract, "1000.00")
    request = ApprovalRequest.objects.get(object_id=second.pk, document_type="finance.invoice")
    approval_withdraw(actor=org.sales1, request=request)
    second.refresh_from_db()
    assert second.status == InvoiceStatus.WITHDRAWN
    invoice_for(contract, "1000.00")


# --- refunds --------------------------------------------------------------------------------


def test_refunds_never_exceed_the_payment(org):
    contract = active_contract(org, amount="1000.00")
    payment = pay(contract, "300.00", confirm_by=org.finance)
    pay(contract, "700.00", confirm_by=org.finance)

    def ask(amount):
        return services.refund_request(
            actor=org.sales1, payment=payment, amount=amount, reason="退货"
        )

    error = refused(lambda: ask("300.01"), code="overrefund", field="amount")
    assert "At most 300.00" in error.message
    ask("200.00")  # pending counts
    refused(lambda: ask("100.01"), code="overrefund")
    ask("100.00")
    refused(lambda: ask("0.01"), code="overrefund")


def test_refunds_never_exceed_what_the_contract_holds(org):
    """Two payments, one reversed: the other's refunds are bounded by what is left."""
    contract = active_contract(org, amount="1000.00")
    kept = pay(contract, "300.00", confirm_by=org.finance)
    approved_refund(org, kept, "250.00")
    assert ledger(contract).received_amount == Decimal("50.00")
    refused(
        lambda: services.refund_request(actor=org.sales1, payment=kept, amount="50.01", reason="x"),
        code="overrefund",
    )
    last = approved_refund(org, kept, "50.00")
    assert last.status == RefundStatus.APPROVED and last.refunded_on == today()
    assert ledger(contract).received_amount == 0
    assert_ledger_matches_rows(contract)


def test_refund_only_against_a_confirmed_payment(org):
    contract = active_contract(org)
    pending = pay(contract, "100.00")
    refused(
        lambda: services.refund_request(actor=org.sales1, payment=pending, amount="1", reason="x"),
        field="payment",
    )
    confirmed = pay(contract, "100.00", confirm_by=org.finance)
    refused(
        lambda: services.refund_request(
            actor=org.sales1, payment=confirmed, amount="1", reason=" "
        ),
        field="reason",
    )


def test_refund_approval_rechecks_the_room(org):
    """Approving re-checks under the ledger lock: a stray change since the request is caught."""
    contract = active_contract(org, amount="1000.00")
    payment = pay(contract, "300.00", confirm_by=org.finance)
    refund = services.refund_request(actor=org.sales1, payment=payment, amount="300", reason="x")
    ContractLedger.objects.filter(contract=contract).update(refunded_amount=Decimal("100.00"))
    request = ApprovalRequest.objects.get(object_id=refund.pk, document_type="finance.refund")
    with pytest.raises(ServiceError):
        approval_approve(actor=org.manager, request=request)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING


# --- receivable plans -----------------------------------------------------------------------


def test_plan_must_add_up_to_the_contract_amount(org):
    contract = active_contract(org, amount="10000.00")
    error = refused(
        lambda: plan(contract, (days(10), "3000.00"), (days(40), "6999.99")),
        code="plan_total",
    )
    assert error.message == (
        "The instalments add up to 9,999.99 but the contract amount is 10,000.00 (difference 0.01)."
    )
    refused(lambda: plan(contract), field="instalments")
    refused(lambda: plan(contract, (None, "10000.00")), field="instalments")
    refused(lambda: plan(contract, (days(1), "-1"), (days(2), "10001")), field="instalments")
    rows = plan(contract, (days(40), "7000.00"), (days(10), "3000.00"))
    assert [(r.sequence, r.amount) for r in rows] == [
        (1, Decimal("3000.00")),
        (2, Decimal("7000.00")),
    ]


def test_replanning_keeps_instalments_with_payments(org):
    contract = active_contract(org, amount="10000.00")
    first, second = plan(contract, (days(10), "3000.00"), (days(40), "7000.00"))
    pay(contract, "1000.00", instalment=second)
    refused(lambda: plan(contract, (days(10), "10000.00")), code="instalment_has_payments")
    rows = plan(contract, (days(5), "2000.00"), (days(30), "5000.00"), (days(60), "3000.00"))
    assert [r.pk for r in rows[:2]] == [first.pk, second.pk]
    assert len(rows) == 3
    rows = plan(contract, (days(5), "2000.00"), (days(30), "8000.00"))
    assert [r.pk for r in rows] == [first.pk, second.pk]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    total=st.decimals(min_value="1.00", max_value="99999999.99", places=2),
    weights=st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=12),
)
def test_plan_split_adds_up_exactly(total, weights):
    # Percentages with two decimals that add up to exactly 100.
    scale = sum(weights)
    percentages = [(Decimal(w) * 100 / scale).quantize(Decimal("0.01")) for w in weights[:-1]]
    percentages.append(Decimal("100") - sum(percentages, Decimal("0")))
    if any(p <= 0 for p in percentages):
        return
    exact = [total * p / 100 for p in percentages]
    try:
        amounts = services.receivable_plan_split(total=total, percentages=percentages)
    except ServiceError as exc:
        # Refused only when a share is too small to survive the rounding.
        assert exc.field == "percentages"
        assert min(exact) < Decimal("0.01") * len(percentages)
        return
    assert sum(amounts, Decimal("0")) == total
    assert all(a > 0 and a == a.quantize(Decimal("0.01")) for a in amounts)
    assert len(amounts) == len(percentages)
    for amount, share in zip(amounts[:-1], exact[:-1], strict=True):
        assert abs(amount - share) <= Decimal("0.005")
    assert abs(amounts[-1] - exact[-1]) <= Decimal("0.005") * len(amounts)


def test_plan_split_refuses_bad_percentages():
    with pytest.raises(ServiceError):
        services.receivable_plan_split(total=Decimal("100"), percentages=[Decimal("50")])
    with pytest.raises(ServiceError):
        services.receivable_plan_split(total=Decimal("100"), percentages=[])
    with pytest.raises(ServiceError):
        services.receivable_plan_split(
            total=Decimal("100"), percentages=[Decimal("150"), Decimal("-50")]
        )
    assert services.receivable_plan_split(
        total=Decimal("100.00"), percentages=[Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    ) == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert services.receivable_plan_split(
        total=Decimal("10.00"), percentages=[Decimal("33.333"), Decimal("66.667")]
    ) == [Decimal("3.33"), Decimal("6.67")]


# --- expense claims -------------------------------------------------------------------------


def test_expense_default_rule_department_manager_then_finance(org):
    department_managers(org)
    claim = expense_for(org.sales1, "320.50")
    assert claim.status == ExpenseStatus.DRAFT and claim.department == org.sales1_dept
    claim = services.expense_submit(actor=org.sales1, claim=claim)
    assert claim.status == ExpenseStatus.PENDING
    request = ApprovalRequest.objects.get(object_id=claim.pk, document_type="finance.expense")
    first, second = request.steps.order_by("sort_order")
    assert list(first.candidates.all()) == [org.salesmgr1]
    assert org.finance in second.candidates.all()
    refused(lambda: approval_approve(actor=org.finance, request=request), error=PermissionRefused)
    approval_approve(actor=org.salesmgr1, request=request)
    claim.refresh_from_db()
    assert claim.status == ExpenseStatus.PENDING
    refused(lambda: services.expense_pay(actor=org.finance, claim=claim), code="invalid_status")
    approval_approve(actor=org.finance, request=request)
    claim.refresh_from_db()
    assert claim.status == ExpenseStatus.APPROVED
    refused(lambda: services.expense_pay(actor=org.finance, claim=claim, paid_on=days(1)))
    paid = services.expense_pay(actor=org.finance, claim=claim)
    assert paid.status == ExpenseStatus.PAID and paid.paid_by == org.finance
    refused(lambda: services.expense_pay(actor=org.finance, claim=paid), code="invalid_status")


def test_only_the_claimant_edits_and_submits(org):
    department_managers(org)
    claim = expense_for(org.sales1)
    data = {
        "category": expense_category("office"),
        "amount": "88.00",
        "spent_on": today(),
        "description": "打印纸",
    }
    refused(
        lambda: services.expense_update(
            actor=org.salesmgr1, claim=claim, expected_version=claim.version, data=data
        ),
        error=PermissionRefused,
    )
    refused(
        lambda: services.expense_submit(actor=org.salesmgr1, claim=claim), error=PermissionRefused
    )
    refused(
        lambda: services.expense_update(
            actor=org.sales1, claim=claim, expected_version=None, data=data
        ),
        field="version",
    )
    refused(
        lambda: services.expense_update(
            actor=org.sales1, claim=claim, expected_version=claim.version + 1, data=data
        ),
        error=ConflictError,
    )
    updated = services.expense_update(
        actor=org.sales1, claim=claim, expected_version=claim.version, data=data
    )
    assert updated.amount == Decimal("88.00") and updated.category.value == "office"
    submitted = services.expense_submit(actor=org.sales1, claim=updated)
    refused(
        lambda: services.expense_update(
            actor=org.sales1, claim=submitted, expected_version=submitted.version, data=data
        ),
        code="invalid_status",
    )
    request = ApprovalRequest.objects.get(object_id=claim.pk, document_type="finance.expense")
    approval_reject(actor=org.salesmgr1, request=request, comment="缺发票")
    submitted.refresh_from_db()
    assert submitted.status == ExpenseStatus.REJECTED
    again = services.expense_update(
        actor=org.sales1,
        claim=submitted,
        expected_version=submitted.version,
        data={**data, "description": "打印纸，附发票"},
    )
    assert services.expense_submit(actor=org.sales1, claim=again).status == "pending"


def test_expense_input_is_checked(org):
    from tests.customers.factories import CustomerFactory

    stranger = CustomerFactory(owner=org.sales3)
    mine = CustomerFactory(owner=org.sales1)
    contract = active_contract(org)
    cases = [
        ({"category": None}, "category"),
        ({"category": contract}, "category"),
        ({"amount": "-5"}, "amount"),
        ({"spent_on": days(1)}, "spent_on"),
        ({"description": " "}, "description"),
        ({"customer": stranger}, "customer"),
        ({"customer": mine, "contract": contract}, "contract"),
    ]
    for change, field in cases:
        refused(lambda change=change: expense_for(org.sales1, **change), field=field)
    claim = expense_for(org.sales1, contract=contract)
    assert claim.customer_id == contract.customer_id


def test_expense_claims_are_refused_without_finance_add(org):
    refused(lambda: expense_for(org.hr), error=PermissionRefused)


# --- HR achievement and handover ------------------------------------------------------------


def test_achievement_counts_confirmed_payments_less_refunds(org):
    from kehu.hr.selectors import achievement_for

    contract = active_contract(org, amount="10000.00")
    first = pay(contract, "3000.00", confirm_by=org.finance)
    pay(contract, "2000.00")  # pending: not counted
    second = pay(contract, "1000.00", confirm_by=org.finance)
    services.payment_reverse(actor=org.finance, payment=second, reason="录错")
    approved_refund(org, first, "500.00")
    year, month = today().year, today().month
    result = achievement_for(
        year=year,
        month=month,
        user_ids=[org.sales1.pk, org.sales3.pk],
        department_ids=[org.sales1_dept.pk, org.sales.pk, org.sales2_dept.pk],
    )
    assert result["users"][org.sales1.pk]["payment_amount"] == Decimal("2500.00")
    assert result["users"][org.sales3.pk]["payment_amount"] == Decimal("0.00")
    assert result["departments"][org.sales1_dept.pk]["payment_amount"] == Decimal("2500.00")
    assert result["departments"][org.sales.pk]["payment_amount"] == Decimal("2500.00")
    assert result["departments"][org.sales2_dept.pk]["payment_amount"] == Decimal("0.00")
    last_year = achievement_for(year=year - 1, user_ids=[org.sales1.pk])
    assert last_year["users"][org.sales1.pk]["payment_amount"] == Decimal("0.00")


def test_handover_moves_open_finance_documents_with_the_contract(org):
    from kehu.customers.services import customer_handover

    contract = active_contract(org, amount="10000.00")
    confirmed = pay(contract, "1000.00", confirm_by=org.finance)
    pending = pay(contract, "500.00")
    invoice = invoice_for(contract, "100.00")
    customer_handover(actor=org.admin, from_user=org.sales1, to_user=org.sales2, reason="离职")
    contract.refresh_from_db()
    assert contract.owner == org.sales2
    pending.refresh_from_db(), confirmed.refresh_from_db(), invoice.refresh_from_db()
    assert pending.owner == org.sales2 and invoice.owner == org.sales2
    assert confirmed.owner == org.sales1  # history: achievement stays with who earned it


def test_ledger_sums_are_exact(org):
    """Found by the state machine: SQLite adds decimals in SQL as floats, so 9.56 − 5.93
    came out below 3.63 and broke the ledger's check constraint."""
    contract = active_contract(org, amount="1000.00")
    first = pay(contract, "3.63", confirm_by=org.finance)
    approved_refund(org, first, "1.21")
    approved_refund(org, first, "2.42")
    second = pay(contract, "5.93", confirm_by=org.finance)
    services.payment_reverse(actor=org.finance, payment=second, reason="录错")
    row = ledger(contract)
    assert (row.confirmed_amount, row.refunded_amount) == (Decimal("3.63"), Decimal("3.63"))
    assert row.received_amount == 0
    assert_ledger_matches_rows(contract)


def test_finance_is_told_once_of_an_invoice_to_issue(org, django_capture_on_commit_callbacks):
    from kehu.approvals.models import ApprovalRule

    ApprovalRule.objects.filter(document_type="finance.invoice").update(is_active=False)
    contract = active_contract(org)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_for(contract, "100.00")
    assert invoice.status == InvoiceStatus.APPROVED  # no rule: straight to finance
    assert (
        Notification.objects.filter(recipient=org.finance, title__contains=invoice.number).count()
        == 1
    )
