"""The analytics demo: two years of consistent history, then results on every page's data."""

import datetime
import time
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db.models import Max
from django.utils import timezone

from kehu.analytics import demo
from kehu.analytics.models import (
    AnalyticsRun,
    CustomerScore,
    ProductAssociation,
    RunKind,
    RunStatus,
    Segment,
)
from kehu.analytics.services import recommendations_for
from kehu.approvals.models import ApprovalRequest
from kehu.customers.models import Customer, FollowUp
from kehu.sales.generate import HISTORY_RULE_NAME
from kehu.sales.models import Contract, ContractStatus, Order, OrderStatus, Quote
from kehu.system.demo import demo_data_load
from tests.analytics.test_history import assert_history_consistent

pytestmark = pytest.mark.django_db


def test_analytics_demo(settings):
    """One load of the whole demo company, then every check on it."""
    settings.DEMO_MODE = True
    started = time.process_time()
    created = demo_data_load()
    assert time.process_time() - started < 90  # CPU seconds, the whole company
    assert created["quotes"] > 0 and created["contracts"] > 0  # the sales demo ran first
    assert created["history contracts"] > 500 and created["history payments"] > 500
    assert created["analytics runs"] == 5  # the stored aggregates rebuilt, then the four jobs
    _history_before_the_sales_demo()
    assert_history_consistent()
    _followups_before_deals()
    _results_are_meaningful()
    _idempotent()


def _history_before_the_sales_demo():
    today = timezone.localdate()
    history = Contract.objects.filter(
        pk__in=ApprovalRequest.objects.filter(rule_name=HISTORY_RULE_NAME).values("object_id")
    )
    assert set(history.values_list("status", flat=True)) == {
        ContractStatus.ACTIVE,
        ContractStatus.COMPLETED,
    }
    end = today - datetime.timedelta(days=demo.GAP_DAYS)
    signed = history.aggregate(first=Max("signed_on"))["first"]
    assert end - datetime.timedelta(days=30) < signed <= end
    assert history.order_by("signed_on").first().signed_on >= end - datetime.timedelta(days=730)
    history_orders = Order.objects.filter(contract__in=history)
    assert history_orders.aggregate(m=Max("order_date"))["m"] <= end
    # The sales demo's documents are all there, in every status, the latest after the history.
    assert set(Order.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    assert Order.objects.exclude(contract__in=history).aggregate(m=Max("order_date"))["m"] > end
    assert Quote.objects.exists()
    # More business in December and January than in February and August.
    by_month: dict[int, Decimal] = defaultdict(Decimal)
    for signed_on, amount in history.values_list("signed_on", "total_amount"):
        by_month[signed_on.month] += amount
    assert by_month[12] + by_month[1] > Decimal("1.5") * (by_month[2] + by_month[8])


def _followups_before_deals():
    history = Contract.objects.filter(
        pk__in=ApprovalRequest.objects.filter(rule_name=HISTORY_RULE_NAME).values("object_id")
    )
    buyers = set(history.values_list("customer_id", flat=True))
    assert FollowUp.objects.filter(customer_id__in=buyers).count() > len(buyers)
    latest = dict(
        FollowUp.objects.values("customer_id")
        .annotate(m=Max("happened_at"))
        .values_list("customer_id", "m")
    )
    for customer in Customer.objects.filter(pk__in=buyers):
        assert customer.last_followup_at == latest[customer.pk]


def _results_are_meaningful():
    runs = {run.kind: run for run in AnalyticsRun.objects.all()}
    assert {run.status for run in runs.values()} == {RunStatus.SUCCEEDED}
    customers = runs[RunKind.CUSTOMERS].metrics
    assert customers["customers"] > 150
    bgnbd = customers["bgnbd"]
    assert 0.1 < bgnbd["r"] < 10 and 10 < bgnbd["alpha"] < 1000  # a few purchases a year
    assert bgnbd["a"] / (bgnbd["a"] + bgnbd["b"]) < 0.3  # most stay after a purchase
    assert customers["gamma_gamma"]["p"] > 0 and customers["gamma_gamma"]["q"] > 1
    calibration = customers["calibration"]
    assert 0.3 < calibration["actual_total"] / calibration["predicted_total"] < 1.5
    churn = customers["churn"]
    assert churn["status"] == "ok"
    assert churn["auc"] > 0.7 and churn["auc"] >= churn["baseline_auc"] - 0.02, churn
    assert churn["coefficients"]["days_since_followup"] > 0  # no calls lately: more risk
    assert set(customers["segments"]) == set(Segment.values), customers["segments"]
    assert min(customers["segments"].values()) >= 3
    scores = CustomerScore.objects.all()
    assert all(s.gross_profit > 0 for s in scores)  # list prices are above cost
    lapsed = scores.filter(recency_days__gt=365)
    recent = scores.filter(recency_days__lt=90)
    assert lapsed.exists() and recent.exists()
    assert (
        sum(s.p_alive for s in recent) / recent.count()
        > sum(s.p_alive for s in lapsed) / lapsed.count()
    )

    forecast = runs[RunKind.FORECAST].metrics["series"]["all"]
    for metric in ("contract_amount", "collected"):
        entry = forecast[metric]
        assert sum(1 for v in entry["history"] if v) >= 20
        for lower, mean, upper in zip(entry["lower"], entry["mean"], entry["upper"], strict=True):
            assert lower < mean < upper and mean > 0

    assert runs[RunKind.ASSOCIATIONS].metrics["pairs"] > 0
    pairs = dict(demo._pairs(demo._goods()))
    firsts: dict[int, int] = {}
    for row in ProductAssociation.objects.order_by("-lift"):
        firsts.setdefault(row.source_id, row.target_id)
    planted_first = sum(1 for source, target in pairs.items() if firsts.get(source) == target)
    assert planted_first >= len(pairs) // 4, (planted_first, len(pairs))
    customer = Customer.objects.get(pk=scores.order_by("-orders").first().customer_id)
    assert recommendations_for(customer=customer, k=3)


def _idempotent():
    counts = {
        model.__name__: model._base_manager.count()
        for model in (Contract, Order, FollowUp, AnalyticsRun)
    }
    again = demo_data_load()
    assert not {k: v for k, v in again.items() if v}, again
    assert counts == {
        model.__name__: model._base_manager.count()
        for model in (Contract, Order, FollowUp, AnalyticsRun)
    }
