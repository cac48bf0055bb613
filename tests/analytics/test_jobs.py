"""The analytics jobs on a two-year order history."""

import pytest

from kehu.analytics import services
from kehu.analytics.models import CustomerScore, Metric, MonthlyFigure, RunStatus
from tests.analytics.conftest import AS_OF

pytestmark = pytest.mark.django_db


def test_all_jobs_run_and_store_results(history, org):
    runs = services.analytics_refresh_all(as_of=AS_OF)
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 5, [r.error for r in runs]
    aggregates, figures, customers, associations, forecast = runs
    # The stored aggregates are rebuilt first (a repair): the rows per table.
    assert aggregates.metrics["rows"]["ProductFigure"] > 0
    assert MonthlyFigure.objects.filter(metric=Metric.ORDER_AMOUNT).exists()
    assert CustomerScore.objects.count() == 60
    assert customers.metrics["bgnbd"]["r"] > 0
    assert customers.metrics["churn"]["status"] == "ok"
    churn_metrics = customers.metrics["churn"]
    assert churn_metrics["auc"] >= churn_metrics["baseline_auc"] - 0.05, churn_metrics
    assert churn_metrics["auc"] > 0.7, churn_metrics
    lapsed = CustomerScore.objects.filter(customer__in=history["customers"][::3])
    loyal = CustomerScore.objects.exclude(customer__in=history["customers"][::3])
    assert max(s.p_alive for s in lapsed) < min(s.p_alive for s in loyal) + 0.5
    assert (
        sum(s.churn_risk for s in lapsed) / lapsed.count()
        > sum(s.churn_risk for s in loyal) / loyal.count()
    )
    assert associations.metrics["pairs"] > 0
    assert forecast.metrics["series"]["all"]["contract_amount"]["method"] in {
        "mean",
        "ets_damped",
        "ets_seasonal",
    }
    recommended = services.recommendations_for(customer=history["customers"][4], k=3)
    assert all(r["product"] not in history["products"][:2] for r in recommended)


def test_a_failing_job_is_recorded_not_raised(monkeypatch, db):
    def broken(*, as_of):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "_customer_facts", broken)
    run = services.customers_refresh(as_of=AS_OF)
    assert run.status == RunStatus.FAILED and "boom" in run.error
