"""Bad query parameters everywhere (issue 9): garbage page numbers, sort keys, dates, ids,
very long strings, unicode, NUL bytes and SQL-ish strings sent to every list, search,
report and export of the API (from the schema) and to every page without path arguments
(from the URL configuration). Always a clear 4xx or a sane page, never a 5xx, and nothing
written (an export's operation-log row excepted: exports are audited on purpose).
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tests import figures
from tests.security import snapshot
from tests.security.api_operations import read_operations
from tests.security.write_world import world_fixture  # noqa: F401  (module-scoped)

pytestmark = pytest.mark.django_db

FIGURE = "query-parameter cases checked"
EXAMPLES = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NASTY = [
    "",
    "0",
    "-1",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "null",
    "true",
    "2026-02-30",
    "0000-00-00",
    "9999-12-31T99:99",
    "' OR 1=1 --",
    '"; DROP TABLE customers_customer; --',
    "%",
    "_",
    "\\",
    "\x00",
    "abc\x00def",
    "-id",
    "--",
    "name,-id,password",
    "__str__",
    "owner__password",
    "../../etc/passwd",
    "[]",
    "{}",
    "客户",
    "ｋｅｈｕ",
    "😀" * 20,
    "a" * 5000,
]
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=40),
)
COMMON = (
    "page",
    "page_size",
    "ordering",
    "sort",
    "q",
    "search",
    "status",
    "owner",
    "customer",
    "department",
    "date_from",
    "date_to",
    "start",
    "end",
    "preset",
    "format",
    "year",
    "month",
    "view",
    "stage",
)
USERS = ("admin", "sales1")

API_ENDPOINTS = [op for op in read_operations() if not op.has_id]

# Pages that are not lists or reads (path → why they are left out).
PAGES_LEFT_OUT = {
    "accounts/logout/": "ends the session the other cases use",
    "i18n/setlang/": "changes the language (a POST)",
    "healthz": "no parameters, no data",
}


def _pages() -> list[str]:
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    return sorted(
        "/" + route
        for route in set(walk(get_resolver().url_patterns))
        if "<" not in route
        and "^" not in route
        and not route.startswith(("api/", "admin/", "static/", "media/"))
        and route not in PAGES_LEFT_OUT
    )


PAGES = _pages()


def _only_audited_exports(changes: list[str]) -> list[str]:
    return [c for c in changes if not (c.startswith("system_auditlog:") and "'export'" in c)]


def _check(responses: list[tuple[str, dict, int]], world) -> None:
    changes = _only_audited_exports(snapshot.diff(world.baseline, snapshot.take()))
    assert not changes, "reads with bad parameters wrote:\n" + "\n".join(changes[:20])
    figures.record(FIGURE, len(responses))


@pytest.mark.parametrize("op", API_ENDPOINTS, ids=lambda op: op.path)
def test_api_query_parameters(op, world):
    names = sorted({q["name"] for q in op.query} | set(COMMON))
    sent: list[tuple[str, dict, int]] = []

    @EXAMPLES
    @given(
        user=st.sampled_from(USERS),
        params=st.dictionaries(st.sampled_from(names), VALUES, min_size=1, max_size=4),
    )
    def case(user, params):
        cache.clear()
        client = APIClient()
        client.force_authenticate(getattr(world.org, user))
        response = client.get(op.path, params)
        sent.append((user, params, response.status_code))
        assert response.status_code in (200, 400, 403, 404), (
            f"{user}: GET {op.path} {params!r:.300} → {response.status_code} "
            f"{response.content[:300]!r}"
        )

    case()
    _check(sent, world)


@pytest.mark.parametrize("path", PAGES)
def test_page_query_parameters(path, world):
    sent: list[tuple[str, dict, int]] = []

    @EXAMPLES
    @given(
        user=st.sampled_from(USERS),
        params=st.dictionaries(st.sampled_from(COMMON), VALUES, min_size=1, max_size=4),
    )
    def case(user, params):
        response = world.pages[user].get(path, params)
        sent.append((user, params, response.status_code))
        assert response.status_code in (200, 302, 400, 403, 404, 405), (
            f"{user}: GET {path} {params!r:.300} → {response.status_code} "
            f"{response.content[:300]!r}"
        )

    case()
    _check(sent, world)
