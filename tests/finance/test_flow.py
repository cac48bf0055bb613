"""Money on a contract from plan to refund, and the ledger invariant along the way."""

import datetime
from decimal import Decimal

import pytest

from kehu.core.exceptions import ServiceError
from kehu.finance import selectors, services
from kehu.finance.models import ContractLedger, InvoiceStatus, PaymentStatus, RefundStatus
from tests.finance.factories import active_contract, approve_all

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today()


def _pay(org, contract, amount, key=None, actor=None):
    return services.payment_register(
        actor=actor or org.sales1,
        data={
            "contract": contract,
            "amount": Decimal(amount),
            "received_on": TODAY,
            "method": "bank_transfer",
        },
        idempotency_key=key,
    )


def test_plan_payment_invoice_refund(org):
    contract = active_contract(org, amount="10000.00")
    services.receivable_plan_set(
        actor=org.sales1,
        contract=contract,
        instalments=[
            {"due_date": TODAY - datetime.timedelta(days=40), "amount": Decimal("3000.00")},
            {"due_date": TODAY + datetime.timedelta(days=20), "amount": Decimal("7000.00")},
        ],
    )
    payment, created = _pay(org, contract, "4000.00", key="k1")
    again, created_again = _pay(org, contract, "4000.00", key="k1")
    assert created and not created_again and again.pk == payment.pk
    with pytest.raises(ServiceError):
        _pay(org, contract, "5000.00", key="k1")  # same key, different body
    services.payment_confirm(actor=org.finance, payment=payment)
    money = selectors.contract_money(contract=contract)
    assert money.received == Decimal("4000.00")
    assert [s.status for s in money.instalments] == ["received", "partly_received"]
    with pytest.raises(ServiceError):
        _pay(org, contract, "6000.01")  # overpayment

    invoice = services.invoice_request(
        actor=org.sales1,
        data={
            "contract": contract,
            "amount": Decimal("4000.00"),
            "title": "测试客户有限公司",
            "tax_number": "91310000123456789X",
        },
    )
    assert invoice.status == InvoiceStatus.PENDING
    approve_all(invoice, org)
    invoice.refresh_from_db()
    services.invoice_issue(actor=org.finance, invoice=invoice, invoice_number="NO.0001")
    refund = services.refund_request(
        actor=org.sales1, payment=payment, amount=Decimal("500.00"), reason="质量问题"
    )
    approve_all(refund, org)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.APPROVED
    ledger = ContractLedger.objects.get(contract=contract)
    assert ledger.received_amount == Decimal("3500.00")
    assert ledger.invoiced_amount == Decimal("4000.00")
    rows = selectors.receivables_aging(user=org.finance)
    assert rows[0]["total"] == Decimal("6500.00")
    reversal = None
    with pytest.raises(ServiceError):
        services.payment_reverse(actor=org.finance, payment=payment, reason="录错")  # refunded
    second, _ = _pay(org, contract, "100.00")
    services.payment_confirm(actor=org.finance, payment=second)
    reversal = services.payment_reverse(actor=org.finance, payment=second, reason="录错")
    assert reversal.amount == Decimal("-100.00") and reversal.status == PaymentStatus.CONFIRMED
    ledger.refresh_from_db()
    assert ledger.received_amount == Decimal("3500.00")
