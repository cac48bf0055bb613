"""One import mechanism for every module: CSV or XLSX in, rows through the module's services.

A module subclasses :class:`Importer` in its ``imports.py`` and registers it::

    @register_importer
    class CustomerImporter(Importer):
        name = "customers"
        model = Customer
        module = "customers"
        columns = [ImportColumn("name", _("Name"), required=True), ...]

        def create(self, row, *, actor): return customer_create(actor=actor, data=...)

Everything else is shared: reading the file (encodings, Excel cells, limits), matching the
header row, parsing each cell, reporting every bad row with the line number the user sees
(the header is line 1), the two modes (all or nothing, good rows only), the duplicate
policies, the dry run, background jobs with progress, the operation log and the template.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import io
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.http import Http404
from django.utils import timezone, translation
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kehu.core.exceptions import ServiceError
from kehu.core.models import CustomFieldDefinition, CustomFieldType, ImportJob, ImportStatus
from kehu.core.permissions import require_perm


def max_file_bytes() -> int:
    # 200,000 rows of Chinese names and addresses (3 bytes a character in UTF-8) take
    # about 45 MB of CSV; the limit leaves room for that.
    return getattr(settings, "KEHU_IMPORT_MAX_BYTES", 64 * 1024 * 1024)


def max_rows() -> int:
    return getattr(settings, "KEHU_IMPORT_MAX_ROWS", 200_000)


def background_threshold() -> int:
    """Files with more data rows than this run as a background task."""
    return getattr(settings, "KEHU_IMPORT_BACKGROUND_ROWS", 2_000)


def max_cell_chars() -> int:
    return getattr(settings, "KEHU_IMPORT_MAX_CELL", 10_000)


PREVIEW_ROWS = 20
# Rows per batch: one transaction each in good-rows mode (progress is saved after each),
# and what an importer with a batch path (``Importer.write_batch``) checks and writes at once.
# Each transaction (and savepoint) makes SQLite's full-text index write out a segment and
# merge: 100,000 customers cost about a fifth less database time in batches of 2,000 than
# of 500, and a batch still holds the write lock for well under a second.
BATCH_SIZE = 2000


class ImportFileError(ServiceError):
    """The file as a whole cannot be imported (unreadable, empty, wrong header …)."""

    def __init__(self, message=None, *, field: str | None = "file", code: str = "import_file"):
        super().__init__(message, field=field, code=code)


class RowError(Exception):
    """Raised by importer hooks: this row is wrong; ``column`` is a column key or label."""

    def __init__(self, message, *, column: str = ""):
        self.message = message
        self.column = column
        super().__init__(str(message))


# --- columns and cell parsing ---------------------------------------------------------------


class ColumnType:
    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"
    DATE = "date"
    CHOICE = "choice"
    EMAIL = "email"
    PHONE = "phone"


@dataclass
class ImportColumn:
    """One column of an import file.

    ``choices`` is a list of (value, label) or a callable returning one; ``dictionary`` a
    dictionary code whose items match by label, English label or value (the parsed value is
    the ``DictionaryItem``). ``many`` splits the cell on commas (tags). ``parse`` replaces
    the type's parser: it takes the cell text and returns the value or raises RowError.
    """

    key: str
    label: Any
    required: bool = False
    type: str = ColumnType.TEXT
    choices: Any = None
    dictionary: str = ""
    many: bool = False
    max_length: int | None = None
    example: Any = ""
    parse: Callable[[str], Any] | None = None
    custom_field: bool = False

    def header_names(self) -> set[str]:
        """Every header the column answers to: its key and its label in each language."""
        names = {normalise_header(self.key)}
        for code, _name in settings.LANGUAGES:
            with translation.override(code):
                names.add(normalise_header(str(self.label)))
        return names


def normalise_header(value: Any) -> str:
    text = re.sub(r"\s+", "", str(value or "")).casefold()
    # The template marks required columns with "*"; the mark is not part of the name.
    return text.rstrip("*＊")


_SPACES_RE = re.compile(r"\s+")
_MANY_SPLIT_RE = re.compile(r"[,，、;；]")


def _norm(value: Any) -> str:
    return _SPACES_RE.sub("", str(value)).casefold()


def cell_text(value: Any) -> str:
    """The text of one cell as the user typed it (Excel numbers without a trailing .0)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value).strip()


_EXCEL_EPOCH = datetime.date(1899, 12, 30)
_DATE_RE = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$"
)
_PHONE_RE = re.compile(r"^\+?[\d\s()\-]{5,30}$")


def parse_date(raw: Any, text: str) -> datetime.date:
    if isinstance(raw, datetime.datetime):
        return raw.date()
    if isinstance(raw, datetime.date):
        return raw
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 < raw < 2_958_466:
        # An Excel serial date in a cell not formatted as a date.
        return _EXCEL_EPOCH + datetime.timedelta(days=int(raw))
    match = _DATE_RE.match(text)
    if match:
        try:
            return datetime.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    raise RowError(_("Enter a date as YYYY-MM-DD or YYYY/MM/DD."))


def parse_decimal(raw: Any, text: str) -> Decimal:
    if isinstance(raw, float):
        # str() of a float is its shortest exact-looking form: 0.1 stays 0.1, never 0.1000…01.
        text = str(raw)
    cleaned = text.replace(",", "").replace("，", "").replace("¥", "").replace("￥", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise RowError(_("Enter a number.")) from None
    if not value.is_finite():
        raise RowError(_("Enter a number."))
    return value


def parse_int(raw: Any, text: str) -> int:
    value = parse_decimal(raw, text)
    if value != value.to_integral_value():
        raise RowError(_("Enter a whole number."))
    return int(value)


def _eager_email_validator() -> EmailValidator:
    """Django's ``validate_email`` with its patterns compiled up front (each use of a lazily
    compiled pattern goes through a proxy: a tenth of the cost of an e-mail cell)."""
    validator = EmailValidator()
    for name in ("user_regex", "domain_regex", "literal_regex"):
        lazy = getattr(EmailValidator, name)
        setattr(validator, name, re.compile(lazy.pattern, lazy.flags))
    return validator


_validate_email = _eager_email_validator()


def parse_email(text: str) -> str:
    try:
        _validate_email(text)
    except ValidationError:
        raise RowError(_("Enter a valid e-mail address.")) from None
    return text


def parse_phone(text: str) -> str:
    if not _PHONE_RE.match(text) or sum(map(str.isdigit, text)) < 5:
        raise RowError(_("Enter a valid phone number."))
    return text


# --- reading files --------------------------------------------------------------------------


@dataclass
class Table:
    header: list[str]
    rows: list[tuple[int, list[Any]]]  # (line number as the user sees it, cells)


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _decode_csv(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    if b"\x00" in data:
        # UTF-16 and binary files (images, .xls, zip) carry NUL bytes; CSV text never does.
        raise ImportFileError(_("This file is not a CSV or Excel (.xlsx) file."))
    for encoding in ("utf-8", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _CONTROL_RE.search(text):
            raise ImportFileError(_("This file is not a CSV or Excel (.xlsx) file."))
        return text
    raise ImportFileError(
        _("The file's text encoding is not recognised. Save it as UTF-8 or GBK CSV, or as .xlsx.")
    )


def _read_csv(data: bytes) -> Table:
    text = _decode_csv(data)
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[Any]]] = []
    line = 0
    limit = max_rows() + 1
    try:
        for record in reader:
            line += 1
            records.append((line, record))
            if line > limit:
                break
    except csv.Error as exc:
        raise ImportFileError(
            _("The CSV file is malformed near line %(line)d: %(reason)s")
            % {"line": line + 1, "reason": exc}
        ) from None
    return _table(records)


def _read_xlsx(data: bytes) -> Table:
    """The first worksheet's non-blank rows, each cell as openpyxl's read-only mode gives
    it (an empty cell may be "" instead of None: the same empty text to the import).

    python-calamine (Rust) reads the sheet: 100,000 rows of 18 columns in about 3.5 s of CPU
    with the checks below, where openpyxl (which builds an object per cell in Python) took
    about 11 s for 20,000. openpyxl, the reference, reads what calamine would read
    differently: a sheet with formulas (calamine cannot tell a formula Excel never
    calculated from an empty cell) or error values (calamine gives them as ""), a sheet
    calamine cannot read, and one whose used range is too large for calamine's dense grid.

    Known differences on the calamine path: Excel's "_xHHHH_" escapes in text are decoded
    (as Excel shows them; openpyxl keeps them), a non-number in a number cell reads as its
    text (openpyxl refuses the file), and a date-formatted number outside Excel's calendar
    (negative, or past 9999) reads as a number or a time (openpyxl: "#VALUE!" or a date
    before 1900).
    """
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            plain = _xlsx_calamine_reads(archive)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise ImportFileError(
            _("The Excel file cannot be read: %(reason)s") % {"reason": exc}
        ) from None
    except Exception as exc:  # noqa: BLE001 - zipfile raises many types on corrupt archives
        raise ImportFileError(
            _("The Excel file cannot be read: %(reason)s") % {"reason": type(exc).__name__}
        ) from None
    records = _xlsx_calamine_records(data) if plain else None
    if records is None:
        records = _xlsx_openpyxl_records(data)
    return _table(records)


# calamine holds the sheet's used range as one dense grid (32 bytes a cell), sized by the
# farthest cell: a stray value in XFD1048576 would ask for 550 GB and abort the process.
# 8 million cells (256 MB) hold 200,000 rows of 40 columns; larger ranges go to openpyxl,
# which streams.
_CALAMINE_MAX_CELLS = 8_000_000
_FORMULA_RE = re.compile(rb"<f[\s/>]")
# A prefixed cell, row or value element (as "<x:c", "</x:v>").
_PREFIXED_RE = re.compile(rb":(?:c|row|v|f|is|t|r)[\s/>]")
# References in double quotes, as spreadsheet programs write them (others: openpyxl).
_REF_LETTERS_RE = re.compile(rb' r="([A-Za-z]+)')
_REF_NUMBER_RE = re.compile(rb' r="[A-Za-z]*([0-9]+)')
_ENCODING_RE = re.compile(rb"<\?xml[^>]*encoding=[\"']([\w.-]+)")


def _xlsx_calamine_reads(archive) -> bool:
    """Whether calamine reads every worksheet in ``archive`` as openpyxl would, and safely.

    Not a parse: a few searches of each sheet's text for what calamine reads otherwise
    (formulas, error values, an encoding other than UTF-8, prefixed elements) and the
    reach of its cell references (the size of calamine's grid). Any doubt: openpyxl.
    """
    from openpyxl.utils.cell import column_index_from_string

    too_big = 8 * max_file_bytes()
    for info in archive.infolist():
        if info.is_dir():
            continue
        if info.file_size > too_big:
            return False
        part = archive.read(info)
        if b"\x00" in part[:4] or part[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return False  # UTF-16 (calamine reads such a sheet as empty)
        declared = _ENCODING_RE.match(part, 3 if part.startswith(codecs.BOM_UTF8) else 0)
        if declared and declared[1].lower() not in (b"utf-8", b"utf8"):
            return False
        start = part.find(b"<sheetData")
        if start == -1:
            if b"sheetData" in part:
                return False  # a prefixed namespace
            continue  # not a sheet
        end = part.find(b"</sheetData>", start)
        end = len(part) if end == -1 else end
        if (
            _FORMULA_RE.search(part, start, end)
            or part.find(b't="e"', start, end) != -1
            or part.find(b"t='e'", start, end) != -1
            or _PREFIXED_RE.search(part, start, end)
            or part.find(b" r='", start, end) != -1
        ):
            return False
        # The grid's reach: the farthest reference, plus one step for each row or cell
        # written without a reference (counted generously: "<c" also starts "<color").
        letters = _REF_LETTERS_RE.findall(part, start, end)
        numbers = _REF_NUMBER_RE.findall(part, start, end)
        unreferenced_cells = max(part.count(b"<c", start, end) - len(letters), 0)
        unreferenced_rows = max(part.count(b"<row", start, end) - len(numbers) + len(letters), 0)
        try:
            width = max((column_index_from_string(c.decode()) for c in set(letters)), default=0)
        except ValueError:
            return False  # not a column (more than three letters)
        height = max(map(int, set(numbers)), default=0)
        if (width + unreferenced_cells) * (height + unreferenced_rows) > _CALAMINE_MAX_CELLS:
            return False
    return True


# A whole number written as "7" is an int in openpyxl, a float in calamine; above 2**53 a
# float no longer holds every whole number.
_EXACT_FLOAT = 2**53


def _openpyxl_value(value: Any) -> Any:
    """A non-text cell value from calamine as openpyxl gives it: whole numbers as int,
    dates by number format as midnight datetimes."""
    kind = type(value)
    if kind is float:
        if value.is_integer() and -_EXACT_FLOAT < value < _EXACT_FLOAT:
            return int(value)
    elif kind is datetime.date:
        return datetime.datetime(value.year, value.month, value.day)
    return value


def _xlsx_calamine_records(data: bytes) -> list[tuple[int, list[Any]]] | None:
    """The first worksheet's non-blank rows by calamine, or None for openpyxl to read the
    file (or to say why it cannot). Empty cells are ""."""
    from python_calamine import CalamineError, CalamineWorkbook, SheetTypeEnum

    records: list[tuple[int, list[Any]]] = []
    limit = max_rows() + 1
    try:
        with CalamineWorkbook.from_object(io.BytesIO(data)) as book:
            index = next(
                (
                    i
                    for i, sheet in enumerate(book.sheets_metadata)
                    if sheet.typ == SheetTypeEnum.WorkSheet
                ),
                None,
            )
            if index is None:
                return None
            sheet = book.get_sheet_by_index(index)
            # Rows come from the first; columns from the first used one.
            skipped = [None] * sheet.start[1] if sheet.start else []
            for line, row in enumerate(sheet.iter_rows(), 1):
                if row.count("") == len(row):
                    continue
                # Each row as long as its last value, as the openpyxl path reads it: the grid
                # pads every row to the sheet's width, and a header so padded would take
                # cells beyond it as columns without a name (ignored) instead of an error.
                while row[-1] == "":
                    row.pop()
                cells = [v if type(v) is str else _openpyxl_value(v) for v in row]
                records.append((line, skipped + cells if skipped else cells))
                if len(records) > limit:
                    break
    except CalamineError:
        return None
    return records


def _xlsx_openpyxl_records(data: bytes) -> list[tuple[int, list[Any]]]:
    """The first worksheet's non-blank rows by openpyxl's read-only mode, a formula Excel
    never calculated as ``_UncalculatedFormula``: two passes, the cached values and the
    formulas (both read None for such a cell)."""
    import zipfile

    from openpyxl import load_workbook

    try:
        values_book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formula_book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise ImportFileError(
            _("The Excel file cannot be read: %(reason)s") % {"reason": exc}
        ) from None
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types on corrupt files
        raise ImportFileError(
            _("The Excel file cannot be read: %(reason)s") % {"reason": type(exc).__name__}
        ) from None
    records: list[tuple[int, list[Any]]] = []
    limit = max_rows() + 1
    try:
        if not values_book.worksheets:
            raise ImportFileError(_("The file is empty."))
        sheets = [values_book.worksheets[0], formula_book.worksheets[0]]
        for sheet in sheets:
            # Each row as long as its own cells: the stated dimension (or a stray far cell)
            # would pad every row to the sheet's width.
            sheet.reset_dimensions()
        pairs = zip(*(s.iter_rows(values_only=True) for s in sheets), strict=False)
        for line, (row, formula_row) in enumerate(pairs, 1):
            cells: list[Any] = list(row)
            for i, (value, formula) in enumerate(zip(row, formula_row, strict=False)):
                if value is None and isinstance(formula, str) and formula.startswith("="):
                    cells[i] = _UncalculatedFormula(formula)
            if _blank(cells):
                continue
            records.append((line, cells))
            if len(records) > limit:
                break
    except ImportFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt sheet XML
        raise ImportFileError(
            _("The Excel file cannot be read: %(reason)s") % {"reason": type(exc).__name__}
        ) from None
    finally:
        values_book.close()
        formula_book.close()
    return records


@dataclass(frozen=True)
class _UncalculatedFormula:
    formula: str


def _blank(cells: Iterable[Any]) -> bool:
    return all(cell_text(c) == "" for c in cells if not isinstance(c, _UncalculatedFormula)) and (
        not any(isinstance(c, _UncalculatedFormula) for c in cells)
    )


def _table(records: list[tuple[int, list[Any]]]) -> Table:
    # Leading blank lines are skipped; the header's own line number is kept as is.
    while records and _blank(records[0][1]):
        records.pop(0)
    if not records:
        raise ImportFileError(_("The file is empty."))
    header_line, header_cells = records[0]
    if header_line != 1:
        records = [(line - header_line + 1, cells) for line, cells in records]
    header = [cell_text(c) for c in records[0][1]]
    rows = [(line, cells) for line, cells in records[1:] if not _blank(cells)]
    if not rows:
        raise ImportFileError(_("The file has a header row but no data rows."))
    if len(rows) > max_rows():
        raise ImportFileError(
            _("The file has more than %(max)d rows; split it into smaller files.")
            % {"max": max_rows()}
        )
    return Table(header=header, rows=rows)


def read_table(data: bytes, filename: str = "") -> Table:
    """Read an uploaded file's bytes into a header and numbered rows, or ImportFileError."""
    if not data:
        raise ImportFileError(_("The file is empty."))
    if len(data) > max_file_bytes():
        raise ImportFileError(
            _("The file is larger than %(size)d MB.") % {"size": max_file_bytes() // (1024 * 1024)}
        )
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            _("Old Excel files (.xls) are not supported; save the file as .xlsx or CSV.")
        )
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise ImportFileError(_("This file is not a valid Excel (.xlsx) file."))
    return _read_csv(data)


# --- bulk writes into live tables -----------------------------------------------------------
# An import writes tens of thousands of rows into tables others use at the same time: the
# rows go in as prepared tuples (COPY on PostgreSQL, one executemany on SQLite) inside the
# caller's transaction, with the indexes and triggers in place. Django's bulk_create would
# prepare every value of every row through the field classes and split SQLite inserts into
# statements of 999 parameters.


def table_ids_reserve(model: type[models.Model], count: int) -> list[int]:
    """``count`` new primary keys for ``model``, ascending, inside the caller's transaction.

    PostgreSQL: from the table's identity sequence (never handed out twice). SQLite: after
    the largest id ever used (AUTOINCREMENT's own rule); only one connection writes at a
    time, so the caller must already hold the write lock (an IMMEDIATE transaction, or any
    write made earlier in it).
    """
    if count <= 0:
        return []
    table = model._meta.db_table
    column = str(model._meta.pk.column)
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, column, count],
            )
            return sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            f"SELECT MAX(COALESCE((SELECT MAX({qn(column)}) FROM {qn(table)}), 0), "
            "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0))",
            [table],
        )
        start = cursor.fetchone()[0] + 1
    return list(range(start, start + count))


def table_rows_insert(table: str, columns: list[str], rows: list[tuple]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order, values as ``db_value`` gives them)."""
    if not rows:
        return 0
    qn = connection.ops.quote_name
    names = ", ".join(qn(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # Multi-row statements, as many rows as SQLite takes parameters: each statement
            # of a transaction that may fail halfway (a unique key, a trigger) keeps a journal
            # of the pages it changes, to undo just itself. One row per statement
            # (executemany) journalled every page of the table and its 25 indexes again for
            # each row: 150 KB written per customer to a temporary file.
            per_statement = max(1, _sqlite_max_params(cursor) // len(columns))
            row_marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
            head = f"INSERT INTO {qn(table)} ({names}) VALUES "
            start = 0
            while start < len(rows):
                # Full statements, then a large rest as a multiple of 64 rows and what is
                # left: the connection keeps each distinct statement text prepared (the last
                # 128; 2.7 MB for 780 customers), so few large sizes, not one per remainder.
                left = len(rows) - start
                size = min(left, per_statement)
                if (
                    size == left
                    and size > _SQLITE_ROWS_STEP
                    and size * len(columns) > _SQLITE_SPLIT_PARAMS
                ):
                    size -= size % _SQLITE_ROWS_STEP
                chunk = rows[start : start + size]
                start += size
                # Django's cursor: logged like any query, "%s" turned into "?".
                cursor.execute(
                    head + ", ".join([row_marks] * size), [value for row in chunk for value in row]
                )
            return len(rows)
        sql = f"COPY {qn(table)} ({names}) FROM STDIN"
        started = time.monotonic()
        # The psycopg cursor under Django's wrapper; its errors raised as Django's, so a
        # caller's ``except DatabaseError`` sees them.
        with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        if connection.queries_logged:
            connection.queries_log.append(
                {"sql": f"{len(rows)} rows: {sql}", "time": f"{time.monotonic() - started:.3f}"}
            )
    return len(rows)


# A last statement of more parameters than this is cut to a multiple of 64 rows (and the
# few rows left): statements of up to 4,096 parameters (about 0.35 MB prepared) take any size.
_SQLITE_ROWS_STEP = 64
_SQLITE_SPLIT_PARAMS = 4096


def _sqlite_max_params(cursor) -> int:
    """The parameters one SQLite statement is given: SQLite's limit (32,766 by default since
    3.32; Django's feature flag says 999 for older builds), at most 32,766, which keeps the
    statement's text well under SQLite's 1 MB."""
    raw = getattr(cursor.cursor, "connection", None)
    try:
        limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
    except (AttributeError, sqlite3.Error):
        limit = connection.features.max_query_params
    return min(limit, 32_766)


def model_columns(model: type[models.Model], names: Iterable[str]) -> list[str]:
    """The database columns of ``model``'s fields ``names``, for ``table_rows_insert``."""
    fields = {f.name: f for f in model._meta.concrete_fields}
    return [str(fields[name].column) for name in names]


def db_datetime(value: datetime.datetime | None) -> Any:
    """A timestamp as ``table_rows_insert`` takes it (SQLite stores naive UTC text)."""
    if value is None or connection.vendor == "postgresql":
        return value
    return str(value.astimezone(datetime.UTC).replace(tzinfo=None))


def db_json(value: Any) -> str:
    """A JSON column's value as ``table_rows_insert`` takes it (text on both databases)."""
    return json.dumps(value)


# --- importers and the registry -------------------------------------------------------------


class Importer:
    """A module's import: its columns and the hooks that call the module's services.

    One instance serves one run: it carries the acting user, the duplicate policy and
    caches (dictionary items, users) for that run.
    """

    name: ClassVar[str] = ""
    model: ClassVar[type[models.Model]]
    module: ClassVar[str] = ""
    columns: ClassVar[list[ImportColumn]] = []
    # The URL name of the module's list page, for "back to the list" links.
    list_url_name: ClassVar[str] = ""
    # Add the model's CustomFieldDefinitions as extra columns.
    with_custom_fields: ClassVar[bool] = True
    # Headers accepted and ignored (the export's read-only columns), so an exported file
    # can be edited and imported again.
    ignored_headers: ClassVar[list[Any]] = []

    def __init__(self, *, user, duplicate_policy: str = ImportJob.DuplicatePolicy.SKIP):
        self.user = user
        self.duplicate_policy = duplicate_policy
        self._choice_maps: dict[str, dict[str, Any]] = {}
        # Cells of a choice column repeat: each distinct text is looked up once.
        self._choice_cells: dict[str, dict[str, Any]] = {}
        self._custom_defs: list[CustomFieldDefinition] | None = None
        self._columns: list[ImportColumn] | None = None
        self._row_plans: dict[int, tuple[Any, list[tuple[int, ImportColumn]], dict[str, Any]]] = {}
        self._max_cell = max_cell_chars()
        self.phases = Phases()

    # -- hooks modules override --

    def find_duplicate(self, row: dict[str, Any]):
        """The existing record this row duplicates, or None. May raise RowError."""
        return None

    def create(self, row: dict[str, Any], *, actor):
        raise NotImplementedError

    def update(self, obj, row: dict[str, Any], *, actor):
        raise NotImplementedError

    def clean_row(self, row: dict[str, Any]) -> None:
        """Cross-column checks after every cell parsed; raise RowError."""

    def write_batch(self, rows: list[tuple[int, dict[str, Any]]]) -> list[str | Exception] | None:
        """Write many parsed ``(line, row)`` at once, with the outcome ``_write_row`` would
        give each row in turn: "created", "updated", "skipped" or the exception refusing it.

        The default (None) has no batch path: rows go one by one through ``create`` and
        ``update``. An importer overriding it checks and writes a batch in a few queries;
        the caller runs it in a savepoint and, on a database error, replays the batch row
        by row so the error names its row.
        """
        return None

    # -- shared --

    @classmethod
    def title(cls) -> str:
        return str(cls.model._meta.verbose_name_plural)

    def check_permissions(self) -> None:
        require_perm(self.user, f"{self.module}.add")
        if self.duplicate_policy == ImportJob.DuplicatePolicy.UPDATE:
            require_perm(self.user, f"{self.module}.change")

    def custom_field_definitions(self) -> list[CustomFieldDefinition]:
        if not self.with_custom_fields:
            return []
        if self._custom_defs is None:
            self._custom_defs = list(
                CustomFieldDefinition.objects.filter(
                    model=self.model._meta.label_lower, is_active=True
                ).order_by("sort_order", "id")
            )
        return self._custom_defs

    def get_columns(self) -> list[ImportColumn]:
        # Asked for every row: built once per run (the definitions do not change meanwhile).
        if self._columns is None:
            self._columns = self._build_columns()
        return self._columns

    def _build_columns(self) -> list[ImportColumn]:
        columns = list(self.columns)
        for definition in self.custom_field_definitions():
            kinds: dict[str, str] = {
                CustomFieldType.NUMBER: ColumnType.DECIMAL,
                CustomFieldType.DATE: ColumnType.DATE,
                CustomFieldType.CHOICE: ColumnType.CHOICE,
            }
            kind = kinds.get(definition.field_type, ColumnType.TEXT)
            columns.append(
                ImportColumn(
                    key=f"cf_{definition.key}",
                    label=_CustomLabel(definition.label, definition.label_en),
                    required=definition.required,
                    type=kind,
                    choices=[_choice_pair(c) for c in definition.choices or []],
                    custom_field=True,
                )
            )
        return columns

    def match_header(self, header: list[str]) -> list[ImportColumn | None]:
        """The column of each header cell; ImportFileError for unknown or missing ones."""
        columns = self.get_columns()
        by_name: dict[str, ImportColumn] = {}
        for column in columns:
            for name in column.header_names():
                by_name.setdefault(name, column)
        ignored = {normalise_header(key) for key in self.ignored_headers}
        for label in self.ignored_headers:
            for code, _name in settings.LANGUAGES:
                with translation.override(code):
                    ignored.add(normalise_header(str(label)))
        matched: list[ImportColumn | None] = []
        seen: set[str] = set()
        unknown: list[str] = []
        for cell in header:
            if not normalise_header(cell):
                matched.append(None)  # a blank header cell: Excel's trailing empty columns
                continue
            found = by_name.get(normalise_header(cell))
            if found is None and normalise_header(cell) in ignored:
                matched.append(None)
                continue
            if found is None:
                unknown.append(cell)
                matched.append(None)
                continue
            if found.key in seen:
                raise ImportFileError(
                    _("The column “%(column)s” appears twice.") % {"column": cell}
                )
            seen.add(found.key)
            matched.append(found)
        if unknown:
            raise ImportFileError(
                _("Unknown columns: %(columns)s. Download the template to see the columns.")
                % {"columns": ", ".join(f"“{u[:50]}”" for u in unknown[:10])}
            )
        missing = [str(c.label) for c in columns if c.required and c.key not in seen]
        if missing:
            raise ImportFileError(
                _("Required columns are missing: %(columns)s.") % {"columns": ", ".join(missing)}
            )
        return matched

    def _choice_map(self, column: ImportColumn) -> dict[str, Any]:
        if column.key not in self._choice_maps:
            mapping: dict[str, Any] = {}
            if column.dictionary:
                from kehu.system.selectors import dictionary_items

                for item in dictionary_items(column.dictionary):
                    for name in (item.value, item.label, item.label_en):
                        if name:
                            mapping.setdefault(_norm(name), item)
            else:
                choices = column.choices() if callable(column.choices) else column.choices or []
                for value, label in choices:
                    mapping.setdefault(_norm(value), value)
                    for code, _name in settings.LANGUAGES:
                        with translation.override(code):
                            mapping.setdefault(_norm(str(label)), value)
            self._choice_maps[column.key] = mapping
        return self._choice_maps[column.key]

    def parse_cell(self, column: ImportColumn, raw: Any) -> Any:
        if type(raw) is str:  # most cells: what cell_text would give, sooner
            text = raw.strip()
        elif isinstance(raw, _UncalculatedFormula):
            raise RowError(
                _(
                    "The cell holds a formula Excel has not calculated; "
                    "open the file in Excel, save it, and upload it again."
                )
            )
        else:
            text = cell_text(raw)
        if len(text) > self._max_cell:
            raise RowError(
                _("The cell is longer than %(max)d characters.") % {"max": max_cell_chars()}
            )
        if text == "":
            if column.required:
                raise RowError(_("This column is required."))
            if column.many:
                return []
            return "" if column.type == ColumnType.TEXT and not column.dictionary else None
        if column.max_length and len(text) > column.max_length:
            raise RowError(
                _("At most %(max)d characters (this cell has %(length)d).")
                % {"max": column.max_length, "length": len(text)}
            )
        if column.many:
            parts = [p.strip() for p in _MANY_SPLIT_RE.split(text) if p.strip()]
            return [self._parse_one(column, p, p) for p in parts]
        return self._parse_one(column, raw, text)

    def _parse_one(self, column: ImportColumn, raw: Any, text: str) -> Any:
        if column.parse is not None:
            return column.parse(text)
        kind = column.type
        if kind == ColumnType.TEXT and not column.dictionary:
            return text
        if kind == ColumnType.INT:
            return parse_int(raw, text)
        if kind == ColumnType.DECIMAL:
            return parse_decimal(raw, text)
        if kind == ColumnType.DATE:
            return parse_date(raw, text)
        if kind == ColumnType.EMAIL:
            return parse_email(text)
        if kind == ColumnType.PHONE:
            return parse_phone(text)
        if kind == ColumnType.CHOICE or column.dictionary:
            seen = self._choice_cells.setdefault(column.key, {})
            try:
                found = seen[text]
            except KeyError:
                found = seen[text] = self._choice_map(column).get(_norm(text))
            if found is None:
                raise RowError(_("“%(value)s” is not one of the choices.") % {"value": text[:50]})
            return found
        return text

    def parse_row(
        self, columns: list[ImportColumn | None], cells: list[Any], line: int
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Parse one row into ``{key: value}`` (custom fields under ``custom_fields``)."""
        errors: list[dict[str, Any]] = []
        if len(cells) > len(columns) and any(cell_text(c) for c in cells[len(columns) :]):
            errors.append(
                row_error(line, "", _("This row has more cells than the header has columns."))
            )
        matched, absent = self._row_plan(columns)
        custom: dict[str, Any] = {}
        row: dict[str, Any] = {"custom_fields": custom}
        count = len(cells)
        parse_cell = self.parse_cell
        for index, column in matched:
            try:
                value = parse_cell(column, cells[index] if index < count else None)
            except RowError as exc:
                errors.append(row_error(line, column.label, exc.message))
                continue
            if column.custom_field:
                custom[column.key[3:]] = _json_value(value)
            else:
                row[column.key] = value
        for key, many in absent.items():
            row.setdefault(key, [] if many else None)
        if errors:
            return None, errors
        try:
            self.clean_row(row)
        except RowError as exc:
            return None, [row_error(line, self.column_label(exc.column), exc.message)]
        return row, []

    def _row_plan(
        self, columns: list[ImportColumn | None]
    ) -> tuple[list[tuple[int, ImportColumn]], dict[str, Any]]:
        """The file's columns by cell index, and the importer's columns the file lacks (key →
        whether the value is a list): worked out once per header, not per row."""
        plan = self._row_plans.get(id(columns))
        if plan is None or plan[0] is not columns:
            matched = [(i, c) for i, c in enumerate(columns) if c is not None]
            present = {c.key for _i, c in matched}
            absent = {
                c.key: c.many
                for c in self.get_columns()
                if c.key not in present and not c.custom_field
            }
            plan = (columns, matched, absent)
            self._row_plans[id(columns)] = plan
        return plan[1], plan[2]

    def column_label(self, key: str | None) -> str:
        if not key:
            return ""
        for column in self.get_columns():
            if key in (column.key, column.key[3:] if column.custom_field else None):
                return str(column.label)
        return str(key)

    def display(self, row: dict[str, Any]) -> list[str]:
        """A parsed row as text, in column order, for the preview table."""
        cells = []
        for column in self.get_columns():
            if column.custom_field:
                value = row.get("custom_fields", {}).get(column.key[3:])
            else:
                value = row.get(column.key)
            cells.append(_display(value))
        return cells


class _CustomLabel:
    """A custom field's label: the English one under English, the main one otherwise."""

    def __init__(self, label: str, label_en: str):
        self.label, self.label_en = label, label_en

    def __str__(self) -> str:
        if self.label_en and (translation.get_language() or "").startswith("en"):
            return self.label_en
        return self.label


def _choice_pair(choice: Any) -> tuple[Any, Any]:
    if isinstance(choice, dict):
        return choice.get("value"), choice.get("label", choice.get("value"))
    if isinstance(choice, (list, tuple)) and len(choice) == 2:
        return choice[0], choice[1]
    return choice, choice


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_display(v) for v in value)
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def row_error(line: int | None, column: Any, message: Any) -> dict[str, Any]:
    return {"line": line, "column": str(column or ""), "message": str(message)}


_registry: dict[str, type[Importer]] = {}
_discovered = False


def register_importer(cls: type[Importer]) -> type[Importer]:
    """Class decorator: make an importer available under ``cls.name``."""
    if not cls.name:
        raise ValueError("An importer needs a name.")
    _registry[cls.name] = cls
    return cls


def get_importer(name: str) -> type[Importer] | None:
    global _discovered
    if not _discovered:
        # Importers live in each app's imports.py; load them on first use.
        autodiscover_modules("imports")
        _discovered = True
    return _registry.get(name)


# --- running an import ----------------------------------------------------------------------


class Phases:
    """Where an import's time went: wall-clock and CPU seconds per named phase ("read",
    "parse", "rows"; an importer's ``write_batch`` may add its own inside "rows")."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def measure(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu


@dataclass
class ImportResult:
    status: str
    total_rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    message: str = ""
    dry_run: bool = False
    phases: Phases | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "total_rows": self.total_rows,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "errors": self.errors,
            "message": self.message,
        }


class _Rollback(Exception):
    """Leaves an all-or-nothing (or dry run) transaction without committing it."""


def _service_error_row(importer: Importer, line: int, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, RowError):
        return row_error(line, importer.column_label(exc.column), exc.message)
    if isinstance(exc, ServiceError):
        return row_error(line, importer.column_label(exc.field), exc.message)
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            name, messages = next(iter(exc.message_dict.items()))
            column = "" if name == "__all__" else importer.column_label(name)
            return row_error(line, column, " ".join(messages))
        return row_error(line, "", " ".join(exc.messages))
    if isinstance(exc, Http404):
        return row_error(line, "", _("The record this row refers to was not found."))
    if isinstance(exc, IntegrityError):
        return row_error(line, "", _("The row conflicts with an existing record."))
    return row_error(line, "", _("The row could not be saved."))


# A service saying 404 means the row names a record outside the user's scope.
ROW_EXCEPTIONS = (RowError, ServiceError, ValidationError, DatabaseError, Http404)


def _write_row(importer: Importer, row: dict[str, Any]) -> str:
    """Apply one row per the duplicate policy; returns "created", "updated" or "skipped"."""
    policy = importer.duplicate_policy
    duplicate = None
    if policy != ImportJob.DuplicatePolicy.CREATE:
        duplicate = importer.find_duplicate(row)
    if duplicate is not None:
        if policy == ImportJob.DuplicatePolicy.SKIP:
            return "skipped"
        importer.update(duplicate, row, actor=importer.user)
        return "updated"
    importer.create(row, actor=importer.user)
    return "created"


def import_run(
    *,
    importer: Importer,
    data: bytes,
    filename: str = "",
    mode: str = ImportJob.Mode.ALL_OR_NOTHING,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate and (unless ``dry_run``) write every row of ``data``.

    Permissions are checked first: a refused user changes nothing. A dry run executes the
    rows through the services inside a transaction that is rolled back, so the preview
    reports every error the real import would meet, and writes nothing. File-level
    problems raise ImportFileError.
    """
    importer.check_permissions()
    phases = importer.phases
    with phases.measure("read"):
        table = read_table(data, filename)
    columns = importer.match_header(table.header)
    result = ImportResult(status=ImportStatus.DONE, total_rows=len(table.rows), dry_run=dry_run)
    result.phases = phases
    result.headers = [str(c.label) for c in importer.get_columns()]
    parsed: list[tuple[int, dict[str, Any]]] = []
    with phases.measure("parse"):
        for index, (line, cells) in enumerate(table.rows, 1):
            row, errors = importer.parse_row(columns, cells, line)
            if row is not None:
                parsed.append((line, row))
                if len(result.preview) < PREVIEW_ROWS:
                    result.preview.append(importer.display(row))
            if errors:
                result.errors.extend(errors)
            if progress and mode == ImportJob.Mode.ALL_OR_NOTHING and index % BATCH_SIZE == 0:
                progress(index)
    del table  # the cells, parsed now; a 100,000-row file holds 2 million of them

    if dry_run and len(parsed) > background_threshold():
        # A preview answers within the request: every row's cells are checked, but only
        # the first rows go through the services (duplicates, business rules).
        _run_in_one_transaction(importer, parsed[: background_threshold()], result, commit=False)
        result.message = _(
            "Every row was checked; the first %(count)d were also checked against existing "
            "records. The rest are checked when you import."
        ) % {"count": background_threshold()}
    elif dry_run or mode == ImportJob.Mode.ALL_OR_NOTHING:
        with _sqlite_import_pragmas():
            _run_in_one_transaction(
                importer, parsed, result, commit=not dry_run and not result.errors
            )
    else:
        with _sqlite_import_pragmas():
            _run_in_batches(importer, parsed, result, progress)
    result.errors.sort(key=lambda e: e["line"] or 0)
    if dry_run:
        result.status = "preview"
    elif mode == ImportJob.Mode.ALL_OR_NOTHING and result.errors:
        result.status = ImportStatus.FAILED
        result.created = result.updated = result.skipped = 0
        result.message = _("Nothing was imported: %(count)d rows have errors.") % {
            "count": len({e["line"] for e in result.errors})
        }
    if progress:
        progress(result.total_rows)
    return result


def _apply(importer: Importer, line: int, row: dict[str, Any], result: ImportResult) -> None:
    try:
        with transaction.atomic():  # a savepoint: a failed row leaves the others intact
            outcome = _write_row(importer, row)
    except ROW_EXCEPTIONS as exc:
        result.errors.append(_service_error_row(importer, line, exc))
        return
    setattr(result, outcome, getattr(result, outcome) + 1)


def _apply_batch(
    importer: Importer, rows: list[tuple[int, dict[str, Any]]], result: ImportResult
) -> None:
    outcomes: list[str | Exception] | None
    try:
        with transaction.atomic():  # a savepoint: a failed batch leaves the others intact
            outcomes = importer.write_batch(rows)
    except DatabaseError:
        outcomes = None  # something the checks did not foresee: row by row, to name the row
    if outcomes is None:
        for line, row in rows:
            _apply(importer, line, row, result)
        return
    for (line, _row), outcome in zip(rows, outcomes, strict=True):
        if isinstance(outcome, Exception):
            result.errors.append(_service_error_row(importer, line, outcome))
        else:
            setattr(result, outcome, getattr(result, outcome) + 1)


# The page cache of an import's SQLite connection (KiB; SQLite's default is 2 MB). The
# customer table's 25 indexes take new keys all over them: with 2 MB, pages changed by a
# batch were pushed out to the write-ahead log before the commit and read back, over and
# over (100,000 customers: 4.9 GB written instead of 2.5). A batch of 2,000 rows dirties at
# most a few thousand pages of each randomly keyed index; 64 MB already held a batch of a
# 100,000-row import (256 MB: the same writes, 200 MB more memory). Taken only as pages
# are read, given back after the import.
SQLITE_IMPORT_CACHE_KIB = 128 * 1024


@contextlib.contextmanager
def _sqlite_import_pragmas():
    """A larger page cache and statement journals in memory for the import's connection
    (SQLite; restored afterwards). The journal a statement keeps to undo itself spills to a
    temporary file past 64 KB; temp_store can only change outside a transaction."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        cache_size = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = -{int(SQLITE_IMPORT_CACHE_KIB)}")
        temp_store = None
        if not connection.in_atomic_block:
            cursor.execute("PRAGMA temp_store")
            temp_store = cursor.fetchone()[0]
            cursor.execute("PRAGMA temp_store = MEMORY")
    try:
        yield
    finally:
        if connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_size = {int(cache_size)}")
                if temp_store is not None and not connection.in_atomic_block:
                    cursor.execute(f"PRAGMA temp_store = {int(temp_store)}")


def _run_in_one_transaction(
    importer: Importer, parsed: list[tuple[int, dict[str, Any]]], result: ImportResult, commit: bool
) -> None:
    """All rows in one transaction; rolled back unless ``commit`` and no row failed.

    Rows run even when earlier ones failed, so one preview lists every error.
    """
    try:
        with importer.phases.measure("rows"), transaction.atomic():
            for start in range(0, len(parsed), BATCH_SIZE):
                _apply_batch(importer, parsed[start : start + BATCH_SIZE], result)
            if not commit or result.errors:
                raise _Rollback
    except _Rollback:
        pass


def _run_in_batches(
    importer: Importer,
    parsed: list[tuple[int, dict[str, Any]]],
    result: ImportResult,
    progress: Callable[[int], None] | None,
) -> None:
    for start in range(0, len(parsed), BATCH_SIZE):
        with importer.phases.measure("rows"), transaction.atomic():  # "rows": with the commit
            _apply_batch(importer, parsed[start : start + BATCH_SIZE], result)
        if progress:
            # Rows that failed to parse count as handled from the start.
            failed_parsing = result.total_rows - len(parsed)
            progress(failed_parsing + min(start + BATCH_SIZE, len(parsed)))


# --- jobs -----------------------------------------------------------------------------------


def importer_for(name: str, *, user, duplicate_policy: str = ImportJob.DuplicatePolicy.SKIP):
    cls = get_importer(name)
    if cls is None:
        raise ServiceError(_("Unknown import type."), code="not_found")
    return cls(user=user, duplicate_policy=duplicate_policy)


def import_job_create(*, user, importer: str, file, mode: str, duplicate_policy: str) -> ImportJob:
    """Store an upload as a pending job. Permissions and the file size are checked first."""
    if mode not in ImportJob.Mode.values:
        raise ServiceError(_("Choose a valid import mode."), field="mode")
    if duplicate_policy not in ImportJob.DuplicatePolicy.values:
        raise ServiceError(_("Choose a valid duplicate policy."), field="duplicate_policy")
    importer_for(importer, user=user, duplicate_policy=duplicate_policy).check_permissions()
    if file is None:
        raise ImportFileError(_("Choose a file."))
    if file.size == 0:
        raise ImportFileError(_("The file is empty."))
    if file.size > max_file_bytes():
        raise ImportFileError(
            _("The file is larger than %(size)d MB.") % {"size": max_file_bytes() // (1024 * 1024)}
        )
    original_name = (getattr(file, "name", "") or "import")[-255:]
    job = ImportJob(
        user=user,
        importer=importer,
        original_name=original_name,
        mode=mode,
        duplicate_policy=duplicate_policy,
    )
    job.file.save(_safe_filename(original_name), file, save=False)
    job.save()
    return job


def _safe_filename(name: str) -> str:
    base = re.sub(r"[^\w.\-]", "_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[-80:]
    return base or "import"


def _job_bytes(job: ImportJob) -> bytes:
    with job.file.open("rb") as handle:
        return handle.read()


def import_job_preview(*, job: ImportJob) -> ImportResult:
    """Dry-run a pending job: counts, the first rows and every error; nothing is written."""
    importer = importer_for(job.importer, user=job.user, duplicate_policy=job.duplicate_policy)
    try:
        result = import_run(
            importer=importer,
            data=_job_bytes(job),
            filename=job.original_name,
            mode=job.mode,
            dry_run=True,
        )
    except ImportFileError as exc:
        result = ImportResult(status=ImportStatus.FAILED, message=str(exc.message), dry_run=True)
    ImportJob.objects.filter(pk=job.pk).update(
        total_rows=result.total_rows, error_count=len(result.errors)
    )
    job.total_rows = result.total_rows
    return result


def import_job_start(*, job: ImportJob) -> ImportJob:
    """Run a pending job: inline when small, as a background task when large.

    The job moves from pending to running in one conditional update, so a double click
    (or two API calls) can never import the same file twice.
    """
    importer = importer_for(job.importer, user=job.user, duplicate_policy=job.duplicate_policy)
    importer.check_permissions()
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.PENDING).update(
        status=ImportStatus.RUNNING, processed_rows=0
    )
    if not claimed:
        raise ServiceError(_("This import has already been started."), code="conflict")
    data = _job_bytes(job)
    try:
        table = read_table(data, job.original_name)
    except ImportFileError as exc:
        _finish(job, ImportResult(status=ImportStatus.FAILED, message=str(exc.message)))
        job.refresh_from_db()
        return job
    ImportJob.objects.filter(pk=job.pk).update(total_rows=len(table.rows))
    if len(table.rows) > background_threshold():
        from kehu.core.tasks import import_job_run_task

        ImportJob.objects.filter(pk=job.pk).update(message=_("Queued"))
        job_id = job.pk
        transaction.on_commit(lambda: import_job_run_task.enqueue(job_id))
    else:
        import_job_execute(job_id=job.pk)
    job.refresh_from_db()
    return job


def import_job_execute(*, job_id: int) -> ImportJob:
    """Do the work of a running job (inline or in the worker) and record the outcome."""
    job = ImportJob.objects.select_related("user").get(pk=job_id)
    if job.status != ImportStatus.RUNNING or job.finished_at is not None:
        return job  # already done: a retried task must not import twice
    ImportJob.objects.filter(pk=job.pk).update(message="")
    importer = importer_for(job.importer, user=job.user, duplicate_policy=job.duplicate_policy)

    def progress(count: int) -> None:
        ImportJob.objects.filter(pk=job_id).update(processed_rows=count)

    try:
        result = import_run(
            importer=importer,
            data=_job_bytes(job),
            filename=job.original_name,
            mode=job.mode,
            progress=progress,
        )
    except ServiceError as exc:  # file-level errors and a permission withdrawn meanwhile
        result = ImportResult(status=ImportStatus.FAILED, message=str(exc.message))
    _finish(job, result)
    job.refresh_from_db()
    return job


def _finish(job: ImportJob, result: ImportResult) -> None:
    from kehu.system.services import audit_log_record

    ImportJob.objects.filter(pk=job.pk).update(
        status=result.status,
        total_rows=result.total_rows,
        processed_rows=result.total_rows,
        created_count=result.created,
        updated_count=result.updated,
        skipped_count=result.skipped,
        error_count=len(result.errors),
        errors=result.errors,
        message=result.message[:500],
        finished_at=timezone.now(),
    )
    importer_cls = get_importer(job.importer)
    model = importer_cls.model._meta.label_lower if importer_cls else job.importer
    # One summary row per import; each record created or changed has its own row from
    # the module's services.
    audit_log_record(
        user=job.user,
        action="create",
        model=model,
        note=(
            f"import #{job.pk} {job.original_name}: {result.status}, "
            f"rows {result.total_rows}, created {result.created}, updated {result.updated}, "
            f"skipped {result.skipped}, errors {len(result.errors)}"
        ),
    )


def import_job_get_for(*, user, pk) -> ImportJob:
    """A user's own job; anyone else's is a 404, like a missing one."""
    try:
        return ImportJob.objects.get(pk=pk, user=user)
    except (ImportJob.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(str(_("Not found."))) from exc


def import_job_list_for(*, user, importer: str | None = None):
    queryset = ImportJob.objects.filter(user=user)
    if importer:
        queryset = queryset.filter(importer=importer)
    return queryset


# --- templates ------------------------------------------------------------------------------


def import_template_rows(importer: Importer) -> list[list[Any]]:
    columns = importer.get_columns()
    header = [f"{c.label} *" if c.required else str(c.label) for c in columns]
    example = [_display(c.example) if c.example != "" else "" for c in columns]
    return [header, example]


def import_template_response(importer: Importer, fmt: str):
    """The file to fill in: the header row (required columns marked *) and one example."""
    from django.http import HttpResponse

    rows = import_template_rows(importer)
    name = f"{importer.name}-template.{fmt}"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerows(rows)
        response = HttpResponse(
            "\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8"
        )
    elif fmt == "xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        sheet.title = importer.name[:31]
        for row in rows:
            # Text cells, so an example like "=x" or a leading zero survives as typed.
            sheet.append([str(v) for v in row])
        out = io.BytesIO()
        workbook.save(out)
        response = HttpResponse(
            out.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        raise ServiceError(_("Unknown format."), field="format")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


MODE_EXPLANATIONS = {
    ImportJob.Mode.ALL_OR_NOTHING: gettext_lazy(
        "All or nothing: if any row has an error, nothing is imported."
    ),
    ImportJob.Mode.GOOD_ROWS: gettext_lazy(
        "Good rows only: the rows without errors are imported, the others are listed."
    ),
}
