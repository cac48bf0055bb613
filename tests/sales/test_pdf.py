"""Printable contracts and quotes: rendered in both languages, read back with pypdf."""

import datetime
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from kehu.approvals import services as approvals
from kehu.approvals.models import ApprovalRequest
from kehu.core.words import amount_in_chinese_words, amount_in_english_words
from kehu.sales import services
from kehu.sales.pdf import contract_pdf, quote_pdf
from kehu.system.models import SystemSettings
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.products.factories import ProductFactory
from tests.sales.factories import contract_for, line, quote_for

pytestmark = pytest.mark.django_db

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _text(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    return [page.extract_text() for page in reader.pages]


def _flat(text: str) -> str:
    """Extracted text without line breaks or spaces: wrapped words join up again."""
    return re.sub(r"\s+", "", text)


@pytest.fixture
def company():
    SystemSettings.objects.update_or_create(
        pk=1,
        defaults={
            "company_name": "示例科技有限公司",
            "company_address": "浙江省杭州市西湖区文三路 90 号东部软件园 2 号楼 501 室",
            "company_phone": "0571-88886666",
            "company_tax_number": "91330106MA2B3C4D5E",
            "company_bank": "招商银行杭州高新支行 5719 0888 8810 001",
        },
    )


@pytest.fixture
def customer(org):
    customer = CustomerFactory(
        owner=org.sales1,
        name="杭州华信电子科技有限公司",
        province="浙江省",
        city="杭州市",
        district="滨江区",
        street="江南大道 3888 号",
    )
    ContactFactory(customer=customer, name="王建华", title="采购经理", is_primary=True)
    return customer


@pytest.fixture
def products():
    return [
        ProductFactory(code="BJ-0001", name="联想轻薄笔记本", specification="14英寸 i5 16G 512G"),
        ProductFactory(code="XS-0002", name="戴尔高清显示器", specification="27英寸 IPS 2K"),
        ProductFactory(
            code="FW-0001", name="现场实施服务", specification="工程师驻场", tax_rate=Decimal("6")
        ),
    ]


def _lines(products):
    laptop, monitor, service = products
    return [
        line(laptop, quantity="20", unit_price="5999.00", discount_rate=Decimal("5")),
        line(monitor, quantity="20", unit_price="1899.00"),
        line(service, quantity="16", unit_price="800.00", unit="小时"),
    ]


def _active_contract(org, customer, products):
    contract = contract_for(
        org.sales1,
        customer=customer,
        lines=_lines(products),
        title="2026 年度办公设备采购合同",
        contact=customer.contacts.get(),
        payment_terms=(
            "合同签订后 5 个工作日内支付 30% 预付款；货到验收合格后 30 日内支付余款 70%。"
        ),
        notes="交货地点：需方杭州总部。质保期：整机 3 年。",
        signed_on=datetime.date(2026, 3, 5),
        start_date=datetime.date(2026, 3, 10),
        end_date=datetime.date(2027, 3, 9),
    )
    services.contract_submit(actor=org.sales1, contract=contract)
    request = ApprovalRequest.objects.get(object_id=contract.pk, status="pending")
    approvals.approval_approve(actor=org.salesmgr1, request=request)
    request.refresh_from_db()
    if request.status == "pending":
        approvals.approval_approve(actor=org.manager, request=request)
    contract.refresh_from_db()
    return contract


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_contract_pdf_reads_back(org, company, customer, products, language):
    contract = _active_contract(org, customer, products)
    assert contract.status == "active"
    pdf = contract_pdf(contract=contract, language=language)
    assert pdf.startswith(b"%PDF-")
    pages = _text(pdf)
    text = _flat(" ".join(pages))
    for expected in [
        "示例科技有限公司",
        "杭州华信电子科技有限公司",
        "浙江省杭州市滨江区江南大道3888号",
        "王建华",
        "联想轻薄笔记本",
        "戴尔高清显示器",
        "现场实施服务",
        "BJ-0001",
        "小时",
        contract.number,
        f"{contract.total_amount:,.2f}",
        f"{contract.subtotal_amount:,.2f}",
        f"{contract.tax_amount:,.2f}",
        "91330106MA2B3C4D5E",
        "30%预付款",
    ]:
        assert _flat(expected) in text, expected
    english = _flat(amount_in_english_words(contract.total_amount))
    chinese = "人民币" + amount_in_chinese_words(contract.total_amount)
    assert english in text
    assert (chinese in text) == (language == "zh-hans")
    assert "1of1" in text or "1/1" in text or "第1页" in text


def test_contract_pdf_english_labels(org, company, customer, products):
    contract = _active_contract(org, customer, products)
    text = _text(contract_pdf(contract=contract, language="en"))[0]
    for label in ["Sales contract", "Seller", "Buyer", "Payment terms", "Page 1 of 1", "Total"]:
        assert label in text


def test_a_draft_carries_a_watermark_and_an_active_contract_none(org, company, customer, products):
    draft = contract_for(org.sales1, customer=customer, lines=_lines(products))
    assert "Draft" in _text(contract_pdf(contract=draft, language="en"))[0]
    active = _active_contract(org, customer, products)
    assert "Draft" not in _text(contract_pdf(contract=active, language="en"))[0]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_quote_pdf_reads_back(org, company, customer, products, language):
    quote = quote_for(
        org.sales1,
        customer=customer,
        lines=_lines(products),
        title="办公设备报价",
        terms="报价含税含运费，交货期为下单后 7 个工作日。",
    )
    pdf = quote_pdf(quote=quote, language=language)
    text = _flat(" ".join(_text(pdf)))
    for expected in [
        "杭州华信电子科技有限公司",
        "联想轻薄笔记本",
        quote.number,
        f"{quote.total_amount:,.2f}",
        "交货期为下单后7个工作日",
        _flat(amount_in_english_words(quote.total_amount)),
    ]:
        assert _flat(expected) in text, expected
    assert (("人民币" + amount_in_chinese_words(quote.total_amount)) in text) == (
        language == "zh-hans"
    )


def test_long_contract_flows_over_pages_with_numbers_and_repeated_header(org, company, customer):
    products = [ProductFactory(name=f"产品{n:02d}号 网络交换机") for n in range(80)]
    contract = contract_for(
        org.sales1,
        customer=customer,
        lines=[line(p, quantity=str(n + 1), unit_price="100.00") for n, p in enumerate(products)],
    )
    pages = _text(contract_pdf(contract=contract, language="en"))
    assert len(pages) >= 3
    total = len(pages)
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {total}" in page
    # The table header is repeated on the pages the lines flow onto.
    assert sum("Product / description" in page for page in pages) >= 2
    everything = _flat(" ".join(pages))
    for n in range(80):
        assert f"产品{n:02d}号" in everything
    assert f"{contract.total_amount:,.2f}" in everything
    zh_pages = _text(contract_pdf(contract=contract, language="zh-hans"))
    assert len(zh_pages) == total


def test_bad_language_refused(org, company, customer, products):
    quote = quote_for(org.sales1, customer=customer, lines=_lines(products))
    with pytest.raises(ValueError):
        quote_pdf(quote=quote, language="fr")


def test_pdf_is_deterministic(org, company, customer, products):
    quote = quote_for(org.sales1, customer=customer, lines=_lines(products))
    assert quote_pdf(quote=quote, language="en") == quote_pdf(quote=quote, language="en")


def test_logo_is_printed_and_a_missing_logo_file_is_skipped(
    org, company, customer, products, settings, tmp_path
):
    from django.core.files.base import ContentFile
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (120, 40), "#1F4E79").save(buffer, "PNG")
    row = SystemSettings.objects.get(pk=1)
    row.logo.save("logo.png", ContentFile(buffer.getvalue()))
    quote = quote_for(org.sales1, customer=customer, lines=_lines(products))
    with_logo = quote_pdf(quote=quote, language="en")
    assert b"/Subtype /Image" in with_logo
    row.logo.storage.delete(row.logo.name)
    without = quote_pdf(quote=quote, language="en")
    assert b"/Subtype /Image" not in without


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_contract_pdf_page_one_screenshot(org, company, customer, products, language):
    """Page 1 as PNG (test-artifacts/screenshots/) to look at; pdfium draws it."""
    pdfium = pytest.importorskip("pypdfium2")
    contract = _active_contract(org, customer, products)
    pdf = pdfium.PdfDocument(contract_pdf(contract=contract, language=language))
    image = pdf[0].render(scale=150 / 72).to_pil()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if language == "zh-hans" else "_en"
    image.save(SCREENSHOTS / f"contract_pdf_page1{suffix}.png")
    assert image.size[0] > 1000
