"""Shared write operations: versioned updates, soft delete and restore, document numbers."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from kehu.core.audit import diff, snapshot
from kehu.core.exceptions import ConflictError, ServiceError
from kehu.core.models import DocumentSequence
from kehu.core.reference import reference_changed

M = TypeVar("M", bound=models.Model)


def _audit(**kwargs) -> None:
    from kehu.system.services import audit_log_record

    audit_log_record(**kwargs)


def _m2m_keys(values) -> list[str]:
    return sorted(str(getattr(v, "pk", v)) for v in values)


def model_create(*, model: type[M], user, data: dict[str, Any], m2m: dict | None = None) -> M:
    """Create a record with its authors and log it; ``data`` is already validated."""
    with transaction.atomic():
        instance = model(**data)
        for name in ("created_by", "updated_by"):
            if hasattr(instance, f"{name}_id") and user is not None and user.is_authenticated:
                setattr(instance, name, user)
        instance.full_clean(validate_unique=True, validate_constraints=True)
        instance.save()
        for name, values in (m2m or {}).items():
            getattr(instance, name).set(values)
        changes = diff({}, snapshot(instance))
        for name, values in (m2m or {}).items():
            # Who got which roles is the part of a new user the operation log must show.
            changes[name] = [[], _m2m_keys(values)]
        _audit(user=user, action="create", obj=instance, changes=changes)
    return instance


def versioned_update(
    *,
    instance: M,
    user,
    expected_version: int | None,
    data: dict[str, Any],
    m2m: dict[str, Any] | None = None,
    action: str = "change",
) -> M:
    """Apply ``data`` to ``instance`` if nobody changed it since ``expected_version``.

    The version check and increment are one conditional UPDATE, so two concurrent editors
    can never both win: the second gets ``ConflictError`` (HTTP 409) and nothing changes.
    """
    model = type(instance)
    if expected_version is None:
        raise ServiceError(field="version", code="required")
    with transaction.atomic():
        # order_by("pk"): a Meta.ordering across a nullable relation (positions by their
        # department's path) would outer-join it, which PostgreSQL cannot lock FOR UPDATE.
        current = (
            model._base_manager.select_for_update().filter(pk=instance.pk).order_by("pk").first()
        )
        if current is None or getattr(current, "version", None) != expected_version:
            # Stale first: a conflict is news the user needs before any field error.
            raise ConflictError()
        before = snapshot(current)
        m2m_before = {name: _m2m_keys(getattr(current, name).all()) for name in (m2m or {})}
        for key, value in data.items():
            setattr(current, key, value)
        if hasattr(current, "updated_by_id") and user is not None and user.is_authenticated:
            current.updated_by = user  # type: ignore[attr-defined]
        current.full_clean(validate_unique=True, validate_constraints=True)
        update_fields = {
            f.attname: getattr(current, f.attname)
            for f in model._meta.concrete_fields
            if not f.primary_key and f.name != "version"
        }
        if any(f.name == "updated_at" for f in model._meta.concrete_fields):
            update_fields["updated_at"] = timezone.now()
        updated = model._base_manager.filter(pk=instance.pk, version=expected_version).update(
            version=F("version") + 1, **update_fields
        )
        if updated != 1:
            raise ConflictError()
        reference_changed(model)  # an UPDATE sends no post_save
        for name, values in (m2m or {}).items():
            getattr(current, name).set(values)
        current.refresh_from_db()
        changes = diff(before, snapshot(current))
        for name, values in (m2m or {}).items():
            # Before → after of many-to-many sets too (a role granted or taken away).
            if m2m_before[name] != _m2m_keys(values):
                changes[name] = [m2m_before[name], _m2m_keys(values)]
        if changes:
            _audit(user=user, action=action, obj=current, changes=changes)
    return current


def soft_delete(*, instance: models.Model, user) -> None:
    now = timezone.now()
    with transaction.atomic():
        updated = (
            type(instance)
            ._base_manager.filter(pk=instance.pk, deleted_at__isnull=True)
            .update(deleted_at=now, deleted_by=user)
        )
        if updated:
            instance.deleted_at, instance.deleted_by = now, user  # type: ignore[attr-defined]
            _audit(user=user, action="delete", obj=instance)


def soft_restore(*, instance: models.Model, user) -> None:
    with transaction.atomic():
        updated = (
            type(instance)
            ._base_manager.filter(pk=instance.pk, deleted_at__isnull=False)
            .update(deleted_at=None, deleted_by=None)
        )
        if updated:
            instance.deleted_at, instance.deleted_by = None, None  # type: ignore[attr-defined]
            _audit(user=user, action="restore", obj=instance)


def document_number_next(*, prefix: str, year: int | None = None, width: int = 6) -> str:
    """The next number for ``prefix`` and ``year``, e.g. ``HT-2026-000123``.

    Gap-free and unique under concurrency: the counter row is locked (PostgreSQL: row lock;
    SQLite: the IMMEDIATE transaction's write lock) and incremented inside the caller's
    transaction, so a rolled-back document gives its number back.
    """
    year = year or timezone.localdate().year
    with transaction.atomic():
        try:
            with transaction.atomic():
                DocumentSequence.objects.get_or_create(prefix=prefix, year=year)
        except IntegrityError:
            pass  # created concurrently; the locked read below waits for it
        sequence = DocumentSequence.objects.select_for_update().get(prefix=prefix, year=year)
        sequence.last_value += 1
        sequence.save(update_fields=["last_value"])
    return f"{prefix}-{year}-{sequence.last_value:0{width}d}"


def document_numbers_reserve(
    *, prefix: str, count: int, year: int | None = None, width: int = 6
) -> list[str]:
    """``count`` consecutive numbers for ``prefix`` in one locked update (bulk writers).

    The same guarantees as ``document_number_next``: the block is taken inside the
    caller's transaction, so a rollback gives every number back.
    """
    if count <= 0:
        return []
    year = year or timezone.localdate().year
    with transaction.atomic():
        try:
            with transaction.atomic():
                DocumentSequence.objects.get_or_create(prefix=prefix, year=year)
        except IntegrityError:
            pass
        sequence = DocumentSequence.objects.select_for_update().get(prefix=prefix, year=year)
        start = sequence.last_value + 1
        sequence.last_value += count
        sequence.save(update_fields=["last_value"])
    return [f"{prefix}-{year}-{n:0{width}d}" for n in range(start, start + count)]
