"""The benchmark runner (``manage.py bench``): key operations timed as whole requests.

Apps register their cases in ``kehu/<app>/bench.py`` (found like ``admin.py``):

    from kehu.core.bench import Case, register

    @register
    def cases(ctx):                       # called when the run starts, on the data it finds
        return [Case("contract_list_first", "Contract list", group="sales",
                     user=ctx.user, url="/sales/contracts/", bare_sql="sales_contract")]

    register(Case("import_100k", "Import 100,000 customers", group="customers",
                  func=run_import, runs=3))   # a callable instead of a request

A request case goes through the Django test client: routing, middleware, views, selectors,
templates or serializers - the whole request. A ``func`` case calls ``func(run)`` and times
it; it may return the rows it handled or a ``Measured`` with its own time (to leave its
set-up out). Per case: one warm-up, one run that counts the queries and keeps their SQL, then
``runs`` timed runs with nothing attached (median and 95th percentile), then one run under
``tracemalloc`` for the peak of Python memory (tracing slows a request several times, so it
is never timed). List and search cases name their main table (``bare_sql``): the list query
of the request is run again ``runs`` times straight on a cursor (fetching every row), and
overhead = request median / bare SQL median.

A whole request with session authentication, permissions and a page layout cannot cost 3x
a 0.4 ms index range, so list cases also measure the framework's cost *for the rows*: the
view's own page queryset evaluated as the view evaluates it (model instances, select_related,
prefetches, and the rows' cells formatted by ``KehuListView.build_rows``; for the API the
serializer's ``data``), against the same queries run bare ("rows" and "rows overhead"). The
``fixed`` cases (a minimal authenticated page and API call) give the per-request cost that
every page pays before its own work (session, user, middleware, layout).
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import math
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils.module_loading import autodiscover_modules


@dataclass
class BenchContext:
    """What the providers build their cases from: the users the run acts as."""

    user: Any  # a salesperson (own scope)
    manager: Any | None = None  # scope all
    finance: Any | None = None  # records payments, reads the aging report
    dept_manager: Any | None = None  # a sales manager (department scope)
    deep_page: int = 100
    deep_page_all: int = 400


@dataclass
class Measured:
    """A ``func`` case's own measurement of one run (its set-up left out)."""

    ms: float
    rows: int | None = None


@dataclass
class Case:
    key: str
    label: Any
    group: str = ""
    user: Any = None
    url: str = ""
    method: str = "get"
    # Per run (0, 1, ...): the body of a POST and extra headers, so each run can differ.
    data: Callable[[int], Any] | None = None
    headers: Callable[[int], dict[str, str]] | None = None
    api: bool = False  # a JSON endpoint: bodies sent as JSON, rows = len(results)
    bare_sql: str = ""  # table of the list query whose bare SQL time gives the overhead
    rows: Callable[[Any], int | None] | None = None  # response -> rows (default by kind)
    func: Callable[[int], Any] | None = None  # instead of a request
    runs: int | None = None  # overrides --runs (a slow case)
    ok_status: tuple[int, ...] = (200, 201)


@dataclass
class Result:
    key: str
    group: str
    label: str
    user: str
    url: str
    runs: int
    median_ms: float
    p95_ms: float
    # CPU time of this process per run (median): on a shared machine wall time waits for
    # the others, CPU time does not. SQLite's work is inside it, PostgreSQL's is not.
    cpu_median_ms: float
    queries: int
    db_ms: float  # the counted run's time inside the database (all its queries)
    peak_kib: float
    rows: int | None
    status: int
    sql_median_ms: float | None = None
    sql_p95_ms: float | None = None
    sql_rows: int | None = None
    sql: str = ""
    # The rows alone: the view's page queryset evaluated and formatted as the view does it,
    # and the same queries (the page and its prefetches, not the count) run bare.
    rows_median_ms: float | None = None
    rows_p95_ms: float | None = None
    rows_queries: int | None = None
    rows_sql_median_ms: float | None = None
    # Fastest runs: on a machine shared with other work the minimum is the better estimate
    # of what the code costs (every other run waited for someone else's process).
    min_ms: float | None = None
    rows_min_ms: float | None = None
    rows_sql_min_ms: float | None = None

    @property
    def overhead(self) -> float | None:
        if not self.sql_median_ms:
            return None
        return self.median_ms / self.sql_median_ms

    @property
    def rows_overhead(self) -> float | None:
        if not self.rows_sql_median_ms or self.rows_median_ms is None:
            return None
        return self.rows_median_ms / self.rows_sql_median_ms

    @property
    def rows_overhead_min(self) -> float | None:
        if not self.rows_sql_min_ms or self.rows_min_ms is None:
            return None
        return self.rows_min_ms / self.rows_sql_min_ms


# --- the registry ----------------------------------------------------------------------------

Provider = Callable[[BenchContext], list[Case]]
_registry: list[Case | Provider] = []


def register(item):
    """Add a ``Case``, or a provider ``ctx -> list[Case]`` (usable as a decorator)."""
    if not any(item is known for known in _registry):
        _registry.append(item)
    return item


def discover() -> None:
    autodiscover_modules("bench")


def collect(ctx: BenchContext) -> list[Case]:
    discover()
    cases: list[Case] = []
    for item in _registry:
        if isinstance(item, Case):
            cases.append(item)
        else:
            cases.extend(item(ctx))
    return cases


def select(cases: list[Case], *, only: str = "", skip: str = "") -> list[Case]:
    """``only``/``skip``: comma-separated shell patterns matched against key and group."""

    def matches(case: Case, patterns: str) -> bool:
        names = (case.key, case.group, f"{case.group}.{case.key}")
        return any(
            fnmatch.fnmatchcase(name, pattern.strip())
            for pattern in patterns.split(",")
            if pattern.strip()
            for name in names
        )

    # The fixed-cost cases are the baseline every other case is read against: they run with
    # any selection unless skipped by name. The crawl of every page runs only when named.
    chosen = [
        c for c in cases if c.group == FIXED or (matches(c, only) if only else c.group != PAGES)
    ]
    return [c for c in chosen if not skip or not matches(c, skip)]


FIXED = "fixed"


@register
def fixed_cases(ctx: BenchContext) -> list[Case]:
    """What every request pays before its own work: session, user, middleware, the layout
    (a page that shows one sentence) or the API's authentication and rendering."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    return [
        Case(
            "fixed_page",
            _("Minimal authenticated page (fixed cost)"),
            group=FIXED,
            user=ctx.user,
            url=reverse("password_change_done"),
        ),
        Case(
            "fixed_api",
            _("Minimal authenticated API call (fixed cost)"),
            group=FIXED,
            user=ctx.user,
            url=reverse("api:me"),
            api=True,
        ),
    ]


PAGES = "pages"
# Not pages: leaving the session, files, the admin and the API's own documentation.
PAGES_SKIPPED = ("logout", "export", "/i18n/", "/admin/", "/api/schema", "/api/docs", "/accounts/")


@register
def page_cases(ctx: BenchContext) -> list[Case]:
    """Every page and API list that takes no argument, as each of the run's users (``--only
    pages``): what the named cases do not time. A page the user may not open counts its
    refusal; a GET-less endpoint its 405."""
    from django.urls import URLPattern, URLResolver, get_resolver, reverse
    from django.urls.exceptions import NoReverseMatch

    def names(resolver: URLResolver, namespace: str = ""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                yield from names(pattern, inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield namespace + pattern.name

    urls = set()
    for name in names(get_resolver()):
        try:
            urls.add(reverse(name))
        except NoReverseMatch:  # takes arguments
            continue
    users = [ctx.user, ctx.dept_manager, ctx.manager, ctx.finance]
    return [
        Case(
            f"{user.get_username()}{url.rstrip('/').replace('/', '.') or '.home'}",
            url,
            group=PAGES,
            user=user,
            url=url,
            api=url.startswith("/api/"),
            ok_status=(200, 400, 403, 405),
        )
        for user in dict.fromkeys(u for u in users if u is not None)
        for url in sorted(urls)
        if not any(part in url for part in PAGES_SKIPPED)
    ]


@register
def home_cases(ctx: BenchContext) -> list[Case]:
    """The home page every login lands on: the to-dos of each module the user may use."""
    from django.utils.translation import gettext as _

    users = [("home", ctx.user), ("all_home", ctx.manager), ("finance_home", ctx.finance)]
    return [
        Case(key, _("Home page with to-dos"), group="home", user=user, url="/")
        for key, user in users
        if user is not None
    ]


# --- measuring -------------------------------------------------------------------------------


def deep_page(queryset, wanted: int, *, per_page: int = 20) -> int:
    """``wanted``, or the last page when there are fewer rows (a missing page answers 404)."""
    from kehu.core.pagination import BoundedPaginator

    return max(1, min(wanted, BoundedPaginator(queryset.order_by("-pk"), per_page).num_pages))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def host() -> str:
    for name in settings.ALLOWED_HOSTS:
        if name and "*" not in name and not name.startswith("."):
            return name
    return "testserver"


class _Recorder:
    """An execute wrapper: counts queries, keeps their SQL and parameters, sums their time."""

    def __init__(self):
        self.queries: list[tuple[str, Any, float]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((sql, params, (time.perf_counter() - started) * 1000))


def _main_query(queries: list[tuple[str, Any, float]], table: str) -> tuple[str, Any] | None:
    """The list query: a SELECT from ``table`` with a LIMIT that is not the bounded count.

    Of several (a list query and a small look-up of the same table), the widest one."""
    quoted = f'FROM "{table}"'
    found = [
        (sql, params)
        for sql, params, _ms in queries
        if sql.lstrip().upper().startswith("SELECT")
        and quoted in sql
        and " LIMIT " in sql.upper()
        and not sql.lstrip().upper().startswith("SELECT COUNT")
    ]
    return max(found, key=lambda q: len(q[0].split(" FROM ", 1)[0])) if found else None


def _time_queries(queries: list[tuple[str, Any]], runs: int) -> list[float]:
    """Milliseconds per run of all ``queries`` in turn on a bare cursor, every row fetched."""
    times = []
    for _run in range(runs + 1):  # the first one warms the statement cache
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for sql, params in queries:
                cursor.execute(sql, params)
                cursor.fetchall()
        if _run:
            times.append((time.perf_counter() - started) * 1000)
    return times


def _page_request(case: Case):
    from django.test import RequestFactory

    request = RequestFactory(HTTP_HOST=host()).get(case.url, secure=True)
    request.user = case.user
    request.session = {}  # type: ignore[assignment]  # list views read no session
    return request


def _list_page_rows(case: Case) -> Callable[[], int] | None:
    """A callable that evaluates and formats the page's rows as the list view does."""
    from urllib.parse import urlsplit

    from django.urls import resolve

    from kehu.core.fields import field_policy_for
    from kehu.core.views import KehuListView

    match = resolve(urlsplit(case.url).path)
    view_class = getattr(match.func, "view_class", None)
    if view_class is None or not issubclass(view_class, KehuListView):
        return None
    view = view_class(**getattr(match.func, "view_initkwargs", {}))
    view.setup(_page_request(case), *match.args, **match.kwargs)
    queryset = view.get_queryset()
    _paginator, page, _objects, _paged = view.paginate_queryset(
        queryset, view.get_paginate_by(queryset)
    )
    page_rows = page.object_list  # a sliced queryset, not evaluated yet
    policy = field_policy_for(case.user, queryset.model)
    columns = [c for c in view.columns if policy.get(c.field) != "hidden"]

    def rows() -> int:
        return len(view.build_rows(list(page_rows.all()), columns, policy))

    if not hasattr(view, "build_rows"):
        return None

    return rows


def _api_page_rows(case: Case) -> Callable[[], int] | None:
    """A callable that evaluates and serializes the API page's rows as the viewset does."""
    from urllib.parse import urlsplit

    from django.urls import resolve

    match = resolve(urlsplit(case.url).path)
    view_class = getattr(match.func, "cls", None)
    actions = getattr(match.func, "actions", None) or {}
    if view_class is None or actions.get("get") != "list":
        return None
    view = view_class(**getattr(match.func, "initkwargs", {}))
    view.action_map = actions
    view.action = "list"
    view.args, view.kwargs, view.format_kwarg, view.headers = match.args, match.kwargs, None, {}
    request = view.initialize_request(_page_request(case))
    request.user = case.user
    view.request = request
    queryset = view.filter_queryset(view.get_queryset())
    pagination = view.paginator
    if pagination is None:
        return None
    numbered = pagination.django_paginator_class(queryset, pagination.get_page_size(request))
    page_rows = numbered.page(request.query_params.get(pagination.page_query_param, 1)).object_list

    def rows() -> int:
        return len(view.get_serializer(list(page_rows.all()), many=True).data)

    return rows


def _time_sql(sql: str, params: Any, runs: int) -> tuple[list[float], int]:
    times = []
    rows = 0
    for _run in range(runs + 1):  # the first one warms the statement cache
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(sql, params)
            rows = len(cursor.fetchall())
            elapsed = (time.perf_counter() - started) * 1000
        if _run:
            times.append(elapsed)
    return times, rows


def _default_rows(case: Case, response) -> int | None:
    if case.api:
        try:
            body = json.loads(response.content or b"null")
        except ValueError:
            return None
        if isinstance(body, dict):
            for name in ("results", "rows"):
                if isinstance(body.get(name), list):
                    return len(body[name])
            return None
        return len(body) if isinstance(body, list) else None
    if case.bare_sql:  # list pages: one actions cell per row shown
        return response.content.decode(errors="replace").count('class="kehu-actions')
    return None


class Runner:
    def __init__(self, *, runs: int):
        self.runs = runs
        self.clients: dict[int, Client] = {}
        self.counter = 0  # POST bodies and keys differ on every call, warm-ups included
        self.cpu_started = 0.0
        self.cpu_ms = 0.0

    def _client(self, user) -> Client:
        client = self.clients.get(user.pk)
        if client is None:
            client = self.clients[user.pk] = Client(HTTP_HOST=host())
            client.force_login(user)
        return client

    def _once(self, case: Case) -> tuple[Any, float, int | None]:
        """One run: (response or None, milliseconds, rows)."""
        self.counter += 1
        if case.func is not None:
            self.cpu_started = time.process_time()
            started = time.perf_counter()
            outcome = case.func(self.counter)
            elapsed = (time.perf_counter() - started) * 1000
            self.cpu_ms = (time.process_time() - self.cpu_started) * 1000
            if isinstance(outcome, Measured):
                return None, outcome.ms, outcome.rows
            return None, elapsed, outcome if isinstance(outcome, int) else None
        client = self._client(case.user)
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in _headers(case, self.counter)}
        self.cpu_started = time.process_time()
        started = time.perf_counter()
        if case.method == "post":
            data = case.data(self.counter) if case.data else {}
            if case.api:
                response = client.post(
                    case.url, data, content_type="application/json", secure=True, **extra
                )
            else:
                response = client.post(case.url, data, secure=True, **extra)
        else:
            response = client.get(case.url, secure=True, **extra)
        elapsed = (time.perf_counter() - started) * 1000
        self.cpu_ms = (time.process_time() - self.cpu_started) * 1000
        rows = case.rows(response) if case.rows else _default_rows(case, response)
        return response, elapsed, rows

    def run(self, case: Case) -> Result:
        runs = case.runs or self.runs
        self._once(case)  # warm-up: caches, statement plans, lazy imports
        recorder = _Recorder()
        with connection.execute_wrapper(recorder):
            response, _ms, rows = self._once(case)
        times, cpu = [], []
        for _run in range(runs):
            times.append(self._once(case)[1])
            cpu.append(self.cpu_ms)
        tracemalloc.start()
        try:
            self._once(case)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        result = Result(
            key=case.key,
            group=case.group,
            label=str(case.label),
            user=getattr(case.user, "username", ""),
            url=case.url,
            runs=runs,
            median_ms=round(statistics.median(times), 2),
            p95_ms=round(percentile(times, 0.95), 2),
            cpu_median_ms=round(statistics.median(cpu), 2),
            min_ms=round(min(times), 2),
            queries=len(recorder.queries),
            db_ms=round(sum(ms for _sql, _params, ms in recorder.queries), 2),
            peak_kib=round(peak / 1024, 1),
            rows=rows,
            status=getattr(response, "status_code", 0),
        )
        main = _main_query(recorder.queries, case.bare_sql) if case.bare_sql else None
        if main is not None:
            sql_times, sql_rows = _time_sql(*main, runs)
            result.sql_median_ms = round(statistics.median(sql_times), 3)
            result.sql_p95_ms = round(percentile(sql_times, 0.95), 3)
            result.sql_rows = sql_rows
            result.sql = main[0]
        if case.bare_sql and case.func is None:
            self._measure_rows(case, result, runs)
        return result

    def _measure_rows(self, case: Case, result: Result, runs: int) -> None:
        """The rows' ORM and formatting cost against the same queries run bare."""
        rows = _api_page_rows(case) if case.api else _list_page_rows(case)
        if rows is None:
            return
        rows()  # warm-up
        recorder = _Recorder()
        with connection.execute_wrapper(recorder):
            rows()
        times = []
        for _run in range(runs):
            started = time.perf_counter()
            rows()
            times.append((time.perf_counter() - started) * 1000)
        result.rows_median_ms = round(statistics.median(times), 3)
        result.rows_p95_ms = round(percentile(times, 0.95), 3)
        result.rows_min_ms = round(min(times), 3)
        result.rows_queries = len(recorder.queries)
        queries = [(sql, params) for sql, params, _ms in recorder.queries]
        if queries:
            bare = _time_queries(queries, runs)
            result.rows_sql_median_ms = round(statistics.median(bare), 3)
            result.rows_sql_min_ms = round(min(bare), 3)


def _headers(case: Case, number: int):
    return (case.headers(number) if case.headers else {}).items()


def run_cases(cases: list[Case], *, runs: int, progress: Callable[[Result], Any] | None = None):
    runner = Runner(runs=runs)
    results = []
    for case in cases:
        result = runner.run(case)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


# --- saving and comparing --------------------------------------------------------------------


def environment() -> dict[str, Any]:
    from kehu.customers.models import Customer
    from kehu.sales.models import Contract

    return {
        "database": connection.vendor,
        "customers": Customer.all_objects.count(),
        "contracts": Contract.all_objects.count(),
        "load_average": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "at": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def save(*, path: str, label: str, results: list[Result], env: dict[str, Any]) -> None:
    data = {"label": label, **env, "results": [asdict(r) for r in results]}
    Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@dataclass
class Comparison:
    median: float | None = None
    p95: float | None = None
    base: dict[str, Any] = field(default_factory=dict)


def compare(result: Result, baseline: dict[str, dict[str, Any]]) -> Comparison:
    base = baseline.get(result.key)
    if not base:
        return Comparison()
    return Comparison(
        median=result.median_ms / base["median_ms"] if base.get("median_ms") else None,
        p95=result.p95_ms / base["p95_ms"] if base.get("p95_ms") else None,
        base=base,
    )
