"""Sales pages: lists, the line editor, detail pages, actions, PDF.

Every page and action: allowed, refused with 403 without the permission, 404 outside the
user's scope (sales1 never reaches sales3's documents); bad input shows an error and
writes nothing; lists and detail pages run a fixed number of queries.
"""

import datetime
import importlib.util
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kehu.approvals.models import ApprovalRequest
from kehu.approvals.services import approval_approve
from kehu.core.models import Attachment
from kehu.products.services import stock_movement_post, warehouse_default_ensure
from kehu.sales import services
from kehu.sales.models import (
    AmendmentStatus,
    Contract,
    ContractAmendment,
    ContractStatus,
    Order,
    OrderStatus,
    Quote,
    QuoteStatus,
    Shipment,
)
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.products.factories import ProductFactory
from tests.querycount import warm_page_queries
from tests.sales.factories import contract_for, line, order_for, quote_for

pytestmark = pytest.mark.django_db

HAS_PDF = importlib.util.find_spec("kehu.sales.pdf") is not None


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def product(org):
    warehouse_default_ensure()
    product = ProductFactory(code="DY-0001", name="激光打印机", list_price=Decimal("100.00"))
    stock_movement_post(actor=org.warehouse, product=product, kind="in", quantity=Decimal("100"))
    return product


@pytest.fixture
def customer(org):
    return CustomerFactory(owner=org.sales1, name="华东精密机械有限公司")


@pytest.fixture
def other_customer(org):
    return CustomerFactory(owner=org.sales3, name="华南物流集团")


def active_contract(org, owner, product, *, quantity="10", amount=None):
    lines = [line(product, quantity, unit_price=amount)] if amount else [line(product, quantity)]
    contract = contract_for(owner, lines=lines)
    services.contract_submit(actor=owner, contract=contract)
    request = ApprovalRequest.objects.get(object_id=contract.pk, status="pending")
    manager = org.salesmgr1 if owner.department_id == org.sales1_dept.pk else org.salesdirector
    approval_approve(actor=manager, request=request)
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE
    return contract


def confirmed_order(owner, product, quantity="5"):
    order = order_for(owner, lines=[line(product, quantity)])
    return services.order_confirm(actor=owner, order=order)


def no_sales_role(user):
    from kehu.system.models import Role

    nobody, _ = Role.objects.get_or_create(
        code="nobody", defaults={"name": "Nobody", "permissions": ["customers.view"]}
    )
    user.roles.set([nobody])
    return user


def header(customer, **extra) -> dict:
    data = {
        "customer": customer.pk,
        "title": "办公设备报价",
        "currency": "CNY",
        "quote_date": "2026-03-01",
        "valid_until": "2026-03-31",
    }
    data.update(extra)
    return data


def lines_post(*rows) -> dict:
    """``(index, product, quantity, extra)`` rows as the line editor posts them."""
    data = {}
    for index, product, quantity, *extra in rows:
        data[f"line-{index}-product"] = product.pk if product else ""
        data[f"line-{index}-quantity"] = quantity
        for key, value in (extra[0] if extra else {}).items():
            data[f"line-{index}-{key}"] = value
    return data


def queries(client, url) -> int:
    count, response = warm_page_queries(client, url)
    assert response.status_code == 200, response.content.decode()[:2000]
    return count


# --- lists ----------------------------------------------------------------------------------

LISTS = ["quote_list", "contract_list", "order_list", "shipment_list"]


@pytest.mark.parametrize("name", LISTS)
def test_lists_need_sales_view(org, client_for, name):
    assert client_for(org.sales1).get(reverse(f"sales:{name}")).status_code == 200
    assert client_for(org.warehouse).get(reverse(f"sales:{name}")).status_code == 200
    assert client_for(org.hr).get(reverse(f"sales:{name}")).status_code == 403


def test_lists_are_scoped(org, client_for, product):
    mine = quote_for(org.sales1, lines=[line(product)])
    colleague = quote_for(org.sales2, lines=[line(product)])
    other = quote_for(org.sales3, lines=[line(product)])
    url = reverse("sales:quote_list")
    page = client_for(org.sales1).get(url).content.decode()
    assert mine.number in page and colleague.number not in page and other.number not in page
    page = client_for(org.salesmgr1).get(url).content.decode()
    assert mine.number in page and colleague.number in page and other.number not in page
    page = client_for(org.manager).get(url).content.decode()
    assert all(q.number in page for q in (mine, colleague, other))
    # Searching for someone else's number finds nothing.
    page = client_for(org.sales1).get(url, {"q": other.number}).content.decode()
    assert other.get_absolute_url() not in page and "Nothing here yet" in page


def test_list_filters(org, client_for, product):
    small = contract_for(org.sales1, amount="500.00", title="小合同")
    big = contract_for(org.sales1, amount="90000.00", title="大合同")
    services.contract_submit(actor=org.sales1, contract=big)
    client = client_for(org.sales1)
    url = reverse("sales:contract_list")

    def found(**params):
        page = client.get(url, params).content.decode()
        return {c.number for c in (small, big) if c.number in page}

    assert found(status="pending") == {big.number}
    assert found(amount_min="1000") == {big.number}
    assert found(amount_max="1000") == {small.number}
    assert found(q="小合同") == {small.number}
    assert found(customer=str(big.customer_id)) == {big.number}
    assert found(customer=big.customer.name[:4]) == {small.number, big.number}
    # htmx asks for the results only.
    response = client.get(url, {"status": "draft"}, HTTP_HX_REQUEST="true")
    assert small.number in response.content.decode() and "<html" not in response.content.decode()
    # Money shows with its currency, grouped.
    assert "¥90,000.00" in client.get(url).content.decode()


def test_owner_filter_only_for_those_who_see_others(org, client_for):
    assert (
        'name="owner"'
        not in client_for(org.sales1).get(reverse("sales:quote_list")).content.decode()
    )
    assert (
        'name="owner"'
        in client_for(org.salesmgr1).get(reverse("sales:quote_list")).content.decode()
    )


@pytest.mark.parametrize("name", ["quote_list", "contract_list", "order_list", "shipment_list"])
def test_list_query_count_does_not_grow_with_rows(org, client_for, product, name):
    client = client_for(org.salesmgr1)
    url = reverse(f"sales:{name}")

    def make(n):
        for _ in range(n):
            order = confirmed_order(org.sales1, product, "1")
            services.order_ship(actor=org.warehouse, order=order)
            quote_for(org.sales2, lines=[line(product)])
            active_contract(org, org.sales1, product, quantity="1")

    make(2)
    few = queries(client, url)
    make(6)
    assert queries(client, url) == few
    assert few <= 22


def test_shipment_list_newest_first_with_ties_by_id(org, client_for, product):
    """A day's shipments come newest id first, so pages neither repeat nor skip one."""
    day = datetime.date(2026, 3, 3)
    shipped = [
        services.order_ship(
            actor=org.warehouse, order=confirmed_order(org.sales1, product, "1"), shipped_on=on
        )
        for on in (day, day - datetime.timedelta(days=1), day, day)
    ]
    response = client_for(org.salesmgr1).get(reverse("sales:shipment_list"))
    rows = list(response.context["page_obj"].object_list)
    assert rows == sorted(shipped, key=lambda s: (s.shipped_on, s.pk), reverse=True)
    assert response.context["page_obj"].object_list.query.order_by == ("-shipped_on", "-pk")
    # A chosen sort is left as it is (the id in the sort's own direction).
    response = client_for(org.salesmgr1).get(reverse("sales:shipment_list"), {"sort": "number"})
    assert response.context["page_obj"].object_list.query.order_by == ("number", "pk")


@pytest.mark.parametrize("name", ["quote_list", "contract_list", "order_list", "shipment_list"])
def test_export_needs_sales_export_and_is_scoped(org, client_for, product, name):
    order = confirmed_order(org.sales1, product)
    services.order_ship(actor=org.warehouse, order=order)
    other = confirmed_order(org.sales3, product)
    services.order_ship(actor=org.warehouse, order=other)
    quote_for(org.sales1, lines=[line(product)])
    quote_for(org.sales3, lines=[line(product)])
    contract_for(org.sales1)
    contract_for(org.sales3)
    url = reverse(f"sales:{name}")
    assert client_for(org.sales1).get(url, {"export": "csv"}).status_code == 403
    response = client_for(org.salesmgr1).get(url, {"export": "csv"})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = [row for row in text.splitlines()[1:] if row]
    assert len(rows) == 1  # sales1's, never sales3's
    assert org.sales3.username not in text
    response = client_for(org.finance).get(url, {"export": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    )


# --- look-ups and the totals preview --------------------------------------------------------


def test_customer_lookup_offers_only_own_customers(org, client_for, customer, other_customer):
    client = client_for(org.sales1)
    page = client.get(reverse("sales:customer_options"), {"q": "华"}).content.decode()
    assert customer.name in page and other_customer.name not in page
    page = client.get(reverse("sales:customer_options")).content.decode()
    assert customer.name in page and other_customer.name not in page
    assert client_for(org.warehouse).get(reverse("sales:customer_options")).status_code == 403


def test_product_lookup_offers_products_on_sale(org, client_for, product):
    off = ProductFactory(code="DY-0002", name="停售打印机", status="off_sale")
    client = client_for(org.sales1)
    page = client.get(reverse("sales:product_options"), {"q": "DY-"}).content.decode()
    assert "激光打印机" in page and off.name not in page
    assert 'data-price="100.00"' in page and 'data-tax="13.00"' in page
    page = client.get(reverse("sales:product_options"), {"q": "jgdy"}).content.decode()
    assert "激光打印机" in page  # pinyin initials
    assert client_for(org.hr).get(reverse("sales:product_options")).status_code == 403


def test_customer_fields_follow_the_customer_and_the_scope(
    org, client_for, customer, other_customer
):
    ContactFactory(customer=customer, name="王建国")
    ContactFactory(customer=other_customer, name="李秘密")
    client = client_for(org.sales1)
    url = reverse("sales:customer_fields")
    page = client.get(url, {"kind": "quote", "customer": customer.pk}).content.decode()
    assert "王建国" in page
    page = client.get(url, {"kind": "contract", "customer": other_customer.pk}).content.decode()
    assert "李秘密" not in page
    assert client.get(url, {"kind": "nonsense"}).status_code == 404


def test_totals_preview_is_computed_by_the_server(org, client_for, product):
    client = client_for(org.sales1)
    data = lines_post(
        (1, product, "3", {"discount_rate": "10"}),
        (4, product, "1.5", {"unit_price": "80.00", "tax_rate": "6"}),
        (7, None, ""),  # an empty row is skipped
    )
    data["currency"] = "CNY"
    page = client.post(reverse("sales:lines_preview"), data).content.decode()
    # 3 × 100 × 90% = 270.00 + 35.10 VAT; 1.5 × 80 = 120.00 + 7.20 tax.
    assert 'id="line-1-total"' in page and "¥305.10" in page
    assert "¥127.20" in page
    assert "¥432.30" in page
    bad = lines_post((1, product, "-1"))
    page = client.post(reverse("sales:lines_preview"), bad).content.decode()
    assert 'id="line-1-total" class="kehu-line-total" hx-swap-oob="true">—' in page
    assert client_for(org.hr).post(reverse("sales:lines_preview"), data).status_code == 403


# --- quotes ---------------------------------------------------------------------------------


def test_quote_created_with_two_lines(org, client_for, customer, product):
    other = ProductFactory(list_price=Decimal("50.00"), tax_rate=Decimal("6.00"))
    client = client_for(org.sales1)
    assert client.get(reverse("sales:quote_create")).status_code == 200
    data = header(customer) | lines_post((1, product, "2"), (3, other, "4", {"discount_rate": "5"}))
    response = client.post(reverse("sales:quote_create"), data)
    quote = Quote.objects.get()
    assert response.status_code == 302 and response["Location"] == quote.get_absolute_url()
    assert [line.quantity for line in quote.lines.all()] == [Decimal("2"), Decimal("4")]
    # 200 + 26 VAT; 4 × 50 × 95% = 190 + 11.40 tax: the server's arithmetic, not the page's.
    assert quote.total_amount == Decimal("427.40")
    assert quote.owner == org.sales1 and quote.status == QuoteStatus.DRAFT


def test_quote_form_prefills_the_customer_and_the_opportunity(org, client_for, customer):
    from kehu.customers.models import Opportunity, PipelineStage

    opportunity = Opportunity.objects.create(
        customer=customer,
        title="年度采购",
        amount=Decimal("1000"),
        stage=PipelineStage.objects.filter(is_active=True).first(),
        owner=org.sales1,
        department=org.sales1.department,
    )
    client = client_for(org.sales1)
    page = client.get(reverse("sales:quote_create"), {"opportunity": opportunity.pk})
    text = page.content.decode()
    assert customer.name in text and 'value="年度采购"' in text
    page = client.get(reverse("sales:quote_create"), {"customer": customer.pk})
    assert customer.name in page.content.decode()


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"title": ""}, "title", "This field is required"),
        ({"customer": ""}, "customer", "This field is required"),
        ({"valid_until": "2026-02-01"}, "valid_until", "cannot expire before its date"),
        ({"line-1-quantity": "-2"}, "lines", "greater than or equal to 0.001"),
        ({"line-1-quantity": "abc"}, "lines", "Enter a number"),
        ({"line-1-discount_rate": "120"}, "lines", "less than or equal to 100"),
        ({"line-1-product": "999999"}, "lines", "Choose a product from the list"),
        ({"line-1-product": "", "line-1-quantity": ""}, "lines", "Add at least one line"),
        ({"line-1-quantity": ""}, "lines", "Enter the quantity"),
    ],
)
def test_bad_quote_input_shows_errors_and_writes_nothing(
    org, client_for, customer, product, change, field, message
):
    data = header(customer) | lines_post((1, product, "2")) | change
    response = client_for(org.sales1).post(reverse("sales:quote_create"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Quote.objects.exists()


def test_quote_for_someone_elses_or_a_pool_customer_is_refused(
    org, client_for, other_customer, product
):
    client = client_for(org.sales1)
    data = header(other_customer) | lines_post((1, product, "1"))
    response = client.post(reverse("sales:quote_create"), data)
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    pool = CustomerFactory(owner=None, in_pool=True)
    response = client.post(
        reverse("sales:quote_create"), header(pool) | lines_post((1, product, "1"))
    )
    assert response.status_code == 400
    assert not Quote.objects.exists()


def test_quote_create_needs_sales_add(org, client_for, customer, product):
    data = header(customer) | lines_post((1, product, "1"))
    assert client_for(org.finance).get(reverse("sales:quote_create")).status_code == 403
    assert client_for(org.finance).post(reverse("sales:quote_create"), data).status_code == 403
    assert not Quote.objects.exists()


def test_quote_edit_keeps_lines_and_refuses_a_stale_version(org, client_for, customer, product):
    quote = quote_for(org.sales1, customer=customer, lines=[line(product, "2")])
    client = client_for(org.sales1)
    url = reverse("sales:quote_edit", args=[quote.pk])
    page = client.get(url).content.decode()
    assert (
        'value="DY-0001 激光打印机"' in page and f'name="version" value="{quote.version}"' in page
    )
    assert "¥226.00" in page  # the stored lines' amounts, before anything is changed
    data = header(customer, version=quote.version, title="改过的标题")
    data |= lines_post((1, product, "5", {"id": quote.lines.get().pk}))
    data["quote_date"] = quote.quote_date.isoformat()
    data["valid_until"] = quote.valid_until.isoformat()
    assert client.post(url, data).status_code == 302
    quote.refresh_from_db()
    assert quote.title == "改过的标题" and quote.total_amount == Decimal("565.00")
    # The same form again: someone changed the quote in between.
    data["title"] = "过期的修改"
    response = client.post(url, data)
    assert response.status_code == 400
    assert "changed by someone else" in response.content.decode()
    quote.refresh_from_db()
    assert quote.title == "改过的标题"


def test_quote_edit_out_of_scope_and_when_not_editable(org, client_for, product):
    other = quote_for(org.sales3, lines=[line(product)])
    client = client_for(org.sales1)
    assert client.get(reverse("sales:quote_edit", args=[other.pk])).status_code == 404
    assert client.post(reverse("sales:quote_edit", args=[other.pk]), {}).status_code == 404
    mine = quote_for(org.sales1, lines=[line(product)])
    services.quote_send(actor=org.sales1, quote=mine)
    services.quote_accept(actor=org.sales1, quote=Quote.objects.get(pk=mine.pk))
    response = client.get(reverse("sales:quote_edit", args=[mine.pk]))
    assert response.status_code == 302 and response["Location"] == mine.get_absolute_url()


def test_quote_detail_allowed_refused_and_query_count(org, client_for, product):
    quote = quote_for(org.sales1, lines=[line(product, "1")])
    many = quote_for(org.sales1, lines=[line(product, str(n)) for n in range(1, 12)])
    services.quote_send(actor=org.sales1, quote=many)
    client = client_for(org.sales1)
    page = client.get(quote.get_absolute_url()).content.decode()
    assert quote.number in page and "Mark as sent" in page
    assert queries(client, many.get_absolute_url()) == queries(client, quote.get_absolute_url())
    assert queries(client, many.get_absolute_url()) <= 16
    assert client_for(org.sales3).get(quote.get_absolute_url()).status_code == 404
    assert client_for(no_sales_role(org.hr)).get(quote.get_absolute_url()).status_code == 403
    # Finance sees it but has no buttons to change it.
    page = client_for(org.finance).get(quote.get_absolute_url()).content.decode()
    assert "Mark as sent" not in page and "Edit" not in page


def test_quote_send_accept_convert(org, client_for, product):
    quote = quote_for(org.sales1, lines=[line(product, "2")])
    client = client_for(org.sales1)

    def act(action, **data):
        url = reverse("sales:quote_action", args=[quote.pk, action])
        return client.post(url, {"version": Quote.objects.get(pk=quote.pk).version, **data})

    assert act("send").status_code == 302
    assert Quote.objects.get(pk=quote.pk).status == QuoteStatus.SENT
    assert act("accept").status_code == 302
    response = act("convert")
    contract = Contract.objects.get(quote=quote)
    assert response["Location"] == contract.get_absolute_url()
    assert Quote.objects.get(pk=quote.pk).status == QuoteStatus.CONVERTED
    page = client.get(quote.get_absolute_url()).content.decode()
    assert contract.number in page  # the quote links to its contract
    page = client.get(contract.get_absolute_url()).content.decode()
    assert quote.number in page  # and back
    # Converting twice is refused, shown on the page, nothing new written.
    response = act("convert")
    assert response.status_code == 400
    assert (
        "cannot become" in response.content.decode() or "Only a sent" in response.content.decode()
    )
    assert Contract.objects.count() == 1


def test_quote_reject_and_illegal_transition(org, client_for, product):
    quote = quote_for(org.sales1, lines=[line(product)])
    client = client_for(org.sales1)
    url = reverse("sales:quote_action", args=[quote.pk, "accept"])
    response = client.post(url, {"version": quote.version})
    assert response.status_code == 400 and 'id="action-error"' in response.content.decode()
    assert Quote.objects.get(pk=quote.pk).status == QuoteStatus.DRAFT
    services.quote_send(actor=org.sales1, quote=quote)
    quote.refresh_from_db()
    url = reverse("sales:quote_action", args=[quote.pk, "reject"])
    assert client.post(url, {"version": quote.version, "reason": "太贵"}).status_code == 302
    assert Quote.objects.get(pk=quote.pk).status == QuoteStatus.REJECTED


def test_quote_action_stale_version_is_a_conflict(org, client_for, product):
    quote = quote_for(org.sales1, lines=[line(product)])
    url = reverse("sales:quote_action", args=[quote.pk, "send"])
    response = client_for(org.sales1).post(url, {"version": quote.version - 1 or 99})
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()
    assert Quote.objects.get(pk=quote.pk).status == QuoteStatus.DRAFT


def test_quote_actions_refused(org, client_for, product):
    other = quote_for(org.sales3, lines=[line(product)])
    mine = quote_for(org.sales1, lines=[line(product)])
    sales1 = client_for(org.sales1)
    url = reverse("sales:quote_action", args=[other.pk, "send"])
    assert sales1.post(url, {"version": other.version}).status_code == 404
    assert sales1.get(reverse("sales:quote_action", args=[mine.pk, "send"])).status_code == 405
    assert sales1.post(reverse("sales:quote_action", args=[mine.pk, "fly"])).status_code == 404
    # Finance may look but not send; sales1 may not delete (no sales.delete).
    url = reverse("sales:quote_action", args=[mine.pk, "send"])
    assert client_for(org.finance).post(url, {"version": mine.version}).status_code == 403
    assert sales1.post(reverse("sales:quote_action", args=[mine.pk, "delete"])).status_code == 403
    assert Quote.objects.get(pk=mine.pk).status == QuoteStatus.DRAFT
    response = client_for(org.admin).post(reverse("sales:quote_action", args=[mine.pk, "delete"]))
    assert response.status_code == 302 and not Quote.objects.filter(pk=mine.pk).exists()


@pytest.mark.skipif(not HAS_PDF, reason="kehu.sales.pdf not installed yet")
def test_quote_pdf(org, client_for, product):
    quote = quote_for(org.sales1, lines=[line(product)])
    url = reverse("sales:quote_pdf", args=[quote.pk])
    response = client_for(org.sales1).get(url, {"lang": "en"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert client_for(org.sales1).get(url, {"lang": "xx"}).status_code == 200
    assert client_for(org.sales3).get(url).status_code == 404
    assert client_for(no_sales_role(org.hr)).get(url).status_code == 403


# --- contracts ------------------------------------------------------------------------------


def test_contract_created_and_submitted_through_the_pages(org, client_for, customer, product):
    client = client_for(org.sales1)
    data = {
        "customer": customer.pk,
        "title": "年度采购合同",
        "currency": "CNY",
        "signed_on": "2026-03-01",
        "start_date": "2026-03-01",
        "end_date": "2027-02-28",
        "payment_terms": "30% 预付",
    } | lines_post((1, product, "1000"))
    response = client.post(reverse("sales:contract_create"), data)
    contract = Contract.objects.get()
    assert response["Location"] == contract.get_absolute_url()
    assert contract.total_amount == Decimal("113000.00")
    url = reverse("sales:contract_action", args=[contract.pk, "submit"])
    response = client.post(url, {"version": contract.version, "comment": "请审批"})
    assert response.status_code == 302
    contract.refresh_from_db()
    assert contract.status == ContractStatus.PENDING
    page = client.get(contract.get_absolute_url()).content.decode()
    assert "approval-panel" in page and "销售经理" in page
    assert "Submit for approval" not in page


def test_contract_dates_checked(org, client_for, customer, product):
    data = {
        "customer": customer.pk,
        "title": "合同",
        "currency": "CNY",
        "start_date": "2026-03-01",
        "end_date": "2026-01-01",
    } | lines_post((1, product, "1"))
    response = client_for(org.sales1).post(reverse("sales:contract_create"), data)
    assert response.status_code == 400 and "end date is before" in response.content.decode()
    assert not Contract.objects.exists()


def amendment_rule(org):
    """Amendments go to the sales manager (the demo ships no rule for them)."""
    from kehu.approvals.services import approval_rule_create
    from kehu.system.models import Role

    approval_rule_create(
        actor=org.admin,
        data={"document_type": "sales.contract_amendment", "name": "合同变更"},
        steps=[{"approver_kind": "role", "role": Role.objects.get(code="sales_manager")}],
    )


def amend_post(contract, product, quantity, **extra) -> dict:
    existing = contract.lines.get()
    data = {
        "version": contract.version,
        "title": contract.title,
        "signed_on": contract.signed_on.isoformat() if contract.signed_on else "",
        "reason": "客户追加两台",
    } | lines_post((1, product, quantity, {"id": existing.pk}))
    return data | extra


def test_active_contract_edit_is_refused_and_amended_instead(org, client_for, product):
    amendment_rule(org)
    contract = active_contract(org, org.sales1, product, quantity="10")
    client = client_for(org.sales1)
    response = client.get(reverse("sales:contract_edit", args=[contract.pk]))
    assert response.status_code == 302
    page = client.get(contract.get_absolute_url()).content.decode()
    assert "Amend" in page and "Create an order" in page
    url = reverse("sales:contract_amend", args=[contract.pk])
    page = client.get(url).content.decode()
    assert 'name="line-1-id"' in page and 'name="line-1-quantity" value="10"' in page
    response = client.post(url, amend_post(contract, product, "12", reason=""))
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert not ContractAmendment.objects.exists()
    response = client.post(url, amend_post(contract, product, "12"))
    assert response.status_code == 302
    amendment = ContractAmendment.objects.get()
    assert amendment.status == AmendmentStatus.PENDING
    assert amendment.total_after == Decimal("1356.00")
    page = client.get(amendment.get_absolute_url()).content.decode()
    assert "客户追加两台" in page and "¥1,130.00" in page and "¥1,356.00" in page
    assert "approval-panel" in page
    assert client_for(org.sales3).get(amendment.get_absolute_url()).status_code == 404
    assert client_for(no_sales_role(org.hr)).get(amendment.get_absolute_url()).status_code == 403
    # While it waits, the contract says so and offers no second amendment.
    page = client.get(contract.get_absolute_url()).content.decode()
    assert url not in page and amendment.get_absolute_url() in page
    assert client_for(org.finance).get(url).status_code == 403


def test_amendment_without_a_rule_applies_at_once(org, client_for, product):
    contract = active_contract(org, org.sales1, product, quantity="10")
    url = reverse("sales:contract_amend", args=[contract.pk])
    response = client_for(org.sales1).post(url, amend_post(contract, product, "12", title="新标题"))
    assert response.status_code == 302
    contract.refresh_from_db()
    assert contract.title == "新标题" and contract.total_amount == Decimal("1356.00")
    assert ContractAmendment.objects.get().status == AmendmentStatus.APPLIED


def test_amendment_that_changes_nothing_is_refused(org, client_for, product):
    contract = active_contract(org, org.sales1, product)
    data = amend_post(contract, product, "10", reason="无变化")
    response = client_for(org.sales1).post(
        reverse("sales:contract_amend", args=[contract.pk]), data
    )
    assert response.status_code == 400 and "changes nothing" in response.content.decode()
    assert not ContractAmendment.objects.exists()


def test_amendment_cannot_cut_below_what_was_ordered(org, client_for, product):
    contract = active_contract(org, org.sales1, product, quantity="10")
    services.order_create_from_contract(
        actor=org.sales1,
        contract=contract,
        lines=[{"contract_line": contract.lines.get(), "quantity": 6}],
    )
    data = amend_post(contract, product, "5", reason="减少")
    response = client_for(org.sales1).post(
        reverse("sales:contract_amend", args=[contract.pk]), data
    )
    assert response.status_code == 400 and "already ordered" in response.content.decode()
    assert not ContractAmendment.objects.exists()


def test_contract_terminate_needs_a_reason(org, client_for, product):
    contract = active_contract(org, org.sales1, product)
    client = client_for(org.sales1)
    url = reverse("sales:contract_action", args=[contract.pk, "terminate"])
    response = client.post(url, {"version": contract.version, "reason": "  "})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Say why the contract is terminated" in text and "data-kehu-open" in text
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.ACTIVE
    assert client.post(url, {"version": contract.version, "reason": "客户破产"}).status_code == 302
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.TERMINATED


def test_contract_complete(org, client_for, product):
    contract = active_contract(org, org.sales1, product)
    url = reverse("sales:contract_action", args=[contract.pk, "complete"])
    assert client_for(org.finance).post(url, {"version": contract.version}).status_code == 403
    assert client_for(org.sales3).post(url, {"version": contract.version}).status_code == 404
    assert client_for(org.sales1).post(url, {"version": contract.version}).status_code == 302
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.COMPLETED


def test_contract_detail_query_count_and_scope(org, client_for, product):
    small = active_contract(org, org.sales1, product, quantity="2")
    big = active_contract(org, org.sales1, product, quantity="20")
    for _ in range(4):
        order = services.order_create_from_contract(
            actor=org.sales1,
            contract=big,
            lines=[{"contract_line": big.lines.get(), "quantity": 1}],
        )
        services.order_confirm(actor=org.sales1, order=order)
    client = client_for(org.salesmgr1)
    assert queries(client, big.get_absolute_url()) == queries(client, small.get_absolute_url())
    # The finance panel of a contract in force reads its ledger, plan and documents.
    assert queries(client, big.get_absolute_url()) <= 40
    assert client_for(org.sales3).get(big.get_absolute_url()).status_code == 404
    assert client_for(no_sales_role(org.hr)).get(big.get_absolute_url()).status_code == 403


def test_order_from_contract(org, client_for, product):
    contract = active_contract(org, org.sales1, product, quantity="10")
    client = client_for(org.sales1)
    url = reverse("sales:contract_order_create", args=[contract.pk])
    page = client.get(url).content.decode()
    contract_line = contract.lines.get()
    assert f'name="qty-{contract_line.pk}"' in page and 'value="10"' in page
    data = {"title": "第一批", "order_date": "2026-03-02", f"qty-{contract_line.pk}": "11"}
    response = client.post(url, data)
    assert response.status_code == 400 and not Order.objects.exists()
    data[f"qty-{contract_line.pk}"] = "4"
    response = client.post(url, data)
    order = Order.objects.get()
    assert response["Location"] == order.get_absolute_url()
    assert order.contract == contract and order.total_amount == Decimal("452.00")
    page = client.get(url).content.decode()
    assert 'value="6"' in page  # what is left
    assert client_for(org.sales3).get(url).status_code == 404
    assert client_for(org.finance).get(url).status_code == 403
    # Editing the order: its quantity may grow up to what the contract leaves.
    edit = reverse("sales:order_edit", args=[order.pk])
    page = client.get(edit).content.decode()
    assert 'value="4"' in page and 'max="10"' in page
    response = client.post(
        edit,
        {
            "version": order.version,
            "title": "第一批",
            "order_date": "2026-03-02",
            f"qty-{contract_line.pk}": "7",
        },
    )
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).lines.get().quantity == Decimal("7")


def test_draft_contract_cannot_be_ordered(org, client_for, product):
    contract = contract_for(org.sales1)
    response = client_for(org.sales1).get(
        reverse("sales:contract_order_create", args=[contract.pk])
    )
    assert response.status_code == 302


def test_contract_attachment(org, client_for, product, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    contract = contract_for(org.sales1)
    url = reverse("sales:contract_attach", args=[contract.pk])
    client = client_for(org.sales1)
    scan = io.BytesIO(b"%PDF-1.4\n% signed scan\n")
    scan.name = "签字版.pdf"
    response = client.post(url, {"file": scan})
    assert response.status_code == 302
    assert Attachment.objects.get().original_name == "签字版.pdf"
    assert "签字版.pdf" in client.get(contract.get_absolute_url()).content.decode()
    fake = io.BytesIO(b"not a pdf")
    fake.name = "fake.pdf"
    response = client.post(url, {"file": fake})
    assert response.status_code == 400 and "not a valid" in response.content.decode()
    assert Attachment.objects.count() == 1
    scan.seek(0)
    assert client_for(org.sales3).post(url, {"file": scan}).status_code == 404
    scan.seek(0)
    assert client_for(org.finance).post(url, {"file": scan}).status_code == 403
    assert Attachment.objects.count() == 1


@pytest.mark.skipif(not HAS_PDF, reason="kehu.sales.pdf not installed yet")
def test_contract_pdf(org, client_for, product):
    contract = contract_for(org.sales1)
    url = reverse("sales:contract_pdf", args=[contract.pk])
    response = client_for(org.sales1).get(url, {"lang": "zh-hans"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert f'filename="{contract.number}.pdf"' in response["Content-Disposition"]
    assert client_for(org.sales3).get(url).status_code == 404


# --- orders ---------------------------------------------------------------------------------


def test_standalone_order_created_confirmed_shipped(org, client_for, customer, product):
    client = client_for(org.sales1)
    data = {
        "customer": customer.pk,
        "title": "样机",
        "currency": "CNY",
        "order_date": "2026-03-01",
    } | lines_post((1, product, "3"))
    response = client.post(reverse("sales:order_create"), data)
    order = Order.objects.get()
    assert response["Location"] == order.get_absolute_url()
    url = reverse("sales:order_action", args=[order.pk, "confirm"])
    assert client.post(url, {"version": order.version}).status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    # Shipping is the warehouse's: sales1 may not, the warehouse may.
    ship = reverse("sales:order_ship", args=[order.pk])
    assert client.get(ship).status_code == 403
    warehouse = client_for(org.warehouse)
    page = warehouse.get(ship).content.decode()
    order_line = order.lines.get()
    assert f'name="qty-{order_line.pk}"' in page
    response = warehouse.post(
        ship,
        {
            f"qty-{order_line.pk}": "2",
            "warehouse": order.warehouse_id or warehouse_default_ensure().pk,
            "shipped_on": "2026-03-03",
            "carrier": "顺丰",
            "tracking_number": "SF100",
        },
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED
    page = warehouse.get(order.get_absolute_url()).content.decode()
    assert "SF100" in page
    product.refresh_from_db()
    assert product.stock_quantity == Decimal("98")


def test_ship_too_much_or_nothing_writes_nothing(org, client_for, product):
    order = confirmed_order(org.sales1, product, "3")
    order_line = order.lines.get()
    ship = reverse("sales:order_ship", args=[order.pk])
    warehouse = client_for(org.warehouse)
    base = {"warehouse": warehouse_default_ensure().pk, "shipped_on": "2026-03-03"}
    response = warehouse.post(ship, base | {f"qty-{order_line.pk}": "4"})
    assert response.status_code == 400
    response = warehouse.post(ship, base | {f"qty-{order_line.pk}": "0"})
    assert response.status_code == 400 and "at least one line" in response.content.decode()
    assert not Shipment.objects.exists()
    assert client_for(org.sales3).get(ship).status_code == 403  # not the warehouse


def test_ship_refused_out_of_scope_and_short_stock(org, client_for, product):
    scarce = ProductFactory(list_price=Decimal("10.00"))
    order = confirmed_order(org.sales1, scarce, "3")
    ship = reverse("sales:order_ship", args=[order.pk])
    data = {
        f"qty-{order.lines.get().pk}": "3",
        "warehouse": warehouse_default_ensure().pk,
        "shipped_on": "2026-03-03",
    }
    response = client_for(org.warehouse).post(ship, data)
    assert response.status_code == 400
    assert not Shipment.objects.exists()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CONFIRMED
    # Only people with sales.view reach the order at all.
    assert client_for(org.hr).get(ship).status_code == 403


def test_return_and_cancel(org, client_for, product):
    order = confirmed_order(org.sales1, product, "5")
    services.order_ship(actor=org.warehouse, order=order)
    warehouse = client_for(org.warehouse)
    back = reverse("sales:order_return", args=[order.pk])
    order_line = order.lines.get()
    data = {
        f"qty-{order_line.pk}": "2",
        "warehouse": warehouse_default_ensure().pk,
        "returned_on": "2026-03-05",
        "reason": "",
    }
    response = warehouse.post(back, data)
    assert response.status_code == 400 and Shipment.objects.count() == 1
    data["reason"] = "两台外壳破损"
    assert warehouse.post(back, data).status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_SHIPPED
    # Goods are out: sales1 cannot cancel (the warehouse takes them back); the warehouse can.
    cancel = reverse("sales:order_action", args=[order.pk, "cancel"])
    response = client_for(org.sales1).post(cancel, {"version": order.version, "reason": "取消"})
    assert response.status_code == 403
    page = client_for(org.sales1).get(order.get_absolute_url()).content.decode()
    assert "cancel-dialog" not in page
    response = warehouse.post(cancel, {"version": order.version, "reason": ""})
    assert response.status_code == 400 and "Say why" in response.content.decode()
    assert (
        warehouse.post(cancel, {"version": order.version, "reason": "客户取消"}).status_code == 302
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    product.refresh_from_db()
    assert product.stock_quantity == Decimal("100")


def test_order_complete(org, client_for, product):
    order = confirmed_order(org.sales1, product, "1")
    services.order_ship(actor=org.warehouse, order=order)
    order.refresh_from_db()
    url = reverse("sales:order_action", args=[order.pk, "complete"])
    assert client_for(org.sales3).post(url, {"version": order.version}).status_code == 404
    assert client_for(org.sales1).post(url, {"version": order.version}).status_code == 302
    assert Order.objects.get(pk=order.pk).status == OrderStatus.COMPLETED


def test_order_detail_query_count_and_scope(org, client_for, product):
    small = confirmed_order(org.sales1, product, "1")
    services.order_ship(actor=org.warehouse, order=small)
    big = order_for(org.sales1, lines=[line(product, "3") for _ in range(8)])
    big = services.order_confirm(actor=org.sales1, order=big)
    for order_line in big.lines.all()[:4]:
        services.order_ship(actor=org.warehouse, order=big, quantities={order_line.pk: "1"})
    client = client_for(org.warehouse)
    assert queries(client, big.get_absolute_url()) == queries(client, small.get_absolute_url())
    assert queries(client, big.get_absolute_url()) <= 16
    assert client_for(org.sales3).get(big.get_absolute_url()).status_code == 404
    page = client_for(org.warehouse).get(big.get_absolute_url()).content.decode()
    # The warehouse sees the customer's name without a link into the customers module.
    assert big.customer.get_absolute_url() not in page and big.customer.name in page


# --- other modules' pages -------------------------------------------------------------------


def test_customer_360_lists_the_customers_documents(org, client_for, customer, product):
    quote = quote_for(org.sales1, customer=customer, lines=[line(product)])
    contract = contract_for(org.sales1, customer=customer)
    order = order_for(org.sales1, customer=customer, lines=[line(product)])
    client = client_for(org.sales1)
    url = customer.get_absolute_url()
    page = client.get(url).content.decode()
    for document in (quote, contract, order):
        assert document.number in page and document.get_absolute_url() in page
    assert f"{reverse('sales:quote_create')}?customer={customer.pk}" in page
    few = queries(client, url)
    for _ in range(5):
        quote_for(org.sales1, customer=customer, lines=[line(product)])
        order_for(org.sales1, customer=customer, lines=[line(product)])
    assert queries(client, url) == few
    # Someone who may see the customer but not sales documents sees no sales section.
    assert "sales-documents" not in client_for(no_sales_role(org.sales2)).get(url).content.decode()


def test_opportunity_page_lists_its_quotes_and_contracts(org, client_for, customer, product):
    from kehu.customers.models import Opportunity, PipelineStage

    opportunity = Opportunity.objects.create(
        customer=customer,
        title="年度采购",
        amount=Decimal("1000"),
        stage=PipelineStage.objects.filter(is_active=True).first(),
        owner=org.sales1,
        department=org.sales1.department,
    )
    quote = quote_for(org.sales1, customer=customer, lines=[line(product)], opportunity=opportunity)
    contract = contract_for(org.sales1, customer=customer, opportunity=opportunity)
    url = reverse("customers:opportunity_edit", args=[opportunity.pk])
    page = client_for(org.sales1).get(url).content.decode()
    assert quote.number in page and contract.number in page
    assert f"{reverse('sales:quote_create')}?opportunity={opportunity.pk}" in page


def test_global_search_finds_documents_in_scope_only(org, client_for, product):
    mine = quote_for(org.sales1, lines=[line(product)], title="华东项目报价")
    other = contract_for(org.sales3, title="华东项目合同")
    client = client_for(org.sales1)
    page = client.get(reverse("search"), {"q": mine.number}).content.decode()
    assert mine.get_absolute_url() in page
    page = client.get(reverse("search"), {"q": "华东项目"}).content.decode()
    assert mine.get_absolute_url() in page and other.get_absolute_url() not in page
    page = client_for(org.manager).get(reverse("search"), {"q": "华东项目"}).content.decode()
    assert other.get_absolute_url() in page
    page = client_for(org.hr).get(reverse("search"), {"q": "华东项目"}).content.decode()
    assert mine.get_absolute_url() not in page


def test_pages_send_anonymous_users_to_log_in(client, org, product):
    quote = quote_for(org.sales1, lines=[line(product)])
    for url in (
        reverse("sales:quote_list"),
        quote.get_absolute_url(),
        reverse("sales:quote_create"),
        reverse("sales:product_options"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_submit_refused_is_shown_in_its_dialog(org, client_for, product):
    contract = contract_for(org.sales1, lines=[line(product, "1", unit_price="0.00")])
    url = reverse("sales:contract_action", args=[contract.pk, "submit"])
    response = client_for(org.sales1).post(url, {"version": contract.version, "comment": "请批"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "amount above 0" in text and 'id="submit-dialog"' in text and "data-kehu-open" in text
    assert "请批" in text  # what was typed comes back
    assert Contract.objects.get(pk=contract.pk).status == ContractStatus.DRAFT
    assert not ApprovalRequest.objects.exists()


def test_standalone_order_edited_with_the_line_editor(org, client_for, customer, product):
    order = order_for(org.sales1, customer=customer, lines=[line(product, "2")])
    client = client_for(org.sales1)
    url = reverse("sales:order_edit", args=[order.pk])
    page = client.get(url).content.decode()
    assert 'id="line-editor"' in page and 'name="line-1-quantity" value="2"' in page
    data = {
        "version": order.version,
        "customer": customer.pk,
        "title": "改单",
        "currency": "CNY",
        "order_date": order.order_date.isoformat(),
    } | lines_post((1, product, "3"), (2, product, "1", {"unit_price": "50.00"}))
    assert client.post(url, data).status_code == 302
    order.refresh_from_db()
    assert order.title == "改单" and order.total_amount == Decimal("395.50")
    services.order_confirm(actor=org.sales1, order=order)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == order.get_absolute_url()


def test_return_page_only_when_goods_are_out(org, client_for, product):
    order = confirmed_order(org.sales1, product, "2")
    response = client_for(org.warehouse).get(reverse("sales:order_return", args=[order.pk]))
    assert response.status_code == 302
    assert (
        client_for(org.sales1).get(reverse("sales:order_return", args=[order.pk])).status_code
        == 403
    )


def test_totals_preview_ignores_an_unknown_currency(org, client_for, product):
    data = lines_post((1, product, "1")) | {"currency": "<b>XX</b>"}
    page = client_for(org.sales1).post(reverse("sales:lines_preview"), data).content.decode()
    assert "¥113.00" in page and "XX" not in page


def test_contract_list_rows_read_only_what_the_page_shows(org, client_for, product):
    """One query for the rows, joining only the customer and the owner (the selector's
    contact, opportunity and quote joins are for exports and the API), with links, status
    badges and amounts as the cell templates write them."""
    contract = active_contract(org, org.sales1, product, quantity="1")
    client = client_for(org.sales1)
    url = reverse("sales:contract_list")
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    html = response.content.decode()
    rows = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith('SELECT "sales_contract"."id", "sales_contract"."number"')
    ]
    assert len(rows) == 1
    assert "customers_contact" not in rows[0] and "sales_quote" not in rows[0]
    assert not any('"system_role"' in q["sql"] for q in ctx.captured_queries)
    assert f'<a href="/sales/contracts/{contract.pk}/" class="text-nowrap fw-semibold">' in html
    assert f'data-status="{contract.status}"' in html
    assert len(ctx.captured_queries) <= 11  # session, user, count, rows, filters, shell
