"""The shared import mechanism, driven through a small importer of the test app's Widget."""

import codecs
import datetime
import io
import re
import zipfile
from decimal import Decimal
from unittest import mock

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kehu.core import imports
from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.core.imports import (
    ColumnType,
    ImportColumn,
    Importer,
    ImportFileError,
    RowError,
    get_importer,
    import_job_create,
    import_job_get_for,
    import_job_preview,
    import_job_start,
    import_run,
    import_template_rows,
    read_table,
    register_importer,
)
from kehu.core.models import CustomFieldDefinition, ImportJob
from kehu.core.services import model_create, versioned_update
from kehu.system.access import forget_cached_access
from kehu.system.models import AuditLog
from tests.testapp.factories import WidgetFactory
from tests.testapp.models import Widget


@register_importer
class WidgetImporter(Importer):
    name = "test_widgets"
    model = Widget
    module = "customers"
    columns = [
        ImportColumn("name", "Name", required=True, max_length=100, example="Widget A"),
        ImportColumn("amount", "Amount", type=ColumnType.DECIMAL, example="12.50"),
        ImportColumn("phone", "Phone", type=ColumnType.PHONE),
        ImportColumn("count", "Count", type=ColumnType.INT),
        ImportColumn("day", "Day", type=ColumnType.DATE),
        ImportColumn("mail", "E-mail", type=ColumnType.EMAIL),
        ImportColumn(
            "size", "Size", type=ColumnType.CHOICE, choices=[("s", "Small"), ("l", "Large")]
        ),
        ImportColumn("notes", "Notes"),
    ]
    with_custom_fields = False
    seen: list[dict] = []

    def find_duplicate(self, row):
        return Widget.objects.filter(name=row["name"]).first()

    def clean_row(self, row):
        if row["name"] == "forbidden":
            raise RowError("This name is not allowed.", column="name")

    def create(self, row, *, actor):
        WidgetImporter.seen.append(row)
        if row["name"] == "service-refuses":
            raise ServiceError("The service refused.", field="phone")
        return model_create(
            model=Widget,
            user=actor,
            data={
                "name": row["name"],
                "owner": actor,
                "amount": row["amount"] or Decimal("0"),
                "phone": row["phone"] or "",
            },
        )

    def update(self, obj, row, *, actor):
        return versioned_update(
            instance=obj,
            user=actor,
            expected_version=obj.version,
            data={"amount": row["amount"] or obj.amount, "phone": row["phone"] or obj.phone},
        )


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def importer(user, policy="skip"):
    return WidgetImporter(user=user, duplicate_policy=policy)


def csv_bytes(text: str, encoding="utf-8") -> bytes:
    return text.encode(encoding)


def xlsx_bytes(rows) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def run(user, data, mode="all_or_nothing", policy="skip", dry_run=False, filename="f.csv"):
    return import_run(
        importer=importer(user, policy), data=data, filename=filename, mode=mode, dry_run=dry_run
    )


# --- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        csv_bytes("Name,Amount\n华为技术,1.5\n"),
        codecs.BOM_UTF8 + csv_bytes("Name,Amount\n华为技术,1.5\n"),
        csv_bytes("Name,Amount\r\n华为技术,1.5\r\n", "gbk"),
        csv_bytes("Name,Amount\n华为技术,1.5\n", "gb18030"),
        csv_bytes("Name\tAmount\n华为技术\t1.5\n"),
    ],
    ids=["utf8", "utf8-bom", "gbk", "gb18030", "tab"],
)
def test_csv_encodings(data):
    table = read_table(data)
    assert table.header == ["Name", "Amount"]
    assert table.rows == [(2, ["华为技术", "1.5"])]


def test_xlsx_cells():
    data = xlsx_bytes(
        [
            ["Name", "Day", "Amount"],
            ["甲", datetime.datetime(2026, 3, 1), 0.1],
            [None, None],
            ["乙"],
        ]
    )
    table = read_table(data, "a.xlsx")
    assert table.rows[0] == (2, ["甲", datetime.datetime(2026, 3, 1), 0.1])
    assert table.rows[1][0] == 4  # the blank line 3 is skipped, numbering is kept


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"Name,Amount\n", "no data rows"),
        (b"Name,Amount\n,\n\n", "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, ".xls"),
        (b"caf\xe9 au lait\xff\xfe", "encoding"),
        (b'Name\n"unclosed quote\n', "malformed"),
        (b'Name\n"a"b\n', "malformed"),
        (b"PK\x03\x04garbage", "cannot be read"),
    ],
    ids=["empty", "header-only", "blank-rows", "png", "xls", "latin1", "unclosed", "quote", "zip"],
)
def test_file_level_errors(data, message):
    with pytest.raises(ImportFileError) as info:
        read_table(data)
    assert message in str(info.value)


def test_xlsx_extension_but_not_a_workbook():
    with pytest.raises(ImportFileError, match="not a valid Excel"):
        read_table(b"Name\nx\n", "customers.xlsx")


MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"


def excel_bytes(
    rows_xml: str, *, strings=(), styles="", date1904=False, chart_first=False, prefix=""
):
    """An .xlsx as Excel writes it (openpyxl writes inline strings only): shared strings,
    a styles part, optionally the 1904 calendar and a chart sheet before the worksheet."""
    sheets = '<sheet name="Data" sheetId="2" r:id="rId1"/>'
    calendar = ' date1904="1"' if date1904 else ""
    p = f"{prefix}:" if prefix else ""
    rels = (
        f'<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="/xl/worksheets/data.xml"/>'
        f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
        f'<Relationship Id="rId3" Type="{REL_NS}/styles" Target="./styles.xml"/>'
    )
    if chart_first:
        sheets = '<sheet name="Chart" sheetId="1" r:id="rId9"/>' + sheets
        rels += f'<Relationship Id="rId9" Type="{REL_NS}/chartsheet" Target="charts/c.xml"/>'
    types = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{types}.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/data.xml" '
            f'ContentType="{types}.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" '
            f'ContentType="{types}.sharedStrings+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{types}.styles+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": f'<Relationships xmlns="{PACKAGE_RELS}"><Relationship Id="rId1" '
        f'Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        f"<workbookPr{calendar}/><sheets>{sheets}</sheets></workbook>",
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PACKAGE_RELS}">{rels}</Relationships>'
        ),
        "xl/worksheets/data.xml": (
            f'<{p}worksheet xmlns{":" + prefix if prefix else ""}="{MAIN_NS}"><{p}sheetData>'
            f"{rows_xml}</{p}sheetData></{p}worksheet>"
        ),
        "xl/sharedStrings.xml": f'<sst xmlns="{MAIN_NS}">{"".join(strings)}</sst>',
        "xl/styles.xml": f'<styleSheet xmlns="{MAIN_NS}">{styles}</styleSheet>',
        "xl/charts/c.xml": "<chartsheet/>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>' + text)
    return out.getvalue()


# Cell styles: 0 general, 1 a built-in date, 2 a custom date (2026年3月2日), 3 "#,##0.00".
STYLES = (
    '<numFmts count="1"><numFmt numFmtId="164" '
    'formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/></numFmts>'
    '<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/>'
    '<xf numFmtId="4"/></cellXfs>'
)


def openpyxl_spy():
    """Counts the workbooks the import leaves to openpyxl (the rest calamine reads)."""
    return mock.patch.object(
        imports, "_xlsx_openpyxl_records", wraps=imports._xlsx_openpyxl_records
    )


EXCEL_STRINGS = [
    "<si><t>Name</t></si>",
    "<si><t>Day</t></si>",
    # Rich text runs are joined; the phonetic guide (rPh) is not part of the text.
    '<si><r><rPr><b/></rPr><t>华为</t></r><r><t xml:space="preserve">技术 </t></r>'
    '<rPh sb="0" eb="1"><t>ふ</t></rPh></si>',
    "<si><t>Amount</t></si>",
]
EXCEL_PLAIN_ROWS = (
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
    '<c r="C1" t="s"><v>3</v></c></row>'
    # A date by a built-in format, a number with a number (not date) format.
    '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" s="1"><v>46082</v></c>'
    '<c r="C2" s="3"><v>1234.5</v></c></row>'
    # Cells without references follow each other; a custom date format; a boolean.
    '<row r="4"><c t="inlineStr"><is><t>乙</t></is></c><c s="2"><v>46083.5</v></c>'
    '<c t="b"><v>1</v></c></row>'
)
EXCEL_FORMULA_ROWS = (
    # A text formula with its cached value; an error value; a skipped column.
    '<row r="5"><c r="A5" t="str"><f>A1&amp;"x"</f><v>Namex</v></c>'
    '<c r="C5" t="e"><v>#DIV/0!</v></c></row>'
    # A shared formula Excel never calculated.
    '<row r="6"><c r="A6" t="inlineStr"><is><t>丙</t></is></c>'
    '<c r="C6"><f t="shared" si="0"/></c></row>'
)


def test_xlsx_as_excel_writes_it_by_calamine():
    data = excel_bytes(EXCEL_PLAIN_ROWS, strings=EXCEL_STRINGS, styles=STYLES)
    with openpyxl_spy() as spy:
        table = read_table(data, "a.xlsx")
    assert not spy.called
    assert table.header == ["Name", "Day", "Amount"]
    assert table.rows == [
        (2, ["华为技术 ", datetime.datetime(2026, 3, 1), 1234.5]),
        (4, ["乙", datetime.datetime(2026, 3, 2, 12, 0), True]),
    ]


@pytest.mark.filterwarnings("ignore:Workbook contains no")
def test_xlsx_with_formulas_and_errors_is_read_by_openpyxl():
    rows = EXCEL_PLAIN_ROWS + EXCEL_FORMULA_ROWS
    with openpyxl_spy() as spy:
        table = read_table(excel_bytes(rows, strings=EXCEL_STRINGS, styles=STYLES), "a.xlsx")
    assert spy.called
    assert table.header == ["Name", "Day", "Amount"]
    lines = dict(table.rows)
    assert lines[2] == ["华为技术 ", datetime.datetime(2026, 3, 1), 1234.5]
    assert lines[4] == ["乙", datetime.datetime(2026, 3, 2, 12, 0), True]
    assert lines[5] == ["Namex", None, "#DIV/0!"]
    assert lines[6][0] == "丙" and type(lines[6][2]).__name__ == "_UncalculatedFormula"
    assert set(lines) == {2, 4, 5, 6}


def test_xlsx_1904_calendar_and_first_worksheet_after_a_chart_sheet():
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>Day</t></is></c></row>'
        '<row r="2"><c r="A2" s="1"><v>1</v></c></row>'
    )
    data = excel_bytes(rows, styles=STYLES, date1904=True, chart_first=True)
    assert read_table(data, "a.xlsx").rows == [(2, [datetime.datetime(1904, 1, 2)])]


def as_read(cells) -> list:
    """Cells as the import reads them: an empty cell is None or "" (both the empty text),
    an uncalculated formula "UNCALCULATED", trailing empty cells dropped."""
    cells = [
        "UNCALCULATED" if type(c).__name__ == "_UncalculatedFormula" else (None if c == "" else c)
        for c in cells
    ]
    while cells and cells[-1] is None:
        cells.pop()
    return cells


def test_xlsx_reads_what_openpyxl_reads():
    """The values openpyxl's read-only mode gives, cell for cell, read by calamine."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "Amount", "Day", "Flag", "Note", "Phone"])
    sheet.append(["甲 ", 0.1, datetime.date(2026, 1, 2), True, "0012", 13800138000])
    sheet.append(["乙", 10, datetime.datetime(2026, 1, 2, 3, 4, 5), False, 12345678901234])
    sheet["A6"], sheet["C6"] = "gap", 45000
    sheet["C6"].number_format = "yyyy-mm-dd"
    sheet["A7"], sheet["B7"], sheet["D7"] = "x", -1.5e-7, datetime.time(3, 4)
    sheet["E7"] = datetime.timedelta(hours=30)
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    theirs = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    expected = [as_read(row) for row in theirs.worksheets[0].iter_rows(values_only=True)]
    theirs.close()
    with openpyxl_spy() as spy:
        table = read_table(data, "a.xlsx")
    assert not spy.called
    got = [table.header] + [as_read(cells) for _line, cells in table.rows]
    expected = [cells for cells in expected if cells]
    expected[0] = [str(c) for c in expected[0]]
    assert got == expected
    # Whole numbers as int (a phone never reads "13800138000.0"), text as text.
    assert type(got[1][5]) is int and got[1][4] == "0012" and type(got[2][1]) is int
    assert [line for line, _cells in table.rows] == [2, 3, 6, 7]


def openpyxl_cells(data: bytes) -> list[tuple[int, list]]:
    """The non-blank rows as openpyxl's read-only mode reads them (two passes: values, and
    formulas to tell an uncalculated one), cells as ``as_read`` gives them: what the
    import's reader must give."""
    values = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    rows = []
    pairs = zip(
        values.worksheets[0].iter_rows(values_only=True),
        formulas.worksheets[0].iter_rows(values_only=True),
        strict=True,
    )
    for line, (row, formula_row) in enumerate(pairs, 1):
        cells = as_read(
            "UNCALCULATED" if v is None and isinstance(f, str) and f.startswith("=") else v
            for v, f in zip(row, formula_row, strict=True)
        )
        if cells:
            rows.append((line, cells))
    values.close()
    formulas.close()
    # The import numbers lines from its header row, the first non-blank one.
    return [(line - rows[0][0] + 1, cells) for line, cells in rows]


def reader_cells(data: bytes) -> list[tuple[int, list]]:
    table = read_table(data, "a.xlsx")
    return [(line, as_read(cells)) for line, cells in [(1, table.header), *table.rows]]


cell_values = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12),
    st.sampled_from(
        ["a&b", "<x>", '"q"', "it's", " lead", "trail ", "a\nb", "中文", "𠀀", "&amp;", "007"]
    ),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
    st.booleans(),
    st.dates(min_value=datetime.date(1901, 1, 1), max_value=datetime.date(2099, 12, 31)),
    st.datetimes(
        min_value=datetime.datetime(1901, 1, 1), max_value=datetime.datetime(2099, 12, 31)
    ).map(lambda d: d.replace(microsecond=0)),
    st.sampled_from(["=1+1", '=A1&"x"']),
)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.lists(cell_values, min_size=1, max_size=6), min_size=1, max_size=8))
def test_xlsx_reads_random_workbooks_as_openpyxl_does(rows):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Header"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    expected = openpyxl_cells(data)
    if len(expected) < 2:
        return  # no data rows: a file-level error, tested elsewhere
    with openpyxl_spy() as spy:
        assert reader_cells(data) == expected
    # Formulas go to openpyxl; every other workbook is read by calamine.
    has_formula = any(isinstance(c, str) and c.startswith("=") for row in rows for c in row)
    assert spy.called == has_formula


@pytest.mark.parametrize(
    ("rows_xml", "root", "reader"),
    [
        # Attributes in another order, extra ones, a row and cells without references.
        (
            '<row r="1"><c t="inlineStr" r="A1"><is><t>Name</t></is></c></row>'
            '<row r="2"><c s="1" r="A2"><v>46082</v></c></row>'
            '<row r="3" spans="1:2"><c r="A3" cm="1" t="s" s="0"><v>0</v></c></row>'
            '<row><c><v>4</v></c><c t="b"><v>0</v></c></row>',
            "",
            "calamine",
        ),
        # Attributes in single quotes.
        (
            '<row r="1"><c t="inlineStr" r="A1"><is><t>Name</t></is></c></row>'
            "<row r='2'><c s='1' r='A2'><v>46082</v></c></row>",
            "",
            "openpyxl",
        ),
        # A comment, and CDATA.
        (
            '<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c></row><!-- note -->'
            '<row r="2"><c r="A2" t="inlineStr"><is><t><![CDATA[a<b]]></t></is></c></row>',
            "",
            "calamine",
        ),
        # Text with references and spaces.
        (
            '<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c></row>'
            '<row r="2"><c r="A2" t="inlineStr"><is><t xml:space="preserve"> a &amp; b'
            '&#13;&#x4E2D;&lt;&gt; </t></is></c><c r="B2" t="s"><v>0</v></c></row>',
            "",
            "calamine",
        ),
        # A formula.
        (
            '<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c></row>'
            '<row r="3"><c r="A3"><f>1+1</f></c><c r="B3" t="s"><v>0</v></c></row>',
            "",
            "openpyxl",
        ),
        # A prefixed namespace.
        (
            '<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>Name</x:t></x:is></x:c></x:row>'
            '<x:row r="2"><x:c r="A2"><x:v>7</x:v></x:c></x:row>',
            "x",
            "openpyxl",
        ),
        # Data from B3 on: the rows and columns before it are empty.
        (
            '<row r="3"><c r="B3" t="inlineStr"><is><t>Name</t></is></c></row>'
            '<row r="5"><c r="C5"><v>1.5</v></c></row>',
            "",
            "calamine",
        ),
    ],
    ids=["attributes", "quotes", "comment-cdata", "text", "formula", "prefix", "offset"],
)
@pytest.mark.filterwarnings("ignore:Workbook contains no")
def test_xlsx_unusual_sheet_text_reads_as_openpyxl_reads_it(rows_xml, root, reader):
    data = excel_bytes(rows_xml, strings=["<si><t>Day</t></si>"], styles=STYLES, prefix=root)
    with openpyxl_spy() as spy:
        assert reader_cells(data) == openpyxl_cells(data)
    assert spy.called == (reader == "openpyxl")


@pytest.mark.filterwarnings("ignore:Workbook contains no")
def test_xlsx_far_cell_is_read_without_a_sheet_sized_grid():
    """A value in the last cell (XFD1048576) would make calamine allocate 550 GB and abort
    the process: openpyxl reads such a sheet, row by row."""
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>甲</t></is></c></row>'
        '<row r="1048576"><c r="XFD1048576"><v>2</v></c></row>'
    )
    with openpyxl_spy() as spy:
        table = read_table(excel_bytes(rows), "a.xlsx")
    assert spy.called
    assert table.header == ["Name"]
    assert table.rows[0] == (2, ["甲"])
    assert table.rows[1][0] == 1048576 and table.rows[1][1][-1] == 2


@pytest.mark.parametrize(
    "rows_xml",
    [
        '<row r="1"><c r="A1" t="s"><v>7</v></c></row>',  # no such shared string
        '<row r="1"><c r="1A"><v>1</v></c></row>',  # not a cell reference
        '<row r="1"><c r="A1"><v>1</v></row>',  # not well-formed
    ],
    ids=["string-index", "reference", "xml"],
)
@pytest.mark.filterwarnings("ignore:Workbook contains no")
def test_corrupt_xlsx_is_a_file_error(rows_xml):
    with pytest.raises(ImportFileError, match="cannot be read"):
        read_table(excel_bytes(rows_xml), "a.xlsx")


def test_size_and_row_limits(settings):
    settings.KEHU_IMPORT_MAX_BYTES = 100
    with pytest.raises(ImportFileError, match="larger than"):
        read_table(b"Name\n" + b"x\n" * 100)
    settings.KEHU_IMPORT_MAX_BYTES = 20 * 1024 * 1024
    settings.KEHU_IMPORT_MAX_ROWS = 3
    with pytest.raises(ImportFileError, match="more than 3 rows"):
        read_table(b"Name\na\nb\nc\nd\n")
    assert len(read_table(b"Name\na\nb\nc\n").rows) == 3


def test_header_matching_unknown_and_missing(org):
    imp = importer(org.sales1)
    columns = imp.match_header([" name * ", "AMOUNT", "count", ""])
    assert [c.key if c else None for c in columns] == ["name", "amount", "count", None]
    with pytest.raises(ImportFileError, match="Unknown columns: “Colour”"):
        imp.match_header(["Name", "Colour"])
    with pytest.raises(ImportFileError, match="Required columns are missing: Name"):
        imp.match_header(["Amount"])
    with pytest.raises(ImportFileError, match="appears twice"):
        imp.match_header(["Name", "name"])


# --- cells ------------------------------------------------------------------------------------


def test_row_errors_name_line_and_column(org):
    data = csv_bytes(
        "Name,Amount,Phone,Count,Day,E-mail,Size\n"
        "ok,1.10,13800138000,3,2026/01/31,a@b.cn,Large\n"
        ",x,12,1.5,2026-02-30,not-mail,huge\n"
    )
    result = run(org.sales1, data, dry_run=True)
    assert result.total_rows == 2
    by_column = {e["column"]: e for e in result.errors}
    assert set(by_column) == {"Name", "Amount", "Phone", "Count", "Day", "E-mail", "Size"}
    assert all(e["line"] == 3 for e in result.errors)
    assert "required" in by_column["Name"]["message"]
    assert "not one of the choices" in by_column["Size"]["message"]
    assert result.preview[0][:7] == ["ok", "1.10", "13800138000", "3", "2026-01-31", "a@b.cn", "l"]


def test_decimals_are_exact_and_excel_dates_parse(org):
    data = xlsx_bytes(
        [
            ["Name", "Amount", "Day", "Count", "Phone"],
            ["a", 0.1, datetime.datetime(2026, 5, 4), 7.0, 13800138000],
            ["b", "1,234.56", 46000, "8", "021-5555 1234"],
        ]
    )
    imp = importer(org.sales1)
    table = read_table(data, "x.xlsx")
    columns = imp.match_header(table.header)
    first, errors = imp.parse_row(columns, table.rows[0][1], 2)
    assert errors == []
    assert first["amount"] == Decimal("0.1") and isinstance(first["amount"], Decimal)
    assert first["day"] == datetime.date(2026, 5, 4)
    assert first["count"] == 7 and first["phone"] == "13800138000"
    second, errors = imp.parse_row(columns, table.rows[1][1], 3)
    assert errors == []
    assert second["amount"] == Decimal("1234.56")
    assert second["day"] == datetime.date(2025, 12, 9)  # Excel serial 46000


def test_xlsx_and_csv_of_the_same_rows_parse_the_same(org):
    """Numbers typed as numbers (a phone, a count) read as the digits typed, text with
    leading zeros as text, dates and booleans as the CSV's text of them."""
    header = ["Name", "Amount", "Phone", "Count", "Day", "Notes"]
    xlsx = xlsx_bytes(
        [
            header,
            ["a", 1234.5, 13800138000, 7, datetime.datetime(2026, 5, 4), "007"],
            ["b", 0.1, "021-5555 1234", 8.0, datetime.date(2026, 1, 2), True],
            ["c", None, None, None, None, 12345678901234],
        ]
    )
    csv_data = csv_bytes(
        "Name,Amount,Phone,Count,Day,Notes\n"
        "a,1234.5,13800138000,7,2026-05-04,007\n"
        "b,0.1,021-5555 1234,8,2026-01-02,TRUE\n"
        "c,,,,,12345678901234\n"
    )
    parsed = []
    for data, name in ((xlsx, "f.xlsx"), (csv_data, "f.csv")):
        imp = importer(org.sales1)
        table = read_table(data, name)
        columns = imp.match_header(table.header)
        parsed.append([imp.parse_row(columns, cells, line) for line, cells in table.rows])
    assert parsed[0] == parsed[1]
    assert all(errors == [] for _row, errors in parsed[0])
    first = parsed[0][0][0]
    assert first["phone"] == "13800138000" and first["notes"] == "007"
    assert first["amount"] == Decimal("1234.5") and first["count"] == 7


def test_huge_cell_is_a_row_error(org):
    data = csv_bytes("Name,Notes\nok,short\nbig," + "长" * 10_001 + "\n")
    result = run(org.sales1, data, mode="good_rows")
    assert result.created == 1
    assert result.errors == [
        {"line": 3, "column": "Notes", "message": "The cell is longer than 10000 characters."}
    ]


def test_extra_cells_are_a_row_error(org):
    result = run(org.sales1, csv_bytes("Name\nok\nbad,extra\n"), mode="good_rows")
    assert result.created == 1
    assert result.errors[0]["line"] == 3 and "more cells" in result.errors[0]["message"]


def test_formula_without_cached_value_is_a_row_error(org):
    data = xlsx_bytes([["Name", "Amount"], ["a", "=1+1"], ["b", 2]])
    result = run(org.sales1, data, mode="good_rows", filename="f.xlsx")
    assert result.created == 1
    assert result.errors[0]["line"] == 2 and result.errors[0]["column"] == "Amount"
    assert "formula" in result.errors[0]["message"]


def test_formula_with_cached_value_uses_the_value(org):
    data = xlsx_bytes([["Name", "Amount"], ["a", "=1+1"]])
    # Give the formula the cached value Excel would have saved with it.
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = re.sub(rb"<f>1\+1</f><v\s*/?>(</v>)?", b"<f>1+1</f><v>2</v>", content)
            target.writestr(item, content)
    result = run(org.sales1, out.getvalue(), filename="f.xlsx")
    assert result.errors == []
    assert Widget.objects.get(name="a").amount == Decimal("2")


# --- modes and policies -----------------------------------------------------------------------


def test_all_or_nothing_writes_nothing_when_one_row_is_bad(org):
    data = csv_bytes("Name,Amount\na,1\nb,oops\nc,3\n")
    result = run(org.sales1, data)
    assert result.status == "failed"
    assert result.created == 0
    assert [e["line"] for e in result.errors] == [3]
    assert not Widget.objects.exists()


def test_all_or_nothing_rolls_back_when_a_service_refuses(org):
    data = csv_bytes("Name,Amount\na,1\nservice-refuses,2\n")
    result = run(org.sales1, data)
    assert result.status == "failed"
    assert result.errors == [{"line": 3, "column": "Phone", "message": "The service refused."}]
    assert not Widget.objects.exists()


def test_all_or_nothing_writes_everything_when_clean(org):
    result = run(org.sales1, csv_bytes("Name,Amount\na,1\nb,2\n"))
    assert (result.status, result.created, result.errors) == ("done", 2, [])
    assert Widget.objects.count() == 2
    assert AuditLog.objects.filter(action="create", model="testapp.widget").count() == 2


def test_good_rows_writes_the_good_ones_and_reports_bad_lines(org):
    data = csv_bytes("Name,Amount\na,1\nb,oops\nforbidden,1\nservice-refuses,1\nc,3\n")
    result = run(org.sales1, data, mode="good_rows")
    assert result.status == "done"
    assert result.created == 2
    assert [e["line"] for e in result.errors] == [3, 4, 5]
    assert result.errors[1] == {"line": 4, "column": "Name", "message": "This name is not allowed."}
    assert sorted(Widget.objects.values_list("name", flat=True)) == ["a", "c"]


@pytest.mark.parametrize(
    ("policy", "created", "updated", "skipped", "amount"),
    [("skip", 1, 0, 1, "5.00"), ("update", 1, 1, 0, "9.00"), ("create", 2, 0, 0, "5.00")],
)
def test_duplicate_policies(org, policy, created, updated, skipped, amount):
    WidgetFactory(name="dup", owner=org.sales1, amount=Decimal("5"))
    result = run(org.sales1, csv_bytes("Name,Amount\ndup,9\nnew,1\n"), policy=policy)
    assert (result.created, result.updated, result.skipped) == (created, updated, skipped)
    assert str(Widget.objects.filter(name="dup").order_by("id").first().amount) == amount


def test_dry_run_writes_nothing_but_reports_what_would_happen(org):
    WidgetFactory(name="dup", owner=org.sales1)
    audit_before = AuditLog.objects.count()
    result = run(org.sales1, csv_bytes("Name\ndup\nnew\nservice-refuses\n"), dry_run=True)
    assert result.status == "preview"
    assert (result.created, result.skipped) == (1, 1)
    assert [e["line"] for e in result.errors] == [4]
    assert Widget.objects.count() == 1
    assert AuditLog.objects.count() == audit_before


def test_large_preview_runs_only_the_first_rows_through_the_services(org, settings):
    settings.KEHU_IMPORT_BACKGROUND_ROWS = 2
    WidgetImporter.seen = []
    result = run(org.sales1, csv_bytes("Name\na\nb\nc\n,\nd\n"), dry_run=True)
    assert [row["name"] for row in WidgetImporter.seen] == ["a", "b"]
    assert result.total_rows == 4 and "first 2" in result.message
    assert not Widget.objects.exists()


def test_permission_refused_writes_nothing(org):
    with pytest.raises(PermissionRefused):
        run(org.finance, csv_bytes("Name\na\n"))
    # Updating duplicates needs the change permission as well as add.
    role = org.sales1.roles.get()
    role.permissions = [p for p in role.permissions if p != "customers.change"]
    role.save()
    forget_cached_access(org.sales1)  # the test holds the user object across the change
    with pytest.raises(PermissionRefused):
        run(org.sales1, csv_bytes("Name\na\n"), policy="update")
    assert not Widget.objects.exists()


def test_custom_fields_are_extra_columns(org):
    CustomFieldDefinition.objects.create(
        model="testapp.widget",
        key="colour",
        label="颜色",
        label_en="Colour",
        field_type="choice",
        choices=["red", "blue"],
    )
    CustomFieldDefinition.objects.create(
        model="testapp.widget", key="since", label="起始", label_en="Since", field_type="date"
    )

    class WithCustom(WidgetImporter):
        with_custom_fields = True

    imp = WithCustom(user=org.sales1)
    table = read_table(
        csv_bytes("名称,颜色,Since\nx,blue,2026/1/2\ny,green,\n".replace("名称", "Name"))
    )
    columns = imp.match_header(table.header)
    row, errors = imp.parse_row(columns, table.rows[0][1], 2)
    assert errors == [] and row["custom_fields"] == {"colour": "blue", "since": "2026-01-02"}
    _row, errors = imp.parse_row(columns, table.rows[1][1], 3)
    assert errors[0]["column"] == "Colour"
    assert [c.key for c in imp.get_columns()][-2:] == ["cf_colour", "cf_since"]


# --- jobs -------------------------------------------------------------------------------------


def upload(data, name="widgets.csv"):
    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_job_inline_records_counts_errors_and_an_audit_row(org):
    job = import_job_create(
        user=org.sales1,
        importer="test_widgets",
        file=upload(b"Name,Amount\na,1\n,2\n"),
        mode="good_rows",
        duplicate_policy="skip",
    )
    preview = import_job_preview(job=job)
    assert preview.status == "preview" and not Widget.objects.exists()
    job = import_job_start(job=job)
    assert job.status == "done"
    assert (job.total_rows, job.created_count, job.error_count) == (2, 1, 1)
    assert job.errors == [{"line": 3, "column": "Name", "message": "This column is required."}]
    note = AuditLog.objects.get(model="testapp.widget", object_id="", action="create")
    assert "created 1" in note.note and "errors 1" in note.note
    with pytest.raises(ServiceError, match="already been started"):
        import_job_start(job=job)


def test_job_background_path_reports_progress(
    org, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from kehu.core import imports as core_imports

    settings.KEHU_IMPORT_BACKGROUND_ROWS = 3
    monkeypatch.setattr(core_imports, "BATCH_SIZE", 500)  # progress is saved per batch
    rows = "".join(f"w{i},{i}\n" for i in range(1200))
    job = import_job_create(
        user=org.sales1,
        importer="test_widgets",
        file=upload(("Name,Amount\n" + rows).encode()),
        mode="good_rows",
        duplicate_policy="skip",
    )
    seen: list[int] = []
    original = ImportJob.objects.filter

    def spy(*args, **kwargs):
        queryset = original(*args, **kwargs)
        update = queryset.update

        def tracking_update(**fields):
            if "processed_rows" in fields and "status" not in fields:
                seen.append(fields["processed_rows"])
            return update(**fields)

        queryset.update = tracking_update
        return queryset

    ImportJob.objects.filter = spy
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            queued = import_job_start(job=job)
            assert queued.status == "running" and queued.message == "Queued"
            assert not Widget.objects.exists()
    finally:
        del ImportJob.objects.filter
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == "done"
    assert (job.total_rows, job.processed_rows, job.created_count) == (1200, 1200, 1200)
    assert seen[:3] == [500, 1000, 1200]
    assert Widget.objects.count() == 1200


def test_job_file_level_error_fails_the_job(org):
    job = import_job_create(
        user=org.sales1,
        importer="test_widgets",
        file=upload(b"Colour\nred\n"),
        mode="all_or_nothing",
        duplicate_policy="skip",
    )
    assert "Unknown columns" in import_job_preview(job=job).message
    job = import_job_start(job=job)
    assert job.status == "failed" and "Unknown columns" in job.message


def test_job_refused_before_the_file_is_stored(org, tmp_path):
    with pytest.raises(PermissionRefused):
        import_job_create(
            user=org.finance,
            importer="test_widgets",
            file=upload(b"Name\na\n"),
            mode="good_rows",
            duplicate_policy="skip",
        )
    assert not ImportJob.objects.exists()
    assert not any(tmp_path.rglob("*.csv"))
    with pytest.raises(ImportFileError, match="empty"):
        import_job_create(
            user=org.sales1,
            importer="test_widgets",
            file=upload(b""),
            mode="good_rows",
            duplicate_policy="skip",
        )


def test_another_users_job_is_404(org):
    from django.http import Http404

    job = import_job_create(
        user=org.sales1,
        importer="test_widgets",
        file=upload(b"Name\na\n"),
        mode="good_rows",
        duplicate_policy="skip",
    )
    assert import_job_get_for(user=org.sales1, pk=job.pk) == job
    with pytest.raises(Http404):
        import_job_get_for(user=org.admin, pk=job.pk)


def test_registry_and_template(org):
    assert get_importer("test_widgets") is WidgetImporter
    assert get_importer("nope") is None
    header, example = import_template_rows(importer(org.sales1))
    assert header[:2] == ["Name *", "Amount"]
    assert example[:2] == ["Widget A", "12.50"]
    # The template itself imports cleanly.
    data = xlsx_bytes([header, example])
    assert run(org.sales1, data, filename="t.xlsx").created == 1


# --- robustness -------------------------------------------------------------------------------


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b),
        st.binary(max_size=512).map(lambda b: b"Name,Amount\n" + b),
        st.text(max_size=300).map(lambda t: ("Name,Amount\n" + t).encode("utf-8")),
    ),
    mode=st.sampled_from(["all_or_nothing", "good_rows"]),
)
def test_random_bytes_never_crash_and_never_write(org, data, mode):
    try:
        result = run(org.sales1, data, mode=mode, dry_run=True)
    except ImportFileError as exc:
        assert str(exc.message)
    else:
        assert result.status == "preview"
        for error in result.errors:
            assert set(error) == {"line", "column", "message"}
    assert not Widget.objects.exists()
