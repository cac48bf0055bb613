"""Customer import and export at scale (issue 8): the files, and timings through the services.

``customer_io_files_write`` writes a realistic customer file (CSV and XLSX) of any size:
names from the generator's word lists, phones, industry, source, level, stage, region,
owner by username, tags, with a share of duplicates (within the file and of customers
already stored) and of bad rows. ``customer_import_bench`` imports such a file through
``import_run`` (what the upload page, the API and the background task call) and
``customer_export_bench`` runs the export the list page and the API return, reading the
response to the end. Each reports median and 95th percentile time, queries and peak
memory (tracemalloc for Python objects; the process RSS high-water mark as well).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import math
import os
import random
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from kehu.core.imports import import_run, import_template_rows, read_table
from kehu.core.models import ImportJob
from kehu.customers.generate import ALL_INDUSTRIES, BRAND_CHARS, CITIES, SUFFIXES
from kehu.customers.imports import CustomerImporter
from kehu.customers.models import Customer, CustomerKind, CustomerStage

SOURCES = ["官网", "转介绍", "展会", "电话开发", "广告", "其他"]
LEVELS = ["A 重点客户", "B 普通客户", "C 一般客户", ""]
TAG_NAMES = ["重点客户", "老客户", "展会线索", "华东", "华南", "需回访", "渠道", "年度框架"]
# Shares of the file: rows repeating an earlier row, rows naming a stored customer, bad rows.
DUPLICATE_SHARE = 0.01
STORED_SHARE = 0.002
BAD_SHARE = 0.005


def _header() -> list[str]:
    with translation.override(settings.LANGUAGE_CODE):
        importer = CustomerImporter(user=None)
        return [h.rstrip(" *") for h in import_template_rows(importer)[0]]


def customer_io_rows(
    *, count: int, owners: list[str], stored_names: list[str], seed: int = 8
) -> list[list[str]]:
    """``count`` data rows in the template's column order (header not included)."""
    rng = random.Random(seed)
    header = _header()
    with translation.override(settings.LANGUAGE_CODE):
        # The labels a user sees in the install's language, as a filled-in template has.
        kind = str(CustomerKind.COMPANY.label)
        stages = [str(label) for _value, label in CustomerStage.choices[:3]] + [""]
    keys = [c.key for c in CustomerImporter(user=None).columns]
    assert len(keys) == len(header)
    rows: list[list[str]] = []
    for index in range(count):
        province, city, short_city, area, districts = rng.choice(CITIES)
        industry_word, _value = rng.choice(ALL_INDUSTRIES)
        brand = rng.choice(BRAND_CHARS) + rng.choice(BRAND_CHARS)
        # The running number keeps generated names distinct, as a real customer base is.
        name = f"{short_city}{brand}{industry_word}{index:06d}{rng.choice(SUFFIXES)}"
        values: dict[str, str] = {
            "name": name,
            "short_name": f"{short_city}{brand}",
            "kind": kind,
            "phone": f"{area}-{rng.randint(2000_0000, 8999_9999)}",
            "mobile": f"1{rng.choice('3589')}{rng.randint(0, 9)}{index:08d}",
            "email": f"contact{index}@{brand and 'corp'}{index % 997}.cn",
            "website": "",
            "province": province,
            "city": city,
            "district": rng.choice(districts),
            "street": f"科技路{rng.randint(1, 999)}号",
            "industry": rng.choice(["信息技术", "制造业", "零售", "金融", "教育", "医疗", "建筑"]),
            "source": rng.choice(SOURCES),
            "level": rng.choice(LEVELS),
            "stage": rng.choice(stages),
            "tags": ", ".join(rng.sample(TAG_NAMES, rng.randint(0, 2))),
            "notes": "" if rng.random() < 0.7 else "来自2026年展会名单，需尽快回访。",
            "owner": rng.choice(owners),
        }
        draw = rng.random()
        if draw < DUPLICATE_SHARE and rows:
            earlier = dict(zip(keys, rng.choice(rows), strict=True))
            values["name"] = earlier["name"]  # the same company twice in one file
        elif draw < DUPLICATE_SHARE + STORED_SHARE and stored_names:
            values["name"] = rng.choice(stored_names)
        elif draw < DUPLICATE_SHARE + STORED_SHARE + BAD_SHARE:
            fault = rng.randrange(5)
            if fault == 0:
                values["email"] = "not-an-email"
            elif fault == 1:
                values["industry"] = "农业机械"  # not in the dictionary
            elif fault == 2:
                values["mobile"] = "12"
            elif fault == 3:
                values["name"] = ""
            else:
                values["owner"] = "nobody-here"
        rows.append([values[k] for k in keys])
    return rows


def customer_io_files_write(
    *, directory: Path, count: int, owners: list[str], stored_names: list[str]
) -> dict[str, Path]:
    """Write ``customers-<count>.csv`` and ``.xlsx`` (same rows) into ``directory``."""
    from openpyxl import Workbook

    directory.mkdir(parents=True, exist_ok=True)
    rows = customer_io_rows(count=count, owners=owners, stored_names=stored_names)
    header = _header()
    paths = {
        "csv": directory / f"customers-{count}.csv",
        "xlsx": directory / f"customers-{count}.xlsx",
    }
    with paths["csv"].open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("customers")
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(paths["xlsx"])
    return paths


# --- measuring --------------------------------------------------------------------------------


@dataclass
class IoResult:
    case: str
    database: str
    rows: int
    runs: int
    median_s: float
    p95_s: float
    rows_per_s: float
    queries: int
    peak_python_mb: float
    peak_rss_mb: float
    outcome: dict[str, Any] = field(default_factory=dict)
    # CPU time of this process (user + system): on SQLite it includes the database's own
    # work, on PostgreSQL the server's CPU is not in it. Wall time means little when other
    # jobs share the cores; the load average says how much they did.
    cpu_s: float = 0.0
    rows_per_cpu_s: float = 0.0
    # PostgreSQL: the CPU time of this connection's server process (None when the server
    # runs elsewhere and /proc cannot tell).
    server_cpu_s: float | None = None
    load_average: list[float] = field(default_factory=list)
    # Per phase of the median run: [wall seconds, CPU seconds].
    phases: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        text = (
            f"{self.case:<34} {self.database:<10} rows {self.rows:>7}  median {self.median_s:8.2f}s"
            f"  p95 {self.p95_s:8.2f}s  {self.rows_per_s:>9,.0f} rows/s  queries {self.queries:>6}"
            f"  peak {self.peak_python_mb:7.1f} MB (RSS {self.peak_rss_mb:7.1f} MB)  {self.outcome}"
            f"\n{'':<34} CPU {self.cpu_s:8.2f}s  {self.rows_per_cpu_s:>9,.0f} rows/s of CPU"
            f"  load average {' '.join(f'{x:.2f}' for x in self.load_average)}"
        )
        if self.server_cpu_s is not None:
            text += f"  server CPU {self.server_cpu_s:.2f}s"
        if self.phases:
            text += (
                "\n"
                + " " * 35
                + "  ".join(
                    f"{name} {wall:.2f}s/{cpu:.2f}s" for name, (wall, cpu) in self.phases.items()
                )
                + "  (wall/CPU)"
            )
        return text


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _rss_reset() -> None:
    """Reset the kernel's RSS high-water mark (Linux), so each run reports its own peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _rss_peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    # Elsewhere: the process's high-water mark since it started (KiB on Linux, bytes on macOS).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _server_cpu() -> float | None:
    """CPU seconds used so far by this connection's PostgreSQL server process, when the
    server runs on this machine (its /proc entry is readable)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime, fields 14 and 15 of stat(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    case: str,
    rows: int,
    runs: int,
    action: Callable[[], dict[str, Any]],
    reset: Callable[[], None],
    *,
    trace_memory: bool = True,
) -> IoResult:
    """Time ``runs`` runs, then (``trace_memory``) one more under tracemalloc for the peak
    of Python allocations: tracing slows Python down, so it is kept out of the timings."""
    times: list[float] = []
    cpu: list[float] = []
    server: list[float] = []
    phases: list[dict[str, list[float]]] = []
    queries = 0
    rss = 0.0
    outcome: dict[str, Any] = {}
    load = list(os.getloadavg())
    for _run in range(runs):
        reset()
        gc.collect()
        _rss_reset()
        server_started = _server_cpu()
        with CaptureQueriesContext(connection) as captured:
            started, cpu_started = time.perf_counter(), time.process_time()
            outcome = action()
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        server_ended = _server_cpu()
        if server_started is not None and server_ended is not None:
            server.append(server_ended - server_started)
        phases.append(outcome.pop("phases", {}))
        rss = max(rss, _rss_peak_mb())
        queries = len(captured.captured_queries)
    load = [max(a, b) for a, b in zip(load, os.getloadavg(), strict=True)]
    peak = 0.0
    if trace_memory:
        reset()
        gc.collect()
        tracemalloc.start()
        try:
            action()
            peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024
        finally:
            tracemalloc.stop()
    median = statistics.median(times)
    median_cpu = statistics.median(cpu)
    middle = sorted(range(len(times)), key=times.__getitem__)[(len(times) - 1) // 2]
    return IoResult(
        case=case,
        database=connection.vendor,
        rows=rows,
        runs=runs,
        median_s=round(median, 3),
        p95_s=round(_percentile(times, 0.95), 3),
        rows_per_s=round(rows / median, 1) if median else 0.0,
        queries=queries,
        peak_python_mb=round(peak, 1),
        peak_rss_mb=round(rss, 1),
        outcome=outcome,
        cpu_s=round(median_cpu, 3),
        rows_per_cpu_s=round(rows / median_cpu, 1) if median_cpu else 0.0,
        load_average=[round(x, 2) for x in load],
        phases=phases[middle],
        server_cpu_s=round(statistics.median(server), 3) if server else None,
    )


def customer_import_bench(
    *,
    user,
    path: Path,
    runs: int = 3,
    mode: str = ImportJob.Mode.GOOD_ROWS,
    policy: str = ImportJob.DuplicatePolicy.SKIP,
    trace_memory: bool = True,
) -> IoResult:
    """Import ``path`` ``runs`` times, each into the same starting state.

    Each run's customers are deleted afterwards (with their events, tags and log rows),
    so every run meets the same stored duplicates. The timing covers reading the file,
    validating every row, duplicate checks and writing, exactly as an import job does.
    """
    data = path.read_bytes()
    ceiling = Customer.all_objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def reset() -> None:
        _delete_after(ceiling)

    def action() -> dict[str, Any]:
        result = import_run(
            importer=CustomerImporter(user=user, duplicate_policy=policy),
            data=data,
            filename=path.name,
            mode=mode,
        )
        phases = result.phases
        return {
            "created": result.created,
            "skipped": result.skipped,
            "updated": result.updated,
            "error_rows": len({e["line"] for e in result.errors}),
            "status": str(result.status),
            "phases": {
                name: [round(phases.wall[name], 2), round(phases.cpu[name], 2)]
                for name in phases.wall
            }
            if phases
            else {},
        }

    rows = len(read_table(data, path.name).rows)  # data rows, as the import counts them
    measured = _measure(
        f"import {path.suffix[1:]} ({mode})", rows, runs, action, reset, trace_memory=trace_memory
    )
    reset()
    return measured


def _delete_after(ceiling: int) -> None:
    """Remove the customers an import run wrote (pk above ``ceiling``), with their events
    and tags. Their operation-log rows stay: the log is append-only."""
    from kehu.customers.models import CustomerEvent

    with transaction.atomic():
        ids = Customer.all_objects.filter(pk__gt=ceiling).values("pk")
        CustomerEvent.objects.filter(customer__in=ids).delete()
        Customer.tags.through.objects.filter(customer__in=ids).delete()
        Customer.all_objects.filter(pk__gt=ceiling).delete()


def customer_export_bench(*, user, fmt: str, runs: int = 3, trace_memory: bool = True) -> IoResult:
    """Export the user's customer list as the list page does (``/customers/?export=fmt``),
    reading the streamed response to its end, as a browser downloading it would."""
    from django.test import Client

    from kehu.customers.selectors import customer_list_visible_to

    client = Client()
    client.force_login(user)
    rows = customer_list_visible_to(user=user).count()

    def action() -> dict[str, Any]:
        response = client.get(f"/customers/?export={fmt}", secure=True)
        size = 0
        if response.streaming:
            for chunk in response.streaming_content:  # type: ignore[attr-defined]
                size += len(chunk)
        else:
            size = len(response.content)
        response.close()
        return {"status": response.status_code, "bytes": size}

    return _measure(f"export {fmt}", rows, runs, action, lambda: None, trace_memory=trace_memory)


# --- cases of ``manage.py bench`` -------------------------------------------------------------


def io_rows() -> int:
    """Rows of the import cases: ``KEHU_BENCH_IO_ROWS``; 0 (unset) leaves the cases out, as
    each run imports the whole file (``KEHU_BENCH_IO_ROWS=100000 manage.py bench --only
    customers-io``)."""
    return int(os.environ.get("KEHU_BENCH_IO_ROWS", "0") or 0)


def _import_case(ctx, fmt: str) -> Callable[[int], Any]:
    from kehu.core.bench import Measured

    state: dict[str, Any] = {}

    def run(_number: int) -> Measured:
        if "path" not in state:
            owners = [ctx.dept_manager.username] if ctx.dept_manager else [ctx.user.username]
            paths = customer_io_files_write(
                directory=Path(settings.VAR_DIR) / "io",
                count=io_rows(),
                owners=owners,
                stored_names=[],
            )
            state["path"] = paths[fmt]
            state["data"] = paths[fmt].read_bytes()
            state["ceiling"] = (
                Customer.all_objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            )
        _delete_after(state["ceiling"])  # the same starting state each run, not timed
        started = time.perf_counter()
        result = import_run(
            importer=CustomerImporter(user=ctx.dept_manager or ctx.user),
            data=state["data"],
            filename=state["path"].name,
            mode=ImportJob.Mode.GOOD_ROWS,
        )
        elapsed = (time.perf_counter() - started) * 1000
        _delete_after(state["ceiling"])
        return Measured(ms=elapsed, rows=result.total_rows)

    return run


def io_cases(ctx) -> list:
    from kehu.core.bench import Case

    if not io_rows():
        return []
    cases = [
        Case(
            f"import_{fmt}",
            f"Import {io_rows():,} customers ({fmt.upper()}, good rows only)",
            group="customers-io",
            func=_import_case(ctx, fmt),
            runs=3,
        )
        for fmt in ("csv", "xlsx")
    ]
    if ctx.manager is not None:
        for fmt in ("csv", "xlsx"):
            cases.append(
                Case(
                    f"export_{fmt}",
                    f"Export every customer ({fmt.upper()})",
                    group="customers-io",
                    user=ctx.manager,
                    url=f"/customers/?export={fmt}",
                    runs=3,
                )
            )
    return cases
