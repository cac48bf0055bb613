"""Finance pages: allowed and refused, scoped, bad input writes nothing, idempotent forms."""

import datetime
import io
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kehu.core.models import Attachment
from kehu.finance import services
from kehu.finance.models import (
    ExpenseClaim,
    ExpenseStatus,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    ReceivableInstalment,
    Refund,
)
from kehu.system.models import DictionaryItem, Role
from tests.finance.factories import active_contract, approve_all
from tests.querycount import warm_page_queries

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today()
TAX_NUMBER = "91310000123456789X"


def days(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


def register(contract, amount, *, actor=None, confirm_by=None, key=None):
    payment, _created = services.payment_register(
        actor=actor or contract.owner,
        data={
            "contract": contract,
            "amount": Decimal(amount),
            "received_on": TODAY,
            "method": "bank_transfer",
        },
        idempotency_key=key,
    )
    if confirm_by is not None:
        payment = services.payment_confirm(actor=confirm_by, payment=payment)
    return payment


def request_invoice(contract, amount, actor=None):
    return services.invoice_request(
        actor=actor or contract.owner,
        data={
            "contract": contract,
            "amount": Decimal(amount),
            "title": str(contract.customer),
            "tax_number": TAX_NUMBER,
        },
    )


def claim_for(user, amount="300.00", **data):
    category = DictionaryItem.objects.get(dictionary__code="expense_category", value="travel")
    return services.expense_create(
        actor=user,
        data={
            "category": category,
            "amount": Decimal(amount),
            "spent_on": TODAY,
            "description": "出差 上海",
            **data,
        },
    )


@pytest.fixture
def books(org):
    """sales1's contract with a plan (one instalment overdue), sales3's in another
    department, payments, invoices, refunds and expense claims of both."""
    org.sales1_dept.manager = org.salesmgr1
    org.sales1_dept.save()
    org.sales2_dept.manager = org.salesdirector
    org.sales2_dept.save()
    c1 = active_contract(org, org.sales1, amount="10000.00")
    services.receivable_plan_set(
        actor=org.sales1,
        contract=c1,
        instalments=[
            {"due_date": days(-40), "amount": Decimal("3000.00"), "note": "首付款"},
            {"due_date": days(20), "amount": Decimal("7000.00")},
        ],
    )
    c3 = active_contract(org, org.sales3, amount="5000.00")
    services.receivable_plan_set(
        actor=org.sales3,
        contract=c3,
        instalments=[{"due_date": days(-10), "amount": Decimal("5000.00")}],
    )
    p1 = register(c1, "4000.00", confirm_by=org.finance)
    pending1 = register(c1, "1000.00")
    p3 = register(c3, "2000.00", confirm_by=org.finance)
    inv1 = request_invoice(c1, "4000.00")
    approve_all(inv1, org)
    inv1.refresh_from_db()
    inv3 = request_invoice(c3, "2000.00")
    ref1 = services.refund_request(
        actor=org.sales1, payment=p1, amount=Decimal("200.00"), reason="多付"
    )
    ref3 = services.refund_request(
        actor=org.sales3, payment=p3, amount=Decimal("100.00"), reason="折让"
    )
    exp1 = claim_for(org.sales1)
    exp3 = claim_for(org.sales3, "88.00")
    return SimpleNamespace(**locals())


LISTS = [
    "finance:payment_list",
    "finance:invoice_list",
    "finance:refund_list",
    "finance:expense_list",
    "finance:reconciliation",
    "finance:aging",
    "finance:reports",
]


def get(client, url, **params):
    return client.get(url, params)


# --- allowed and refused --------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
def test_lists_and_reports_show_only_what_is_in_scope(org, books, client_for, name):
    mine = client_for(org.sales1).get(reverse(name))
    assert mine.status_code == 200
    everything = client_for(org.finance).get(reverse(name))
    assert everything.status_code == 200
    theirs = {
        "finance:payment_list": books.p3.number,
        "finance:invoice_list": books.inv3.number,
        "finance:refund_list": books.ref3.number,
        "finance:expense_list": books.exp3.number,
        "finance:reconciliation": books.c3.number,
        "finance:aging": str(books.c3.customer),
    }.get(name)
    if theirs:
        assert theirs not in mine.content.decode()
        assert theirs in everything.content.decode()


FILTERED = {
    "finance:payment_list": ("p1", "p3"),
    "finance:invoice_list": ("inv1", "inv3"),
    "finance:refund_list": ("ref1", "ref3"),
    "finance:reconciliation": ("c1", "c3"),
}


@pytest.mark.parametrize("name", FILTERED)
@pytest.mark.parametrize("by", ["customer", "contract"])
def test_lists_filter_by_customer_and_contract_within_scope(org, books, client_for, name, by):
    """By the customer's name or the contract's number (kehu/customers/linked_search.py)."""
    own, theirs = (getattr(books, attr).number for attr in FILTERED[name])

    def term(contract):
        return contract.customer.name if by == "customer" else contract.number

    def shown(number, body):  # as a cell, not in the page's own links (language switch)
        return f">{number}<" in body

    finance = client_for(org.finance)
    body = finance.get(reverse(name), {by: term(books.c1)}).content.decode()
    assert shown(own, body) and not shown(theirs, body)
    assert shown(theirs, finance.get(reverse(name), {by: term(books.c3)}).content.decode())
    body = client_for(org.sales1).get(reverse(name), {by: term(books.c3)}).content.decode()
    assert not shown(theirs, body)


@pytest.mark.parametrize("name", LISTS + ["finance:payment_create", "finance:invoice_create"])
def test_pages_refused_without_finance_view(org, books, client_for, name):
    assert client_for(org.hr).get(reverse(name)).status_code == 403
    assert client_for(org.warehouse).get(reverse(name)).status_code == 403


def _detail_urls(b):
    return [
        reverse("finance:payment_detail", args=[b.p3.pk]),
        reverse("finance:invoice_detail", args=[b.inv3.pk]),
        reverse("finance:refund_detail", args=[b.ref3.pk]),
        reverse("finance:expense_detail", args=[b.exp3.pk]),
        reverse("finance:plan_detail", args=[b.c3.pk]),
        reverse("finance:refund_create", args=[b.p3.pk]),
        reverse("finance:expense_edit", args=[b.exp3.pk]),
    ]


def test_details_out_of_scope_are_404(org, books, client_for):
    sales1 = client_for(org.sales1)
    for url in _detail_urls(books):
        assert sales1.get(url).status_code == 404, url
    finance = client_for(org.finance)
    for url in _detail_urls(books)[:5]:
        assert finance.get(url).status_code == 200, url


def test_details_in_scope(org, books, client_for):
    client = client_for(org.sales1)
    for obj in (books.p1, books.inv1, books.ref1, books.exp1):
        response = client.get(obj.get_absolute_url())
        assert response.status_code == 200
        assert obj.number in response.content.decode()
    page = client.get(reverse("finance:plan_detail", args=[books.c1.pk])).content.decode()
    assert "首付款" in page and "Overdue" in page


def test_details_refused_without_finance_view(org, books, client_for):
    client = client_for(org.hr)
    for obj in (books.p1, books.inv1, books.ref1, books.exp1):
        assert client.get(obj.get_absolute_url()).status_code == 403


def test_actions_on_out_of_scope_documents_are_404_and_change_nothing(org, books, client_for):
    client = client_for(org.sales1)
    pending3 = register(books.c3, "100.00")
    posts = [
        (reverse("finance:payment_action", args=[pending3.pk, "cancel"]), {}),
        (reverse("finance:refund_create", args=[books.p3.pk]), {"amount": "1", "reason": "x"}),
        (reverse("finance:expense_action", args=[books.exp3.pk, "submit"]), {}),
        (reverse("finance:expense_edit", args=[books.exp3.pk]), {"amount": "1"}),
        (
            reverse("finance:plan_detail", args=[books.c3.pk]),
            {"op": "save", "due_date": [TODAY.isoformat()], "amount": ["5000.00"]},
        ),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert Payment.objects.get(pk=pending3.pk).status == PaymentStatus.PENDING
    assert ExpenseClaim.objects.get(pk=books.exp3.pk).status == ExpenseStatus.DRAFT
    assert Refund.objects.filter(payment=books.p3).count() == 1
    assert ReceivableInstalment.objects.get(contract=books.c3).due_date == days(-10)


def test_finance_actions_are_refused_to_a_salesperson(org, books, client_for):
    client = client_for(org.sales1)
    confirm = reverse("finance:payment_action", args=[books.pending1.pk, "confirm"])
    assert client.post(confirm).status_code == 403
    reject = reverse("finance:payment_action", args=[books.pending1.pk, "reject"])
    assert client.post(reject, {"reject-reason": "没到账"}).status_code == 403
    reverse_ = reverse("finance:payment_action", args=[books.p1.pk, "reverse"])
    assert client.post(reverse_, {"reverse-reason": "录错"}).status_code == 403
    issue = reverse("finance:invoice_action", args=[books.inv1.pk, "issue"])
    data = {"issue-invoice_number": "NO.1", "issue-issued_on": TODAY.isoformat()}
    assert client.post(issue, data).status_code == 403
    void = reverse("finance:invoice_action", args=[books.inv1.pk, "void"])
    assert client.post(void, {"void-reason": "x"}).status_code == 403
    assert Payment.objects.get(pk=books.pending1.pk).status == PaymentStatus.PENDING
    assert Invoice.objects.get(pk=books.inv1.pk).status == InvoiceStatus.APPROVED
    assert not Payment.objects.filter(reverses=books.p1).exists()
    # The buttons are not offered either.
    page = client.get(books.pending1.get_absolute_url()).content.decode()
    assert confirm not in page and "Confirm receipt" not in page
    assert issue not in client.get(books.inv1.get_absolute_url()).content.decode()


def test_unknown_action_is_404(org, books, client_for):
    url = reverse("finance:payment_action", args=[books.pending1.pk, "delete"])
    assert client_for(org.finance).post(url).status_code == 404


def test_general_manager_sees_but_cannot_register_or_plan(org, books, client_for):
    client = client_for(org.manager)  # finance view, export, approve; no add
    assert client.get(reverse("finance:payment_list")).status_code == 200
    assert client.get(reverse("finance:payment_create")).status_code == 403
    url = reverse("finance:plan_detail", args=[books.c1.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"op": "save", "due_date": [TODAY.isoformat()], "amount": ["1"]})
    assert response.status_code == 403


# --- payments -------------------------------------------------------------------------------


def _payment_post(on, key, amount="500.00", **extra):
    return {
        "contract": on.pk,
        "amount": amount,
        "received_on": TODAY.isoformat(),
        "method": "bank_transfer",
        "account": "招商银行 6225",
        "reference": "TX-001",
        "idempotency_key": key,
        **extra,
    }


def test_payment_form_has_an_idempotency_token_and_the_contract_context(org, books, client_for):
    client = client_for(org.sales1)
    response = client.get(reverse("finance:payment_create"), {"contract": books.c1.pk})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="idempotency_key"' in page
    token = response.context["form"].initial["idempotency_key"]
    assert len(token) == 32
    # Money of the contract: 10,000 less 4,000 received less 1,000 awaiting confirmation.
    assert "5,000.00" in page
    # Only the contract's own instalments are offered.
    options = list(response.context["form"].fields["instalment"].queryset)
    assert {i.contract_id for i in options} == {books.c1.pk}
    # Another user's contract is not offered.
    assert books.c3.number not in page
    second = client.get(reverse("finance:payment_create"))
    assert second.context["form"].initial["idempotency_key"] != token


def test_a_double_submit_records_one_payment(org, books, client_for):
    client = client_for(org.sales1)
    before = Payment.objects.count()
    data = _payment_post(books.c1, "form-token-1")
    first = client.post(reverse("finance:payment_create"), data)
    second = client.post(reverse("finance:payment_create"), data)
    assert Payment.objects.count() == before + 1
    payment = Payment.objects.latest("id")
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == payment.get_absolute_url()
    assert payment.amount == Decimal("500.00") and payment.reference == "TX-001"
    assert payment.status == PaymentStatus.PENDING
    shown = client.get(second["Location"])
    assert "already submitted" in " ".join(str(m) for m in shown.context["messages"])


def test_a_changed_resubmission_of_a_used_form_is_refused_with_a_fresh_token(
    org, books, client_for
):
    client = client_for(org.sales1)
    client.post(reverse("finance:payment_create"), _payment_post(books.c1, "token-2"))
    count = Payment.objects.count()
    response = client.post(
        reverse("finance:payment_create"), _payment_post(books.c1, "token-2", amount="600.00")
    )
    assert response.status_code == 400
    assert Payment.objects.count() == count
    assert response.context["form"].data["idempotency_key"] != "token-2"
    assert "already used" in response.content.decode()


def test_overpayment_is_refused_on_the_amount_field(org, books, client_for):
    client = client_for(org.sales1)
    count = Payment.objects.count()
    response = client.post(
        reverse("finance:payment_create"), _payment_post(books.c1, "token-3", amount="5000.01")
    )
    assert response.status_code == 400
    errors = response.context["form"].errors["amount"]
    assert "exceed the contract amount" in errors[0] and "5,000.00" in errors[0]
    assert Payment.objects.count() == count


@pytest.mark.parametrize(
    "change, field",
    [
        ({"amount": ""}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"method": "bitcoin"}, "method"),
        ({"received_on": "2999-01-01"}, "received_on"),
        ({"contract": "999999"}, "contract"),
    ],
)
def test_bad_payment_input_shows_an_error_and_writes_nothing(org, books, client_for, change, field):
    client = client_for(org.sales1)
    count = Payment.objects.count()
    response = client.post(
        reverse("finance:payment_create"), _payment_post(books.c1, "token-4", **change)
    )
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Payment.objects.count() == count


def test_a_salesperson_cannot_record_on_someone_elses_contract(org, books, client_for):
    response = client_for(org.sales1).post(
        reverse("finance:payment_create"), _payment_post(books.c3, "token-5")
    )
    assert response.status_code == 400
    assert "contract" in response.context["form"].errors
    assert not Payment.objects.filter(contract=books.c3, status=PaymentStatus.PENDING).exists()


def test_payment_with_an_instalment_through_htmx(org, books, client_for):
    instalment = books.c1.instalments.order_by("due_date").last()
    response = client_for(org.sales1).post(
        reverse("finance:payment_create"),
        _payment_post(books.c1, "token-6", instalment=instalment.pk),
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 204
    payment = Payment.objects.latest("id")
    assert response["HX-Redirect"] == payment.get_absolute_url()
    assert payment.instalment == instalment


def test_finance_confirms_rejects_and_reverses(org, books, client_for):
    client = client_for(org.finance)
    url = reverse("finance:payment_action", args=[books.pending1.pk, "confirm"])
    assert client.post(url).status_code == 302
    assert Payment.objects.get(pk=books.pending1.pk).status == PaymentStatus.CONFIRMED
    # Confirming twice: a message, no change.
    response = client.post(url, follow=True)
    assert "only one awaiting confirmation" in response.content.decode()

    other = register(books.c1, "100.00")
    reject = reverse("finance:payment_action", args=[other.pk, "reject"])
    response = client.post(reject, {"reject-reason": "  "})
    assert response.status_code == 400
    assert "reason" in response.context["reject_form"].errors
    assert Payment.objects.get(pk=other.pk).status == PaymentStatus.PENDING
    assert client.post(reject, {"reject-reason": "查无此款"}).status_code == 302
    other.refresh_from_db()
    assert other.status == PaymentStatus.REJECTED and other.decision_note == "查无此款"

    confirmed = Payment.objects.get(pk=books.pending1.pk)
    reverse_url = reverse("finance:payment_action", args=[confirmed.pk, "reverse"])
    assert client.post(reverse_url, {"reverse-reason": ""}).status_code == 400
    assert client.post(reverse_url, {"reverse-reason": "重复登记"}).status_code == 302
    reversal = Payment.objects.get(reverses=confirmed)
    assert reversal.amount == Decimal("-1000.00")
    page = client.get(confirmed.get_absolute_url()).content.decode()
    assert reversal.number in page and 'id="reverse-panel"' not in page


def test_the_registrant_cancels_a_pending_payment(org, books, client_for):
    url = reverse("finance:payment_action", args=[books.pending1.pk, "cancel"])
    assert client_for(org.sales1).post(url).status_code == 302
    assert Payment.objects.get(pk=books.pending1.pk).status == PaymentStatus.CANCELLED


# --- refunds --------------------------------------------------------------------------------


def test_refund_request_from_a_payment(org, books, client_for):
    client = client_for(org.sales1)
    url = reverse("finance:refund_create", args=[books.p1.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["form"].initial.get("amount") is None
    assert page.context["form"]["amount"].value() == Decimal("3800.00")  # 4,000 less 200
    count = Refund.objects.count()
    too_much = client.post(url, {"amount": "3800.01", "reason": "退货"})
    assert too_much.status_code == 400 and "amount" in too_much.context["form"].errors
    no_reason = client.post(url, {"amount": "10", "reason": ""})
    assert no_reason.status_code == 400 and "reason" in no_reason.context["form"].errors
    assert Refund.objects.count() == count
    response = client.post(url, {"amount": "300.00", "reason": "退货"})
    refund = Refund.objects.latest("id")
    assert response.status_code == 302 and response["Location"] == refund.get_absolute_url()
    assert refund.amount == Decimal("300.00") and refund.payment == books.p1


def test_refund_refused_without_finance_add(org, books, client_for):
    url = reverse("finance:refund_create", args=[books.p1.pk])
    assert client_for(org.manager).get(url).status_code == 403


# --- invoices -------------------------------------------------------------------------------


def test_invoice_request_defaults_and_over_invoicing(org, books, client_for):
    client = client_for(org.sales1)
    page = client.get(reverse("finance:invoice_create"), {"contract": books.c1.pk})
    form = page.context["form"]
    assert form["title"].value() == books.c1.customer.name
    assert form["amount"].value() == Decimal("6000.00")  # 10,000 less the 4,000 requested
    data = {
        "contract": books.c1.pk,
        "invoice_type": "vat_ordinary",
        "title": books.c1.customer.name,
        "tax_number": TAX_NUMBER,
        "amount": "6000.01",
    }
    count = Invoice.objects.count()
    response = client.post(reverse("finance:invoice_create"), data)
    assert response.status_code == 400
    assert "at most 6,000.00" in response.context["form"].errors["amount"][0]
    bad_tax = client.post(reverse("finance:invoice_create"), {**data, "tax_number": "123"})
    assert "tax_number" in bad_tax.context["form"].errors
    special = client.post(
        reverse("finance:invoice_create"), {**data, "amount": "10", "invoice_type": "vat_special"}
    )
    assert {"bank_account", "address_phone"} & set(special.context["form"].errors)
    assert Invoice.objects.count() == count
    response = client.post(reverse("finance:invoice_create"), {**data, "amount": "6000.00"})
    invoice = Invoice.objects.latest("id")
    assert response.status_code == 302 and invoice.status == InvoiceStatus.PENDING
    page = client.get(invoice.get_absolute_url()).content.decode()
    assert "approval-panel" in page and "Pending" in page


def test_finance_issues_and_voids_an_invoice(org, books, client_for):
    client = client_for(org.finance)
    issue = reverse("finance:invoice_action", args=[books.inv1.pk, "issue"])
    response = client.post(issue, {"issue-invoice_number": "", "issue-issued_on": ""})
    assert response.status_code == 400
    assert "invoice_number" in response.context["issue_form"].errors
    assert Invoice.objects.get(pk=books.inv1.pk).status == InvoiceStatus.APPROVED
    data = {"issue-invoice_number": "No.00012345", "issue-issued_on": TODAY.isoformat()}
    assert client.post(issue, data).status_code == 302
    books.inv1.refresh_from_db()
    assert books.inv1.status == InvoiceStatus.ISSUED and books.inv1.invoice_number == "No.00012345"
    # The same number on another invoice: an error on the field, nothing written.
    other = request_invoice(books.c1, "100.00")
    approve_all(other, org)
    other_issue = reverse("finance:invoice_action", args=[other.pk, "issue"])
    response = client.post(other_issue, data)
    assert response.status_code == 400
    assert "already recorded" in response.context["issue_form"].errors["invoice_number"][0]
    void = reverse("finance:invoice_action", args=[books.inv1.pk, "void"])
    assert client.post(void, {"void-reason": ""}).status_code == 400
    assert client.post(void, {"void-reason": "抬头错误"}).status_code == 302
    books.inv1.refresh_from_db()
    assert books.inv1.status == InvoiceStatus.VOIDED and books.inv1.void_reason == "抬头错误"


# --- expense claims -------------------------------------------------------------------------


def _png(name="receipt.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def _expense_post(**extra):
    category = DictionaryItem.objects.get(dictionary__code="expense_category", value="transport")
    return {
        "category": category.pk,
        "amount": "56.50",
        "spent_on": TODAY.isoformat(),
        "description": "打车 客户拜访",
        **extra,
    }


def test_expense_claim_with_receipts_then_submitted(org, books, client_for):
    client = client_for(org.sales1)
    assert client.get(reverse("finance:expense_create")).status_code == 200
    response = client.post(
        reverse("finance:expense_create"),
        {**_expense_post(contract=books.c1.pk), "receipts": [_png(), _png("taxi.png")]},
    )
    claim = ExpenseClaim.objects.latest("id")
    assert response.status_code == 302 and response["Location"] == claim.get_absolute_url()
    assert claim.status == ExpenseStatus.DRAFT and claim.customer == books.c1.customer
    assert Attachment.objects.filter(object_id=str(claim.pk)).count() == 2
    page = client.get(claim.get_absolute_url()).content.decode()
    assert "taxi.png" in page
    edit = reverse("finance:expense_edit", args=[claim.pk])
    response = client.post(
        edit, {**_expense_post(amount="60.00", version=claim.version), "then": "submit"}
    )
    claim.refresh_from_db()
    assert response.status_code == 302
    assert claim.amount == Decimal("60.00") and claim.status == ExpenseStatus.PENDING
    # Pending approval: no longer editable.
    assert client.post(edit, _expense_post(version=claim.version)).status_code == 400


def test_a_fake_receipt_is_refused_and_nothing_is_written(org, books, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(org.sales1)
    count = ExpenseClaim.objects.count()
    fake = SimpleUploadedFile("evil.png", b"not an image", content_type="image/png")
    response = client.post(reverse("finance:expense_create"), {**_expense_post(), "receipts": fake})
    assert response.status_code == 400
    assert "receipts" in response.context["form"].errors
    assert ExpenseClaim.objects.count() == count
    assert not Attachment.objects.exists()


def test_bad_expense_input(org, books, client_for):
    client = client_for(org.sales1)
    count = ExpenseClaim.objects.count()
    for change, field in [
        ({"amount": "0"}, "amount"),
        ({"description": ""}, "description"),
        ({"spent_on": days(3).isoformat()}, "spent_on"),
        ({"contract": books.c3.pk}, "contract"),
    ]:
        response = client.post(reverse("finance:expense_create"), _expense_post(**change))
        assert response.status_code == 400, change
        assert field in response.context["form"].errors, change
    assert ExpenseClaim.objects.count() == count


def test_only_the_claimant_edits_and_submits(org, books, client_for):
    manager = client_for(org.salesmgr1)  # sees the claim (department) but does not own it
    assert manager.get(books.exp1.get_absolute_url()).status_code == 200
    assert manager.get(reverse("finance:expense_edit", args=[books.exp1.pk])).status_code == 403
    submit = reverse("finance:expense_action", args=[books.exp1.pk, "submit"])
    assert manager.post(submit).status_code == 403
    assert client_for(org.sales1).post(submit).status_code == 302
    assert ExpenseClaim.objects.get(pk=books.exp1.pk).status == ExpenseStatus.PENDING


def test_finance_pays_an_approved_claim(org, books, client_for):
    claim = services.expense_submit(actor=org.sales1, claim=books.exp1)
    approve_all(claim, org)
    pay = reverse("finance:expense_action", args=[claim.pk, "pay"])
    assert client_for(org.sales1).post(pay, {"pay-paid_on": TODAY.isoformat()}).status_code == 403
    assert client_for(org.finance).post(pay, {"pay-paid_on": "x"}).status_code == 400
    assert client_for(org.finance).post(pay, {"pay-paid_on": TODAY.isoformat()}).status_code == 302
    claim.refresh_from_db()
    assert claim.status == ExpenseStatus.PAID and claim.paid_by == org.finance


# --- receivable plan editor -----------------------------------------------------------------


def _plan_post(op, rows, **extra):
    return {
        "op": op,
        "due_date": [r[0] for r in rows],
        "amount": [r[1] for r in rows],
        "note": [r[2] if len(r) > 2 else "" for r in rows],
        **extra,
    }


def test_plan_editor_split_add_remove_and_difference(org, books, client_for):
    client = client_for(org.sales1)
    url = reverse("finance:plan_detail", args=[books.c1.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert [r.amount for r in page.context["editor"].rows] == ["3000.00", "7000.00"]
    split = client.post(
        url,
        _plan_post("split", [(days(1).isoformat(), "1", "定金")], percentages="30/40/30"),
        HTTP_HX_REQUEST="true",
    )
    editor = split.context["editor"]
    assert [r.amount for r in editor.rows] == ["3000.00", "4000.00", "3000.00"]
    assert editor.rows[0].due_date == days(1).isoformat() and editor.rows[0].note == "定金"
    assert editor.difference == 0
    assert "Adds up to the contract amount" in split.content.decode()
    thirds = client.post(url, _plan_post("split", [], percentages="33.33 33.33 33.34"))
    amounts = [Decimal(r.amount) for r in thirds.context["editor"].rows]
    assert sum(amounts) == Decimal("10000.00")
    bad = client.post(url, _plan_post("split", [], percentages="50/40"))
    assert "add up to 100" in bad.context["editor"].percentage_errors[0]
    added = client.post(url, _plan_post("add", [("", "1")]), HTTP_HX_REQUEST="true")
    assert len(added.context["editor"].rows) == 2
    removed = client.post(url, _plan_post("remove:0", [("", "1"), ("", "2")]))
    assert [r.amount for r in removed.context["editor"].rows] == ["2"]
    recalc = client.post(url, _plan_post("recalc", [("", "2500"), ("", "500")]))
    assert recalc.templates[0].name == "finance/_plan_difference.html"
    assert "7,000.00 still to plan" in recalc.content.decode()
    over = client.post(url, _plan_post("recalc", [("", "12000")]))
    assert "2,000.00 more than the contract amount" in over.content.decode()
    # Nothing was saved by any of these.
    assert list(books.c1.instalments.values_list("amount", flat=True)) == [
        Decimal("3000.00"),
        Decimal("7000.00"),
    ]


def test_plan_saves_through_the_service_and_errors_come_back_inline(org, books, client_for):
    client = client_for(org.sales1)
    url = reverse("finance:plan_detail", args=[books.c1.pk])
    wrong_total = client.post(
        url, _plan_post("save", [(days(5).isoformat(), "3000"), (days(50).isoformat(), "6000")])
    )
    assert wrong_total.status_code == 400
    assert "difference 1,000.00" in wrong_total.context["editor"].errors[0]
    bad_row = client.post(url, _plan_post("save", [("", "10000"), (days(3).isoformat(), "x")]))
    assert bad_row.status_code == 400
    rows = bad_row.context["editor"].rows
    assert rows[0].errors == ["Enter a due date."] and rows[1].errors == ["Enter an amount."]
    empty = client.post(url, _plan_post("save", [("", "")]))
    assert "Add at least one instalment." in empty.context["editor"].errors
    assert books.c1.instalments.count() == 2
    saved = client.post(
        url,
        _plan_post(
            "save",
            [
                (days(-40).isoformat(), "3000.00", "首付款"),
                (days(30).isoformat(), "4000.00", "到货款"),
                (days(90).isoformat(), "3000.00", "验收款"),
            ],
        ),
        HTTP_HX_REQUEST="true",
    )
    assert saved.status_code == 204 and saved["HX-Redirect"] == url
    assert list(books.c1.instalments.order_by("sequence").values_list("note", flat=True)) == [
        "首付款",
        "到货款",
        "验收款",
    ]


# --- reports --------------------------------------------------------------------------------


def test_reconciliation_rows_totals_and_filters(org, books, client_for):
    response = client_for(org.finance).get(reverse("finance:reconciliation"))
    rows = {row["contract"].pk: row for row in response.context["rows"]}
    assert set(rows) == {books.c1.pk, books.c3.pk}
    assert rows[books.c1.pk]["received"] == Decimal("4000.00")
    assert rows[books.c1.pk]["overdue"] == Decimal("0.00")  # 4,000 covered the 3,000 due
    assert rows[books.c3.pk]["overdue"] == Decimal("3000.00")
    assert response.context["totals"]["total"] == Decimal("15000.00")
    assert response.context["totals"]["outstanding"] == Decimal("9000.00")
    filtered = client_for(org.finance).get(
        reverse("finance:reconciliation"), {"owner": org.sales3.pk, "state": "overdue"}
    )
    assert [r["contract"].pk for r in filtered.context["rows"]] == [books.c3.pk]
    by_customer = client_for(org.finance).get(
        reverse("finance:reconciliation"), {"customer": books.c1.customer.name}
    )
    assert [r["contract"].pk for r in by_customer.context["rows"]] == [books.c1.pk]
    mine = client_for(org.sales1).get(reverse("finance:reconciliation"))
    assert [r["contract"].pk for r in mine.context["rows"]] == [books.c1.pk]
    assert mine.context["totals"]["total"] == Decimal("10000.00")


def test_reconciliation_totals_only_below_the_cap_and_pages_by_count(
    org, books, client_for, settings
):
    """Over the list cap the page shows its rows and says to narrow the filters instead of
    adding up every contract in scope (two million at a million customers); a filter that
    brings the count under it shows the totals again."""
    settings.KEHU_LIST_COUNT_CAP = 1
    client = client_for(org.finance)
    url = reverse("finance:reconciliation")
    response = client.get(url)
    assert response.context["totals"] is None
    page = response.content.decode()
    assert 'id="reconciliation-no-totals"' in page and "narrow the filters" in page
    assert "1–1 of 1+" in page  # pages stop at the cap, as every list's do
    assert [r["contract"] for r in response.context["rows"]] == [books.c3]  # newest first
    narrowed = client.get(url, {"owner": org.sales3.pk})
    assert narrowed.context["totals"]["total"] == Decimal("5000.00")
    assert narrowed.context["totals"]["overdue"] == Decimal("3000.00")
    assert 'id="reconciliation-no-totals"' not in narrowed.content.decode()
    zh = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "缩小筛选范围" in zh


def test_reconciliation_filters_every_state_in_the_query(org, books, client_for):
    client = client_for(org.finance)
    url = reverse("finance:reconciliation")

    def shown(**params) -> set:
        response = client.get(url, params)
        assert response.status_code == 200
        return {r["contract"].pk for r in response.context["rows"]}

    assert shown(state="outstanding") == {books.c1.pk, books.c3.pk}
    assert shown(state="overdue") == {books.c3.pk}
    assert shown(state="uninvoiced") == {books.c1.pk, books.c3.pk}
    assert shown(state="settled") == set()
    assert shown(contract=books.c1.number[-4:].lower()) == {books.c1.pk}
    assert shown(department=org.sales2_dept.pk) == {books.c3.pk}
    assert shown(customer="no such customer") == set()
    # sales1 asks for sales3's contracts: still only their own scope (none of sales3's).
    response = client_for(org.sales1).get(url, {"state": "overdue"})
    assert response.context["rows"] == []


def test_aging_groups_links_and_contracts_without_plan(org, books, client_for):
    bare = active_contract(org, org.sales1, amount="800.00")
    client = client_for(org.finance)
    response = client.get(reverse("finance:aging"))
    rows = response.context["rows"]
    assert {r["label"] for r in rows} == {str(books.c1.customer), str(books.c3.customer)}
    c3_row = next(r for r in rows if r["label"] == str(books.c3.customer))
    assert c3_row["d0_30"] == Decimal("3000.00") and c3_row["total"] == Decimal("3000.00")
    assert response.context["totals"]["total"] == Decimal("9000.00")
    assert bare in response.context["without_plan"]
    page = response.content.decode()
    assert reverse("finance:plan_detail", args=[bare.pk]) in page
    assert "reconciliation/?customer=" in page
    by_owner = client.get(reverse("finance:aging"), {"by": "owner"})
    assert {r["key"] for r in by_owner.context["rows"]} == {org.sales1.pk, org.sales3.pk}
    assert f"?owner={org.sales1.pk}" in by_owner.content.decode()
    by_department = client.get(reverse("finance:aging"), {"by": "department"})
    assert {r["key"] for r in by_department.context["rows"]} == {
        org.sales1_dept.pk,
        org.sales2_dept.pk,
    }
    mine = client_for(org.sales1).get(reverse("finance:aging"))
    assert [r["label"] for r in mine.context["rows"]] == [str(books.c1.customer)]
    assert str(books.c3.customer) not in mine.content.decode()


def test_reports_collections_and_expenses(org, books, client_for):
    claim = services.expense_submit(actor=org.sales1, claim=books.exp1)
    approve_all(claim, org)
    response = client_for(org.finance).get(
        reverse("finance:reports"),
        {"start": TODAY.replace(day=1).isoformat(), "end": TODAY.isoformat()},
    )
    assert response.status_code == 200
    assert response.context["collection_totals"]["received"] == Decimal("6000.00")
    assert response.context["pivot"]["total"] == Decimal("300.00")
    assert 'id="collections-data"' in response.content.decode()
    assert "vendor/echarts/echarts.min.js" in response.content.decode()
    mine = client_for(org.sales3).get(reverse("finance:reports"))
    assert mine.context["collection_totals"]["received"] == Decimal("2000.00")
    assert mine.context["pivot"]["total"] == Decimal("0.00")
    bad = client_for(org.finance).get(
        reverse("finance:reports"), {"start": "2026-05-01", "end": "2026-01-01"}
    )
    assert "end" in bad.context["form"].errors


# --- exports --------------------------------------------------------------------------------


EXPORTS = [
    ("finance:payment_list", {}),
    ("finance:invoice_list", {}),
    ("finance:refund_list", {}),
    ("finance:expense_list", {}),
    ("finance:reconciliation", {}),
    ("finance:aging", {"by": "owner"}),
    ("finance:reports", {"table": "collections"}),
    ("finance:reports", {"table": "expenses"}),
]


@pytest.mark.parametrize("name, params", EXPORTS)
def test_exports_need_finance_export_and_stay_in_scope(org, books, client_for, name, params):
    assert client_for(org.sales1).get(reverse(name), {**params, "export": "csv"}).status_code == 403
    response = client_for(org.salesmgr1).get(reverse(name), {**params, "export": "csv"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    for number in (books.p3.number, books.inv3.number, books.ref3.number, books.c3.number):
        assert number not in body
    assert str(books.c3.customer) not in body
    xlsx = client_for(org.finance).get(reverse(name), {**params, "export": "xlsx"})
    assert xlsx.status_code == 200
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")


def test_finance_payment_export_has_both_departments(org, books, client_for):
    response = client_for(org.finance).get(reverse("finance:payment_list"), {"export": "csv"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert books.p1.number in body and books.p3.number in body
    assert "Bank transfer" in body


# --- searchable selects and the panel -------------------------------------------------------


def test_contract_options_are_scoped_and_searchable(org, books, client_for):
    client = client_for(org.sales1)
    url = reverse("finance:contract_options")
    found = client.get(url, {"q": books.c1.number}).content.decode()
    assert books.c1.number in found
    assert books.c3.number not in client.get(url, {"q": books.c3.number}).content.decode()
    assert client_for(org.hr).get(url).status_code == 403
    customers = client.get(reverse("finance:customer_options"), {"q": ""}).content.decode()
    assert str(books.c1.customer) in customers and str(books.c3.customer) not in customers


def test_contract_money_panel_tag(org, books, client_for):
    request = RequestFactory().get("/")
    request.user = org.sales1
    html = Template("{% load finance %}{% contract_money_panel contract %}").render(
        Context({"request": request, "contract": books.c1})
    )
    assert books.p1.number in html and books.inv1.number in html and books.ref1.number in html
    assert reverse("finance:payment_create") + f"?contract={books.c1.pk}" in html
    assert "Request an invoice" in html and 'data-figure="outstanding"' in html
    request.user = org.warehouse  # no finance.view: nothing
    html = Template("{% load finance %}{% contract_money_panel contract %}").render(
        Context({"request": request, "contract": books.c1})
    )
    assert html.strip() == ""


# --- query counts ---------------------------------------------------------------------------


def _queries(client, url, params=None) -> int:
    count, response = warm_page_queries(client, url, params)
    assert response.status_code == 200, response.content[:300]
    return count


PAGES_COUNTED = LISTS


def test_query_counts_do_not_grow_with_rows(org, books, client_for):
    client = client_for(org.finance)
    before = {name: _queries(client, reverse(name)) for name in PAGES_COUNTED}
    for _ in range(4):
        extra = active_contract(org, org.sales2, amount="2000.00")
        services.receivable_plan_set(
            actor=org.sales2,
            contract=extra,
            instalments=[{"due_date": days(-70), "amount": Decimal("2000.00")}],
        )
        paid = register(extra, "500.00", confirm_by=org.finance)
        approve_all(request_invoice(extra, "500.00"), org)
        services.refund_request(actor=org.sales2, payment=paid, amount=Decimal("10.00"), reason="x")
        claim_for(org.sales2)
    after = {name: _queries(client, reverse(name)) for name in PAGES_COUNTED}
    assert after == before
    assert max(after.values()) <= 20, after


@pytest.mark.parametrize("attr", ["p1", "inv1", "ref1", "exp1"])
def test_detail_query_counts(org, books, client_for, django_assert_max_num_queries, attr):
    client = client_for(org.sales1)
    with django_assert_max_num_queries(22):
        assert client.get(getattr(books, attr).get_absolute_url()).status_code == 200


def test_plan_detail_query_count(org, books, client_for, django_assert_max_num_queries):
    client = client_for(org.sales1)
    with django_assert_max_num_queries(22):
        response = client.get(reverse("finance:plan_detail", args=[books.c1.pk]))
    assert response.status_code == 200


def test_pages_refused_for_a_role_without_finance(org, books, client_for):
    nobody = Role.objects.create(code="nobody", name="Nobody", permissions=["sales.view"])
    org.sales2.roles.set([nobody])
    client = client_for(org.sales2)
    assert client.get(reverse("finance:plan_detail", args=[books.c1.pk])).status_code == 403
    assert client.get(reverse("finance:expense_create")).status_code == 403


def test_customer_360_shows_each_contracts_receivables_in_fixed_queries(org, client_for):
    contract = active_contract(org, amount="10000.00")
    customer = contract.customer
    services.receivable_plan_set(
        actor=org.sales1,
        contract=contract,
        instalments=[
            {"due_date": days(-10), "amount": Decimal("6000.00")},
            {"due_date": days(20), "amount": Decimal("4000.00")},
        ],
    )
    register(contract, "2500.00", confirm_by=org.finance)
    register(contract, "500.00")  # awaiting confirmation: not received yet
    client = client_for(org.sales1)
    url = customer.get_absolute_url()
    page = client.get(url).content.decode()
    section = page[page.index('id="customer-receivables"') :]
    row = section[section.index(f'data-contract="{contract.pk}"') :]
    row = row[: row.index("</tr>")]
    # Total, received, outstanding, overdue.
    for figure in ("10,000.00", "2,500.00", "7,500.00", "3,500.00"):
        assert figure in row
    assert "500.00 awaiting confirmation" in row
    assert f"{reverse('finance:payment_create')}?contract={contract.pk}" in row

    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for _ in range(3):
        active_contract(org, amount="1000.00", customer=customer)
    with CaptureQueriesContext(connection) as four:
        page = client.get(url).content.decode()
    assert page.count("data-contract=") == 4
    assert len(four) == len(one)

    # Another salesperson gets no page and no figures of this customer's contracts.
    other = client_for(org.sales2).get(url)
    assert other.status_code == 404 and contract.number not in other.content.decode()

    # Someone who may see the customer's contracts but not finance sees no figures.
    role = Role.objects.create(
        code="sales_only",
        name="Sales only",
        permissions=["customers.view", "sales.view"],
        data_scope="all",
    )
    org.manager.roles.set([role])
    page = client_for(org.manager).get(url).content.decode()
    assert contract.number in page and "customer-receivables" not in page
