"""``manage.py bench`` on a tiny database, one run per case, so the benchmark cannot rot.

The benchmark itself (timings at 10,000 and 1,000,000 customers) is not part of the test
suite; see BENCHMARKS.md.
"""

import datetime
import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from kehu.core import bench
from kehu.customers.models import Customer
from kehu.finance.models import Payment
from tests.customers.factories import CustomerFactory
from tests.finance.factories import active_contract, plan

LIST_CASES = {"list_first", "search_cn3", "contract_list_first", "api_customers", "api_contracts"}


@pytest.fixture
def small(org):
    for i in range(25):
        CustomerFactory(owner=org.sales1, mobile=f"1380013{i:04d}")
    contract = active_contract(org, amount="5000.00")
    today = timezone.localdate()
    plan(contract, (today - datetime.timedelta(days=40), "2000.00"), (today, "3000.00"))
    return contract


def _run(tmp_path, **options):
    out = io.StringIO()
    path = tmp_path / "run.json"
    call_command(
        "bench", runs=1, deep_page=2, deep_page_all=2, save=str(path), stdout=out, **options
    )
    return out.getvalue(), json.loads(path.read_text(encoding="utf-8"))


def test_bench_runs_every_case_once(org, small, tmp_path):
    customers = Customer.all_objects.count()
    text, saved = _run(tmp_path)
    results = {r["key"]: r for r in saved["results"]}
    groups = {r["group"] for r in saved["results"]}
    assert groups == {"customers", "sales", "finance", "analytics", "fixed", "home"}
    expected = LIST_CASES | {
        "detail",
        "contract_detail",
        "create_customer",
        "record_payment",
        "aging_page",
        "aging_api",
        "dashboard",
        "all_dashboard",
        "home",
        "all_home",
        "finance_home",
    }
    assert expected <= set(results)
    assert "HTTP" not in text, text  # every request answered 200/201
    for key in LIST_CASES:
        result = results[key]
        # The bare SQL of the list query returned the rows the page showed.
        assert result["sql_median_ms"] > 0 and result["sql_rows"] == result["rows"] > 0, key
        # The rows alone, as the view evaluates and formats them, against the same queries.
        assert result["rows_median_ms"] > 0 and result["rows_sql_median_ms"] > 0, key
        assert result["rows_queries"] >= 1, key
    # The fixed cost of a request: an authenticated page and API call that do almost nothing.
    for key in ("fixed_page", "fixed_api"):
        assert results[key]["status"] == 200 and results[key]["queries"] > 0, key
        assert results[key]["median_ms"] < results["list_first"]["median_ms"] * 10, key
    assert all(r["queries"] > 0 and r["peak_kib"] > 0 for r in results.values())
    assert results["aging_api"]["rows"] == 1  # one customer owes money
    assert saved["customers"] == customers  # counted before the run created any


def test_bench_writes_one_row_per_run(org, small, tmp_path):
    customers = Customer.objects.count()
    _run(tmp_path, only="create_customer,record_payment")
    # warm-up, counted run, 1 timed run, traced run
    assert Customer.objects.count() == customers + 4
    assert Payment.objects.filter(contract=small, reference__startswith="bench-").count() == 4


def test_bench_baseline_ratios_and_only(org, small, tmp_path):
    _text, first = _run(tmp_path, only="customers")
    # The fixed-cost cases come with any selection: the others are read against them.
    assert {r["group"] for r in first["results"]} == {"customers", "fixed"}
    base = tmp_path / "base.json"
    base.write_text(json.dumps(first), encoding="utf-8")
    out = io.StringIO()
    call_command("bench", runs=1, only="list_first", baseline=str(base), deep_page=2, stdout=out)
    line = next(row for row in out.getvalue().splitlines() if row.startswith("list_first"))
    assert line.count("x") >= 3  # overhead, x median, x p95


def test_registered_callable_case_is_timed(org, small, tmp_path, monkeypatch):
    calls = []

    def work(run):
        calls.append(run)
        return bench.Measured(ms=12.5, rows=7) if run % 2 else 3

    monkeypatch.setattr(bench, "_registry", [bench.Case("custom", "Custom", func=work, runs=3)])
    _text, saved = _run(tmp_path)
    (result,) = saved["results"]
    assert len(calls) == 6  # warm-up, counted, 3 timed, traced
    assert result["key"] == "custom" and result["rows"] in (3, 7)


def test_bench_customers_alias_runs_customer_cases_only(org, small):
    out = io.StringIO()
    call_command("bench_customers", runs=1, deep_page=2, deep_page_all=2, list=True, stdout=out)
    text = out.getvalue()
    assert "list_first" in text and "contract_list_first" not in text
    assert "fixed_page" in text


def test_rows_measure_follows_the_view(org, small, tmp_path):
    """The rows' cost is the list view's own page queryset, formatted by its build_rows:
    the customer page's rows with their tags, the API's through the serializer."""
    _text, saved = _run(tmp_path, only="list_first,api_customers,contract_list_first")
    results = {r["key"]: r for r in saved["results"]}
    for key in ("list_first", "api_customers", "contract_list_first"):
        assert results[key]["rows_queries"] >= 1
        assert results[key]["rows_sql_median_ms"] > 0
    assert results["fixed_page"]["rows_median_ms"] is None  # no list, no rows measure


def test_pages_crawl_every_page_only_when_named(org, small, tmp_path):
    """``--only pages``: every argument-free page and API list for each user, each answered
    (a refusal counts); a run without --only leaves them out."""
    _text, saved = _run(tmp_path, only="sales1.customers*,salesmgr1.finance.reconciliation")
    results = {r["key"]: r for r in saved["results"]}
    assert {r["group"] for r in saved["results"]} == {"pages", "fixed"}
    assert {"sales1.customers", "sales1.customers.pool", "salesmgr1.finance.reconciliation"} <= set(
        results
    )
    assert results["sales1.customers.pool"]["status"] == 200
    assert all(r["status"] in (200, 400, 403, 405) for r in results.values())
    ctx = bench.BenchContext(user=org.sales1, manager=org.manager, finance=org.finance)
    cases = bench.collect(ctx)
    assert any(c.group == "pages" for c in cases)
    assert not any(c.group == "pages" for c in bench.select(cases))
    assert not any(c.url.startswith(("/admin/", "/accounts/logout")) for c in cases)
