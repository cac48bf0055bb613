"""A deal in a real browser: quote → contract → two approvals → order → shipment.

sales1 writes a quote with two lines through the line editor (products looked up as they
type, totals asked of the server), sends it and turns it into a contract over ¥100,000;
the sales manager and then the general manager approve it from their inboxes; sales1
orders everything and confirms; the warehouse ships it. Screenshots at every step, on a
desktop and on a phone, in Chinese and English.
"""

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS
from tests.browser.test_shell import log_in, switch_language

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalogue(org):
    """Two products in stock and sales1's customer with a contact and an opportunity."""
    from kehu.customers.models import Contact, Opportunity, PipelineStage
    from kehu.products.services import product_create, stock_movement_post, warehouse_default_ensure
    from kehu.system.models import DictionaryItem
    from tests.customers.factories import CustomerFactory

    warehouse_default_ensure()
    piece = DictionaryItem.objects.get(dictionary__code="product_unit", value="piece")
    printer = product_create(
        actor=org.admin,
        data={
            "code": "DY-0001",
            "name": "惠普黑白激光打印机",
            "specification": "A4 22页/分钟",
            "unit": piece,
            "list_price": Decimal("1999.00"),
            "cost_price": Decimal("1450.00"),
        },
    )
    server = product_create(
        actor=org.admin,
        data={
            "code": "FW-0100",
            "name": "机架式服务器",
            "specification": "2U 双路",
            "unit": piece,
            "list_price": Decimal("9800.00"),
            "cost_price": Decimal("7600.00"),
        },
    )
    for index in range(3):
        product_create(
            actor=org.admin,
            data={
                "code": f"HC-00{index}",
                "name": f"硒鼓{index}号",
                "unit": piece,
                "list_price": Decimal("299.00"),
            },
        )
    stock_movement_post(actor=org.warehouse, product=printer, kind="in", quantity=100)
    stock_movement_post(actor=org.warehouse, product=server, kind="in", quantity=20)
    customer = CustomerFactory(owner=org.sales1, name="华东精密机械有限公司")
    Contact.objects.create(customer=customer, name="王建国", title="采购经理", is_primary=True)
    stage = PipelineStage.objects.filter(is_active=True).order_by("sort_order").first()
    Opportunity.objects.create(
        customer=customer,
        title="办公设备更新",
        amount=Decimal("150000"),
        stage=stage,
        owner=org.sales1,
        department=org.sales1.department,
    )
    CustomerFactory(owner=org.sales3, name="华南物流集团")  # not sales1's: never offered
    return customer


def _log_in_english(page: Page, username: str) -> None:
    log_in(page, username)
    switch_language(page.locator("header"), "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def _pick(page: Page, field_id: str, typed: str, option_text: str, shot=None) -> None:
    search = page.locator(f"#{field_id}")
    search.click()
    search.fill(typed)
    # The server's answer to what was typed (not the list shown on focus) comes first.
    expect(page.locator(f"#{field_id}-results [data-picker-option]").first).to_contain_text(
        option_text
    )
    option = page.locator(f"#{field_id}-results [data-picker-option]", has_text=option_text)
    if shot is not None:
        shot()
    option.first.click()
    expect(page.locator(f"#{field_id}-results")).to_be_empty()


def _approve_from_inbox(page: Page, title: str) -> None:
    page.goto(reverse("approvals:inbox"))
    row = page.locator("#list-results tr", has_text=title)
    expect(row).to_be_visible()
    row.get_by_role("link").first.click()
    approve = page.locator("button[name=decision][value=approve]")
    approve.click()
    expect(approve).to_have_count(0)


def test_quote_to_shipment(org, catalogue, new_page, screenshot):
    from kehu.sales.models import Contract, ContractStatus, Order, OrderStatus, Quote

    page = new_page(DESKTOP)
    _log_in_english(page, "sales1")

    # A quote with two lines: products found by code and by pinyin initials.
    page.goto("/sales/quotes/")
    page.get_by_role("link", name="New").click()
    expect(page.locator("h1")).to_have_text("New quote")
    _pick(page, "id_customer", "华东", "华东精密机械")
    expect(page.locator("#id_contact")).to_contain_text("王建国")
    page.select_option("#id_contact", label="王建国")
    page.select_option("#id_opportunity", label="办公设备更新")
    page.fill("#id_title", "办公设备更新报价")
    _pick(page, "id_line-1-product", "DY-0", "惠普黑白激光打印机")
    expect(page.locator("#id_line-1-unit_price")).to_have_value("1999.00")
    page.fill("#id_line-1-quantity", "40")
    page.locator("[data-line-add]").click()
    _pick(
        page,
        "id_line-2-product",
        "jsf",
        "机架式服务器",
        shot=lambda: page.screenshot(
            path=str(SCREENSHOTS / "sales-01a-product-search-en-desktop.png")
        ),
    )
    page.fill("#id_line-2-quantity", "5")
    page.fill("#id_line-2-discount_rate", "5")
    page.locator("#id_line-2-discount_rate").blur()
    # 40 × 1,999 + 5 × 9,800 × 95% = 126,510.00 before tax, 16,446.30 VAT.
    expect(page.locator("#total-amount")).to_have_text("¥142,956.30")
    expect(page.locator("#line-2-total")).to_have_text("¥52,601.50")
    screenshot(page, "sales-01-quote-form-en-desktop")
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".kehu-status")).to_have_text("Draft")
    quote = Quote.objects.get(title="办公设备更新报价")
    assert quote.total_amount == Decimal("142956.30")
    assert quote.lines.count() == 2
    screenshot(page, "sales-02-quote-draft-en-desktop")
    page.get_by_role("button", name="Mark as sent").click()
    expect(page.locator(".kehu-status")).to_have_text("Sent")
    screenshot(page, "sales-03-quote-sent-en-desktop")

    # One step: the quote becomes a draft contract with the same lines.
    page.get_by_role("button", name="Convert to contract").click()
    expect(page).to_have_url(re.compile(r"/sales/contracts/\d+/$"))
    contract = Contract.objects.get(quote=quote)
    expect(page.locator(".kehu-status").first).to_have_text("Draft")
    expect(page.locator("#total-amount")).to_have_text("¥142,956.30")
    screenshot(page, "sales-04-contract-draft-en-desktop")
    page.get_by_role("button", name="Submit for approval").click()
    dialog = page.locator("#submit-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("textarea").fill("客户要求月底前签约")
    screenshot(page, "sales-05-contract-submit-dialog-en-desktop")
    dialog.get_by_role("button", name="Submit").click()
    expect(page.locator(".kehu-status").first).to_have_text("Pending approval")
    expect(page.locator("#approval-panel")).to_contain_text("销售经理")
    screenshot(page, "sales-06-contract-pending-en-desktop")

    # Over ¥100,000: the sales manager, then the general manager.
    manager_page = new_page(DESKTOP)
    _log_in_english(manager_page, "salesmgr1")
    manager_page.goto(reverse("approvals:inbox"))
    screenshot(manager_page, "sales-07-inbox-salesmgr1-en-desktop")
    _approve_from_inbox(manager_page, contract.number)
    screenshot(manager_page, "sales-08-approved-step1-en-desktop")
    contract.refresh_from_db()
    assert contract.status == ContractStatus.PENDING

    gm_page = new_page(DESKTOP)
    log_in(gm_page, "manager")
    _approve_from_inbox(gm_page, contract.number)
    screenshot(gm_page, "sales-09-approved-step2-zh-desktop")
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE

    # sales1 orders everything on the contract and confirms the order.
    page.goto(contract.get_absolute_url())
    expect(page.locator(".kehu-status").first).to_have_text("Active")
    screenshot(page, "sales-10-contract-active-en-desktop")
    page.get_by_role("link", name="Create an order").first.click()
    expect(page.locator("input[name^=qty-]")).to_have_count(2)
    page.fill("#id_ship_by", "2030-01-31")
    page.fill("#id_receiver_name", "王建国")
    page.fill("#id_shipping_address", "上海市浦东新区张江路 88 号")
    screenshot(page, "sales-11-order-from-contract-en-desktop")
    page.get_by_role("button", name="Create the order").click()
    expect(page.locator(".kehu-status").first).to_have_text("Pending")
    order = Order.objects.get(contract=contract)
    assert order.total_amount == contract.total_amount
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".kehu-status").first).to_have_text("Confirmed")
    screenshot(page, "sales-12-order-confirmed-en-desktop")

    # The warehouse ships it all.
    warehouse_page = new_page(DESKTOP)
    _log_in_english(warehouse_page, "warehouse")
    warehouse_page.goto(order.get_absolute_url())
    warehouse_page.locator("#document-actions a[href$='/ship/']").click()
    warehouse_page.fill("#id_carrier", "顺丰速运")
    warehouse_page.fill("#id_tracking_number", "SF1234567890")
    screenshot(warehouse_page, "sales-13-ship-form-en-desktop")
    warehouse_page.get_by_role("button", name="Ship goods").click()
    expect(warehouse_page.locator(".kehu-status").first).to_have_text("Shipped")
    expect(warehouse_page.locator("#shipments")).to_contain_text("SF1234567890")
    screenshot(warehouse_page, "sales-14-order-shipped-en-desktop")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    catalogue.refresh_from_db()

    # The same pages on a phone, in Chinese.
    phone = new_page(PHONE)
    log_in(phone, "sales1")
    for name, url in [
        ("quote-form", "/sales/quotes/new/"),
        ("quote", quote.get_absolute_url()),
        ("contract", contract.get_absolute_url()),
        ("order", order.get_absolute_url()),
        ("orders", "/sales/orders/"),
    ]:
        response = phone.goto(url)
        assert response is not None and response.status == 200, url
        screenshot(phone, f"sales-phone-{name}-zh")


def test_line_editor_on_a_phone(org, catalogue, new_page, screenshot):
    page = new_page(PHONE)
    log_in(page, "sales1")
    page.goto("/sales/quotes/new/")
    _pick(page, "id_customer", "hdjm", "华东精密机械")
    page.fill("#id_title", "手机上的报价")
    _pick(page, "id_line-1-product", "打印", "惠普黑白激光打印机")
    page.fill("#id_line-1-quantity", "2")
    page.locator("[data-line-add]").click()
    _pick(
        page,
        "id_line-2-product",
        "硒鼓1",
        "硒鼓1号",
        shot=lambda: page.screenshot(path=str(SCREENSHOTS / "sales-phone-product-search-zh.png")),
    )
    page.fill("#id_line-2-quantity", "10")
    page.locator("#id_line-2-quantity").blur()
    expect(page.locator("#total-amount")).to_have_text("¥7,896.44")
    screenshot(page, "sales-phone-line-editor-zh")
    # A line removed: the server's totals follow.
    page.locator("[data-line-remove]").nth(1).click()
    expect(page.locator("#total-amount")).to_have_text("¥4,517.74")
    # Saving without a title: the error is on the field, nothing is written.
    page.fill("#id_title", "")
    page.locator("button[type=submit]").last.click()
    expect(page.locator("#id_title.is-invalid")).to_be_visible()
    screenshot(page, "sales-phone-quote-error-zh")
    from kehu.sales.models import Quote

    assert not Quote.objects.exists()


@pytest.fixture
def demo(org):
    """The demo company's customers, catalogue and a year of sales in every status."""
    from kehu.customers.demo import demo_load as customers_demo
    from kehu.products.demo import demo_load as products_demo
    from kehu.sales.demo import demo_load as sales_demo

    users = {
        u.username: u
        for u in (
            org.sales1,
            org.sales2,
            org.sales3,
            org.salesmgr1,
            org.manager,
            org.warehouse,
        )
    }
    customers_demo(admin=org.admin, users=users)
    products_demo(admin=org.admin, users=users)
    counts = sales_demo(admin=org.admin, users=users)
    assert counts, "the sales demo loaded nothing"
    return counts


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_sales_pages_screenshots(org, demo, new_page, screenshot, language):
    from kehu.sales.models import Contract, ContractAmendment, Order, Quote

    page = new_page(DESKTOP)
    log_in(page, "salesmgr1")
    switch_language(page.locator("header"), language)
    expect(page.locator("html")).to_have_attribute("lang", language)
    short = "zh" if language == "zh-hans" else "en"
    mine = {"department": org.sales1_dept}  # salesmgr1's department
    contract = Contract.objects.filter(status="active", orders__isnull=False, **mine).first()
    order = Order.objects.filter(shipments__isnull=False, **mine).distinct().first()
    amendment = ContractAmendment.objects.filter(contract__department=org.sales1_dept).first()
    pages = [
        ("quotes", "/sales/quotes/"),
        ("contracts", "/sales/contracts/"),
        ("contracts-pending", "/sales/contracts/?status=pending"),
        ("orders", "/sales/orders/"),
        ("shipments", "/sales/shipments/"),
        ("quote", Quote.objects.filter(**mine).first().get_absolute_url()),
        ("contract", contract.get_absolute_url()),
        ("order", order.get_absolute_url()),
        ("customer-360", contract.customer.get_absolute_url()),
        ("contract-edit-form", "/sales/contracts/new/"),
        ("contract-amend", f"/sales/contracts/{contract.pk}/amend/"),
        ("contract-order", f"/sales/contracts/{contract.pk}/order/"),
    ]
    if amendment is not None:
        pages.append(("amendment", amendment.get_absolute_url()))
    for name, url in pages:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        expect(page.locator("h1").first).to_be_visible()
        screenshot(page, f"sales-pages-{name}-{short}-desktop")
    phone = new_page(PHONE)
    log_in(phone, "salesmgr1")
    for name, url in pages[:1] + pages[5:8]:
        phone.goto(url)
        screenshot(phone, f"sales-pages-{name}-{short}-phone")
