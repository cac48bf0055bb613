"""The sales REST API: quotes, contracts, orders, shipments (allowed, refused, scope, shape)."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

from kehu.approvals.models import ApprovalRequest
from kehu.approvals.services import approval_approve
from kehu.products.models import Product
from kehu.products.services import stock_movement_post, warehouse_default_ensure
from kehu.sales import services
from kehu.sales.models import (
    Contract,
    ContractStatus,
    Order,
    OrderStatus,
    Quote,
    QuoteStatus,
    Shipment,
)
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.products.factories import ProductFactory
from tests.sales.factories import contract_for, line, order_for, quote_for

pytestmark = pytest.mark.django_db

QUOTES = "/api/v1/quotes/"
CONTRACTS = "/api/v1/contracts/"
ORDERS = "/api/v1/orders/"
SHIPMENTS = "/api/v1/shipments/"


def _pdf_ready() -> bool:
    try:
        from kehu.sales import pdf

        return hasattr(pdf, "contract_pdf") and hasattr(pdf, "quote_pdf")
    except ImportError:
        return False


needs_pdf = pytest.mark.skipif(not _pdf_ready(), reason="kehu.sales.pdf has not landed yet")


def activate(contract):
    """Submit ``contract`` as its owner and approve every step as its first candidate."""
    contract = services.contract_submit(actor=contract.owner, contract=contract)
    request = ApprovalRequest.objects.filter(object_id=contract.pk, status="pending").first()
    while request is not None and request.status == "pending":
        step = request.steps.filter(status="pending").get()
        request = approval_approve(actor=step.candidates.order_by("id").first(), request=request)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE
    return contract


def stocked(quantity="100", **kwargs) -> Product:
    product = ProductFactory(**kwargs)
    warehouse_default_ensure()
    stock_movement_post(
        actor=None, product=product, kind="in", quantity=Decimal(quantity), check_permission=False
    )
    product.refresh_from_db()
    return product


def confirmed_order(owner, *quantities: str):
    product = stocked()
    order = order_for(
        owner, lines=[line(product, quantity=q, unit_price="10.00") for q in quantities]
    )
    return services.order_confirm(actor=owner, order=order)


# --- quotes ---------------------------------------------------------------------------------


def test_quote_create_prices_from_the_product_and_ignores_server_fields(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    contact = ContactFactory(customer=customer)
    product = ProductFactory(list_price=Decimal("200.00"), tax_rate=Decimal("6.00"))
    response = api_for(org.sales1).post(
        QUOTES,
        {
            "customer": customer.pk,
            "contact": contact.pk,
            "title": "打印机报价",
            "lines": [
                {"product": product.pk, "quantity": "3"},
                {
                    "product": product.pk,
                    "quantity": "1.5",
                    "unit_price": "100.00",
                    "discount_rate": "10",
                    "tax_rate": "0",
                    "total_amount": "1.00",  # computed by the server
                },
            ],
            # All decided by the server:
            "number": "BJ-HACK",
            "status": "accepted",
            "subtotal_amount": "1.00",
            "tax_amount": "0.00",
            "total_amount": "1.00",
            "department": org.sales2_dept.pk,
            "owner": org.sales3.pk,
            "version": 42,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"].startswith("BJ-") and body["status"] == "draft"
    assert body["owner"] == org.sales1.pk and body["department"] == org.sales1_dept.pk
    assert body["version"] == 1 and body["contact"] == contact.pk
    first, second = body["lines"]
    assert first["unit_price"] == "200.00" and first["tax_rate"] == "6.00"
    assert first["total_amount"] == "636.00"  # 600 + 6 %
    assert second["subtotal"] == "135.00" and second["total_amount"] == "135.00"
    assert body["subtotal_amount"] == "735.00" and body["total_amount"] == "771.00"
    assert body["valid_until"] >= body["quote_date"]
    assert Quote.objects.get(pk=body["id"]).owner == org.sales1


def test_quote_list_filters_search_and_query_count(org, api_for, django_assert_max_num_queries):
    customer = CustomerFactory(owner=org.sales1)
    quotes = [quote_for(org.sales1, customer=customer, title=f"报价{i}") for i in range(4)]
    services.quote_send(actor=org.sales1, quote=quotes[0])
    other = quote_for(org.sales2, title="同事的报价")
    quote_for(org.sales3, title="二部的报价")
    api = api_for(org.salesmgr1)
    api.get(QUOTES)  # reads the department tree, then held (kehu.core.reference)
    with django_assert_max_num_queries(6):
        data = api.get(QUOTES).json()
    assert data["count"] == 5  # his department: sales1 and sales2, not sales3
    row = data["results"][0]
    assert {"number", "status", "lines", "total_amount", "customer_name", "owner_name"} <= set(row)
    assert row["lines"][0]["product_code"]

    def numbers(**params):
        return {r["number"] for r in api.get(QUOTES, params).json()["results"]}

    assert numbers(status="sent") == {quotes[0].number}
    assert numbers(customer=customer.pk) == {q.number for q in quotes}
    assert numbers(owner=org.sales2.pk) == {other.number}
    assert numbers(search=quotes[2].number) == {quotes[2].number}
    assert numbers(search="同事") == {other.number}
    today = quotes[0].quote_date.isoformat()
    assert len(numbers(date_from=today, date_to=today)) == 5
    assert numbers(date_to="2000-01-01") == set()
    assert api.get(QUOTES, {"status": "nonsense"}).status_code == 400


def test_quote_list_queries_do_not_grow_with_rows(org, api_for, django_assert_max_num_queries):
    for _ in range(8):
        quote_for(org.sales1, lines=[line(), line()])
    with django_assert_max_num_queries(5):
        assert api_for(org.sales1).get(QUOTES).json()["count"] == 8


def test_quote_update_needs_the_current_version(org, api_for):
    quote = quote_for(org.sales1)
    api = api_for(org.sales1)
    url = f"{QUOTES}{quote.pk}/"
    product = ProductFactory()
    ok = api.patch(
        url,
        {
            "title": "新标题",
            "version": 1,
            "lines": [{"product": product.pk, "quantity": "2", "unit_price": "5.00"}],
        },
        format="json",
    )
    assert ok.status_code == 200, ok.json()
    assert ok.json()["version"] == 2 and ok.json()["total_amount"] == "11.30"
    stale = api.patch(url, {"title": "旧的", "version": 1}, format="json")
    assert stale.status_code == 409
    missing = api.patch(url, {"title": "旧的"}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()
    quote.refresh_from_db()
    assert quote.title == "新标题" and quote.version == 2


def test_quote_send_accept_convert(org, api_for):
    quote = quote_for(org.sales1)
    api = api_for(org.sales1)
    url = f"{QUOTES}{quote.pk}/"
    assert api.post(f"{url}send/", {"version": 99}, format="json").status_code == 409
    sent = api.post(f"{url}send/", {"version": 1}, format="json")
    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    again = api.post(f"{url}send/")
    assert again.status_code == 400 and "status" in again.json()
    assert api.post(f"{url}accept/").json()["status"] == "accepted"
    converted = api.post(f"{url}convert/", {"end_date": "2030-12-31"}, format="json")
    assert converted.status_code == 201, converted.json()
    contract = converted.json()
    assert contract["number"].startswith("HT-") and contract["status"] == "draft"
    assert contract["quote"] == quote.pk and contract["total_amount"] == str(quote.total_amount)
    assert contract["end_date"] == "2030-12-31" and len(contract["lines"]) == 1
    quote_body = api.get(url).json()
    assert quote_body["status"] == "converted" and quote_body["contract"] == contract["id"]
    assert api.post(f"{url}convert/").status_code == 400  # only once
    assert Contract.objects.count() == 1


def test_quote_reject_needs_a_reason(org, api_for):
    quote = services.quote_send(actor=org.sales1, quote=quote_for(org.sales1))
    api = api_for(org.sales1)
    url = f"{QUOTES}{quote.pk}/reject/"
    refused = api.post(url, {}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()
    done = api.post(url, {"reason": "价格太高"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "rejected"
    assert api.post(f"{QUOTES}{quote.pk}/convert/").status_code == 400


def test_quote_delete_needs_the_delete_permission(org, api_for):
    quote = quote_for(org.sales1)
    assert api_for(org.sales1).delete(f"{QUOTES}{quote.pk}/").status_code == 403
    assert api_for(org.admin).delete(f"{QUOTES}{quote.pk}/").status_code == 204
    assert not Quote.objects.filter(pk=quote.pk).exists()
    assert Quote.all_objects.filter(pk=quote.pk).exists()  # soft-deleted


def test_quote_out_of_scope_is_404(org, api_for):
    quote = quote_for(org.sales3)
    api = api_for(org.sales1)
    url = f"{QUOTES}{quote.pk}/"
    assert api.get(url).status_code == 404
    assert api.patch(url, {"title": "x", "version": 1}, format="json").status_code == 404
    for step in ("send", "accept", "convert"):
        assert api.post(f"{url}{step}/").status_code == 404
    assert api.post(f"{url}reject/", {"reason": "x"}, format="json").status_code == 404
    assert api.get(f"{url}pdf/").status_code == 404
    assert api.get(QUOTES).json()["count"] == 0
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DRAFT and quote.version == 1


def test_quotes_refused_without_permission(org, api_for):
    quote = quote_for(org.sales1)
    assert api_for(org.hr).get(QUOTES).status_code == 403
    assert api_for(org.hr).get(f"{QUOTES}{quote.pk}/").status_code == 403
    finance = api_for(org.finance)
    assert finance.get(f"{QUOTES}{quote.pk}/").status_code == 200  # finance reads all
    assert finance.post(f"{QUOTES}{quote.pk}/send/").status_code == 403
    response = finance.post(
        QUOTES,
        {"customer": quote.customer_id, "title": "x", "lines": [{"product": 1, "quantity": "1"}]},
        format="json",
    )
    assert response.status_code == 403
    assert Quote.objects.count() == 1


@needs_pdf
def test_quote_pdf(org, api_for):
    quote = quote_for(org.sales1)
    api = api_for(org.sales1)
    response = api.get(f"{QUOTES}{quote.pk}/pdf/", {"lang": "en"}, HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert quote.number in response["Content-Disposition"]
    bad = api.get(f"{QUOTES}{quote.pk}/pdf/", {"lang": "fr"})
    assert bad.status_code == 400 and "lang" in bad.json()


# --- contracts ------------------------------------------------------------------------------

CONTRACT_FIELDS = {
    "id",
    "number",
    "customer",
    "title",
    "status",
    "total_amount",
    "lines",
    "version",
    "subtotal_amount",
    "tax_amount",
    "currency",
    "opportunity",
    "contact",
    "quote",
    "signed_on",
    "start_date",
    "end_date",
    "payment_terms",
    "owner",
    "department",
    "approved_at",
    "created_at",
}


def _contract_payload(customer, product, **extra) -> dict:
    return {
        "customer": customer.pk,
        "title": "年度采购合同",
        "signed_on": "2026-03-01",
        "start_date": "2026-03-01",
        "end_date": "2027-02-28",
        "payment_terms": "签约后30天内付清",
        "lines": [{"product": product.pk, "quantity": "10", "unit_price": "1000.00"}],
        **extra,
    }


def test_contract_create_fields_and_server_decided_values(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    product = ProductFactory()
    quote = quote_for(org.sales1, customer=customer)
    payload = _contract_payload(
        customer,
        product,
        number="HT-HACK",
        status="active",
        total_amount="1.00",
        subtotal_amount="1.00",
        tax_amount="0.00",
        department=org.sales2_dept.pk,
        owner=org.sales3.pk,
        approved_at="2026-01-01T00:00:00Z",
        quote=quote.pk,
        termination_reason="x",
        version=9,
    )
    response = api_for(org.sales1).post(CONTRACTS, payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) >= CONTRACT_FIELDS
    assert body["number"].startswith("HT-") and body["status"] == "draft"
    assert body["subtotal_amount"] == "10000.00" and body["total_amount"] == "11300.00"
    assert body["owner"] == org.sales1.pk and body["department"] == org.sales1_dept.pk
    assert body["approved_at"] is None and body["quote"] is None and body["version"] == 1
    assert body["termination_reason"] == ""
    assert body["lines"][0]["total_amount"] == "11300.00"


def test_finance_cannot_create_a_contract(org, api_for):
    payload = _contract_payload(CustomerFactory(owner=org.finance), ProductFactory())
    response = api_for(org.finance).post(CONTRACTS, payload, format="json")
    assert response.status_code == 403
    assert not Contract.all_objects.exists()


def test_a_manager_who_may_assign_names_the_owner(org, api_for):
    customer = CustomerFactory(owner=org.sales2)
    payload = _contract_payload(customer, ProductFactory(), owner=org.sales2.pk)
    body = api_for(org.salesmgr1).post(CONTRACTS, payload, format="json").json()
    assert body["owner"] == org.sales2.pk and body["department"] == org.sales1_dept.pk


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"product": 999999}, "product"),
        ({"unit_price": "1.234"}, "unit_price"),
        ({"unit_price": "-5.00"}, "unit_price"),
        ({"discount_rate": "101"}, "discount_rate"),
        ({"quantity": "1.0001"}, "quantity"),
    ],
)
def test_bad_lines_are_refused_on_the_field(org, api_for, bad_line, field):
    customer = CustomerFactory(owner=org.sales1)
    good = {"product": ProductFactory().pk, "quantity": "1", "unit_price": "10.00"}
    payload = _contract_payload(customer, ProductFactory())
    payload["lines"] = [good, {**good, **bad_line}]
    response = api_for(org.sales1).post(CONTRACTS, payload, format="json")
    assert response.status_code == 400
    errors = response.json()["lines"]  # by position of the bad line
    assert list(errors) == ["1"] and field in errors["1"]
    assert not Contract.all_objects.exists()


def test_contract_without_lines_or_with_a_foreign_customer_is_refused(org, api_for):
    api = api_for(org.sales1)
    payload = _contract_payload(CustomerFactory(owner=org.sales1), ProductFactory(), lines=[])
    response = api.post(CONTRACTS, payload, format="json")
    assert response.status_code == 400 and "lines" in response.json()
    payload = _contract_payload(CustomerFactory(owner=org.sales3), ProductFactory())
    response = api.post(CONTRACTS, payload, format="json")
    assert response.status_code == 400 and "customer" in response.json()
    payload = _contract_payload(
        CustomerFactory(owner=org.sales1), ProductFactory(), end_date="2026-01-01"
    )
    response = api.post(CONTRACTS, payload, format="json")
    assert response.status_code == 400 and "end_date" in response.json()
    assert not Contract.all_objects.exists()


def test_contract_update_ignores_server_fields_and_refuses_stale(org, api_for):
    contract = contract_for(org.sales1, amount="500.00")
    api = api_for(org.sales1)
    url = f"{CONTRACTS}{contract.pk}/"
    response = api.patch(
        url,
        {
            "title": "改过的合同",
            "version": 1,
            "status": "active",
            "number": "HT-X",
            "total_amount": "1.00",
            "owner": org.sales2.pk,
            "department": org.sales2_dept.pk,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["title"] == "改过的合同" and body["status"] == "draft"
    assert body["number"] == contract.number and body["total_amount"] == "500.00"
    assert body["owner"] == org.sales1.pk and body["department"] == org.sales1_dept.pk
    assert body["version"] == 2
    assert api.patch(url, {"title": "stale", "version": 1}, format="json").status_code == 409
    contract.refresh_from_db()
    assert contract.title == "改过的合同" and contract.version == 2


def test_submit_then_approve_activates(org, api_for):
    contract = contract_for(org.sales1, amount="2000.00")
    api = api_for(org.sales1)
    url = f"{CONTRACTS}{contract.pk}/"
    assert api.post(f"{url}submit/", {"version": 5}, format="json").status_code == 409
    response = api.post(f"{url}submit/", {"comment": "请审批", "version": 1}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["approval_request"]
    request = ApprovalRequest.objects.get(pk=body["approval_request"])
    approval_approve(actor=org.salesmgr1, request=request)
    body = api.get(url).json()
    assert body["status"] == "active" and body["approved_at"] and body["approval_request"] is None


def test_illegal_contract_steps_change_nothing(org, api_for):
    contract = activate(contract_for(org.sales1))
    version = contract.version
    api = api_for(org.sales1)
    url = f"{CONTRACTS}{contract.pk}/"
    submit = api.post(f"{url}submit/", format="json")
    assert submit.status_code == 400 and "status" in submit.json()
    edit = api.patch(url, {"title": "改", "version": version}, format="json")
    assert edit.status_code == 400 and "status" in edit.json()
    assert api.post(f"{CONTRACTS}{contract_for(org.sales1).pk}/complete/").status_code == 400
    assert api.delete(url).status_code == 403  # salespeople do not delete
    assert api_for(org.admin).delete(url).status_code == 400  # active: not deletable
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE and contract.version == version
    assert contract.title == "年度采购合同" and contract.deleted_at is None


def test_complete_and_terminate(org, api_for):
    api = api_for(org.sales1)
    done = activate(contract_for(org.sales1))
    response = api.post(f"{CONTRACTS}{done.pk}/complete/", {"version": done.version})
    assert response.status_code == 200 and response.json()["status"] == "completed"
    ended = activate(contract_for(org.sales1))
    url = f"{CONTRACTS}{ended.pk}/terminate/"
    assert api.post(url, {}, format="json").status_code == 400
    response = api.post(url, {"reason": "客户违约"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "terminated"
    assert response.json()["termination_reason"] == "客户违约"


def test_amend_an_active_contract(org, api_for):
    contract = activate(contract_for(org.sales1, amount="1000.00"))
    api = api_for(org.sales1)
    url = f"{CONTRACTS}{contract.pk}/"
    current = contract.lines.get()
    response = api.post(
        f"{url}amend/",
        {
            "reason": "客户追加数量",
            "version": contract.version,
            "data": {"title": "年度采购合同（补充）", "end_date": "2027-12-31"},
            "lines": [
                {
                    "id": current.pk,
                    "product": current.product_id,
                    "quantity": "2",
                    "unit_price": "1000.00",
                    "tax_rate": "0",
                }
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    amendment = response.json()
    assert amendment["status"] == "applied"  # no approval rule for amendments by default
    assert amendment["total_before"] == "1000.00" and amendment["total_after"] == "2000.00"
    body = api.get(url).json()
    assert body["title"] == "年度采购合同（补充）" and body["total_amount"] == "2000.00"
    assert body["end_date"] == "2027-12-31"
    listed = api.get(f"{url}amendments/").json()
    assert [a["id"] for a in listed] == [amendment["id"]]
    refused = api.post(f"{url}amend/", {"reason": "x", "data": {"customer": 1}}, format="json")
    assert refused.status_code == 400 and "data" in refused.json()
    assert api.post(f"{url}amend/", {"data": {"title": "x"}}, format="json").status_code == 400
    draft = contract_for(org.sales1)
    response = api.post(
        f"{CONTRACTS}{draft.pk}/amend/", {"reason": "x", "data": {"title": "y"}}, format="json"
    )
    assert response.status_code == 400


def test_contract_scope(org, api_for):
    theirs = contract_for(org.sales3)
    mine = contract_for(org.sales1)
    api = api_for(org.sales1)
    url = f"{CONTRACTS}{theirs.pk}/"
    assert api.get(url).status_code == 404
    assert api.patch(url, {"title": "x", "version": 1}, format="json").status_code == 404
    assert api.put(url, {"title": "x", "version": 1}, format="json").status_code == 404
    for step in ("submit", "complete", "orders"):
        assert api.post(f"{url}{step}/").status_code == 404
    assert api.post(f"{url}terminate/", {"reason": "x"}, format="json").status_code == 404
    response = api.post(f"{url}amend/", {"reason": "x", "data": {"title": "y"}}, format="json")
    assert response.status_code == 404
    assert api.get(f"{url}pdf/").status_code == 404
    assert api.get(f"{url}amendments/").status_code == 404
    assert [r["id"] for r in api.get(CONTRACTS).json()["results"]] == [mine.pk]
    manager = api_for(org.salesmgr1)
    assert manager.get(url).status_code == 404
    assert manager.get(f"{CONTRACTS}{mine.pk}/").status_code == 200
    assert [r["id"] for r in manager.get(CONTRACTS).json()["results"]] == [mine.pk]
    assert api_for(org.salesdirector).get(url).status_code == 200  # 销售部 and below
    theirs.refresh_from_db()
    assert theirs.title == "年度采购合同" and theirs.status == ContractStatus.DRAFT


def test_contract_list_filters_and_query_count(org, api_for, django_assert_max_num_queries):
    customer = CustomerFactory(owner=org.sales1)
    drafts = [contract_for(org.sales1, customer=customer, lines=[line(), line()]) for _ in range(5)]
    active = activate(contract_for(org.sales1, signed_on="2026-05-01"))
    api = api_for(org.sales1)
    with django_assert_max_num_queries(5):
        data = api.get(CONTRACTS).json()
    assert data["count"] == 6
    assert set(data["results"][0]) >= CONTRACT_FIELDS

    def ids(**params):
        return {r["id"] for r in api.get(CONTRACTS, params).json()["results"]}

    assert ids(status="active") == {active.pk}
    assert ids(customer=customer.pk) == {c.pk for c in drafts}
    assert ids(date_from="2026-04-01", date_to="2026-05-31") == {active.pk}
    assert ids(search=drafts[1].number) == {drafts[1].pk}


def test_contract_detail_query_count(org, api_for, django_assert_max_num_queries):
    contract = contract_for(org.sales1, lines=[line() for _ in range(6)])
    with django_assert_max_num_queries(4):
        body = api_for(org.sales1).get(f"{CONTRACTS}{contract.pk}/").json()
    assert len(body["lines"]) == 6


def test_order_from_contract(org, api_for):
    contract = activate(
        contract_for(org.sales1, lines=[line(quantity="10", unit_price="100.00"), line()])
    )
    first, second = contract.lines.order_by("sort_order")
    api = api_for(org.sales1)
    url = f"{CONTRACTS}{contract.pk}/orders/"
    response = api.post(
        url,
        {"lines": [{"contract_line": first.pk, "quantity": "4"}], "ship_by": "2026-12-31"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    order = response.json()
    assert order["contract"] == contract.pk and order["status"] == "pending"
    assert order["customer"] == contract.customer_id and order["ship_by"] == "2026-12-31"
    assert order["lines"][0]["contract_line"] == first.pk
    assert order["lines"][0]["unit_price"] == "100.00" and order["lines"][0]["quantity"] == "4.000"
    too_many = api.post(
        url, {"lines": [{"contract_line": first.pk, "quantity": "7"}]}, format="json"
    )
    assert too_many.status_code == 400 and "lines" in too_many.json()
    rest = api.post(url, {}, format="json")
    assert rest.status_code == 201
    assert {(r["contract_line"], r["quantity"]) for r in rest.json()["lines"]} == {
        (first.pk, "6.000"),
        (second.pk, "1.000"),
    }
    assert api.post(url, {}, format="json").status_code == 400  # nothing left to order
    draft = contract_for(org.sales1)
    assert api.post(f"{CONTRACTS}{draft.pk}/orders/", {}, format="json").status_code == 400
    assert api_for(org.finance).post(url, {}, format="json").status_code == 403
    assert Order.objects.count() == 2


@needs_pdf
def test_contract_pdf(org, api_for):
    contract = contract_for(org.sales1)
    response = api_for(org.sales1).get(f"{CONTRACTS}{contract.pk}/pdf/", {"lang": "zh-hans"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert api_for(org.hr).get(f"{CONTRACTS}{contract.pk}/pdf/").status_code == 403


# --- orders ---------------------------------------------------------------------------------


def test_standalone_order_create_and_line_fields(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    product = ProductFactory(list_price=Decimal("50.00"))
    warehouse = warehouse_default_ensure()
    response = api_for(org.sales1).post(
        ORDERS,
        {
            "customer": customer.pk,
            "title": "零星采购",
            "warehouse": warehouse.pk,
            "receiver_name": "张三",
            "lines": [
                {
                    "product": product.pk,
                    "quantity": "2",
                    "shipped_quantity": "2",  # the server's
                    "returned_quantity": "1",
                }
            ],
            "status": "shipped",
            "number": "DD-X",
            "total_amount": "0.01",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"].startswith("DD-") and body["status"] == "pending"
    assert body["total_amount"] == "113.00" and body["warehouse"] == warehouse.pk
    row = body["lines"][0]
    assert row["quantity"] == "2.000" and row["shipped_quantity"] == "0.000"
    assert row["returned_quantity"] == "0.000" and row["outstanding_quantity"] == "2.000"
    assert body["contract"] is None


def test_order_create_with_a_contract(org, api_for):
    contract = activate(contract_for(org.sales1, lines=[line(quantity="5")]))
    contract_line = contract.lines.get()
    api = api_for(org.sales1)
    missing = api.post(
        ORDERS,
        {
            "contract": contract.pk,
            "lines": [{"product": contract_line.product_id, "quantity": "1"}],
        },
        format="json",
    )
    assert missing.status_code == 400 and "contract_line" in missing.json()["lines"]["0"]
    response = api.post(
        ORDERS,
        {
            "contract": contract.pk,
            "customer": CustomerFactory(owner=org.sales1).pk,  # the contract's customer wins
            "lines": [{"contract_line": contract_line.pk, "quantity": "2", "unit_price": "0.01"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["customer"] == contract.customer_id
    assert body["lines"][0]["unit_price"] == str(contract_line.unit_price)
    foreign = activate(contract_for(org.sales3))
    response = api.post(
        ORDERS,
        {"contract": foreign.pk, "lines": [{"contract_line": 1, "quantity": "1"}]},
        format="json",
    )
    assert response.status_code == 400 and "contract" in response.json()
    standalone = api.post(ORDERS, {"customer": contract.customer_id}, format="json")
    assert standalone.status_code == 400 and "lines" in standalone.json()
    smuggled = api.post(
        ORDERS,
        {
            "customer": contract.customer_id,
            "lines": [
                {
                    "product": contract_line.product_id,
                    "quantity": "1",
                    "contract_line": contract_line.pk,
                },
            ],
        },
        format="json",
    )
    assert smuggled.status_code == 400 and "contract_line" in smuggled.json()["lines"]["0"]
    assert Order.objects.count() == 1


def test_order_update_only_while_pending(org, api_for):
    order = order_for(org.sales1)
    api = api_for(org.sales1)
    url = f"{ORDERS}{order.pk}/"
    response = api.patch(url, {"receiver_name": "李四", "version": 1}, format="json")
    assert response.status_code == 200 and response.json()["version"] == 2
    assert api.patch(url, {"receiver_name": "x", "version": 1}, format="json").status_code == 409
    assert api.post(f"{url}confirm/", {"version": 2}, format="json").json()["status"] == "confirmed"
    refused = api.patch(url, {"receiver_name": "王五", "version": 3}, format="json")
    assert refused.status_code == 400 and "status" in refused.json()
    order.refresh_from_db()
    assert order.receiver_name == "李四" and order.status == OrderStatus.CONFIRMED


def test_ship_refusals_change_nothing(org, api_for):
    product = stocked("5")
    pending = order_for(org.sales1, lines=[line(product, quantity="2")])
    warehouse = api_for(org.warehouse)
    response = warehouse.post(f"{ORDERS}{pending.pk}/ship/", {}, format="json")
    assert response.status_code == 400 and "status" in response.json()
    order = services.order_confirm(actor=org.sales1, order=pending)
    url = f"{ORDERS}{order.pk}/ship/"
    assert api_for(org.sales1).post(url, {}, format="json").status_code == 403
    order_line = order.lines.get()
    over = warehouse.post(
        url, {"lines": [{"order_line": order_line.pk, "quantity": "3"}]}, format="json"
    )
    assert over.status_code == 400 and "lines" in over.json()
    negative = warehouse.post(
        url, {"lines": [{"order_line": order_line.pk, "quantity": "-1"}]}, format="json"
    )
    assert negative.status_code == 400 and "quantity" in negative.json()["lines"]["0"]
    foreign_line = order_for(org.sales1).lines.get()
    foreign = warehouse.post(
        url, {"lines": [{"order_line": foreign_line.pk, "quantity": "1"}]}, format="json"
    )
    assert foreign.status_code == 400
    product.refresh_from_db()
    order.refresh_from_db()
    assert product.stock_quantity == Decimal("5") and order.status == OrderStatus.CONFIRMED
    assert not Shipment.objects.exists()


def test_shipping_more_than_in_stock_is_refused(org, api_for):
    product = stocked("1")
    order = services.order_confirm(
        actor=org.sales1, order=order_for(org.sales1, lines=[line(product, quantity="3")])
    )
    response = api_for(org.warehouse).post(f"{ORDERS}{order.pk}/ship/", {}, format="json")
    assert response.status_code == 400
    product.refresh_from_db()
    assert product.stock_quantity == Decimal("1") and not Shipment.objects.exists()


def test_ship_return_cancel_complete(org, api_for):
    order = confirmed_order(org.sales1, "4")
    order_line = order.lines.get()
    product = order_line.product
    warehouse = api_for(org.warehouse)
    url = f"{ORDERS}{order.pk}/"
    shipped = warehouse.post(
        f"{url}ship/", {"carrier": "顺丰", "tracking_number": "SF123"}, format="json"
    )
    assert shipped.status_code == 201, shipped.json()
    shipment = shipped.json()
    assert shipment["number"].startswith("FH-") and shipment["kind"] == "shipment"
    assert shipment["order_status"] == "shipped" and shipment["carrier"] == "顺丰"
    assert shipment["lines"][0]["quantity"] == "4.000"
    assert (
        api_for(org.sales1)
        .post(
            f"{url}return/",
            {"lines": [{"order_line": order_line.pk, "quantity": "1"}], "reason": "x"},
            format="json",
        )
        .status_code
        == 403
    )
    no_reason = warehouse.post(
        f"{url}return/", {"lines": [{"order_line": order_line.pk, "quantity": "1"}]}, format="json"
    )
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    returned = warehouse.post(
        f"{url}return/",
        {"lines": [{"order_line": order_line.pk, "quantity": "1"}], "reason": "破损"},
        format="json",
    )
    assert returned.status_code == 201, returned.json()
    assert returned.json()["kind"] == "return" and returned.json()["order_status"] == (
        "partially_shipped"
    )
    body = api_for(org.sales1).get(url).json()
    assert body["lines"][0]["returned_quantity"] == "1.000"
    assert body["lines"][0]["outstanding_quantity"] == "1.000"
    product.refresh_from_db()
    assert product.stock_quantity == Decimal("97")
    assert api_for(org.sales1).post(f"{url}complete/").status_code == 400  # not all shipped
    cancel = api_for(org.sales1).post(f"{url}cancel/", {"reason": "x"}, format="json")
    assert cancel.status_code == 403  # goods are out: the warehouse takes them back
    warehouse.post(f"{url}ship/", {}, format="json")
    completed = api_for(org.sales1).post(f"{url}complete/")
    assert completed.status_code == 200 and completed.json()["status"] == "completed"
    cancel = warehouse.post(f"{url}cancel/", {"reason": "x"}, format="json")
    assert cancel.status_code == 400 and "status" in cancel.json()


def test_cancel_a_pending_order(org, api_for):
    order = order_for(org.sales1)
    api = api_for(org.sales1)
    url = f"{ORDERS}{order.pk}/cancel/"
    assert api.post(url, {}, format="json").status_code == 400
    assert api_for(org.finance).post(url, {"reason": "x"}, format="json").status_code == 403
    response = api.post(url, {"reason": "客户取消"}, format="json")
    assert response.status_code == 200
    assert (
        response.json()["status"] == "cancelled" and response.json()["cancel_reason"] == "客户取消"
    )


def test_order_delete(org, api_for):
    order = order_for(org.sales1)
    assert api_for(org.sales1).delete(f"{ORDERS}{order.pk}/").status_code == 403
    assert api_for(org.admin).delete(f"{ORDERS}{order.pk}/").status_code == 204
    confirmed = confirmed_order(org.sales1, "1")
    assert api_for(org.admin).delete(f"{ORDERS}{confirmed.pk}/").status_code == 400


def test_order_scope(org, api_for):
    theirs = confirmed_order(org.sales3, "1")
    api = api_for(org.sales1)
    url = f"{ORDERS}{theirs.pk}/"
    assert api.get(url).status_code == 404
    assert api.patch(url, {"title": "x", "version": 2}, format="json").status_code == 404
    for step in ("confirm", "complete", "ship"):
        assert api.post(f"{url}{step}/", {}, format="json").status_code == 404
    assert api.post(f"{url}cancel/", {"reason": "x"}, format="json").status_code == 404
    assert api_for(org.salesmgr1).get(url).status_code == 404
    assert api_for(org.salesmgr1).get(ORDERS).json()["count"] == 0
    assert api_for(org.warehouse).get(url).status_code == 200  # the warehouse sees all
    theirs.refresh_from_db()
    assert theirs.status == OrderStatus.CONFIRMED and theirs.version == 2


def test_order_list_query_count(org, api_for, django_assert_max_num_queries):
    for _ in range(6):
        order_for(org.sales1, lines=[line(), line(), line()])
    api = api_for(org.sales1)
    with django_assert_max_num_queries(5):
        data = api.get(ORDERS).json()
    assert data["count"] == 6 and len(data["results"][0]["lines"]) == 3
    assert api.get(ORDERS, {"status": "pending"}).json()["count"] == 6
    assert api.get(ORDERS, {"status": "shipped"}).json()["count"] == 0


# --- shipments ------------------------------------------------------------------------------


def test_shipments_read_only_scoped_and_bounded(org, api_for, django_assert_max_num_queries):
    for owner in (org.sales1, org.sales1, org.sales1, org.sales3):
        order = confirmed_order(owner, "1", "2")
        services.order_ship(actor=org.warehouse, order=order)
    api = api_for(org.sales1)
    with django_assert_max_num_queries(5):
        data = api.get(SHIPMENTS).json()
    assert data["count"] == 3
    first = data["results"][0]
    assert len(first["lines"]) == 2 and first["lines"][0]["product_code"]
    assert api.get(f"{SHIPMENTS}{first['id']}/").json()["number"] == first["number"]
    theirs = Shipment.objects.get(order__owner=org.sales3)
    assert api.get(f"{SHIPMENTS}{theirs.pk}/").status_code == 404
    assert api_for(org.warehouse).get(SHIPMENTS).json()["count"] == 4
    assert api.get(SHIPMENTS, {"order": theirs.order_id}).json()["count"] == 0
    assert api.post(SHIPMENTS, {}, format="json").status_code == 405
    assert api.delete(f"{SHIPMENTS}{first['id']}/").status_code == 405
    assert api_for(org.hr).get(SHIPMENTS).status_code == 403


def test_shipments_search_by_number_tracking_order_and_customer_in_scope(org, api_for, client_for):
    for owner in (org.sales1, org.sales3):
        services.order_ship(actor=org.warehouse, order=confirmed_order(owner, "1", "2"))
    mine = Shipment.objects.get(order__owner=org.sales1)
    theirs = Shipment.objects.get(order__owner=org.sales3)
    Shipment.objects.filter(pk=mine.pk).update(tracking_number="SF1234567890")
    terms = [mine.number, "SF12345", mine.order.number, mine.order.customer.name]

    def numbers(user, term):
        response = api_for(user).get(SHIPMENTS, {"search": term})
        assert response.status_code == 200
        return {row["number"] for row in response.json()["results"]}

    for term in terms:
        assert numbers(org.sales1, term) == {mine.number}, term
        page = client_for(org.sales1).get(reverse("sales:shipment_list"), {"q": term})
        assert f">{mine.number}<" in page.content.decode(), term
    for term in (theirs.number, theirs.order.customer.name):
        assert numbers(org.sales1, term) == set(), term
        assert numbers(org.warehouse, term) == {theirs.number}, term


# --- the whole way through the API ----------------------------------------------------------


def approve(api, request_id: int, approver) -> None:
    """Through /api/v1/approvals/{id}/approve/ where that endpoint exists, else the service."""
    try:
        url = reverse("api:approval-approve", args=[request_id])
    except NoReverseMatch:
        request = ApprovalRequest.objects.get(pk=request_id)
        approval_approve(actor=approver, request=request, comment="同意")
        return
    response = api.post(url, {"comment": "同意"}, format="json")
    assert response.status_code == 200, response.json()


def test_contract_to_shipment_through_the_api(org, api_for):
    product = stocked("20")
    customer = CustomerFactory(owner=org.sales1)
    sales = api_for(org.sales1)
    created = sales.post(
        CONTRACTS,
        {
            "customer": customer.pk,
            "title": "设备采购",
            "lines": [{"product": product.pk, "quantity": "8", "unit_price": "500.00"}],
        },
        format="json",
    ).json()
    submitted = sales.post(
        f"{CONTRACTS}{created['id']}/submit/", {"version": created["version"]}, format="json"
    ).json()
    assert submitted["status"] == "pending"
    approve(api_for(org.salesmgr1), submitted["approval_request"], org.salesmgr1)
    assert sales.get(f"{CONTRACTS}{created['id']}/").json()["status"] == "active"

    order = sales.post(f"{CONTRACTS}{created['id']}/orders/", {}, format="json").json()
    order_url = f"{ORDERS}{order['id']}/"
    assert sales.post(f"{order_url}confirm/").json()["status"] == "confirmed"
    warehouse = api_for(org.warehouse)
    order_line = order["lines"][0]["id"]
    first = warehouse.post(
        f"{order_url}ship/",
        {"lines": [{"order_line": order_line, "quantity": "5"}], "carrier": "德邦"},
        format="json",
    )
    assert first.status_code == 201 and first.json()["order_status"] == "partially_shipped"
    rest = warehouse.post(f"{order_url}ship/", {"lines": []}, format="json")
    assert rest.status_code == 201, rest.json()
    assert rest.json()["lines"][0]["quantity"] == "3.000"
    body = sales.get(order_url).json()
    assert body["status"] == "shipped"
    assert body["lines"][0]["shipped_quantity"] == "8.000"
    assert body["lines"][0]["outstanding_quantity"] == "0.000"
    product.refresh_from_db()
    assert product.stock_quantity == Decimal("12")
    over = warehouse.post(f"{order_url}ship/", {}, format="json")
    assert over.status_code == 400  # nothing left: the order is shipped


# --- schema ---------------------------------------------------------------------------------


def test_openapi_schema_is_warning_free(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in (
        "/api/v1/quotes/{id}/convert/:",
        "/api/v1/contracts/{id}/submit/:",
        "/api/v1/contracts/{id}/pdf/:",
        "/api/v1/contracts/{id}/orders/:",
        "/api/v1/orders/{id}/ship/:",
        "/api/v1/orders/{id}/return/:",
        "/api/v1/shipments/{id}/:",
    ):
        assert path in text
    assert "application/pdf" in text


# --- what the server decides ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "make"),
    [
        (QUOTES, lambda org: quote_for(org.sales1)),
        (CONTRACTS, lambda org: contract_for(org.sales1)),
        (ORDERS, lambda org: order_for(org.sales1)),
    ],
)
def test_updates_ignore_what_the_server_decides(org, api_for, url, make):
    document = make(org)
    line_id = document.lines.get().pk
    before = {
        "number": document.number,
        "status": document.status,
        "total_amount": document.total_amount,
        "subtotal_amount": document.subtotal_amount,
        "tax_amount": document.tax_amount,
    }
    response = api_for(org.sales1).patch(
        f"{url}{document.pk}/",
        {
            "version": 1,
            "title": "改名",
            "number": "X-1",
            "status": "completed",
            "total_amount": "0.01",
            "subtotal_amount": "0.01",
            "tax_amount": "0.00",
            "owner": org.sales3.pk,
            "department": org.sales2_dept.pk,
            "created_at": "2000-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    document.refresh_from_db()
    assert {key: getattr(document, key) for key in before} == before
    assert document.title == "改名" and document.version == 2
    assert document.owner == org.sales1 and document.department == org.sales1_dept
    assert document.lines.get().pk == line_id  # lines untouched when not sent


def test_order_lines_cannot_set_shipped_quantities(org, api_for):
    order = order_for(org.sales1)
    product = order.lines.get().product
    response = api_for(org.sales1).patch(
        f"{ORDERS}{order.pk}/",
        {
            "version": 1,
            "lines": [
                {
                    "product": product.pk,
                    "quantity": "3",
                    "shipped_quantity": "3",
                    "returned_quantity": "1",
                    "subtotal": "1.00",
                }
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    row = response.json()["lines"][0]
    assert row["shipped_quantity"] == "0.000" and row["returned_quantity"] == "0.000"
    assert row["outstanding_quantity"] == "3.000"
    assert row["subtotal"] == str(product.list_price * 3)


def test_order_from_a_contract_changes_within_the_contract(org, api_for):
    contract = activate(contract_for(org.sales1, lines=[line(quantity="10")]))
    contract_line = contract.lines.get()
    order = services.order_create_from_contract(
        actor=org.sales1, contract=contract, lines=[{"contract_line": contract_line, "quantity": 4}]
    )
    api = api_for(org.sales1)
    url = f"{ORDERS}{order.pk}/"
    over = api.patch(
        url,
        {"version": 1, "lines": [{"contract_line": contract_line.pk, "quantity": "11"}]},
        format="json",
    )
    assert over.status_code == 400 and "lines" in over.json()
    ok = api.patch(
        url,
        {"version": 1, "lines": [{"contract_line": contract_line.pk, "quantity": "10"}]},
        format="json",
    )
    assert ok.status_code == 200, ok.json()
    assert ok.json()["lines"][0]["quantity"] == "10.000"
    assert ok.json()["contract"] == contract.pk
