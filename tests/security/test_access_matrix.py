"""Issue 9: the access-control matrix.

Every page and API operation (from the URL configuration and the OpenAPI schema) has a
declared expectation (expectations.py); the test sends each one as every demo role and as
an anonymous visitor and checks the answer: allowed roles get through, the others get 403
or 404 (anonymous: the login page or 401/403), and no response, export included, carries
the marker of a record outside the role's data scope. sales3's record answers 404 to the
sales1 department. A URL or operation without an expectation fails the coverage test.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.urls import resolve, reverse

from tests.figures import record
from tests.security.conftest import ROLES, AccessWorld
from tests.security.endpoints import routes, schema_operations
from tests.security.expectations import (
    EXPECTED,
    EXPORTS,
    KNOWN_FINDINGS,
    PUBLIC,
    SEES,
    SIGNED_IN,
    Rule,
)

MISSING_PK = 987654321
# The world records the sales1 department must not reach (sales3's, "B").
OTHER_DEPARTMENT = ("sales1", "sales2", "salesmgr1")


@dataclass(frozen=True)
class Op:
    name: str
    method: str
    rule: Rule
    api: bool
    kwargs: tuple[str, ...]
    action: str | None = None
    export: str | None = None  # csv / xlsx

    @property
    def id(self) -> str:
        extra = f" {self.action}" if self.action else ""
        extra += f" export={self.export}" if self.export else ""
        return f"{self.method} {self.name}{extra}"


def _view_class(route):
    return getattr(route.view, "view_class", None) or getattr(route.view, "cls", None)


def operations() -> list[Op]:
    ops: list[Op] = []
    for route in routes():
        table = EXPECTED.get(route.name)
        if table is None:
            continue  # test_every_endpoint_has_an_expectation names it
        for method, rule in table.items():
            if isinstance(rule, dict):
                for action, action_rule in rule.items():
                    ops.append(Op(route.name, method, action_rule, route.api, route.kwargs, action))
            else:
                ops.append(Op(route.name, method, rule, route.api, route.kwargs))
        if route.name in EXPORTS:
            base = table["GET"]
            for fmt in ("csv", "xlsx"):
                rule = Rule("export", EXPORTS[route.name], base.obj, query=base.query)
                ops.append(Op(route.name, "GET", rule, route.api, route.kwargs, export=fmt))
    return ops


OPERATIONS = operations()


# --- coverage: nothing unchecked ------------------------------------------------------------


def test_every_endpoint_has_an_expectation():
    problems = []
    known = {route.name: route for route in routes()}
    for name, route in known.items():
        table = EXPECTED.get(name)
        if table is None:
            problems.append(f"{name} ({route.pattern}): no expectation")
            continue
        if route.methods is not None:
            for method in route.methods:
                if method not in table:
                    problems.append(f"{method} {name}: no expectation")
            for method in table:
                if method not in route.methods:
                    problems.append(f"{method} {name}: expected, but the view does not answer it")
        cls = _view_class(route)
        slugs = getattr(cls, "actions", None) or getattr(cls, "permissions", None)
        if "action" in route.kwargs:
            for method, rule in table.items():
                if not isinstance(rule, dict):
                    problems.append(f"{method} {name}: give one rule per action")
                elif set(rule) != set(slugs or ()):
                    problems.append(
                        f"{method} {name}: actions {sorted(slugs or ())}, expected {sorted(rule)}"
                    )
        cls = _view_class(route)
        exports = cls is not None and (
            "export_format" in dir(cls) or bool(_class_attr(cls, "export_columns"))
        )
        if exports and name not in EXPORTS:
            problems.append(f"{name}: exports, but EXPORTS has no expectation for it")
    for name in EXPECTED:
        if name not in known:
            problems.append(f"{name}: expected, but no such URL")
    for name in EXPORTS:
        if name not in known:
            problems.append(f"{name}: export expected, but no such URL")
    assert not problems, "\n".join(problems)


def _class_attr(cls, name: str):
    for klass in cls.__mro__:
        if name in vars(klass):
            value = vars(klass)[name]
            return True if isinstance(value, property) or callable(value) else value
    return None


def test_every_schema_operation_has_an_expectation():
    problems = []
    operations_seen = 0
    for path, method in schema_operations():
        operations_seen += 1
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        try:
            match = resolve(concrete)
        except Exception:  # noqa: BLE001 - any failure to resolve is the finding
            problems.append(f"{method} {path}: does not resolve to a URL")
            continue
        name = f"{':'.join(match.namespaces)}:{match.url_name}" if match.namespaces else None
        table = EXPECTED.get(name or match.url_name or "")
        if table is None or method not in table:
            problems.append(f"{method} {path} ({name}): no expectation")
    record("access matrix: schema operations", operations_seen)
    assert operations_seen > 100
    assert not problems, "\n".join(problems)


# --- the matrix -----------------------------------------------------------------------------


def _role_permissions(world: AccessWorld) -> dict[str, frozenset[str]]:
    cache = getattr(world, "_perms", None)
    if cache is None:
        cache = {}
        for username in ROLES:
            codes: set[str] = set()
            for perms in world.user(username).roles.values_list("permissions", flat=True):
                codes.update(perms or [])
            cache[username] = frozenset(codes)
        world._perms = cache  # type: ignore[attr-defined]
    return cache


def _allowed(world: AccessWorld, op: Op, username: str, side: str = "A") -> bool:
    rule = op.rule
    if rule.roles is not None:
        return username in rule.roles and side == "A"
    if rule.perm not in (PUBLIC, SIGNED_IN):
        held = _role_permissions(world)[username]
        wanted = (rule.perm,) if isinstance(rule.perm, str) else rule.perm
        if not any(code in held for code in wanted):
            return False
    return not rule.scoped or username in SEES[side]


def _has_perm(world: AccessWorld, op: Op, username: str) -> bool:
    rule = op.rule
    if rule.perm in (PUBLIC, SIGNED_IN):
        return True
    wanted = (rule.perm,) if isinstance(rule.perm, str) else rule.perm
    return any(code in _role_permissions(world)[username] for code in wanted)


def _pk(world: AccessWorld, kind: str | None, side: str):
    if kind is None:
        return None
    objects = world.objects.get(kind)
    if not objects:
        return MISSING_PK
    obj = objects.get(side) or objects.get("A")
    return obj.pk


def _url(world: AccessWorld, op: Op, side: str = "A") -> str:
    kwargs: dict[str, object] = {}
    for key in op.kwargs:
        if key in ("pk", "contract_id"):
            kwargs[key] = _pk(world, op.rule.obj, side)
        elif key == "action":
            kwargs[key] = op.action
        elif key == "importer":
            kwargs[key] = "customers"
        elif key == "field":
            kwargs[key] = "image"
        elif key == "fmt":
            kwargs[key] = "xlsx"
        elif key == "code":
            kwargs[key] = world.obj("dictionary").code
        elif key == "uidb64":
            kwargs[key] = "MQ"
        elif key == "token":
            kwargs[key] = "set-password"
        else:
            raise AssertionError(f"{op.name}: no value for URL argument {key!r}")
    url = reverse(op.name, kwargs=kwargs)
    query = op.rule.query.format(customer=_pk(world, "customer", side))
    if op.export:
        query = f"{query}&export={op.export}" if query else f"export={op.export}"
    return f"{url}?{query}" if query else url


def _send(world: AccessWorld, op: Op, username: str | None, side: str = "A"):
    client = world.client(username)
    url = _url(world, op, side)
    extra = {}
    if op.method == "GET":
        send = lambda: client.get(url)  # noqa: E731
    elif op.rule.multipart:
        send = lambda: client.post(url, {})  # noqa: E731
    elif op.api:
        send = lambda: client.generic(  # noqa: E731
            op.method, url, "{}", content_type="application/json"
        )
    else:
        send = lambda: client.generic(  # noqa: E731
            op.method, url, "", content_type="application/x-www-form-urlencoded", **extra
        )
    with transaction.atomic():
        response = send()
        body = _body(response)
        transaction.set_rollback(True)
    return response, body


def _body(response) -> str:
    raw = (
        b"".join(response.streaming_content)
        if getattr(response, "streaming", False)
        else response.content
    )
    kind = response.get("Content-Type", "")
    if "spreadsheetml" in kind:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(raw), read_only=True)
        return "\n".join(
            str(cell)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for cell in row
            if cell is not None
        )
    if "pdf" in kind:
        from pypdf import PdfReader

        return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(raw)).pages)
    if "csv" in kind:
        text = raw.decode("utf-8-sig")
        return "\n".join(",".join(row) for row in csv.reader(io.StringIO(text)))
    if kind.startswith("image/"):
        return ""
    return raw.decode("utf-8", errors="replace")


def _leaks(world: AccessWorld, username: str | None, body: str) -> list[str]:
    visible = {side for side, who in SEES.items() if username in who}
    return [
        f"{text} ({kind} of {side})"
        for text, (kind, side) in world.markers.items()
        if side not in visible and text in body
    ]


def _verdict(op: Op, username: str | None, allowed: bool, response) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    if username is None and not allowed:
        if op.api:
            return None if status in (401, 403) else f"anonymous got {status}, not 401/403"
        location = response.get("Location", "")
        if status == 302 and "/accounts/login/" in location:
            return None
        return f"anonymous got {status} {location}, not the login page"
    if allowed:
        if status == 404 and (op.rule.absent or _is_missing(op)):
            return None
        ok = 200 <= status < 400 or (op.method != "GET" and status in (400, 409))
        return None if ok else f"allowed, got {status}"
    return None if status in (403, 404) else f"refused expected, got {status}"


def _is_missing(op: Op) -> bool:
    return op.rule.obj is not None and op.rule.obj not in _WORLD_KINDS


_WORLD_KINDS: set[str] = set()


def _params():
    for op in OPERATIONS:
        marks = []
        if op.id in KNOWN_FINDINGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FINDINGS[op.id]))
        yield pytest.param(op, id=op.id, marks=marks)


def test_known_findings_name_real_operations():
    ids = {op.id for op in OPERATIONS}
    assert not [name for name in KNOWN_FINDINGS if name not in ids]


@pytest.mark.django_db
@pytest.mark.parametrize("op", list(_params()))
def test_access_matrix(access_world, op):
    world = access_world
    _WORLD_KINDS.update(world.objects)
    failures = []
    checks = 0
    for username in (*ROLES, None):
        allowed = op.rule.perm == PUBLIC if username is None else _allowed(world, op, username)
        response, body = _send(world, op, username)
        checks += 1
        problem = _verdict(op, username, allowed, response)
        if problem:
            failures.append(f"{username or 'anonymous'}: {problem}")
        leaks = _leaks(world, username, body)
        if leaks:
            failures.append(f"{username or 'anonymous'}: out-of-scope data {leaks}")
    if op.rule.scoped:
        # sales3's record (the other department) answers 404 to the sales1 department.
        for username in OTHER_DEPARTMENT:
            response, body = _send(world, op, username, side="B")
            checks += 1
            status = response.status_code
            wanted = (404,) if _has_perm(world, op, username) else (403, 404)
            if status not in wanted:
                failures.append(f"{username} on sales3's record: {status}, expected {wanted}")
            leaks = _leaks(world, username, body)
            if leaks:
                failures.append(f"{username} on sales3's record: out-of-scope data {leaks}")
    record("access matrix: endpoint x role checks", checks)
    record("access matrix: endpoints", 1)
    assert not failures, f"{op.id} ({_url(world, op)}):\n" + "\n".join(failures)
