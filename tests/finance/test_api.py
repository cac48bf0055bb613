"""/api/v1/ finance endpoints: plans, payments, invoices, refunds, expenses and reports."""

import datetime
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kehu.core.attachments import attachment_add
from kehu.finance import selectors, services
from kehu.finance.models import (
    ContractLedger,
    ExpenseClaim,
    IdempotencyKey,
    Invoice,
    Payment,
    ReceivableInstalment,
    Refund,
)
from kehu.system.models import DictionaryItem
from tests.core.conftest import run_in_threads
from tests.finance.factories import active_contract, approve_all

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today()
PLANS = "/api/v1/receivable-plans/"
PAYMENTS = "/api/v1/payments/"
INVOICES = "/api/v1/invoices/"
REFUNDS = "/api/v1/refunds/"
EXPENSES = "/api/v1/expenses/"
REPORTS = "/api/v1/reports/"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TAX_NUMBER = "91310000123456789X"


def days(n: int) -> str:
    return (TODAY + datetime.timedelta(days=n)).isoformat()


def plan_url(contract) -> str:
    return f"{PLANS}contract/{contract.pk}/"


def pay(org, contract, amount="1000.00", *, actor=None, confirm=True) -> Payment:
    payment, _created = services.payment_register(
        actor=actor or org.sales1,
        data={
            "contract": contract,
            "amount": Decimal(amount),
            "received_on": TODAY,
            "method": "bank_transfer",
        },
    )
    if confirm:
        payment = services.payment_confirm(actor=org.finance, payment=payment)
    return payment


def payment_body(contract, amount="1000.00", **extra) -> dict:
    return {
        "contract": contract.pk,
        "amount": amount,
        "received_on": TODAY.isoformat(),
        "method": "bank_transfer",
        **extra,
    }


def invoice_body(contract, amount="1000.00", **extra) -> dict:
    return {
        "contract": contract.pk,
        "invoice_type": "vat_ordinary",
        "title": "测试客户有限公司",
        "tax_number": TAX_NUMBER,
        "amount": amount,
        **extra,
    }


def category(value="travel") -> DictionaryItem:
    return DictionaryItem.objects.get(dictionary__code="expense_category", value=value)


def expense_body(**extra) -> dict:
    return {
        "category": category().pk,
        "amount": "356.50",
        "spent_on": TODAY.isoformat(),
        "description": "上海出差高铁票",
        **extra,
    }


@pytest.fixture(autouse=True)
def department_managers(org):
    """Expense claims go to the claimant's department manager first."""
    for department, manager in (
        (org.sales1_dept, org.salesmgr1),
        (org.sales2_dept, org.salesdirector),
    ):
        department.manager = manager
        department.save()


@pytest.fixture
def contract(org):
    """sales1's contract in force, 10,000.00."""
    return active_contract(org, org.sales1, amount="10000.00")


@pytest.fixture
def other(org):
    """sales3's contract (销售二部): outside sales1's scope."""
    return active_contract(org, org.sales3, amount="5000.00")


# --- receivable plans -----------------------------------------------------------------------


def test_plan_put_and_get_with_derived_status(org, api_for, contract):
    api = api_for(org.sales1)
    response = api.put(
        plan_url(contract),
        {
            "instalments": [
                {"due_date": days(20), "amount": "7000.00", "note": "尾款"},
                {
                    "due_date": days(-40),
                    "amount": "3000.00",
                    "note": "首付",
                    "received": "3000.00",  # derived: ignored
                    "status": "received",
                },
            ],
            "received": "10000.00",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["total"] == "10000.00" and body["planned"] == "10000.00"
    assert [i["due_date"] for i in body["instalments"]] == [days(-40), days(20)]
    assert [i["status"] for i in body["instalments"]] == ["overdue", "pending"]
    assert body["overdue"] == "3000.00"

    pay(org, contract, "4000.00")
    body = api.get(plan_url(contract)).json()
    assert body["received"] == "4000.00" and body["outstanding"] == "6000.00"
    assert [(i["received"], i["outstanding"], i["status"]) for i in body["instalments"]] == [
        ("3000.00", "0.00", "received"),
        ("1000.00", "6000.00", "partly_received"),
    ]


def test_plan_put_refused_when_it_does_not_add_up(org, api_for, contract):
    api = api_for(org.sales1)
    response = api.put(
        plan_url(contract),
        {"instalments": [{"due_date": days(10), "amount": "9000.00"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "add up to 9,000.00" in response.json()["instalments"][0]
    bad = api.put(
        plan_url(contract),
        {"instalments": [{"due_date": days(10), "amount": "10000.001"}]},
        format="json",
    )
    assert bad.status_code == 400 and "instalments" in bad.json()
    empty = api.put(plan_url(contract), {"instalments": []}, format="json")
    assert empty.status_code == 400 and "instalments" in empty.json()
    assert not ReceivableInstalment.objects.exists()


def test_plan_scope_and_permissions(org, api_for, contract, other):
    sales1 = api_for(org.sales1)
    assert sales1.get(plan_url(other)).status_code == 404
    put = {"instalments": [{"due_date": days(10), "amount": "5000.00"}]}
    assert sales1.put(plan_url(other), put, format="json").status_code == 404
    assert not ReceivableInstalment.objects.filter(contract=other).exists()
    assert sales1.get(f"{PLANS}contract/999999/").status_code == 404
    assert api_for(org.hr).get(plan_url(contract)).status_code == 403
    assert api_for(org.hr).get(PLANS).status_code == 403
    # The general manager reads every plan but does not set them (no finance.add).
    assert api_for(org.manager).get(plan_url(other)).status_code == 200
    assert api_for(org.manager).put(plan_url(other), put, format="json").status_code == 403


def test_instalment_list_filters_match_the_selectors(org, api_for, contract, other):
    services.receivable_plan_set(
        actor=org.sales1,
        contract=contract,
        instalments=[
            {"due_date": TODAY - datetime.timedelta(days=40), "amount": Decimal("3000.00")},
            {"due_date": TODAY - datetime.timedelta(days=5), "amount": Decimal("2000.00")},
            {"due_date": TODAY + datetime.timedelta(days=20), "amount": Decimal("2500.10")},
            {"due_date": TODAY + datetime.timedelta(days=50), "amount": Decimal("2499.90")},
        ],
    )
    services.receivable_plan_set(
        actor=org.sales3,
        contract=other,
        instalments=[{"due_date": TODAY, "amount": Decimal("5000.00")}],
    )
    pay(org, contract, "0.10")
    pay(org, contract, "0.20")
    pay(org, contract, "7500.00")  # 7,500.30: the first three settled, the 3rd to the cent
    pay(org, other, "100.00", actor=org.sales3)

    finance = api_for(org.finance)
    rows = finance.get(PLANS, {"page_size": 50}).json()["results"]
    assert len(rows) == 5
    expected = {}
    for c in (contract, other):
        for state in selectors.contract_money(contract=c).instalments:
            expected[state.instalment.pk] = (
                f"{state.received:.2f}",
                f"{state.outstanding:.2f}",
                state.status,
            )
    assert {r["id"]: (r["received"], r["outstanding"], r["status"]) for r in rows} == expected
    by_status = {
        status: sorted(r["id"] for r in finance.get(PLANS, {"status": status}).json()["results"])
        for status in ("pending", "partly_received", "received", "overdue")
    }
    for status, ids in by_status.items():
        assert ids == sorted(pk for pk, state in expected.items() if state[2] == status)
    assert len(by_status["received"]) == 3 and len(by_status["partly_received"]) == 2

    window = finance.get(PLANS, {"due_from": days(-10), "due_to": days(30)}).json()["results"]
    assert [r["due_date"] for r in window] == [days(-5), days(0), days(20)]
    # A date range does not change how earlier instalments settle.
    assert [r["status"] for r in window] == ["received", "partly_received", "received"]
    mine = api_for(org.sales1).get(PLANS).json()
    assert mine["count"] == 4 and {r["contract"] for r in mine["results"]} == {contract.pk}
    assert api_for(org.sales1).get(PLANS, {"contract": other.pk}).json()["count"] == 0
    bad = finance.get(PLANS, {"status": "paid"})
    assert bad.status_code == 400 and "status" in bad.json()


# --- payments -------------------------------------------------------------------------------


def test_payment_register_and_confirm(org, api_for, contract):
    sales1 = api_for(org.sales1)
    response = sales1.post(PAYMENTS, payment_body(contract, "2500.00"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    for field in [
        "id",
        "contract",
        "amount",
        "received_on",
        "method",
        "status",
        "number",
        "kind",
        "reverses",
        "instalment",
        "account",
        "reference",
        "note",
        "owner",
        "confirmed_by",
        "confirmed_at",
        "version",
    ]:
        assert field in body
    assert body["status"] == "pending" and body["amount"] == "2500.00"
    assert body["method_label"] == "Bank transfer" and body["number"].startswith("HK")
    url = f"{PAYMENTS}{body['id']}/"
    for name in ("confirm", "reject", "reverse"):
        refused = sales1.post(f"{url}{name}/", {"reason": "x"}, format="json")
        assert refused.status_code == 403, name
    assert api_for(org.salesmgr1).post(f"{url}confirm/", {}, format="json").status_code == 403
    confirmed = api_for(org.finance).post(f"{url}confirm/", {"version": 1}, format="json")
    assert confirmed.status_code == 200, confirmed.json()
    body = confirmed.json()
    assert body["status"] == "confirmed" and body["confirmed_by"] == org.finance.pk
    assert body["confirmed_at"] and body["version"] == 2
    assert ContractLedger.objects.get(contract=contract).received_amount == Decimal("2500.00")
    again = api_for(org.finance).post(f"{url}confirm/", {}, format="json")
    assert again.status_code == 400 and "status" in again.json()


def test_payment_server_fields_are_read_only(org, api_for, contract):
    earlier = pay(org, contract, "100.00")
    response = api_for(org.sales1).post(
        PAYMENTS,
        payment_body(
            contract,
            "200.00",
            number="HK-FAKE",
            status="confirmed",
            kind="reversal",
            reverses=earlier.pk,
            owner=org.sales2.pk,
            department=org.sales2_dept.pk,
            confirmed_by=org.finance.pk,
            confirmed_at="2020-01-01T00:00:00Z",
            currency="USD",
            version=7,
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] != "HK-FAKE" and body["status"] == "pending"
    assert body["kind"] == "payment" and body["reverses"] is None
    assert body["owner"] == org.sales1.pk and body["confirmed_by"] is None
    assert body["confirmed_at"] is None and body["currency"] == "CNY" and body["version"] == 1
    assert ContractLedger.objects.get(contract=contract).received_amount == Decimal("100.00")


@pytest.mark.parametrize("amount", ["0", "0.00", "-5.00", "1.234", "abc", ""])
def test_payment_bad_amounts(org, api_for, contract, amount):
    response = api_for(org.sales1).post(PAYMENTS, payment_body(contract, amount), format="json")
    assert response.status_code == 400
    assert "amount" in response.json()
    assert not Payment.objects.exists()


def test_payment_overpayment_refused_with_the_message(org, api_for, contract):
    pay(org, contract, "6000.00")
    pay(org, contract, "3000.00", confirm=False)
    response = api_for(org.sales1).post(PAYMENTS, payment_body(contract, "1000.01"), format="json")
    assert response.status_code == 400
    message = response.json()["amount"][0]
    assert "exceed the contract amount" in message and "1,000.00" in message
    assert Payment.objects.count() == 2
    ok = api_for(org.sales1).post(PAYMENTS, payment_body(contract, "1000.00"), format="json")
    assert ok.status_code == 201


def test_payment_other_bad_input(org, api_for, contract, other):
    api = api_for(org.sales1)
    future = api.post(PAYMENTS, payment_body(contract, received_on=days(1)), format="json")
    assert future.status_code == 400 and "received_on" in future.json()
    method = api.post(PAYMENTS, payment_body(contract, method="bitcoin"), format="json")
    assert method.status_code == 400 and "method" in method.json()
    # Another salesperson's contract reads like one that does not exist.
    scoped = api.post(PAYMENTS, payment_body(other), format="json")
    assert scoped.status_code == 400 and "contract" in scoped.json()
    services.receivable_plan_set(
        actor=org.sales3,
        contract=other,
        instalments=[{"due_date": TODAY, "amount": Decimal("5000.00")}],
    )
    foreign = other.instalments.get()
    wrong = api.post(PAYMENTS, payment_body(contract, instalment=foreign.pk), format="json")
    assert wrong.status_code == 400 and "instalment" in wrong.json()
    assert not Payment.objects.exists()


def test_payment_reject_cancel_and_stale_version(org, api_for, contract):
    first = pay(org, contract, "100.00", confirm=False)
    second = pay(org, contract, "200.00", confirm=False)
    finance = api_for(org.finance)
    url = f"{PAYMENTS}{first.pk}/"
    missing = finance.post(f"{url}reject/", {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()
    stale = finance.post(f"{url}reject/", {"reason": "查无此款", "version": 9}, format="json")
    assert stale.status_code == 409
    rejected = finance.post(f"{url}reject/", {"reason": "查无此款"}, format="json")
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["decision_note"] == "查无此款"
    stale = finance.post(f"{PAYMENTS}{second.pk}/confirm/", {"version": 5}, format="json")
    assert stale.status_code == 409
    assert Payment.objects.get(pk=second.pk).status == "pending"
    # Whoever registered it takes it back; a colleague cannot.
    assert (
        api_for(org.sales2).post(f"{PAYMENTS}{second.pk}/cancel/", {}, format="json").status_code
        == 404
    )
    cancelled = api_for(org.sales1).post(f"{PAYMENTS}{second.pk}/cancel/", {}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert not ContractLedger.objects.get(contract=contract).received_amount


def test_payment_reverse_returns_the_reversal_entry(org, api_for, contract):
    payment = pay(org, contract, "800.00")
    finance = api_for(org.finance)
    url = f"{PAYMENTS}{payment.pk}/"
    missing = finance.post(f"{url}reverse/", {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()
    stale = finance.post(f"{url}reverse/", {"reason": "录入错误", "version": 1}, format="json")
    assert stale.status_code == 409 and Payment.objects.count() == 1
    response = finance.post(f"{url}reverse/", {"reason": "录入错误", "version": 2}, format="json")
    assert response.status_code == 201, response.json()
    reversal = response.json()
    assert reversal["kind"] == "reversal" and reversal["amount"] == "-800.00"
    assert reversal["reverses"] == payment.pk and reversal["status"] == "confirmed"
    assert reversal["id"] != payment.pk
    original = finance.get(url).json()
    assert original["reversed_by"] == reversal["id"] and original["status"] == "confirmed"
    assert ContractLedger.objects.get(contract=contract).received_amount == 0
    again = finance.post(f"{url}reverse/", {"reason": "再来"}, format="json")
    assert again.status_code == 400 and "already been reversed" in again.json()["status"][0]
    assert Payment.objects.count() == 2


def test_payments_are_never_updated_or_deleted(org, api_for, contract):
    payment = pay(org, contract, "100.00")
    url = f"{PAYMENTS}{payment.pk}/"
    for api in (api_for(org.finance), api_for(org.admin)):
        assert api.put(url, payment_body(contract), format="json").status_code == 405
        assert api.patch(url, {"amount": "1.00"}, format="json").status_code == 405
        assert api.delete(url).status_code == 405
    assert Payment.objects.get(pk=payment.pk).amount == Decimal("100.00")


# --- idempotency ----------------------------------------------------------------------------


def test_idempotency_key_same_request_answers_the_first_payment(org, api_for, contract):
    api = api_for(org.sales1)
    body = payment_body(contract, "1500.00", reference="BANK-778")
    first = api.post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-778")
    assert first.status_code == 201
    again = api.post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-778")
    assert again.status_code == 200
    assert again.json() == first.json()
    # Read-only fields the client adds do not make it a different request.
    noisy = api.post(
        PAYMENTS, {**body, "status": "confirmed"}, format="json", HTTP_IDEMPOTENCY_KEY="pay-778"
    )
    assert noisy.status_code == 200 and noisy.json()["id"] == first.json()["id"]
    assert Payment.objects.count() == 1


def test_idempotency_key_with_a_different_request_is_refused(org, api_for, contract):
    api = api_for(org.sales1)
    api.post(PAYMENTS, payment_body(contract, "100.00"), format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = api.post(
        PAYMENTS, payment_body(contract, "200.00"), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 422
    assert list(response.json()) == ["idempotency_key"]
    assert "already used for a different request" in response.json()["idempotency_key"][0]
    assert Payment.objects.count() == 1


def test_without_a_key_every_request_records_a_payment(org, api_for, contract):
    api = api_for(org.sales1)
    for _ in range(2):
        assert api.post(PAYMENTS, payment_body(contract), format="json").status_code == 201
    assert Payment.objects.count() == 2 and not IdempotencyKey.objects.exists()


def test_idempotency_key_is_per_user_and_bounded(org, api_for, contract):
    body = payment_body(contract, "100.00")
    one = api_for(org.sales1).post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    two = api_for(org.salesmgr1).post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]
    long = api_for(org.sales1).post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="x" * 101)
    assert long.status_code == 400 and "idempotency_key" in long.json()
    assert Payment.objects.count() == 2


def test_a_refused_request_does_not_use_up_its_key(org, api_for, contract):
    api = api_for(org.sales1)
    pay(org, contract, "9950.00")
    body = payment_body(contract, "100.00")
    refused = api.post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="retry")
    assert refused.status_code == 400
    services.payment_reverse(actor=org.finance, payment=Payment.objects.get(), reason="金额录错")
    retried = api.post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="retry")
    assert retried.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_record_one_payment(org):
    if connection.vendor != "postgresql":
        pytest.skip("threads share the test database on PostgreSQL only")
    from rest_framework.test import APIClient

    contract = active_contract(org, org.sales1, amount="10000.00")
    body = payment_body(contract, "3000.00")

    def work(index):
        client = APIClient()
        client.force_authenticate(org.sales1)
        response = client.post(PAYMENTS, body, format="json", HTTP_IDEMPOTENCY_KEY="race-1")
        return response.status_code, response.json()

    results = run_in_threads(6, work)
    assert not any(isinstance(r, BaseException) for r in results), results
    codes = sorted(code for code, _body in results)
    assert codes == [200] * 5 + [201], results
    assert len({body["id"] for _code, body in results}) == 1
    assert Payment.objects.filter(contract=contract).count() == 1
    assert IdempotencyKey.objects.count() == 1


# --- invoices -------------------------------------------------------------------------------


def test_invoice_request_issue_and_void(org, api_for, contract):
    sales1 = api_for(org.sales1)
    response = sales1.post(
        INVOICES,
        invoice_body(
            contract,
            "4000.00",
            status="issued",
            invoice_number="FAKE-1",
            owner=org.sales2.pk,
            version=5,
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["invoice_number"] == ""
    assert body["owner"] == org.sales1.pk and body["number"].startswith("KP")
    invoice = Invoice.objects.get(pk=body["id"])
    approve_all(invoice, org)
    url = f"{INVOICES}{invoice.pk}/"
    issue = {"invoice_number": "No.00012345", "issued_on": TODAY.isoformat()}
    assert sales1.post(f"{url}issue/", issue, format="json").status_code == 403
    assert api_for(org.salesmgr1).post(f"{url}issue/", issue, format="json").status_code == 403
    finance = api_for(org.finance)
    stale = finance.post(f"{url}issue/", {**issue, "version": 1}, format="json")
    assert stale.status_code == 409
    issued = finance.post(f"{url}issue/", issue, format="json")
    assert issued.status_code == 200, issued.json()
    assert issued.json()["status"] == "issued"
    assert issued.json()["invoice_number"] == "No.00012345"
    assert issued.json()["issued_by"] == org.finance.pk
    assert ContractLedger.objects.get(contract=contract).invoiced_amount == Decimal("4000.00")
    assert sales1.post(f"{url}void/", {"reason": "抬头错"}, format="json").status_code == 403
    no_reason = finance.post(f"{url}void/", {"reason": ""}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    voided = finance.post(f"{url}void/", {"reason": "抬头错"}, format="json")
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    assert voided.json()["void_reason"] == "抬头错"
    assert ContractLedger.objects.get(contract=contract).invoiced_amount == 0
    for method in ("put", "patch", "delete"):
        assert getattr(finance, method)(url, {}, format="json").status_code == 405


def test_invoice_over_invoicing_and_bad_input(org, api_for, contract):
    api = api_for(org.sales1)
    assert api.post(INVOICES, invoice_body(contract, "6000.00"), format="json").status_code == 201
    over = api.post(INVOICES, invoice_body(contract, "4000.01"), format="json")
    assert over.status_code == 400
    message = over.json()["amount"][0]
    assert "exceed the contract amount" in message and "4,000.00" in message
    for amount in ("0", "-1", "1.001", "many"):
        bad = api.post(INVOICES, invoice_body(contract, amount), format="json")
        assert bad.status_code == 400 and "amount" in bad.json(), amount
    tax = api.post(INVOICES, invoice_body(contract, tax_number="123"), format="json")
    assert tax.status_code == 400 and "tax_number" in tax.json()
    special = api.post(
        INVOICES, invoice_body(contract, "10.00", invoice_type="vat_special"), format="json"
    )
    assert special.status_code == 400
    assert "VAT special invoice needs" in str(special.json())
    assert Invoice.objects.count() == 1


# --- refunds --------------------------------------------------------------------------------


def test_refund_request_and_limits(org, api_for, contract, other):
    payment = pay(org, contract, "3000.00")
    api = api_for(org.sales1)
    over = api.post(
        REFUNDS, {"payment": payment.pk, "amount": "3000.01", "reason": "退货"}, format="json"
    )
    assert over.status_code == 400 and "At most 3,000.00" in over.json()["amount"][0]
    for amount in ("0", "-3", "1.005", "x"):
        bad = api.post(
            REFUNDS, {"payment": payment.pk, "amount": amount, "reason": "退货"}, format="json"
        )
        assert bad.status_code == 400 and "amount" in bad.json(), amount
    response = api.post(
        REFUNDS,
        {
            "payment": payment.pk,
            "amount": "500.00",
            "reason": "部分退货",
            "status": "approved",
            "contract": other.pk,
            "owner": org.sales2.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["contract"] == contract.pk
    assert body["owner"] == org.sales1.pk and body["payment_number"] == payment.number
    foreign = pay(org, other, "100.00", actor=org.sales3)
    scoped = api.post(
        REFUNDS, {"payment": foreign.pk, "amount": "1.00", "reason": "x"}, format="json"
    )
    assert scoped.status_code == 400 and "payment" in scoped.json()
    assert Refund.objects.count() == 1
    approve_all(Refund.objects.get(), org)
    assert ContractLedger.objects.get(contract=contract).received_amount == Decimal("2500.00")
    url = f"{REFUNDS}{body['id']}/"
    assert api.get(url).json()["status"] == "approved"
    for method in ("put", "patch", "delete"):
        assert getattr(api_for(org.finance), method)(url, {}, format="json").status_code == 405


# --- expense claims -------------------------------------------------------------------------


def test_expense_claim_create_update_submit_pay(org, api_for, contract, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    sales1 = api_for(org.sales1)
    response = sales1.post(
        EXPENSES,
        expense_body(
            contract=contract.pk,
            owner=org.sales2.pk,
            department=org.sales2_dept.pk,
            status="paid",
            number="BX-FAKE",
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft" and body["owner"] == org.sales1.pk
    assert body["department"] == org.sales1_dept.pk and body["number"].startswith("BX")
    assert body["customer"] == contract.customer_id and body["category_label"] == "Travel"
    assert body["attachments"] == []
    url = f"{EXPENSES}{body['id']}/"
    attachment_add(
        actor=org.sales1,
        obj=ExpenseClaim.objects.get(pk=body["id"]),
        file=SimpleUploadedFile("发票.pdf", b"%PDF-1.4 receipt"),
    )
    listed = sales1.get(EXPENSES).json()["results"][0]["attachments"]
    assert [(a["name"], a["content_type"]) for a in listed] == [("发票.pdf", "application/pdf")]
    missing = sales1.patch(url, {"amount": "400.00"}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()
    changed = sales1.patch(
        url,
        {
            "amount": "400.00",
            "version": 1,
            "status": "approved",
            "owner": org.sales2.pk,
            "number": "BX-FAKE",
            "paid_by": org.finance.pk,
        },
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["status"] == "draft" and changed.json()["owner"] == org.sales1.pk
    assert changed.json()["number"] == body["number"] and changed.json()["paid_by"] is None
    assert changed.json()["amount"] == "400.00" and changed.json()["version"] == 2
    assert changed.json()["description"] == "上海出差高铁票"
    stale = sales1.patch(url, {"amount": "1.00", "version": 1}, format="json")
    assert stale.status_code == 409
    full = sales1.put(url, expense_body(amount="410.00", contract=None, version=2), format="json")
    assert full.status_code == 200 and full.json()["contract"] is None
    # Only the claimant changes a claim, even one the manager can see.
    other_hand = api_for(org.salesmgr1).patch(url, {"amount": "1.00", "version": 3}, format="json")
    assert other_hand.status_code == 403
    submitted = sales1.post(f"{url}submit/", {"version": 3}, format="json")
    assert submitted.status_code == 200 and submitted.json()["status"] == "pending"
    locked = sales1.patch(url, {"amount": "1.00", "version": 4}, format="json")
    assert locked.status_code == 400 and "status" in locked.json()
    claim = ExpenseClaim.objects.get(pk=body["id"])
    approve_all(claim, org)
    assert sales1.post(f"{url}pay/", {}, format="json").status_code == 403
    assert api_for(org.salesmgr1).post(f"{url}pay/", {}, format="json").status_code == 403
    paid = api_for(org.finance).post(f"{url}pay/", {"paid_on": TODAY.isoformat()}, format="json")
    assert paid.status_code == 200, paid.json()
    assert paid.json()["status"] == "paid" and paid.json()["paid_by"] == org.finance.pk
    assert sales1.delete(url).status_code == 405


def test_expense_bad_input(org, api_for, other):
    api = api_for(org.sales1)
    for amount in ("0", "-10", "3.141", "lots"):
        bad = api.post(EXPENSES, expense_body(amount=amount), format="json")
        assert bad.status_code == 400 and "amount" in bad.json(), amount
    empty = api.post(EXPENSES, expense_body(description=" "), format="json")
    assert empty.status_code == 400 and "description" in empty.json()
    wrong = api.post(
        EXPENSES, expense_body(category=category_of("payment_method").pk), format="json"
    )
    assert wrong.status_code == 400 and "category" in wrong.json()
    scoped = api.post(EXPENSES, expense_body(contract=other.pk), format="json")
    assert scoped.status_code == 400 and "contract" in scoped.json()
    future = api.post(EXPENSES, expense_body(spent_on=days(2)), format="json")
    assert future.status_code == 400 and "spent_on" in future.json()
    assert not ExpenseClaim.objects.exists()


def category_of(dictionary: str) -> DictionaryItem:
    return DictionaryItem.objects.filter(dictionary__code=dictionary).first()


# --- scope ----------------------------------------------------------------------------------


def _documents_of(org, contract, owner):
    payment = pay(org, contract, "1000.00", actor=owner)
    invoice = services.invoice_request(
        actor=owner,
        data={
            "contract": contract,
            "amount": Decimal("1000.00"),
            "title": "客户",
            "tax_number": TAX_NUMBER,
        },
    )
    refund = services.refund_request(
        actor=owner, payment=payment, amount=Decimal("10.00"), reason="退"
    )
    claim = services.expense_create(
        actor=owner,
        data={
            "category": category(),
            "amount": Decimal("88.00"),
            "spent_on": TODAY,
            "description": "打车",
        },
    )
    return {PAYMENTS: payment, INVOICES: invoice, REFUNDS: refund, EXPENSES: claim}


def test_out_of_scope_documents_are_not_found(org, api_for, contract, other):
    mine = _documents_of(org, contract, org.sales1)
    theirs = _documents_of(org, other, org.sales3)
    sales1 = api_for(org.sales1)
    for base, document in theirs.items():
        assert sales1.get(f"{base}{document.pk}/").status_code == 404, base
        listed = sales1.get(base).json()["results"]
        assert [row["id"] for row in listed] == [mine[base].pk], base
        assert api_for(org.sales3).get(f"{base}{document.pk}/").status_code == 200
        assert api_for(org.finance).get(f"{base}{document.pk}/").status_code == 200
        assert api_for(org.hr).get(base).status_code == 403
    # Actions on them are 404 as well (not 403: their existence is not revealed).
    assert sales1.post(f"{PAYMENTS}{theirs[PAYMENTS].pk}/cancel/", {}).status_code == 404
    assert sales1.post(f"{EXPENSES}{theirs[EXPENSES].pk}/submit/", {}).status_code == 404
    patch = sales1.patch(f"{EXPENSES}{theirs[EXPENSES].pk}/", {"amount": "1", "version": 1})
    assert patch.status_code == 404
    # The sales manager of 销售一部 sees his team's, not 销售二部's.
    manager = api_for(org.salesmgr1)
    assert manager.get(f"{PAYMENTS}{mine[PAYMENTS].pk}/").status_code == 200
    assert manager.get(f"{PAYMENTS}{theirs[PAYMENTS].pk}/").status_code == 404


def test_list_filters(org, api_for, contract):
    first = pay(org, contract, "100.00")
    pay(org, contract, "200.00", confirm=False)
    api = api_for(org.sales1)
    confirmed = api.get(PAYMENTS, {"status": "confirmed"}).json()["results"]
    assert [row["id"] for row in confirmed] == [first.pk]
    assert api.get(PAYMENTS, {"contract": contract.pk}).json()["count"] == 2
    assert api.get(PAYMENTS, {"received_from": days(1)}).json()["count"] == 0
    ordered = api.get(PAYMENTS, {"ordering": "amount"}).json()["results"]
    assert [row["amount"] for row in ordered] == ["100.00", "200.00"]
    assert api.get(PAYMENTS, {"status": "nope"}).status_code == 400


# --- reports --------------------------------------------------------------------------------


@pytest.fixture
def receivables(org, contract, other):
    """Both contracts planned; sales1's 3,000 is 45 days overdue, sales3's all not yet due."""
    services.receivable_plan_set(
        actor=org.sales1,
        contract=contract,
        instalments=[
            {"due_date": TODAY - datetime.timedelta(days=45), "amount": Decimal("3000.00")},
            {"due_date": TODAY + datetime.timedelta(days=30), "amount": Decimal("7000.00")},
        ],
    )
    services.receivable_plan_set(
        actor=org.sales3,
        contract=other,
        instalments=[{"due_date": TODAY + datetime.timedelta(days=5), "amount": Decimal("5000")}],
    )
    pay(org, contract, "1000.00")
    pay(org, other, "500.00", actor=org.sales3)
    return contract, other


def test_aging_report_rows_totals_and_scope(org, api_for, receivables):
    contract, other = receivables
    finance = api_for(org.finance).get(f"{REPORTS}receivables-aging/").json()
    assert finance["group_by"] == "customer" and finance["as_of"] == TODAY.isoformat()
    rows = {row["key"]: row for row in finance["rows"]}
    mine = rows[contract.customer_id]
    assert mine["d31_60"] == "2000.00" and mine["not_due"] == "7000.00"
    assert mine["total"] == "9000.00" and mine["label"] == contract.customer.name
    assert rows[other.customer_id]["not_due"] == "4500.00"
    assert finance["totals"] == {
        "not_due": "11500.00",
        "d0_30": "0.00",
        "d31_60": "2000.00",
        "d61_90": "0.00",
        "d90_plus": "0.00",
        "total": "13500.00",
    }
    sales1 = api_for(org.sales1).get(f"{REPORTS}receivables-aging/").json()
    assert [row["key"] for row in sales1["rows"]] == [contract.customer_id]
    assert sales1["totals"]["total"] == "9000.00"
    by_owner = api_for(org.finance).get(f"{REPORTS}receivables-aging/", {"group_by": "owner"})
    assert {r["key"] for r in by_owner.json()["rows"]} == {org.sales1.pk, org.sales3.pk}
    by_department = api_for(org.finance).get(
        f"{REPORTS}receivables-aging/", {"group_by": "department"}
    )
    assert {r["label"] for r in by_department.json()["rows"]} == {"销售一部", "销售二部"}
    bad = api_for(org.finance).get(f"{REPORTS}receivables-aging/", {"group_by": "region"})
    assert bad.status_code == 400 and "group_by" in bad.json()
    assert api_for(org.hr).get(f"{REPORTS}receivables-aging/").status_code == 403


def _sheet(response):
    from openpyxl import load_workbook

    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    assert "attachment" in response["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_reports_download_as_xlsx_with_finance_export(org, api_for, receivables):
    contract, other = receivables
    finance = api_for(org.finance)
    rows = _sheet(finance.get(f"{REPORTS}receivables-aging/", {"format": "xlsx"}))
    assert rows[0] == [
        "Customer",
        "Not yet due",
        "0–30 days",
        "31–60 days",
        "61–90 days",
        "Over 90 days",
        "Total outstanding",
    ]
    assert rows[-1][0] == "Total" and Decimal(str(rows[-1][-1])) == Decimal("13500")
    assert len(rows) == 4
    reconciliation = _sheet(finance.get(f"{REPORTS}reconciliation/", {"format": "xlsx"}))
    assert reconciliation[0][0] == "Contract" and len(reconciliation) == 4
    assert {r[0] for r in reconciliation[1:3]} == {contract.number, other.number}
    collections = _sheet(finance.get(f"{REPORTS}collections/", {"format": "xlsx"}))
    assert collections[1][0] == TODAY.strftime("%Y-%m")
    expenses = _sheet(finance.get(f"{REPORTS}expenses/", {"format": "xlsx"}))
    assert expenses[0] == ["Category", "Department", "Amount"]
    # Sales roles read their reports but may not export them.
    for user in (org.sales1, org.salesmgr1, org.manager):
        api = api_for(user)
        for name in ("receivables-aging", "reconciliation", "collections", "expenses"):
            assert api.get(f"{REPORTS}{name}/").status_code == 200
        expected = 403 if user == org.sales1 else 200  # finance.export
        assert api.get(f"{REPORTS}receivables-aging/", {"format": "xlsx"}).status_code == expected
    assert finance.get(f"{REPORTS}collections/", {"format": "pdf"}).status_code == 400


def test_reconciliation_pages_filters_and_caps_its_totals(org, api_for, receivables, settings):
    contract, other = receivables
    finance = api_for(org.finance)
    url = f"{REPORTS}reconciliation/"
    first = finance.get(url, {"page_size": 1}).json()
    assert first["count"] == 2 and first["count_capped"] is False
    assert first["page"] == 1 and first["page_size"] == 1 and first["previous"] is None
    assert [r["contract"] for r in first["rows"]] == [other.pk]  # newest signed first
    assert first["totals"]["total"] == "15000.00" and first["totals"]["received"] == "1500.00"
    second = finance.get(first["next"]).json()
    assert [r["contract"] for r in second["rows"]] == [contract.pk] and second["next"] is None
    assert finance.get(url, {"page_size": 1, "page": 3}).status_code == 404

    overdue = finance.get(url, {"state": "overdue"}).json()
    assert [r["contract"] for r in overdue["rows"]] == [contract.pk]
    assert overdue["totals"]["overdue"] == "2000.00"
    mine = finance.get(url, {"owner": org.sales3.pk}).json()
    assert [r["contract"] for r in mine["rows"]] == [other.pk]

    # Over the cap: rows up to it, no totals (pages stop at the cap, as every list's do).
    settings.KEHU_LIST_COUNT_CAP = 1
    capped = finance.get(url).json()
    assert capped["count"] == 1 and capped["count_capped"] is True
    assert capped["totals"] is None and [r["contract"] for r in capped["rows"]] == [other.pk]

    bad = finance.get(url, {"state": "lost", "owner": "x"})
    assert bad.status_code == 400 and {"state", "owner"} <= set(bad.json())
    # A salesperson names another's owner id: refused as a choice they cannot make.
    refused = api_for(org.sales1).get(url, {"owner": org.sales3.pk})
    assert refused.status_code == 400 and "owner" in refused.json()
    sales1 = api_for(org.sales1).get(url, {"state": "overdue"}).json()
    assert [r["contract"] for r in sales1["rows"]] == [contract.pk]


def test_reconciliation_download_streams_every_contract_with_totals(
    org, api_for, receivables, settings
):
    import csv

    contract, other = receivables
    settings.KEHU_LIST_COUNT_CAP = 1  # the download is not cut by the list cap
    response = api_for(org.finance).get(f"{REPORTS}reconciliation/", {"format": "csv"})
    assert response.status_code == 200 and response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert [line[0] for line in lines[1:]] == [other.number, contract.number, ""]
    assert lines[-1][5:] == ["15000.00", "1500.00", "0.00", "13500.00", "2000.00"]


def test_reconciliation_collections_and_expense_reports(org, api_for, receivables):
    contract, other = receivables
    finance = api_for(org.finance).get(f"{REPORTS}reconciliation/").json()
    rows = {row["contract"]: row for row in finance["rows"]}
    assert rows[contract.pk]["received"] == "1000.00"
    assert rows[contract.pk]["overdue"] == "2000.00"
    assert rows[contract.pk]["outstanding"] == "9000.00"
    assert finance["totals"]["received"] == "1500.00"
    sales1 = api_for(org.sales1).get(f"{REPORTS}reconciliation/").json()
    assert [row["contract"] for row in sales1["rows"]] == [contract.pk]

    collections = api_for(org.finance).get(
        f"{REPORTS}collections/", {"start": days(-31), "end": days(0)}
    )
    assert collections.status_code == 200
    body = collections.json()
    assert body["totals"]["net"] == "1500.00" and body["start"] == days(-31)
    mine = api_for(org.sales1).get(f"{REPORTS}collections/").json()
    assert mine["totals"]["received"] == "1000.00"
    backwards = api_for(org.finance).get(
        f"{REPORTS}collections/", {"start": days(0), "end": days(-1)}
    )
    assert backwards.status_code == 400 and "end" in backwards.json()
    nonsense = api_for(org.finance).get(f"{REPORTS}expenses/", {"start": "yesterday"})
    assert nonsense.status_code == 400 and "start" in nonsense.json()

    for owner in (org.sales1, org.sales3):
        claim = services.expense_create(
            actor=owner,
            data={
                "category": category(),
                "amount": Decimal("100.00"),
                "spent_on": TODAY,
                "description": "出差",
            },
        )
        claim = services.expense_submit(actor=owner, claim=claim)
        approve_all(claim, org)
    everyone = api_for(org.finance).get(f"{REPORTS}expenses/").json()
    assert {(r["department"], r["amount"]) for r in everyone["rows"]} == {
        ("销售一部", "100.00"),
        ("销售二部", "100.00"),
    }
    assert everyone["totals"]["amount"] == "200.00"
    own = api_for(org.sales1).get(f"{REPORTS}expenses/").json()
    assert [(r["category"], r["amount"]) for r in own["rows"]] == [("Travel", "100.00")]


# --- query counts ---------------------------------------------------------------------------


def _queries(api, url) -> int:
    with CaptureQueriesContext(connection) as context:
        response = api.get(url)
    assert response.status_code == 200, response.content
    return len(context.captured_queries)


def _grow(org, contract, n):
    """``n`` more of every document on ``contract``."""
    for _ in range(n):
        payment = pay(org, contract, "10.00")
        services.payment_reverse(actor=org.finance, payment=pay(org, contract, "1.00"), reason="x")
        services.invoice_request(
            actor=org.sales1,
            data={
                "contract": contract,
                "amount": Decimal("10.00"),
                "title": "客户",
                "tax_number": TAX_NUMBER,
            },
        )
        services.refund_request(
            actor=org.sales1, payment=payment, amount=Decimal("1.00"), reason="退"
        )
        services.expense_create(
            actor=org.sales1,
            data={
                "category": category(),
                "amount": Decimal("10.00"),
                "spent_on": TODAY,
                "description": "打车",
                "contract": contract,
            },
        )


def test_list_query_counts_do_not_grow_with_rows(org, api_for, django_assert_max_num_queries):
    contracts = [active_contract(org, org.sales1, amount="1000.00") for _ in range(3)]
    for c in contracts:
        services.receivable_plan_set(
            actor=org.sales1,
            contract=c,
            instalments=[
                {"due_date": TODAY - datetime.timedelta(days=3), "amount": Decimal("400.00")},
                {"due_date": TODAY + datetime.timedelta(days=3), "amount": Decimal("600.00")},
            ],
        )
    _grow(org, contracts[0], 1)
    urls = [PAYMENTS, INVOICES, REFUNDS, EXPENSES, PLANS, f"{PLANS}?status=overdue"]
    api = api_for(org.sales1)
    for url in urls:
        api.get(url)  # warm the permission caches
    before = {url: _queries(api, url) for url in urls}
    _grow(org, contracts[1], 4)
    after = {url: _queries(api, url) for url in urls}
    assert after == before
    for url in urls:
        with django_assert_max_num_queries(8):
            api.get(url)
    with django_assert_max_num_queries(8):
        api.get(plan_url(contracts[0]))
    with django_assert_max_num_queries(8):
        api.get(f"{REPORTS}receivables-aging/")


def test_expense_receipts_upload_with_the_claim(org, api_for, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    api = api_for(org.sales1)
    response = api.post(
        EXPENSES,
        {
            **expense_body(),
            "files": [
                SimpleUploadedFile("机票.pdf", b"%PDF-1.4 ticket"),
                SimpleUploadedFile("酒店.pdf", b"%PDF-1.4 hotel"),
            ],
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert sorted(a["name"] for a in body["attachments"]) == ["机票.pdf", "酒店.pdf"]
    assert "files" not in body
    url = f"{EXPENSES}{body['id']}/"
    more = api.patch(
        url,
        {"version": 1, "files": [SimpleUploadedFile("出租车.pdf", b"%PDF-1.4 taxi")]},
        format="multipart",
    )
    assert more.status_code == 200, more.json()
    assert len(more.json()["attachments"]) == 3 and more.json()["version"] == 2
    fake = api.post(
        EXPENSES,
        {**expense_body(), "files": [SimpleUploadedFile("receipt.png", b"not an image")]},
        format="multipart",
    )
    assert fake.status_code == 400 and "files" in fake.json()
    refused = api.patch(
        url,
        {"version": 2, "files": [SimpleUploadedFile("x.pdf", b"plain text")]},
        format="multipart",
    )
    assert refused.status_code == 400 and "files" in refused.json()
    assert ExpenseClaim.objects.count() == 1
    assert ExpenseClaim.objects.get().version == 2
    assert len(api.get(url).json()["attachments"]) == 3
