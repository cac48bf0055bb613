"""Refused means unchanged (issue 9): every write operation of the API, read from the
OpenAPI schema, is sent requests it must refuse, and the whole database (every table of
every app, tests/security/snapshot.py) must be exactly as it was afterwards.

Kinds of refusal, each its own test per operation:

* ``perm``: by a user with no role and by every default role lacking the permission → 403;
* ``scope``: by sales3 (销售二部) on sales1's records → 404 (403 when sales3 lacks the
  permission altogether; 400/404 for a create pointing at sales1's records);
* ``stale``: with the version before someone else's change → 409;
* ``invalid``: one field at a time of the wrong type or too long → 400.

A new endpoint is covered as soon as it is in the schema; one this file cannot aim at
fails with a message saying what to add (a world record or a ``SKIP`` entry with a reason).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache
from django.db.models import F
from django.urls import resolve
from rest_framework.test import APIClient

from kehu.core.api import ACTION_FOR_VIEW
from kehu.core.permissions import has_perm
from tests import figures
from tests.security import snapshot
from tests.security.api_operations import Operation, write_operations
from tests.security.bodies import invalid_values, valid_body, value_for
from tests.security.write_world import world_fixture  # noqa: F401  (module-scoped)

pytestmark = pytest.mark.django_db

FIGURE = "refused requests checked unchanged"
OPERATIONS = write_operations()
ROLES_PER_OPERATION = 3  # every role against every endpoint is the access matrix's job
ROLE_USERS = (
    "manager",
    "salesmgr1",
    "sales1",
    "sales3",
    "finance",
    "hr",
    "warehouse",
)

# Records that belong to a salesperson (their data scope is "own"): sales3 must get 404.
OWNED = {
    "contacts",
    "contracts",
    "customers",
    "expenses",
    "followups",
    "invoices",
    "opportunities",
    "orders",
    "payments",
    "receivable-plans",
}
# Actions finance performs on a salesperson's documents.
FINANCE_ACTIONS = {
    ("payments", "confirm"),
    ("payments", "reject"),
    ("payments", "reverse"),
    ("invoices", "issue"),
    ("invoices", "void"),
    ("expenses", "pay"),
}
# Actions the warehouse performs on a salesperson's orders.
WAREHOUSE_ACTIONS = {("orders", "ship"), ("orders", "return")}

# (operationId, kind) → why that kind of refusal does not apply. "*" for every kind.
SKIP: dict[tuple[str, str], str] = {
    ("auth_token_obtain", "*"): "logging in needs no permission or record; a wrong password "
    "is test_wrong_password_writes_only_the_login_log",
    ("auth_token_revoke", "*"): "revokes the caller's own token: no permission, record or body",
    ("v1_notifications_mark_read_create", "perm"): "marks the caller's own notifications; "
    "every signed-in user may (ids of others' notifications are ignored, checked in scope)",
    ("v1_customers_import_create", "invalid"): "a multipart file upload: bad files are the "
    "input-fuzzing helper's tests/security/test_api_fuzz.py and tests/customers/test_imports_api",
}


def _skip(op: Operation, kind: str) -> None:
    reason = SKIP.get((op.operation_id, kind)) or SKIP.get((op.operation_id, "*"))
    if reason:
        pytest.skip(reason)


def _perm_code(op: Operation, url: str) -> str | None:
    """The ``module.action`` permission the operation's view requires (None: no module)."""
    func = resolve(url).func
    cls = func.cls  # type: ignore[attr-defined]
    view = cls(**func.initkwargs)  # type: ignore[attr-defined]
    view.action = (getattr(func, "actions", None) or {}).get(op.method)
    view.request = SimpleNamespace(method=op.method.upper())
    view.kwargs = {}
    view.get_permissions()
    module = getattr(view, "module", None)
    if module is None:
        return None
    action = getattr(view, "perm_action", None) or ACTION_FOR_VIEW.get(view.action or "", "view")
    return f"{module}.{action}"


def _target(op: Operation, world) -> tuple[Any, str]:
    obj = world.object_for(op.prefix, op.action) if op.has_id else None
    if op.has_id and obj is None:
        pytest.fail(
            f"{op}: no record to aim at; add one for {op.prefix!r} to "
            "tests/security/write_world.py (or a SKIP entry with the reason)"
        )
    return obj, op.url(obj.pk if obj is not None else 0)


def _actor(op: Operation, world, obj, url: str):
    """A user who may perform the operation on the world's record."""
    org = world.org
    if op.prefix == "approvals":
        return obj.steps.get(status="pending").candidates.order_by("pk").first()
    if (op.prefix, op.action) in FINANCE_ACTIONS:
        return org.finance
    if (op.prefix, op.action) in WAREHOUSE_ACTIONS:
        return org.warehouse
    code = _perm_code(op, url)
    if op.prefix in OWNED or op.prefix == "quotes":
        for user in (org.sales1, org.salesmgr1):
            if code is None or has_perm(user, code):
                return user
    return org.admin


def _send(user, op: Operation, url: str, body: dict | None):
    cache.clear()  # the per-user API rate would otherwise run out over thousands of calls
    client = APIClient()
    client.force_authenticate(user)
    if op.body is None and op.method == "delete":
        return getattr(client, op.method)(url)
    return getattr(client, op.method)(
        url, body or {}, format="multipart" if op.multipart else "json"
    )


def _detail(response) -> str:
    return str(getattr(response, "data", response.content[:300]))[:300]


def _check_unchanged(before, sent: list[str]) -> None:
    changes = snapshot.diff(before, snapshot.take())
    assert not changes, (
        "refused requests changed the database:\n  "
        + "\n  ".join(sent)
        + "\nchanges:\n  "
        + "\n  ".join(changes[:30])
    )
    figures.record(FIGURE, len(sent))


def _ids(op: Operation) -> str:
    return op.operation_id


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
def test_refused_without_permission(op, world):
    _skip(op, "perm")
    obj, url = _target(op, world)
    code = _perm_code(op, url)
    lacking = [
        getattr(world.org, name)
        for name in ROLE_USERS
        if code is not None and not has_perm(getattr(world.org, name), code)
    ]
    refused = [world.nobody, *lacking[:ROLES_PER_OPERATION]]
    # Approval decisions are open to the step's candidates whatever their role (no module
    # permission); anyone else does not see the request at all.
    expected = 404 if code is None and op.prefix == "approvals" else 403
    body = valid_body(op, world, obj)
    sent, wrong = [], []
    for user in refused:
        response = _send(user, op, url, body)
        sent.append(f"{user.username}: {op} → {response.status_code}")
        if response.status_code != expected:
            wrong.append(f"{user.username} ({code}): {response.status_code} {_detail(response)}")
    assert not wrong, f"{op}: expected {expected}:\n  " + "\n  ".join(wrong)
    _check_unchanged(world.baseline, sent)


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
def test_refused_outside_scope(op, world):
    _skip(op, "scope")
    obj, url = _target(op, world)
    sales3 = world.org.sales3
    code = _perm_code(op, url)
    allowed = code is None or has_perm(sales3, code)
    if op.operation_id == "v1_notifications_mark_read_create":
        mine = world.org.sales1.notifications.values_list("pk", flat=True)
        body: dict = {"ids": list(mine)}
        expected: tuple[int, ...] = (200,)  # answers, marks nothing of sales1's
    elif not allowed:
        body, expected = valid_body(op, world, obj), (403,)
    elif op.has_id and op.prefix in OWNED | {"quotes", "approvals"}:
        body, expected = valid_body(op, world, obj), (404,)
    elif not op.has_id and (pointers := op.writable.keys() & {"customer", "contract", "payment"}):
        # Creating against sales1's customer, contract or payment: refused as bad input
        # (a choice outside the caller's scope) or as not found.
        body = valid_body(op, world, obj)
        body.update({name: value_for(name, op.writable[name], op, world) for name in pointers})
        expected = (400, 404)
    else:
        pytest.skip(
            f"{op.prefix}: company-wide records (not owned by a salesperson) that sales3 "
            f"may change with {code}"
        )
    response = _send(sales3, op, url, body)
    assert response.status_code in expected, (
        f"sales3 on sales1's record: {op} → {response.status_code} {_detail(response)}"
    )
    _check_unchanged(world.baseline, [f"sales3: {op} → {response.status_code}"])


def _versioned(op: Operation) -> bool:
    return op.has_id and "version" in op.writable


@pytest.mark.parametrize("op", [op for op in OPERATIONS if _versioned(op)], ids=_ids)
def test_refused_stale_version(op, world):
    _skip(op, "stale")
    obj, url = _target(op, world)
    actor = _actor(op, world, obj, url)
    body = valid_body(op, world, obj)
    stale = body["version"] = type(obj)._base_manager.get(pk=obj.pk).version
    # Someone else saves the record meanwhile.
    type(obj)._base_manager.filter(pk=obj.pk).update(version=F("version") + 1)
    before = snapshot.take()
    response = _send(actor, op, url, body)
    assert response.status_code == 409, (
        f"{actor.username}: {op} with version {stale} (now {stale + 1}) → "
        f"{response.status_code} {_detail(response)}"
    )
    _check_unchanged(before, [f"{actor.username}: {op} stale → 409"])


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.body], ids=_ids)
def test_refused_invalid_body(op, world):
    _skip(op, "invalid")
    obj, url = _target(op, world)
    actor = _actor(op, world, obj, url)
    base = valid_body(op, world, obj)
    invalid = invalid_values(op)
    if not invalid:
        pytest.skip(f"{op}: no field to make invalid")
    sent, wrong = [], []
    for name, value in invalid.items():
        response = _send(actor, op, url, {**base, name: value})
        sent.append(f"{actor.username}: {op} {name}={value!r:.40} → {response.status_code}")
        if response.status_code != 400:
            wrong.append(f"{name}={value!r:.60}: {response.status_code} {_detail(response)}")
    # A list where an object belongs is refused as a whole.
    response = _send(actor, op, url, [base])  # type: ignore[arg-type]
    sent.append(f"{actor.username}: {op} a list → {response.status_code}")
    if response.status_code != 400:
        wrong.append(f"a list body: {response.status_code} {_detail(response)}")
    assert not wrong, f"{actor.username}: {op} expected 400:\n  " + "\n  ".join(wrong)
    _check_unchanged(world.baseline, sent)


def test_wrong_password_writes_only_the_login_log(world):
    """A refused login is recorded on purpose (django-axes counts it towards the lockout,
    the login log keeps it); nothing else is written, and no token is made."""
    from rest_framework.authtoken.models import Token

    from kehu.system.models import AuditLog

    cache.clear()
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "sales1", "password": "wrong"}, format="json"
    )
    assert response.status_code == 400
    snapshot.assert_unchanged(world.baseline, allow=snapshot.LOGGED_REFUSALS, what="a bad login")
    assert not Token.objects.filter(user=world.org.sales1).exists()
    assert AuditLog.objects.filter(action="login_failed", username="sales1").count() == 1
    figures.record(FIGURE, 1)
