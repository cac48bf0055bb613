"""Exports: CSV with a BOM, XLSX, formula injection neutralised, field policy, logged."""

import io
from decimal import Decimal

import openpyxl
import pytest

from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.core.exports import ExportColumn, export_response
from kehu.core.scope import visible_to
from kehu.system.models import AuditLog
from tests.testapp.factories import WidgetFactory
from tests.testapp.models import Widget

COLUMNS = [
    ExportColumn("name", "名称"),
    ExportColumn("amount", "Amount"),
    ExportColumn("phone", "Phone"),
]


def export(user, fmt, queryset=None):
    return export_response(
        user=user,
        module="customers",
        model=Widget,
        queryset=queryset if queryset is not None else visible_to(Widget.objects.all(), user),
        columns=COLUMNS,
        fmt=fmt,
        filename="widgets",
    )


def csv_text(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.fixture
def rows(org):
    WidgetFactory(name="=1+1", owner=org.sales1, amount=Decimal("10.50"))
    WidgetFactory(name="客户甲", owner=org.sales3, amount=Decimal("3.00"))
    WidgetFactory(name="@SUM(A1)", owner=org.sales1)


def test_csv_has_bom_and_neutralises_formulas(org, rows):
    response = export(org.manager, "csv")
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="widgets-' in response["Content-Disposition"]
    text = csv_text(response)
    assert text.startswith("\ufeff名称,Amount,Phone")  # Excel reads the BOM as UTF-8
    lines = text[1:].splitlines()
    assert "'=1+1,10.50,138****5678" in lines
    assert "'@SUM(A1),0.00,138****5678" in lines
    assert "客户甲,3.00,138****5678" in lines


def test_export_follows_the_data_scope(org, rows):
    # salesmgr1 (department and below at 销售一部) exports sales1's two, not sales3's.
    lines = csv_text(export(org.salesmgr1, "csv"))[1:].splitlines()
    assert len(lines) == 3
    assert not any("客户甲" in line for line in lines)


def test_xlsx_opens_and_holds_the_same_cells(org, rows):
    response = export(org.manager, "xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = workbook.active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0] == ["名称", "Amount", "Phone"]
    assert ["'=1+1", 10.5, "138****5678"] in values
    # No cell of the workbook is a formula.
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_hidden_column_is_left_out(org, rows):
    from kehu.system.models import FieldPermission

    role = org.manager.roles.get()
    FieldPermission.objects.create(
        role=role, model="testapp.widget", field="phone", access="hidden"
    )
    header = csv_text(export(org.manager, "csv"))[1:].splitlines()[0]
    assert header == "名称,Amount"


def test_without_export_permission_refused_and_not_logged(org, rows):
    # salesperson has customers.view but not customers.export
    with pytest.raises(PermissionRefused):
        export(org.sales2, "csv")
    assert not AuditLog.objects.filter(action="export").exists()


def test_unknown_format_is_a_field_error(org, rows):
    with pytest.raises(ServiceError) as refused:
        export(org.manager, "pdf")
    assert refused.value.field == "format"
    assert not AuditLog.objects.filter(action="export").exists()
