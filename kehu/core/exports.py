"""One export mechanism for every list: CSV or XLSX, scoped, field-policy aware, logged."""

from __future__ import annotations

import csv
import datetime
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError
from kehu.core.fields import apply_field_policy, field_policy_for
from kehu.core.permissions import require_perm

FORMATS = ("csv", "xlsx")


# A finished XLSX up to this size is sent from memory (a plain response); a larger one is
# streamed from its temporary file.
XLSX_IN_MEMORY_BYTES = 4 * 1024 * 1024
# Rows read per query while exporting: memory stays flat however long the list is.
EXPORT_CHUNK = 2000


@dataclass
class ExportColumn:
    field: str
    label: Any
    value: Callable[[Any], Any] | None = None
    # Applied to the export's queryset, to load what ``value`` reads in the same query
    # (a per-chunk prefetch would cost a query per chunk; an annotation costs none).
    prepare: Callable[[QuerySet], QuerySet] | None = None

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
    """Stream ``queryset`` as CSV (UTF-8 with BOM, so Excel opens Chinese right) or XLSX.

    A QuerySet is read in chunks of ``EXPORT_CHUNK`` after the columns' ``prepare``; any
    other iterable is read as given. Memory stays flat as the rows grow.
    """
    require_perm(user, f"{module}.export")
    if fmt not in FORMATS:
        raise ServiceError(_("Unknown export format."), field="format")
    from kehu.system.services import audit_log_record

    audit_log_record(
        user=user, action="export", model=model._meta.label_lower, note=f"{filename}.{fmt}"
    )
    if isinstance(queryset, QuerySet):
        for column in columns:
            if column.prepare is not None:
                queryset = column.prepare(queryset)
        queryset = queryset.iterator(chunk_size=EXPORT_CHUNK)
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

        # Write-only mode streams rows to disk; the finished file is sent from a temporary
        # file (deleted when the response closes), never held in memory whole.
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(filename[:31])
        for row in rows:
            sheet.append(row)
        handle = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it
        try:
            workbook.save(handle)
        except BaseException:
            handle.close()
            raise
        size = handle.tell()
        handle.seek(0)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if size <= XLSX_IN_MEMORY_BYTES:
            with handle:
                response = HttpResponse(handle.read(), content_type=content_type)
        else:
            response = FileResponse(handle, content_type=content_type)
    response["Content-Disposition"] = disposition
    return response
