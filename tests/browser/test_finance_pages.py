"""Finance pages in a real browser: a salesperson registers a payment (twice-clicked, one
recorded), finance confirms it; the plan editor splits by percentage; screenshots of the
payment form, a payment, the plan editor, aging and reconciliation."""

import datetime
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from kehu.finance import services
from kehu.finance.models import Invoice, Payment, PaymentStatus
from kehu.system.models import DictionaryItem
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_shell import log_in, switch_language
from tests.customers.factories import CustomerFactory
from tests.finance.factories import active_contract, approve_all
from tests.sales.factories import line

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = datetime.date.today()


def days(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


def _contract(org, owner, customer_name, title, amount, plan):
    customer = CustomerFactory(name=customer_name, owner=owner)
    contract = active_contract(
        org,
        owner,
        amount=amount,
        customer=customer,
        title=title,
        lines=[line(quantity="1", unit_price=amount, tax_rate=Decimal("0"))],
    )
    if plan:
        services.receivable_plan_set(
            actor=owner,
            contract=contract,
            instalments=[
                {"due_date": days(d), "amount": Decimal(a), "note": n} for d, a, n in plan
            ],
        )
    return contract


def _pay(contract, amount, *, confirm_by=None, received_on=None, method="bank_transfer"):
    payment, _ = services.payment_register(
        actor=contract.owner,
        data={
            "contract": contract,
            "amount": Decimal(amount),
            "received_on": received_on or TODAY,
            "method": method,
            "account": "招商银行 上海分行",
            "reference": f"TX{contract.pk:04d}{amount[:3]}",
        },
    )
    if confirm_by is not None:
        payment = services.payment_confirm(actor=confirm_by, payment=payment)
    return payment


@pytest.fixture
def books(org):
    """Contracts in two departments with plans, money received, invoices and claims."""
    org.sales1_dept.manager = org.salesmgr1
    org.sales1_dept.save()
    org.sales2_dept.manager = org.salesdirector
    org.sales2_dept.save()
    main = _contract(
        org,
        org.sales1,
        "上海明达机械有限公司",
        "数控机床年度采购合同",
        "86000.00",
        [
            (-75, "25800.00", "预付款 30%"),
            (-20, "34400.00", "到货款 40%"),
            (40, "25800.00", "验收款 30%"),
        ],
    )
    second = _contract(
        org,
        org.sales1,
        "杭州云杉智能科技有限公司",
        "MES 系统实施合同",
        "48000.00",
        [(-45, "24000.00", "首付款"), (15, "24000.00", "尾款")],
    )
    third = _contract(
        org,
        org.sales3,
        "苏州华瑞电子有限公司",
        "检测设备供货合同",
        "32500.00",
        [(-100, "10000.00", ""), (-50, "12500.00", ""), (5, "10000.00", "")],
    )
    _contract(org, org.sales2, "南京恒通物流有限公司", "仓储设备租赁合同", "18000.00", [])
    _pay(main, "25800.00", confirm_by=org.finance, received_on=days(-70))
    _pay(main, "12000.00", confirm_by=org.finance, received_on=days(-10))
    _pay(
        second, "24000.00", confirm_by=org.finance, received_on=days(-40), method="acceptance_bill"
    )
    _pay(third, "10000.00", confirm_by=org.finance, received_on=days(-95))
    invoice = services.invoice_request(
        actor=org.sales1,
        data={
            "contract": main,
            "amount": Decimal("25800.00"),
            "title": "上海明达机械有限公司",
            "tax_number": "91310115MA1K3YJ12X",
        },
    )
    approve_all(invoice, org)
    category = DictionaryItem.objects.get(dictionary__code="expense_category", value="travel")
    claim = services.expense_create(
        actor=org.sales1,
        data={
            "category": category,
            "amount": Decimal("1280.00"),
            "spent_on": days(-3),
            "description": "上海客户现场验收 高铁往返及住宿",
            "contract": main,
        },
    )
    services.expense_submit(actor=org.sales1, claim=claim)
    approve_all(claim, org)
    return {"main": main, "second": second, "third": third}


def _language(page: Page, code: str) -> None:
    switch_language(page.locator("header"), code)
    expect(page.locator("html")).to_have_attribute("lang", code)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_register_a_payment_and_finance_confirms_it(org, books, new_page, screenshot, language):
    main = books["main"]
    page = new_page(DESKTOP)
    log_in(page, "sales1")
    if language == "en":
        _language(page, "en")
    page.goto("/finance/payments/new/")
    # Choosing the contract fetches its instalments and money (htmx).
    page.select_option("#id_contract", str(main.pk))
    expect(page.locator("#payment-contract-info")).to_be_visible()
    instalment = main.instalments.order_by("due_date")[1]
    page.select_option("#id_instalment", str(instalment.pk))
    page.fill("#id_amount", "22400.00")
    page.fill("#id_reference", "CMB20260311-0087")
    page.fill("#id_note", "到货款，客户分两次支付")
    screenshot(page, f"finance-payment-form-{language}")
    # Two quick clicks (and the page's own double-submit guard): one payment.
    submit = page.locator("#form-container button[type=submit]")
    submit.dblclick()
    expect(page.locator("h1")).to_contain_text("HK-")
    assert Payment.objects.filter(amount=Decimal("22400.00")).count() == 1
    payment = Payment.objects.get(amount=Decimal("22400.00"))
    assert payment.status == PaymentStatus.PENDING and payment.instalment == instalment
    screenshot(page, f"finance-payment-pending-{language}")

    finance = new_page(DESKTOP)
    log_in(finance, "finance")
    if language == "en":
        _language(finance, "en")
    finance.goto(payment.get_absolute_url())
    finance.locator("#payment-actions button.btn-success").click()
    expect(finance.locator(".kehu-status[data-status=confirmed]").first).to_be_visible()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CONFIRMED
    screenshot(finance, f"finance-payment-detail-{language}")
    # Finance issues the approved invoice of the contract.
    invoice = Invoice.objects.get(contract=main)
    finance.goto(invoice.get_absolute_url())
    finance.fill("#id_issue-invoice_number", "No.31000212")
    finance.locator("#issue-panel button[type=submit]").click()
    expect(finance.locator(".kehu-status[data-status=issued]").first).to_be_visible()
    screenshot(finance, f"finance-invoice-issued-{language}")
    finance.goto(f"/finance/plans/{main.pk}/")
    expect(finance.locator("[data-figure=received]")).to_contain_text("60,200.00")
    expect(finance.locator("[data-figure=invoiced]")).to_contain_text("25,800.00")
    screenshot(finance, f"finance-plan-after-payment-{language}")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_plan_editor_split_and_save(org, books, new_page, screenshot, language):
    contract = _contract(org, org.sales1, "宁波海天塑机有限公司", "注塑机采购合同", "128000.00", [])
    page = new_page(DESKTOP)
    log_in(page, "sales1")
    if language == "en":
        _language(page, "en")
    page.goto(f"/finance/plans/{contract.pk}/")
    page.fill("#plan-percentages", "30/40/30")
    page.locator("#plan-editor button[value=split]").click()
    expect(page.locator("#plan-editor .kehu-plan-row")).to_have_count(3)
    expect(page.locator("#plan-difference")).to_have_class(
        "kehu-plan-difference is-even", timeout=5000
    )
    dates = page.locator("#plan-editor input[name=due_date]")
    for index, offset in enumerate((10, 70, 160)):
        dates.nth(index).fill(days(offset).isoformat())
    # Typing an amount updates the difference from the server.
    amounts = page.locator("#plan-editor input[name=amount]")
    amounts.nth(2).fill("38000.00")
    expect(page.locator("#plan-difference")).to_have_class("kehu-plan-difference is-short")
    screenshot(page, f"finance-plan-editor-{language}")
    amounts.nth(2).fill("38400.00")
    expect(page.locator("#plan-difference")).to_have_class("kehu-plan-difference is-even")
    page.locator("#plan-editor button[value=save]").click()
    expect(page.locator("#plan-table tbody tr")).to_have_count(3)
    assert [i.amount for i in contract.instalments.order_by("sequence")] == [
        Decimal("38400.00"),
        Decimal("51200.00"),
        Decimal("38400.00"),
    ]
    screenshot(page, f"finance-plan-saved-{language}")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_report_pages_screenshots(org, books, new_page, screenshot, language):
    page = new_page(DESKTOP)
    log_in(page, "finance")
    if language == "en":
        _language(page, "en")
    for name, url in [
        ("aging", "/finance/aging/"),
        ("aging-owner", "/finance/aging/?by=owner"),
        ("reconciliation", "/finance/reconciliation/"),
        ("reports", f"/finance/reports/?start={days(-120).isoformat()}&end={TODAY.isoformat()}"),
        ("payments", "/finance/payments/"),
        ("invoice", f"/finance/invoices/{books['main'].pk and _first_invoice()}/"),
        ("expenses", "/finance/expenses/"),
    ]:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        expect(page.locator("h1")).to_be_visible()
        if name == "reports":
            expect(page.locator("#collections-chart svg")).to_be_visible()
        screenshot(page, f"finance-{name}-{language}")
    expect(page.locator("body")).to_contain_text("BX-")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_request_forms_screenshots(org, books, new_page, screenshot, language, tmp_path):
    from PIL import Image

    main = books["main"]
    receipt = tmp_path / "出租车发票.png"
    Image.new("RGB", (40, 30), "white").save(receipt)
    page = new_page(DESKTOP)
    log_in(page, "sales1")
    if language == "en":
        _language(page, "en")
    # The contract chooser searches the server as one types (htmx), in the user's scope.
    page.goto("/finance/invoices/new/")
    page.fill(".kehu-search-select input[type=search]", "MES")
    expect(page.locator("#id_contract option")).to_have_count(2)  # "choose" and the match
    page.select_option("#id_contract", str(books["second"].pk))
    expect(page.locator("#invoice-contract-info")).to_contain_text("杭州云杉")
    expect(page.locator("#id_title")).to_have_value("杭州云杉智能科技有限公司")
    expect(page.locator("#id_amount")).to_have_value("48000.00")
    page.fill("#id_tax_number", "91330106MA2B1C3D4E")
    screenshot(page, f"finance-invoice-form-{language}")
    page.goto("/finance/expenses/new/")
    page.select_option("#id_category", label="交通费" if language == "zh-hans" else "Transport")
    page.fill("#id_amount", "356.00")
    page.fill("#id_description", "客户拜访 出租车及午餐")
    page.select_option("#id_contract", str(main.pk))
    page.set_input_files("#id_receipts", str(receipt))
    screenshot(page, f"finance-expense-form-{language}")
    page.locator("#form-container button[value=submit]").click()
    expect(page.locator("h1")).to_contain_text("BX-")
    expect(page.locator("#approval-panel")).to_contain_text("salesmgr1")
    expect(page.locator("#receipts")).to_contain_text("出租车发票.png")
    screenshot(page, f"finance-expense-detail-{language}")
    payment = Payment.objects.filter(contract=main).order_by("id").first()
    page.goto(payment.get_absolute_url())
    page.locator("#payment-actions a[href$='/refund/']").click()
    expect(page.locator("#id_amount")).to_be_visible()
    screenshot(page, f"finance-refund-form-{language}")


def _first_invoice() -> int:
    from kehu.finance.models import Invoice

    return Invoice.objects.order_by("id").values_list("id", flat=True)[0]


def test_phone_layout(org, books, new_page, screenshot):
    page = new_page(PHONE)
    log_in(page, "finance")
    for name, url in [
        ("aging", "/finance/aging/"),
        ("plan", f"/finance/plans/{books['main'].pk}/"),
        ("payments", "/finance/payments/"),
    ]:
        page.goto(url)
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, f"finance-{name}-phone")
