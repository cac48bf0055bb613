"""One export mechanism for every list: CSV or XLSX, scoped, field-policy aware, logged."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError
from kehu.core.fields import apply_field_policy, field_policy_for
from kehu.core.permissions import require_perm

FORMATS = ("csv", "xlsx")


@dataclass
class ExportColumn:
    field: str
    label: Any
    value: Callable[[Any], Any] | None = None

    def get(self, obj) -> Any:
        raw = self.value(obj) if self.value else getattr(obj, self.field, "")
        if raw is None:
            return ""
        if isinstance(raw, datetime.datetime) and raw.tzinfo is not None:
            return timezone.localtime(raw).strftime("%Y-%m-%d %H:%M")
        return raw


def _safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in user data (CSV/formula injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_rows(*, user, model, queryset: Iterable, columns: list[ExportColumn]):
    policy = field_policy_for(user, model)
    visible = [c for c in columns if policy.get(c.field) != "hidden"]
    yield [str(c.label) for c in visible]
    for obj in queryset:
        yield [_safe_cell(apply_field_policy(model, policy, c.field, c.get(obj))) for c in visible]


class _Echo:
    def write(self, value):
        return value


def export_record_logged(*, user, obj, filename: str) -> None:
    """Log one record leaving the system as a file (a printed PDF), like list exports."""
    from kehu.system.services import audit_log_record

    audit_log_record(user=user, action="export", obj=obj, note=filename)


def export_response(
    *, user, module: str, model, queryset, columns: list[ExportColumn], fmt: str, filename: str
) -> HttpResponse | StreamingHttpResponse:
    """Stream ``queryset`` as CSV (UTF-8 with BOM, so Excel opens Chinese right) or XLSX."""
    require_perm(user, f"{module}.export")
    if fmt not in FORMATS:
        raise ServiceError(_("Unknown export format."), field="format")
    from kehu.system.services import audit_log_record

    audit_log_record(
        user=user, action="export", model=model._meta.label_lower, note=f"{filename}.{fmt}"
    )
    rows = export_rows(user=user, model=model, queryset=queryset, columns=columns)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    disposition = f'attachment; filename="{filename}-{stamp}.{fmt}"'
    if fmt == "csv":
        writer = csv.writer(_Echo())

        def stream():
            yield "\ufeff"
            for row in rows:
                yield writer.writerow(row)

        response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
            stream(), content_type="text/csv; charset=utf-8"
        )
    else:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(filename[:31])
        for row in rows:
            sheet.append(row)
        buffer = io.BytesIO()
        workbook.save(buffer)
        response = HttpResponse(
            buffer.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Content-Disposition"] = disposition
    return response
