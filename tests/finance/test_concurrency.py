"""Money writes racing each other on PostgreSQL: one payment per idempotency key, and no
combination of concurrent requests overpays, over-refunds or over-invoices a contract.

Threads share the test database on PostgreSQL only (SQLite's IMMEDIATE transactions
serialise every write anyway); run with DATABASE_URL=postgres://… to exercise them.
"""

from decimal import Decimal

import pytest
from django.db import connection

from kehu.core.exceptions import ServiceError
from kehu.finance import selectors, services
from kehu.finance.models import ContractLedger, IdempotencyKey, Invoice, Payment, Refund
from tests.core.conftest import run_in_threads
from tests.finance.factories import active_contract, invoice_for, pay

THREADS = 6

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("threads share the test database on PostgreSQL only")


def _outcomes(results, code):
    """(successes, refusals) — anything else than a refusal with ``code`` fails the test."""
    done, refused = [], 0
    for result in results:
        if isinstance(result, ServiceError):
            assert result.code == code, result.message
            refused += 1
        elif isinstance(result, BaseException):
            raise result
        else:
            done.append(result)
    return done, refused


def _assert_ledger(contract):
    ledger = ContractLedger.objects.get(contract=contract)
    figures = selectors.ledger_from_rows(contract=contract)
    assert ledger.confirmed_amount == figures["confirmed_amount"]
    assert ledger.refunded_amount == figures["refunded_amount"]
    assert ledger.invoiced_amount == figures["invoiced_amount"]
    assert 0 <= ledger.received_amount <= contract.total_amount
    assert ledger.invoiced_amount <= contract.total_amount


def test_one_key_sent_twice_at_once_records_one_payment(org):
    contract = active_contract(org, amount="10000.00")
    results = run_in_threads(
        THREADS,
        lambda i: services.payment_register(
            actor=org.sales1,
            data={
                "contract": contract,
                "amount": Decimal("1234.56"),
                "received_on": contract.approved_at.date(),
                "method": "bank_transfer",
            },
            idempotency_key="double-click-1",
        ),
    )
    done, _refused = _outcomes(results, "none")
    assert len(done) == THREADS
    assert len({payment.pk for payment, _created in done}) == 1
    assert sorted(created for _payment, created in done) == [False] * (THREADS - 1) + [True]
    assert Payment.objects.filter(contract=contract).count() == 1
    assert IdempotencyKey.objects.filter(key="double-click-1").count() == 1


def test_concurrent_registrations_never_exceed_the_contract(org):
    contract = active_contract(org, amount="1000.00")
    results = run_in_threads(THREADS, lambda i: pay(contract, "300.00"))
    done, refused = _outcomes(results, "overpayment")
    assert (len(done), refused) == (3, THREADS - 3)
    assert Payment.objects.filter(contract=contract).count() == 3


def test_concurrent_confirmations_that_would_overpay_refuse_one(org):
    """Two pending payments that fit only one at a time (written past the register check,
    as an import would): confirming both at once lets exactly one through."""
    contract = active_contract(org, amount="10000.00")
    pending = [
        Payment.objects.create(
            number=f"HK-RACE-{n}",
            contract=contract,
            amount=Decimal("6000.00"),
            received_on=contract.approved_at.date(),
            method="bank_transfer",
            owner=org.sales1,
        )
        for n in range(2)
    ]
    results = run_in_threads(
        2, lambda i: services.payment_confirm(actor=org.finance, payment=pending[i])
    )
    done, refused = _outcomes(results, "overpayment")
    assert (len(done), refused) == (1, 1)
    assert ContractLedger.objects.get(contract=contract).received_amount == Decimal("6000.00")
    _assert_ledger(contract)


def test_concurrent_invoice_requests_never_exceed_the_contract(org):
    contract = active_contract(org, amount="1000.00")
    results = run_in_threads(THREADS, lambda i: invoice_for(contract, "400.00"))
    done, refused = _outcomes(results, "overinvoicing")
    assert (len(done), refused) == (2, THREADS - 2)
    assert Invoice.objects.filter(contract=contract).count() == 2


def test_concurrent_refunds_never_exceed_the_payment(org):
    contract = active_contract(org, amount="1000.00")
    payment = pay(contract, "500.00", confirm_by=org.finance)
    results = run_in_threads(
        THREADS,
        lambda i: services.refund_request(
            actor=org.sales1, payment=payment, amount=Decimal("200.00"), reason="退货"
        ),
    )
    done, refused = _outcomes(results, "overrefund")
    assert (len(done), refused) == (2, THREADS - 2)
    assert Refund.objects.filter(payment=payment).count() == 2


def test_refund_and_reversal_of_one_payment_race_one_wins(org):
    """A reversal and a refund of the same payment at once: one of them, never both (and no
    deadlock: both lock the payment, then the ledger)."""
    contract = active_contract(org, amount="1000.00")
    payment = pay(contract, "500.00", confirm_by=org.finance)

    def work(index):
        if index == 0:
            return services.payment_reverse(actor=org.finance, payment=payment, reason="录错")
        return services.refund_request(
            actor=org.sales1, payment=payment, amount=Decimal("100.00"), reason="退货"
        )

    results = run_in_threads(2, work)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ServiceError), errors
    reversed_ = Payment.objects.filter(reverses=payment).exists()
    refunded = Refund.objects.filter(payment=payment).exists()
    assert reversed_ != refunded
    _assert_ledger(contract)


def test_mixed_confirmations_and_reversals_keep_the_ledger(org):
    """Confirm and reverse many payments of one contract at once: the ledger stays equal to
    its rows and nobody deadlocks."""
    contract = active_contract(org, amount="10000.00")
    confirmed = [pay(contract, "100.00", confirm_by=org.finance) for _ in range(THREADS // 2)]
    pending = [pay(contract, "100.00") for _ in range(THREADS // 2)]

    def work(index):
        if index % 2 == 0:
            return services.payment_reverse(
                actor=org.finance, payment=confirmed[index // 2], reason="录错"
            )
        return services.payment_confirm(actor=org.finance, payment=pending[index // 2])

    results = run_in_threads(THREADS, work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert ContractLedger.objects.get(contract=contract).received_amount == Decimal("300.00")
    _assert_ledger(contract)
