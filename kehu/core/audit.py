"""Audit hooks: snapshots and diffs that services hand to the operation log."""

from __future__ import annotations

import contextvars
import datetime
import decimal
import uuid
from typing import Any

from django.db import models

# The request's client address, set by AuditContextMiddleware, so services called from a
# view log it without taking a request argument.
current_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("kehu_ip", default=None)

SKIPPED_FIELDS = {"password", "version", "updated_at", "updated_by", "last_login", "access_stamp"}


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, models.fields.files.FieldFile):
        return value.name or ""
    return value


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The concrete field values of ``instance`` as JSON-safe data."""
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.name in SKIPPED_FIELDS:
            continue
        data[field.name] = _plain(getattr(instance, field.attname))
    return data


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """Field → [before, after] for every field whose value changed."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }
