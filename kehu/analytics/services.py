"""The analytics jobs: read the business tables, run the statistics, store the results.

Run by the worker on a schedule (``tasks.py``) or by ``manage.py analytics_refresh``; never
inside a web request. Each job records an ``AnalyticsRun`` with its metrics, or its error.
"""

from __future__ import annotations

import datetime
import logging
import traceback
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from kehu.analytics.models import (
    AnalyticsRun,
    CustomerScore,
    Metric,
    MonthlyFigure,
    ProductAssociation,
    RunKind,
    RunStatus,
)
from kehu.analytics.stats import churn, clv, forecast, recommend, rfm
from kehu.core.money import quantize_money

logger = logging.getLogger(__name__)
ZERO = Decimal("0.00")
FIGURE_MONTHS = 36
PREDICTION_DAYS = 90  # expected orders in the next quarter
CLV_DAYS = 365
CHURN_WINDOW_DAYS = 180  # churned = no order in the 180 days after the cutoff
CHURN_FEATURES = [
    "recency_days",
    "orders_365d",
    "revenue_365d",
    "order_trend",
    "followups_90d",
    "days_since_followup",
    "overdue_amount",
    "tenure_days",
]


def _run(kind: str, as_of: datetime.date, job: Callable[[AnalyticsRun], dict]) -> AnalyticsRun:
    run = AnalyticsRun.objects.create(kind=kind, as_of=as_of)
    try:
        metrics = job(run)
    except Exception as exc:  # recorded and shown; one failing job does not stop the others
        logger.exception("analytics job %s failed", kind)
        AnalyticsRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{exc}\n{traceback.format_exc()}"[-4000:],
        )
    else:
        AnalyticsRun.objects.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED, finished_at=timezone.now(), metrics=metrics
        )
    run.refresh_from_db()
    return run


def latest_run(kind: str) -> AnalyticsRun | None:
    return (
        AnalyticsRun.objects.filter(kind=kind, status=RunStatus.SUCCEEDED)
        .order_by("-finished_at")
        .first()
    )


# --- transactions -------------------------------------------------------------------------


def _orders():
    from kehu.sales.models import Order, OrderStatus

    return Order.objects.exclude(status=OrderStatus.CANCELLED)


def _order_rows(until: datetime.date):
    """(customer id, order date, revenue, cost) of every order placed up to ``until``."""
    from kehu.sales.models import OrderLine

    cost = (
        OrderLine.objects.filter(order__in=_orders(), order__order_date__lte=until)
        .values("order_id")
        .annotate(
            cost=Sum(
                ExpressionWrapper(
                    F("quantity") * F("product__cost_price"),
                    output_field=DecimalField(max_digits=30, decimal_places=5),
                )
            )
        )
    )
    costs = {row["order_id"]: row["cost"] or ZERO for row in cost}
    rows = (
        _orders()
        .filter(order_date__lte=until)
        .values_list("pk", "customer_id", "order_date", "subtotal_amount")
    )
    return [(customer, day, revenue, costs.get(pk, ZERO)) for pk, customer, day, revenue in rows]


# --- monthly figures ----------------------------------------------------------------------


def _month_start(day: datetime.date, months_back: int) -> datetime.date:
    """First day of the month ``months_back`` months before ``day``'s (negative: after)."""
    index = day.year * 12 + day.month - 1 - months_back
    return datetime.date(index // 12, index % 12 + 1, 1)


def figures_refresh(*, as_of: datetime.date | None = None) -> AnalyticsRun:
    """Rebuild the monthly totals per owner for the last ``FIGURE_MONTHS`` months."""
    as_of = as_of or timezone.localdate()

    def job(run: AnalyticsRun) -> dict:
        from kehu.customers.models import Customer, FollowUp
        from kehu.finance.models import ExpenseClaim, Payment, PaymentStatus, Refund, RefundStatus
        from kehu.sales.models import Contract, ContractStatus

        start = _month_start(as_of, FIGURE_MONTHS - 1)
        sources = [
            (
                Metric.CONTRACT_AMOUNT,
                Contract.objects.filter(
                    status__in=[
                        ContractStatus.ACTIVE,
                        ContractStatus.COMPLETED,
                        ContractStatus.TERMINATED,
                    ],
                    signed_on__gte=start,
                    signed_on__lte=as_of,
                ),
                "signed_on",
                "owner_id",
                "department_id",
                Sum("total_amount"),
            ),
            (
                Metric.CONTRACTS,
                Contract.objects.filter(
                    status__in=[
                        ContractStatus.ACTIVE,
                        ContractStatus.COMPLETED,
                        ContractStatus.TERMINATED,
                    ],
                    signed_on__gte=start,
                    signed_on__lte=as_of,
                ),
                "signed_on",
                "owner_id",
                "department_id",
                Count("id"),
            ),
            (
                Metric.COLLECTED,
                Payment.objects.filter(
                    status=PaymentStatus.CONFIRMED, received_on__gte=start, received_on__lte=as_of
                ),
                "received_on",
                "owner_id",
                "department_id",
                Sum("amount"),
            ),
            (
                Metric.ORDER_AMOUNT,
                _orders().filter(order_date__gte=start, order_date__lte=as_of),
                "order_date",
                "owner_id",
                "department_id",
                Sum("total_amount"),
            ),
            (
                Metric.NEW_CUSTOMERS,
                Customer.all_objects.filter(
                    created_at__date__gte=start, created_at__date__lte=as_of
                ),
                "created_at",
                "owner_id",
                "department_id",
                Count("id"),
            ),
            (
                Metric.FOLLOWUPS,
                FollowUp.objects.filter(happened_at__date__gte=start, happened_at__date__lte=as_of),
                "happened_at",
                "author_id",
                "author__department_id",
                Count("id"),
            ),
            (
                Metric.EXPENSES,
                ExpenseClaim.objects.filter(
                    status__in=["approved", "paid"], spent_on__gte=start, spent_on__lte=as_of
                ),
                "spent_on",
                "owner_id",
                "department_id",
                Sum("amount"),
            ),
        ]
        totals: dict = defaultdict(lambda: ZERO)
        for metric, queryset, date_field, owner_field, department_field, aggregate in sources:
            rows = (
                queryset.annotate(month=TruncMonth(date_field))
                .values("month", owner_field, department_field)
                .annotate(value=aggregate)
                .order_by()
            )
            for row in rows:
                month = row["month"]
                if isinstance(month, datetime.datetime):
                    month = (
                        timezone.localtime(month).date()
                        if timezone.is_aware(month)
                        else month.date()
                    )
                key = (month.replace(day=1), metric, row[owner_field], row[department_field])
                totals[key] += Decimal(row["value"] or 0)
        # Refunds are money going back: collections are net of them.
        refunds = (
            Refund.objects.filter(
                status=RefundStatus.APPROVED, refunded_on__gte=start, refunded_on__lte=as_of
            )
            .annotate(month=TruncMonth("refunded_on"))
            .values("month", "owner_id", "department_id")
            .annotate(value=Sum("amount"))
            .order_by()
        )
        for row in refunds:
            key = (
                row["month"].replace(day=1),
                Metric.COLLECTED,
                row["owner_id"],
                row["department_id"],
            )
            totals[key] -= row["value"]
        with transaction.atomic():
            MonthlyFigure.objects.all().delete()
            MonthlyFigure.objects.bulk_create(
                [
                    MonthlyFigure(
                        month=month,
                        metric=metric,
                        owner_id=owner,
                        department_id=department,
                        value=value,
                    )
                    for (month, metric, owner, department), value in totals.items()
                ],
                batch_size=2000,
            )
        return {"rows": len(totals), "from": start.isoformat(), "to": as_of.isoformat()}

    return _run(RunKind.FIGURES, as_of, job)


# --- customers: value, RFM, purchase model, churn -----------------------------------------


def _customer_history(rows):
    """customer → sorted order dates, revenue and cost totals."""
    dates: dict[int, list[datetime.date]] = defaultdict(list)
    revenue: dict[int, Decimal] = defaultdict(lambda: ZERO)
    cost: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for customer, day, amount, goods in rows:
        dates[customer].append(day)
        revenue[customer] += amount
        cost[customer] += goods
    for days in dates.values():
        days.sort()
    return dates, revenue, cost


def _churn_features(
    *, cutoff: datetime.date, customers: list[int], dates, amounts_by_day, followups, overdue
):
    x = []
    for customer in customers:
        days = [d for d in dates[customer] if d <= cutoff]
        last = days[-1]
        first = days[0]
        year_ago = cutoff - datetime.timedelta(days=365)
        half = cutoff - datetime.timedelta(days=180)
        year_ago_half = cutoff - datetime.timedelta(days=360)
        recent = sum(1 for d in days if d > half)
        before = sum(1 for d in days if year_ago_half < d <= half)
        customer_followups = [d for d in followups.get(customer, []) if d <= cutoff]
        last_followup = max(customer_followups) if customer_followups else None
        x.append(
            [
                (cutoff - last).days,
                sum(1 for d in days if d > year_ago),
                float(sum(a for d, a in amounts_by_day[customer] if year_ago < d <= cutoff)),
                recent - before,
                sum(1 for d in customer_followups if d > cutoff - datetime.timedelta(days=90)),
                min((cutoff - last_followup).days, 365) if last_followup else 365,
                float(overdue(customer, cutoff)),
                (cutoff - first).days,
            ]
        )
    return np.array(x, dtype=float)


def _overdue_lookup():
    """(customer, day) → amount of instalments due before ``day`` not covered by payments
    received before it (due-date order), for churn features at past cutoffs."""
    from kehu.finance.models import Payment, PaymentStatus, ReceivableInstalment

    plans: dict[int, list[tuple[datetime.date, Decimal, int]]] = defaultdict(list)
    for contract, customer, due, amount in ReceivableInstalment.objects.values_list(
        "contract_id", "contract__customer_id", "due_date", "amount"
    ):
        plans[customer].append((due, amount, contract))
    paid: dict[int, list[tuple[datetime.date, Decimal]]] = defaultdict(list)
    for customer, day, amount in Payment.objects.filter(status=PaymentStatus.CONFIRMED).values_list(
        "contract__customer_id", "received_on", "amount"
    ):
        paid[customer].append((day, amount))

    def overdue(customer: int, day: datetime.date) -> Decimal:
        due = sum((a for d, a, _c in plans.get(customer, []) if d < day), ZERO)
        received = sum((a for d, a in paid.get(customer, []) if d < day), ZERO)
        return max(due - received, ZERO)

    return overdue


def customers_refresh(*, as_of: datetime.date | None = None) -> AnalyticsRun:
    """Value, RFM segments, BG/NBD + Gamma-Gamma predictions and churn risk per customer."""
    as_of = as_of or timezone.localdate()

    def job(run: AnalyticsRun) -> dict:
        from kehu.customers.models import FollowUp

        rows = _order_rows(as_of)
        dates, revenue, cost = _customer_history(rows)
        customers = sorted(dates)
        metrics: dict = {"customers": len(customers)}
        if not customers:
            CustomerScore.objects.all().delete()
            return metrics
        # Orders on the same day count as one purchase occasion for the purchase model.
        occasions = {c: sorted(set(dates[c])) for c in customers}
        first = np.array([(as_of - occasions[c][0]).days for c in customers], dtype=float)
        x = np.array([len(occasions[c]) - 1 for c in customers], dtype=float)
        t_x = np.array([(occasions[c][-1] - occasions[c][0]).days for c in customers], dtype=float)
        T = np.maximum(first, 1.0)
        revenue_arr = np.array([float(revenue[c]) for c in customers])
        recency = np.array([(as_of - dates[c][-1]).days for c in customers], dtype=float)
        frequency = np.array([len(dates[c]) for c in customers], dtype=float)
        scores = rfm.rfm_score(recency, frequency, revenue_arr)

        mean_order = revenue_arr / frequency
        if len(customers) >= 20 and (x > 0).sum() >= 10:
            params = clv.bgnbd_fit(x, t_x, T, penalizer=0.001)
            p_alive = clv.bgnbd_p_alive(params, x, t_x, T)
            expected = clv.bgnbd_expected_purchases(params, PREDICTION_DAYS, x, t_x, T)
            expected_year = clv.bgnbd_expected_purchases(params, CLV_DAYS, x, t_x, T)
            spend_params = clv.gamma_gamma_fit(x, mean_order)
            spend = clv.gamma_gamma_expected_spend(spend_params, x, mean_order)
            metrics["bgnbd"] = params.__dict__
            metrics["gamma_gamma"] = spend_params.__dict__
            metrics["calibration"] = _bgnbd_holdout(rows, as_of)
        else:
            p_alive = np.ones(len(customers))
            expected = np.zeros(len(customers))
            expected_year = np.zeros(len(customers))
            spend = mean_order
            metrics["bgnbd"] = None
        margin = np.array(
            [float((revenue[c] - cost[c]) / revenue[c]) if revenue[c] else 0.0 for c in customers]
        )
        clv_values = expected_year * spend * np.clip(margin, 0, 1)

        followups: dict[int, list[datetime.date]] = defaultdict(list)
        for customer, happened in FollowUp.objects.filter(customer_id__in=customers).values_list(
            "customer_id", "happened_at"
        ):
            followups[customer].append(timezone.localtime(happened).date())
        amounts_by_day: dict[int, list[tuple[datetime.date, Decimal]]] = defaultdict(list)
        for customer, day, amount, _cost in rows:
            amounts_by_day[customer].append((day, amount))
        risk, factors, churn_metrics = _churn(
            as_of=as_of,
            customers=customers,
            dates=dates,
            amounts_by_day=amounts_by_day,
            followups=followups,
        )
        metrics["churn"] = churn_metrics
        now = timezone.now()
        objects = []
        for i, customer in enumerate(customers):
            objects.append(
                CustomerScore(
                    customer_id=customer,
                    computed_at=now,
                    orders=int(frequency[i]),
                    first_order_on=dates[customer][0],
                    last_order_on=dates[customer][-1],
                    recency_days=int(recency[i]),
                    revenue=quantize_money(revenue[customer]),
                    cost=quantize_money(cost[customer]),
                    gross_profit=quantize_money(revenue[customer] - cost[customer]),
                    r_score=int(scores.r[i]),
                    f_score=int(scores.f[i]),
                    m_score=int(scores.m[i]),
                    segment=scores.segments[i],
                    p_alive=float(p_alive[i]),
                    expected_purchases=float(expected[i]),
                    expected_spend=quantize_money(Decimal(str(round(float(spend[i]), 2)))),
                    clv=quantize_money(Decimal(str(round(float(clv_values[i]), 2)))),
                    churn_risk=None if risk is None else float(risk[i]),
                    churn_factors=[] if factors is None else factors[i],
                )
            )
        with transaction.atomic():
            CustomerScore.objects.all().delete()
            CustomerScore.objects.bulk_create(objects, batch_size=2000)
        metrics["segments"] = {code: scores.segments.count(code) for code in set(scores.segments)}
        return metrics

    return _run(RunKind.CUSTOMERS, as_of, job)


def _bgnbd_holdout(rows, as_of: datetime.date) -> dict | None:
    """Fit on all but the last 180 days, predict those 180 days, compare with what happened."""
    split = as_of - datetime.timedelta(days=CHURN_WINDOW_DAYS)
    dates, _revenue, _cost = _customer_history([r for r in rows if r[1] <= split])
    customers = sorted(dates)
    if len(customers) < 20:
        return None
    occasions = {c: sorted(set(dates[c])) for c in customers}
    x = np.array([len(occasions[c]) - 1 for c in customers], dtype=float)
    if (x > 0).sum() < 10:
        return None
    t_x = np.array([(occasions[c][-1] - occasions[c][0]).days for c in customers], dtype=float)
    T = np.maximum(np.array([(split - occasions[c][0]).days for c in customers], dtype=float), 1)
    params = clv.bgnbd_fit(x, t_x, T, penalizer=0.001)
    predicted = clv.bgnbd_expected_purchases(params, CHURN_WINDOW_DAYS, x, t_x, T)
    later: dict[int, set] = defaultdict(set)
    for customer, day, _a, _c in rows:
        if split < day <= as_of and customer in occasions:
            later[customer].add(day)
    actual = np.array([len(later[c]) for c in customers], dtype=float)
    groups = []
    for value in range(0, 5):
        mask = np.minimum(x, 4) == value
        if mask.any():
            groups.append(
                {
                    "repeat_purchases": f"{value}+" if value == 4 else str(value),
                    "customers": int(mask.sum()),
                    "predicted": float(predicted[mask].mean()),
                    "actual": float(actual[mask].mean()),
                }
            )
    return {
        "split": split.isoformat(),
        "predicted_total": float(predicted.sum()),
        "actual_total": float(actual.sum()),
        "groups": groups,
    }


def _churn(*, as_of, customers, dates, amounts_by_day, followups):
    """Train on an older cutoff, evaluate on a newer one, score everyone as of today."""
    overdue = _overdue_lookup()
    window = datetime.timedelta(days=CHURN_WINDOW_DAYS)
    test_cutoff = as_of - window
    train_cutoff = test_cutoff - window

    def labelled(cutoff):
        population = [c for c in customers if dates[c][0] <= cutoff]
        labels = [
            0 if any(cutoff < d <= cutoff + window for d in dates[c]) else 1 for c in population
        ]
        return population, np.array(labels)

    kwargs = {
        "dates": dates,
        "amounts_by_day": amounts_by_day,
        "followups": followups,
        "overdue": overdue,
    }
    train_customers, y_train = labelled(train_cutoff)
    test_customers, y_test = labelled(test_cutoff)
    if (
        len(train_customers) < 30
        or len(set(y_train)) < 2
        or len(test_customers) < 30
        or len(set(y_test)) < 2
    ):
        return None, None, {"status": "insufficient_history"}
    x_train = _churn_features(cutoff=train_cutoff, customers=train_customers, **kwargs)
    x_test = _churn_features(cutoff=test_cutoff, customers=test_customers, **kwargs)
    model = churn.churn_fit(x_train, y_train, CHURN_FEATURES)
    baseline = churn.churn_fit(x_train[:, :1], y_train, CHURN_FEATURES[:1])
    evaluation = churn.churn_evaluate(
        model, x_test, y_test, baseline_scores=baseline.predict(x_test[:, :1])
    )
    # The model that scores today learns from the most recent outcomes available.
    final = churn.churn_fit(x_test, y_test, CHURN_FEATURES)
    x_now = _churn_features(cutoff=as_of, customers=customers, **kwargs)
    risk = final.predict(x_now)
    factors = [
        [{"feature": name, "weight": round(weight, 3)} for name, weight in row]
        for row in final.top_factors(x_now, k=3)
    ]
    return (
        risk,
        factors,
        {
            "status": "ok",
            "train_cutoff": train_cutoff.isoformat(),
            "test_cutoff": test_cutoff.isoformat(),
            "auc": evaluation.auc,
            "baseline_auc": evaluation.baseline_auc,
            "brier": evaluation.brier,
            "calibration": evaluation.calibration,
            "holdout_customers": evaluation.n,
            "holdout_churn_rate": evaluation.positive_rate,
            "coefficients": final.coefficients(),
        },
    )


# --- recommendations ----------------------------------------------------------------------


def associations_refresh(*, as_of: datetime.date | None = None) -> AnalyticsRun:
    as_of = as_of or timezone.localdate()

    def job(run: AnalyticsRun) -> dict:
        from kehu.sales.models import OrderLine

        baskets: dict[int, set[int]] = defaultdict(set)
        for customer, product in (
            OrderLine.objects.filter(order__in=_orders())
            .values_list("order__customer_id", "product_id")
            .distinct()
        ):
            baskets[customer].add(product)
        rules = recommend.associations(baskets, min_support=3)
        objects = [
            ProductAssociation(
                source_id=a.source,
                target_id=a.target,
                support=a.support,
                confidence=a.confidence,
                lift=a.lift,
            )
            for rows in rules.values()
            for a in rows
        ]
        with transaction.atomic():
            ProductAssociation.objects.all().delete()
            ProductAssociation.objects.bulk_create(objects, batch_size=2000)
        return {"customers": len(baskets), "pairs": len(objects)}

    return _run(RunKind.ASSOCIATIONS, as_of, job)


def recommendations_for(*, customer, k: int = 5) -> list[dict]:
    """Products for ``customer`` from the stored associations, excluding what they bought."""
    from kehu.products.models import Product
    from kehu.sales.models import OrderLine

    owned = set(
        OrderLine.objects.filter(order__in=_orders(), order__customer=customer).values_list(
            "product_id", flat=True
        )
    )
    if not owned:
        return []
    rules: dict[int, list[recommend.Association]] = defaultdict(list)
    for row in ProductAssociation.objects.filter(source_id__in=owned):
        rules[row.source_id].append(
            recommend.Association(
                row.source_id, row.target_id, row.support, row.confidence, row.lift
            )
        )
    ranked = recommend.recommend(owned, rules, k=k)
    products = Product.objects.in_bulk([t for t, _s, _b in ranked] + [b for _t, _s, b in ranked])
    return [
        {"product": products[target], "score": score, "because": products[source]}
        for target, score, source in ranked
        if target in products and source in products
    ]


# --- forecast -----------------------------------------------------------------------------


def forecast_refresh(*, as_of: datetime.date | None = None) -> AnalyticsRun:
    """Next quarter's contract amount and collections, per scope key: "all", each department
    (with those below it) and each salesperson, from the monthly figures."""
    as_of = as_of or timezone.localdate()

    def job(run: AnalyticsRun) -> dict:
        from kehu.hr.models import Department
        from kehu.hr.selectors import department_subtree_ids

        last_full = _month_start(as_of, 1)  # the current month is not complete
        months = [_month_start(last_full, back) for back in range(FIGURE_MONTHS - 1, -1, -1)]
        future = [_month_start(as_of, -step) for step in range(0, 3)]
        result: dict = {
            "months": [m.isoformat() for m in months],
            "future": [m.isoformat() for m in future],
            "series": {},
        }

        def series(queryset, metric):
            values = dict(
                queryset.filter(metric=metric, month__gte=months[0], month__lte=months[-1])
                .values("month")
                .annotate(total=Sum("value"))
                .values_list("month", "total")
            )
            return [float(values.get(m, 0)) for m in months]

        scopes = {"all": MonthlyFigure.objects.all()}
        for department in Department.objects.all():
            scopes[f"department:{department.pk}"] = MonthlyFigure.objects.filter(
                department_id__in=department_subtree_ids(department.pk)
            )
        owners = (
            MonthlyFigure.objects.exclude(owner_id=None)
            .values_list("owner_id", flat=True)
            .distinct()
        )
        for owner in owners:
            scopes[f"user:{owner}"] = MonthlyFigure.objects.filter(owner_id=owner)
        for key, queryset in scopes.items():
            entry = {}
            for metric in (Metric.CONTRACT_AMOUNT, Metric.COLLECTED):
                history = series(queryset, metric)
                # Leading months before the company had any figure are not zeros, just absent.
                nonzero = next((i for i, v in enumerate(history) if v), len(history))
                prediction = forecast.forecast_monthly(history[nonzero:], horizon=3)
                entry[metric] = {
                    "history": history,
                    "mean": prediction.mean,
                    "lower": prediction.lower,
                    "upper": prediction.upper,
                    "method": prediction.method,
                }
            result["series"][key] = entry
        return result

    return _run(RunKind.FORECAST, as_of, job)


def aggregates_rebuild() -> dict[str, int]:
    """Recompute the stored aggregates the services keep (``kehu.analytics.aggregates``):
    rows per table. For ``manage.py generate`` and other bulk loads, and as a repair."""
    from kehu.analytics.aggregates import aggregates_rebuild as rebuild

    return rebuild()


def aggregates_refresh(*, as_of: datetime.date | None = None) -> AnalyticsRun:
    """``aggregates_rebuild`` as a recorded job (the daily refresh repairs any drift)."""
    as_of = as_of or timezone.localdate()
    return _run(RunKind.AGGREGATES, as_of, lambda run: {"rows": aggregates_rebuild()})


def analytics_refresh_all(*, as_of: datetime.date | None = None) -> list[AnalyticsRun]:
    """Every job in dependency order (the forecast reads the monthly figures)."""
    as_of = as_of or timezone.localdate()
    return [
        aggregates_refresh(as_of=as_of),
        figures_refresh(as_of=as_of),
        customers_refresh(as_of=as_of),
        associations_refresh(as_of=as_of),
        forecast_refresh(as_of=as_of),
    ]
