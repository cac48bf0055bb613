"""Refused means unchanged on the web pages (issue 9): every page URL that takes a record
(from the URL configuration) is sent a POST by a signed-in user with no role, and by sales3
on sales1's records; each must be refused (403/404, or 405 where the page takes no POST)
and the database must be exactly as it was.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLResolver, get_resolver

from tests import figures
from tests.security import snapshot
from tests.security.api_operations import write_operations
from tests.security.test_refused_unchanged import FIGURE, OWNED
from tests.security.write_world import world_fixture  # noqa: F401  (module-scoped)

pytestmark = pytest.mark.django_db

REFUSED = (403, 404, 405)
# The path segment before ``<int:pk>`` → the world's record kind.
SEGMENT_KIND = {
    "customers": "customers",
    "contacts": "contacts",
    "followups": "followups",
    "opportunities": "opportunities",
    "quotes": "quotes",
    "contracts": "contracts",
    "orders": "orders",
    "payments": "payments",
    "invoices": "invoices",
    "expenses": "expenses",
    "plans": "receivable-plans",
    "departments": "departments",
    "employees": "employees",
    "positions": "positions",
    "products": "products",
    "categories": "product-categories",
    "warehouses": "warehouses",
    "approvals": "approvals",
    "rules": "approval-rules",
    "roles": "roles",
    "users": "users",
    "dictionary-items": "dictionary-items",
}
# Kinds of page left out, and why.
LEFT_OUT = {
    "password_reset_confirm": "a signed token, not a record: the password tests cover it",
    "imports:": "import jobs belong to their uploader: tests/core/test_imports.py",
    "files:": "file downloads (GET only): the attachment access tests",
}
ARG = re.compile(r"<(?:(\w+):)?(\w+)>")


def _routes() -> list[tuple[str, str]]:
    def walk(patterns, prefix="", namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(
                    pattern.url_patterns,
                    prefix + str(pattern.pattern),
                    pattern.namespace or namespace,
                )
            else:
                yield f"{namespace}:{pattern.name}", prefix + str(pattern.pattern)

    return sorted(
        (name, route)
        for name, route in set(walk(get_resolver().url_patterns))
        if "<" in route and not route.startswith(("api/", "admin/"))
    )


ROUTES = _routes()


def _kind(route: str) -> str | None:
    before = route.split("<", 1)[0].strip("/").split("/")
    for segment in reversed(before):
        if segment in SEGMENT_KIND:
            return SEGMENT_KIND[segment]
    return None


def _urls(route: str, world) -> list[tuple[str, object]]:
    kind = _kind(route)
    obj = world.object_for(kind) if kind else None
    if obj is None:
        return []
    names = [m.group(2) for m in ARG.finditer(route)]
    actions = [""]
    if "action" in names:
        actions = sorted({op.action for op in write_operations() if op.prefix == kind} - {""})
    urls = []
    for action in actions:
        url = ARG.sub(lambda m, a=action: a if m.group(2) == "action" else str(obj.pk), route)
        urls.append(("/" + url, obj))
    return urls


@pytest.mark.parametrize(("name", "route"), ROUTES, ids=[name for name, _ in ROUTES])
def test_page_posts_are_refused_unchanged(name, route, world):
    for prefix, reason in LEFT_OUT.items():
        if name.startswith(prefix) or name.endswith(prefix):
            pytest.skip(reason)
    urls = _urls(route, world)
    if not urls:
        pytest.skip(f"no world record for {route} (add its path segment to SEGMENT_KIND)")
    kind = _kind(route)
    users = ["nobody"] + (["sales3"] if kind in OWNED | {"quotes"} else [])
    sent, wrong = [], []
    for url, obj in urls:
        body = {"reason": "安全测试", "comment": "安全测试", "name": "安全测试"}
        if hasattr(obj, "version"):
            body["version"] = str(type(obj)._base_manager.get(pk=obj.pk).version)
        for username in users:
            response = world.pages[username].post(url, body)
            sent.append(f"{username}: POST {url} → {response.status_code}")
            if response.status_code not in REFUSED:
                wrong.append(sent[-1])
    assert not wrong, "expected 403/404/405:\n  " + "\n  ".join(wrong)
    changes = snapshot.diff(world.baseline, snapshot.take())
    assert not changes, "\n  ".join(["refused posts changed the database:", *sent, *changes[:20]])
    figures.record(FIGURE, len(sent))
