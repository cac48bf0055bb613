"""The customer benchmark (``manage.py bench_customers``): pages timed through the test client.

Each case is a real request through URL routing, middleware, views, selectors and templates,
logged in as a salesperson (own scope) or a manager (scope all). For each: median and 95th
percentile wall time, query count and rows shown. A saved run (JSON) gives the ratios that
the targets are stated in ("at 1,000,000 customers within 3x of 10,000").
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError
from kehu.customers.models import Customer


@dataclass
class BenchCase:
    key: str
    label: str
    user: Any
    url: str


@dataclass
class BenchResult:
    key: str
    label: str
    user: str
    url: str
    median_ms: float
    p95_ms: float
    queries: int
    rows: int | None
    status: int


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def bench_cases(
    *, user, manager, deep_page: int = 100, deep_page_all: int = 400
) -> list[BenchCase]:
    """The operations issue 3 and 8 name, with search terms taken from the data.

    The sample customer is the user's oldest (the demo company's, identical at every
    generated size), so runs at different sizes search for the same strings.
    """
    sample = (
        Customer.objects.filter(owner=user, in_pool=False)
        .exclude(mobile_digits="")
        .order_by("pk")
        .first()
    )
    if sample is None:
        raise ServiceError(_("%(user)s owns no customers to benchmark.") % {"user": user})
    name = sample.name_normalized or sample.name
    cn3 = name[2:5] if len(name) >= 5 else name[:3]
    cn2 = name[2:4] if len(name) >= 4 else name[:2]
    cases = [
        BenchCase("list_first", _("Customer list, first page"), user, "/customers/"),
        BenchCase(
            "list_deep",
            _("Customer list, page %d") % deep_page,
            user,
            f"/customers/?page={deep_page}",
        ),
        BenchCase(
            "list_sorted",
            _("Customer list sorted by next follow-up"),
            user,
            "/customers/?sort=next_followup_at",
        ),
        BenchCase(
            "list_sorted_desc",
            _("Customer list sorted by next follow-up, descending"),
            user,
            "/customers/?sort=-next_followup_at",
        ),
        BenchCase(
            "search_cn3", _("Search, Chinese substring (3 chars)"), user, f"/customers/?q={cn3}"
        ),
        BenchCase(
            "search_cn2", _("Search, Chinese substring (2 chars)"), user, f"/customers/?q={cn2}"
        ),
        BenchCase(
            "search_initials",
            _("Search, pinyin initials"),
            user,
            f"/customers/?q={sample.name_initials[:4]}",
        ),
        BenchCase(
            "search_phone",
            _("Search, last 8 phone digits"),
            user,
            f"/customers/?q={sample.mobile_digits[-8:]}",
        ),
        BenchCase("detail", _("Customer 360° page"), user, f"/customers/{sample.pk}/"),
    ]
    if manager is not None:
        cases += [
            BenchCase("all_list_first", _("All customers, first page"), manager, "/customers/"),
            BenchCase(
                "all_list_deep",
                _("All customers, page %d") % deep_page_all,
                manager,
                f"/customers/?page={deep_page_all}",
            ),
            BenchCase(
                "all_list_owner",
                _("All customers filtered by owner"),
                manager,
                f"/customers/?owner={user.pk}",
            ),
            BenchCase(
                "all_list_sorted",
                _("All customers sorted by name"),
                manager,
                "/customers/?sort=name",
            ),
            BenchCase(
                "all_list_sorted_fu",
                _("All customers sorted by next follow-up"),
                manager,
                "/customers/?sort=next_followup_at",
            ),
            BenchCase(
                "all_search_cn3",
                _("All customers, Chinese substring"),
                manager,
                f"/customers/?q={cn3}",
            ),
            BenchCase("all_detail", _("Customer 360° page"), manager, f"/customers/{sample.pk}/"),
        ]
    return cases


def _host() -> str:
    for host in settings.ALLOWED_HOSTS:
        if host and "*" not in host and not host.startswith("."):
            return host
    return "testserver"


def bench_run(*, cases: list[BenchCase], runs: int) -> list[BenchResult]:
    """Times each case ``runs`` times after one warm-up request."""
    clients: dict[int, Client] = {}
    results = []
    for case in cases:
        client = clients.get(case.user.pk)
        if client is None:
            client = clients[case.user.pk] = Client(HTTP_HOST=_host())
            client.force_login(case.user)
        response = client.get(case.url, secure=True)  # warm-up: caches, statement plans
        times = []
        queries = 0
        for _run in range(runs):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(case.url, secure=True)
                times.append((time.perf_counter() - started) * 1000)
            queries = len(captured.captured_queries)
        body = response.content.decode(errors="replace")
        # List pages: one actions cell per row shown; the 360° page has no single row count.
        rows = None if case.key.endswith("detail") else body.count('class="kehu-actions')
        results.append(
            BenchResult(
                key=case.key,
                label=str(case.label),
                user=case.user.username,
                url=case.url,
                median_ms=round(statistics.median(times), 2),
                p95_ms=round(_percentile(times, 0.95), 2),
                queries=queries,
                rows=rows,
                status=response.status_code,
            )
        )
    return results


def bench_save(*, path: str, label: str, results: list[BenchResult]) -> None:
    data = {
        "label": label,
        "database": connection.vendor,
        "customers": Customer.objects.count(),
        "results": [asdict(r) for r in results],
    }
    Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def bench_load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
