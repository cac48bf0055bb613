"""The daily refresh task and ``manage.py analytics_refresh``."""

import datetime
import io

import pytest
from django.core.management import CommandError, call_command

from kehu.analytics import services
from kehu.analytics.models import AnalyticsRun, RunKind, RunStatus
from kehu.analytics.tasks import analytics_refresh
from kehu.core.periodic import enqueue_due_jobs, periodic_jobs
from tests.analytics.conftest import AS_OF

pytestmark = pytest.mark.django_db


def test_refresh_is_a_daily_periodic_task():
    job = next(j for j in periodic_jobs() if j.name == "analytics.refresh")
    assert job.every == datetime.timedelta(days=1)
    assert job.task is analytics_refresh


def test_the_worker_enqueues_it_once_a_day(monkeypatch):
    calls = []
    monkeypatch.setattr(services, "analytics_refresh_all", lambda **kw: calls.append(kw) or [])
    now = datetime.datetime(2026, 11, 2, 3, 0, tzinfo=datetime.UTC)
    assert "analytics.refresh" in enqueue_due_jobs(now)
    assert "analytics.refresh" not in enqueue_due_jobs(now + datetime.timedelta(hours=23))
    assert "analytics.refresh" in enqueue_due_jobs(now + datetime.timedelta(days=1))
    assert len(calls) == 2  # the tests' task backend runs tasks at once


def test_the_task_runs_every_job(history):
    result = analytics_refresh.enqueue()
    assert result.return_value == {kind: RunStatus.SUCCEEDED for kind in RunKind.values}
    assert AnalyticsRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 5


def test_command_prints_each_run_and_its_figures(history):
    out = io.StringIO()
    call_command("analytics_refresh", "--as-of", AS_OF.isoformat(), stdout=out)
    text = out.getvalue()
    for kind in RunKind.values:
        assert f"{kind}: succeeded" in text
    assert "BG/NBD r=" in text and "Gamma-Gamma p=" in text
    assert "churn AUC" in text and "recency only" in text
    assert "product pairs" in text and "monthly rows" in text
    assert "contract_amount (" in text
    assert "SalesFigure " in text  # the aggregates' rows per table
    assert set(AnalyticsRun.objects.values_list("as_of", flat=True)) == {AS_OF}


def test_command_on_an_empty_database_says_so(db):
    out = io.StringIO()
    call_command("analytics_refresh", stdout=out)
    assert "customers: succeeded" in out.getvalue()
    assert "0 customers scored" in out.getvalue()


def test_command_reports_a_failed_job_and_exits_with_an_error(monkeypatch, db):
    def broken(*, as_of):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "_customer_facts", broken)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 5"):
        call_command("analytics_refresh", stdout=out)
    assert "customers: failed" in out.getvalue() and "boom" in out.getvalue()


def test_command_refuses_a_bad_date():
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("analytics_refresh", "--as-of", "2026-13-01", stdout=io.StringIO())
