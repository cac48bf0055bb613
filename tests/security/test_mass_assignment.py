"""Mass assignment (issue 9): sending what the server decides changes nothing.

Every create (POST without an id) and update (PATCH) of the API is sent a valid body plus
the fields the server decides for that model: every ``editable=False`` field (numbers,
totals, version, authors, deletion, approval times …) and the owner, department, status,
pool and privilege flags where the model has them, each with a value the server would
never choose for this caller. The request may be refused (nothing written) or accepted;
if accepted, no stored field holds an injected value, and a sales document's totals are
the sum of its lines.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import models
from django.urls import resolve

from kehu.system.models import User
from tests import figures
from tests.security import snapshot
from tests.security.api_operations import Operation, write_operations
from tests.security.bodies import valid_body
from tests.security.test_refused_unchanged import _actor, _detail, _send, _target
from tests.security.write_world import world_fixture  # noqa: F401  (module-scoped)

pytestmark = pytest.mark.django_db

FIGURE = "mass-assignment fields checked"
# Decided by the server wherever the model has them (besides every editable=False field).
SERVER_FIELDS = {
    "owner",
    "department",
    "status",
    "in_pool",
    "pool_entered_at",
    "assigned_at",
    "is_superuser",
    "is_staff",
    "is_active",
    "approved_by",
    "approved_at",
    "confirmed_by",
    "confirmed_at",
    "issued_by",
    "issued_on",
    "invoice_number",
    "paid_by",
    "paid_on",
    "closed_at",
    "last_followup_at",
    "next_followup_at",
    "is_system",
    "is_default",
    "path",
    "user",
}
# Fields of the list above that are the caller's input on this endpoint (and why).
CLIENT_INPUT: dict[str, set[str]] = {
    "employees": {"status", "department", "user"},  # HR records hiring status and placement
    "positions": {"department", "is_active"},
    "sales-targets": {"department", "user"},  # whose target it is
    "users": {"department"},  # the administrator places the account
    "products": {"status"},  # the catalogue keeper lists and delists
    "departments": {"is_active"},
    "dictionary-items": {"is_active"},
    "approval-rules": {"is_active"},
    "followups": {"next_followup_at"},  # the next step the salesperson plans
}
MUTATIONS = [
    op
    for op in write_operations()
    if (op.method == "post" and not op.has_id and op.body is not None) or op.method == "patch"
]
SKIP = {
    "auth_token_obtain": "logging in stores no record from its body",
    "v1_customers_import_create": "a file upload; imported rows are the import tests' subject",
    "v1_notifications_mark_read_create": "marks the caller's notifications read; no fields",
}


def _model(op: Operation, url: str) -> type[models.Model]:
    if op.prefix == "stock-transfers":  # answers the two movements it posted
        from kehu.products.models import StockMovement

        return StockMovement
    func = resolve(url).func
    cls = func.cls  # type: ignore[attr-defined]
    queryset = getattr(cls, "queryset", None)
    if queryset is not None:
        return queryset.model
    view = cls(**func.initkwargs)  # type: ignore[attr-defined]
    view.action, view.request, view.format_kwarg, view.kwargs = "create", None, None, {}
    return view.get_serializer_class().Meta.model


def _injected(field: models.Field, world, actor) -> Any:
    """A value this caller's request could never legitimately give ``field``."""
    org = world.org
    if isinstance(field, models.ForeignKey):
        target = field.related_model
        if target is User:
            return (org.sales3 if actor.pk != org.sales3.pk else org.sales1).pk
        if target._meta.label == "hr.Department":
            return org.finance_dept.pk
        return None
    if field.choices:
        values = [value for value, _label in field.flatchoices if value != field.default]
        return values[-1] if values else None
    if isinstance(field, models.BooleanField):
        return not field.default
    if isinstance(field, models.DecimalField):
        return "987654.32"
    if isinstance(field, models.DateTimeField):
        return "2001-02-03T04:05:06Z"
    if isinstance(field, models.DateField):
        return "2001-02-03"
    if isinstance(field, models.IntegerField):
        return 987
    if isinstance(field, models.JSONField):
        return {"injected": True}
    if isinstance(field, (models.CharField, models.TextField)):
        return "INJECTED-1"
    return None


def _same(stored: Any, sent: Any) -> bool:
    if sent is None:
        return False
    if isinstance(stored, Decimal):
        return stored == Decimal(str(sent))
    if isinstance(stored, datetime.datetime):
        return stored.isoformat().startswith(str(sent)[:19])
    if isinstance(stored, datetime.date):
        return stored.isoformat() == sent
    return stored == sent


@pytest.mark.parametrize("op", MUTATIONS, ids=lambda op: op.operation_id)
def test_server_decided_fields_are_not_taken_from_the_client(op, world):
    if op.operation_id in SKIP:
        pytest.skip(SKIP[op.operation_id])
    obj, url = _target(op, world)
    actor = _actor(op, world, obj, url)
    model = _model(op, url)
    legit = CLIENT_INPUT.get(op.prefix, set())
    extras: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in legit:
            continue
        if field.editable and field.name not in SERVER_FIELDS:
            continue
        value = _injected(field, world, actor)
        if value is not None:
            extras[field.name] = value
            if isinstance(field, models.ForeignKey):
                extras[field.attname] = value
    body = {**valid_body(op, world, obj), **extras}
    if "version" in op.writable and obj is not None:
        body["version"] = valid_body(op, world, obj)["version"]  # the real one: no conflict
        extras.pop("version", None)
    before = snapshot.take() if obj is None else world.baseline
    response = _send(actor, op, url, body)
    if response.status_code >= 400:
        changes = snapshot.diff(before, snapshot.take())
        assert not changes, f"{op} refused but wrote:\n" + "\n".join(changes[:20])
        plain = _send(actor, op, url, valid_body(op, world, obj))
        assert plain.status_code < 400, (
            f"{actor.username}: {op} refuses even a plain valid body ({plain.status_code} "
            f"{_detail(plain)}): teach tests/security/bodies.py to build one"
        )
        figures.record(FIGURE, len(extras))
        return
    assert response.status_code < 300, f"{op} → {response.status_code} {_detail(response)}"
    if obj is not None:
        pks = [obj.pk]
    elif "movements" in response.data:
        pks = [movement["id"] for movement in response.data["movements"]]
    else:
        pks = [response.data.get("id")]
    assert None not in pks, f"{op}: the answer names no id: {_detail(response)}"
    for pk in pks:
        _check_stored(op, model, model._base_manager.get(pk=pk), obj, extras, actor)
    figures.record(FIGURE, len(extras))


def _check_stored(op, model, stored, obj, extras, actor) -> None:
    taken = {}
    for name, value in extras.items():
        attname = model._meta.get_field(name).attname
        if name.endswith("_id") or not _same(getattr(stored, attname), value):
            continue
        # An update leaves a field alone: it only counts when the value moved to ours.
        if obj is None or getattr(stored, attname) != getattr(obj, attname):
            taken[name] = getattr(stored, attname)
    assert not taken, f"{actor.username}: {op} stored client values the server decides: {taken}"
    if hasattr(stored, "total_amount") and hasattr(stored, "lines"):
        lines = list(stored.lines.all())
        assert stored.total_amount == sum((line.total_amount for line in lines), Decimal("0"))
