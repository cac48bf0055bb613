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
from functools import partial
from typing import Any

import numpy as np
from django.db import connection, transaction
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
from kehu.core.dates import month_start

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


# --- monthly figures ----------------------------------------------------------------------


def figures_refresh(*, as_of: datetime.date | None = None) -> AnalyticsRun:
    """Rebuild the monthly totals per owner for the last ``FIGURE_MONTHS`` months."""
    as_of = as_of or timezone.localdate()

    def job(run: AnalyticsRun) -> dict:
        from kehu.customers.models import Customer, FollowUp
        from kehu.finance.models import ExpenseClaim, Payment, PaymentStatus, Refund, RefundStatus
        from kehu.sales.models import Contract, ContractStatus

        start = month_start(as_of, FIGURE_MONTHS - 1)
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
#
# Everything the models need is summed per customer by the database (orders, costs,
# follow-ups and receivables, each at the three dates the churn model looks at) and read
# as integer columns into numpy arrays, streamed in chunks: memory grows by a few hundred
# bytes per customer, not by a Python object per order. Dates travel as day numbers,
# money as cents (cost as 1/100,000ths: quantity × cost price, summed exactly).

NONE = -1_000_000_000  # "no such date" in a day-number column
CHUNK_ROWS = 10_000
WRITE_BATCH = 10_000


def _day_number(sql: str) -> str:
    """A date expression as days since 1970-01-01 (NULL stays NULL)."""
    if connection.vendor == "postgresql":
        return f"({sql} - DATE '1970-01-01')"
    return f"CAST(julianday({sql}) - 2440587.5 AS INTEGER)"


def _epoch_seconds(sql: str) -> str:
    """A timestamp expression as whole seconds since the epoch (NULL stays NULL)."""
    if connection.vendor == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {sql})) AS BIGINT)"
    return f"CAST(strftime('%%s', {sql}) AS INTEGER)"


def _cents(sql: str, factor: int = 100) -> str:
    # SQLite keeps decimals as floating point: round each value to a whole number of units.
    return f"CAST(ROUND({sql} * {factor}) AS BIGINT)"


def _big(sql: str) -> str:
    # PostgreSQL sums integers as numeric; read them back as integers.
    return f"CAST({sql} AS BIGINT)"


def _date_param(day: datetime.date):
    return connection.ops.adapt_datefield_value(day)


def _time_param(moment: datetime.datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def _query_sql(queryset) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def _read_columns(sql: str, params: list, width: int) -> np.ndarray:
    """The integer rows of ``sql`` as an (n, width) int64 array, fetched in chunks through a
    server-side cursor on PostgreSQL (never the whole result in the client at once)."""
    chunks = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            rows = cursor.fetchmany(CHUNK_ROWS)
            if not rows:
                break
            chunks.append(np.array(rows, dtype=np.int64).reshape(-1, width))
    if not chunks:
        return np.zeros((0, width), dtype=np.int64)
    return np.concatenate(chunks)


def _align(ids: np.ndarray, other: np.ndarray, values: np.ndarray, default: int = 0) -> np.ndarray:
    """``values`` (rows keyed by ``other`` ids) laid out along ``ids`` (sorted)."""
    result = np.full((len(ids), values.shape[1]), default, dtype=np.int64)
    if len(ids) and len(other):
        position = np.minimum(np.searchsorted(ids, other), len(ids) - 1)
        found = ids[position] == other
        result[position[found]] = values[found]
    return result


def _order_facts(*, as_of: datetime.date) -> dict[str, np.ndarray]:
    """Per customer who bought up to ``as_of`` (sorted by id): orders, purchase days (orders
    on one day are one occasion), first and last day, revenue, and the counts and sums of
    the churn windows at the three cutoffs; then the cost of goods."""
    from kehu.sales.models import OrderLine

    split = as_of - datetime.timedelta(days=CHURN_WINDOW_DAYS)
    train = split - datetime.timedelta(days=CHURN_WINDOW_DAYS)
    day = "g.d"
    columns: list[tuple[str, str, list]] = []

    def add(name: str, sql: str, *params) -> None:
        columns.append((name, sql, [_date_param(p) for p in params]))

    def between(low: datetime.date, high: datetime.date, value: str) -> str:
        return f"SUM(CASE WHEN {day} > %s AND {day} <= %s THEN {value} ELSE 0 END)"

    add("occasions", "COUNT(*)")
    add("orders", "SUM(g.n)")
    add("first", _day_number(f"MIN({day})"))
    add("last", _day_number(f"MAX({day})"))
    add("revenue", "SUM(g.cents)")
    add("occasions_split", f"SUM(CASE WHEN {day} <= %s THEN 1 ELSE 0 END)", split)
    add("later_occasions", f"SUM(CASE WHEN {day} > %s THEN 1 ELSE 0 END)", split)
    for name, cutoff in (("split", split), ("train", train)):
        add(
            f"last_{name}",
            f"COALESCE({_day_number(f'MAX(CASE WHEN {day} <= %s THEN {day} END)')}, {NONE})",
            cutoff,
        )
    for name, cutoff in (("now", as_of), ("split", split), ("train", train)):
        year = cutoff - datetime.timedelta(days=365)
        half = cutoff - datetime.timedelta(days=180)
        add(f"orders_365_{name}", between(year, cutoff, "g.n"), year, cutoff)
        add(f"revenue_365_{name}", between(year, cutoff, "g.cents"), year, cutoff)
        add(f"recent_{name}", between(half, cutoff, "g.n"), half, cutoff)
    # The half-year before the training cutoff's recent one (the others are recent_*).
    add(
        "before_train",
        between(train - datetime.timedelta(days=360), train - datetime.timedelta(days=180), "g.n"),
        train - datetime.timedelta(days=360),
        train - datetime.timedelta(days=180),
    )
    orders = (
        _orders()
        .filter(order_date__lte=as_of)
        .order_by()
        .values(k_customer=F("customer_id"), k_date=F("order_date"), k_amount=F("subtotal_amount"))
    )
    inner, inner_params = _query_sql(orders)
    select = ", ".join(_big(sql) for _name, sql, _p in columns)
    sql = (
        f"SELECT g.c, {select} FROM ("
        f"SELECT o.k_customer AS c, o.k_date AS d, COUNT(*) AS n, "
        f"SUM({_cents('o.k_amount')}) AS cents FROM ({inner}) o GROUP BY o.k_customer, o.k_date"
        f") g GROUP BY g.c"
    )
    # Placeholders in text order: the outer columns' first, then the inner query's.
    params = [p for _name, _sql, ps in columns for p in ps] + inner_params
    rows = _read_columns(sql, params, 1 + len(columns))
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    facts = {"ids": rows[:, 0]}
    for i, (name, _sql, _p) in enumerate(columns, start=1):
        facts[name] = rows[:, i]

    lines = OrderLine.objects.filter(order__in=_orders(), order__order_date__lte=as_of).values(
        k_customer=F("order__customer_id"),
        k_cost=ExpressionWrapper(
            F("quantity") * F("product__cost_price"),
            output_field=DecimalField(max_digits=30, decimal_places=5),
        ),
    )
    inner, params = _query_sql(lines.order_by())
    cost = _big("SUM(" + _cents("l.k_cost", 100_000) + ")")
    costs = _read_columns(
        f"SELECT l.k_customer, {cost} FROM ({inner}) l GROUP BY l.k_customer", params, 2
    )
    facts["cost"] = _align(facts["ids"], costs[:, 0], costs[:, 1:])[:, 0]
    return facts


def _followup_facts(ids: np.ndarray, *, cutoffs: dict[str, datetime.date]) -> dict[str, np.ndarray]:
    """Per customer in ``ids`` and cutoff: follow-ups in the 90 days up to the cutoff and the
    days since the last one up to it (capped at 365), local dates as the old job counted."""
    from kehu.customers.models import FollowUp

    zone = timezone.get_current_timezone()

    def midnight(day: datetime.date) -> datetime.datetime:
        return datetime.datetime.combine(day, datetime.time(), zone)

    select, params = [], []
    for cutoff in cutoffs.values():
        end = _time_param(midnight(cutoff + datetime.timedelta(days=1)))
        start = _time_param(midnight(cutoff - datetime.timedelta(days=89)))
        select.append("SUM(CASE WHEN f.k_at >= %s AND f.k_at < %s THEN 1 ELSE 0 END)")
        params += [start, end]
        select.append(
            f"COALESCE({_epoch_seconds('MAX(CASE WHEN f.k_at < %s THEN f.k_at END)')}, {NONE})"
        )
        params.append(end)
    inner, inner_params = _query_sql(
        FollowUp.objects.order_by().values(k_customer=F("customer_id"), k_at=F("happened_at"))
    )
    rows = _read_columns(
        f"SELECT f.k_customer, {', '.join(_big(s) for s in select)} "
        f"FROM ({inner}) f GROUP BY f.k_customer",
        params + inner_params,
        1 + 2 * len(cutoffs),
    )
    aligned = _align(ids, rows[:, 0], rows[:, 1:], default=NONE)
    # Local dates of the last follow-ups: the local midnights around the cutoffs as epoch
    # seconds, searched (exact whatever the time zone's offsets and their changes).
    first_day = min(cutoffs.values()) - datetime.timedelta(days=366)
    last_day = max(cutoffs.values()) + datetime.timedelta(days=1)
    days = [first_day + datetime.timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    midnights = np.array([int(midnight(d).timestamp()) for d in days], dtype=np.int64)
    facts = {}
    for i, (name, cutoff) in enumerate(cutoffs.items()):
        count, last = aligned[:, 2 * i], aligned[:, 2 * i + 1]
        # Missing counts come back as NONE from the alignment: no follow-ups at all.
        facts[f"followups_90_{name}"] = np.where(count == NONE, 0, count)
        index = np.searchsorted(midnights, last, side="right") - 1
        since = (cutoff - first_day).days - index
        facts[f"since_followup_{name}"] = np.where(
            (last == NONE) | (index < 0), 365, np.minimum(since, 365)
        )
    return facts


def _overdue_facts(ids: np.ndarray, *, cutoffs: dict[str, datetime.date]) -> dict[str, np.ndarray]:
    """Per customer in ``ids`` and cutoff: instalments due before it less confirmed payments
    received before it (cents, not below 0), as the old job's ``overdue`` lookup."""
    from kehu.finance.models import Payment, PaymentStatus, ReceivableInstalment

    def sums(queryset, day_field: str) -> np.ndarray:
        inner, params = _query_sql(
            queryset.order_by().values(
                k_customer=F("contract__customer_id"), k_day=F(day_field), k_amount=F("amount")
            )
        )
        select = [
            _big(f"SUM(CASE WHEN s.k_day < %s THEN {_cents('s.k_amount')} ELSE 0 END)")
            for _day in cutoffs.values()
        ]
        rows = _read_columns(
            f"SELECT s.k_customer, {', '.join(select)} FROM ({inner}) s "
            "WHERE s.k_customer IS NOT NULL GROUP BY s.k_customer",
            [_date_param(day) for day in cutoffs.values()] + params,
            1 + len(cutoffs),
        )
        return _align(ids, rows[:, 0], rows[:, 1:])

    due = sums(ReceivableInstalment.objects.all(), "due_date")
    paid = sums(Payment.objects.filter(status=PaymentStatus.CONFIRMED), "received_on")
    overdue = np.maximum(due - paid, 0)
    return {f"overdue_{name}": overdue[:, i] for i, name in enumerate(cutoffs)}


def _customer_facts(*, as_of: datetime.date) -> dict[str, np.ndarray]:
    facts = _order_facts(as_of=as_of)
    split = as_of - datetime.timedelta(days=CHURN_WINDOW_DAYS)
    cutoffs = {
        "now": as_of,
        "split": split,
        "train": split - datetime.timedelta(days=CHURN_WINDOW_DAYS),
    }
    facts.update(_followup_facts(facts["ids"], cutoffs=cutoffs))
    facts.update(_overdue_facts(facts["ids"], cutoffs=cutoffs))
    return facts


def _by_distinct(function, x, t_x, T) -> np.ndarray:
    """``function(x, t_x, T)`` computed once per distinct (x, t_x, T) and spread back."""
    (ux, ut, uT), inverse, _counts = clv.unique_rows(x, t_x, T)
    return np.asarray(function(ux, ut, uT))[inverse]


def _churn_features(facts: dict[str, np.ndarray], *, name: str, cutoff: int) -> np.ndarray:
    """The churn model's features (``CHURN_FEATURES``) of every customer at a cutoff (day
    number), from the per-customer sums; rows of customers who had not bought by then are
    meaningless (the caller keeps the population)."""
    last = facts["last"] if name == "now" else facts[f"last_{name}"]
    before = {
        "now": facts["recent_split"],
        "split": facts["recent_train"],
        "train": facts["before_train"],
    }[name]
    columns = [
        cutoff - last,
        facts[f"orders_365_{name}"],
        facts[f"revenue_365_{name}"] / 100,
        facts[f"recent_{name}"] - before,
        facts[f"followups_90_{name}"],
        facts[f"since_followup_{name}"],
        facts[f"overdue_{name}"] / 100,
        cutoff - facts["first"],
    ]
    return np.column_stack([np.asarray(c, dtype=float) for c in columns])


def _day(value: datetime.date) -> int:
    return (value - datetime.date(1970, 1, 1)).days


def customers_refresh(*, as_of: datetime.date | None = None) -> AnalyticsRun:
    """Value, RFM segments, BG/NBD + Gamma-Gamma predictions and churn risk per customer."""
    as_of = as_of or timezone.localdate()

    def job(run: AnalyticsRun) -> dict:
        facts = _customer_facts(as_of=as_of)
        ids = facts["ids"]
        metrics: dict = {"customers": len(ids)}
        if not len(ids):
            CustomerScore.objects.all().delete()
            return metrics
        today = _day(as_of)
        first, last = facts["first"], facts["last"]
        # Orders on the same day count as one purchase occasion for the purchase model.
        x = (facts["occasions"] - 1).astype(float)
        t_x = (last - first).astype(float)
        T = np.maximum((today - first).astype(float), 1.0)
        revenue_cents = facts["revenue"]
        revenue_arr = revenue_cents / 100
        recency = (today - last).astype(float)
        frequency = facts["orders"].astype(float)
        scores = rfm.rfm_score(recency, frequency, revenue_arr)

        mean_order = revenue_arr / frequency
        if len(ids) >= 20 and (x > 0).sum() >= 10:
            params = clv.bgnbd_fit(x, t_x, T, penalizer=0.001)
            p_alive = _by_distinct(partial(clv.bgnbd_p_alive, params), x, t_x, T)
            expected = _by_distinct(
                partial(clv.bgnbd_expected_purchases, params, PREDICTION_DAYS), x, t_x, T
            )
            expected_year = _by_distinct(
                partial(clv.bgnbd_expected_purchases, params, CLV_DAYS), x, t_x, T
            )
            spend_params = clv.gamma_gamma_fit(x, mean_order)
            spend = clv.gamma_gamma_expected_spend(spend_params, x, mean_order)
            metrics["bgnbd"] = params.__dict__
            metrics["gamma_gamma"] = spend_params.__dict__
            metrics["calibration"] = _bgnbd_holdout(facts, as_of)
        else:
            p_alive = np.ones(len(ids))
            expected = np.zeros(len(ids))
            expected_year = np.zeros(len(ids))
            spend = mean_order
            metrics["bgnbd"] = None
        # Margin as the old Decimal division did it: (revenue - cost) / revenue.
        cost = facts["cost"]  # 1/100,000ths
        margin = np.zeros(len(ids))
        sold = revenue_cents != 0
        margin[sold] = (revenue_cents[sold] * 1000 - cost[sold]) / (revenue_cents[sold] * 1000)
        clv_values = expected_year * spend * np.clip(margin, 0, 1)

        risk, factors, churn_metrics = _churn(facts, as_of=as_of)
        metrics["churn"] = churn_metrics
        with transaction.atomic():
            CustomerScore.objects.all().delete()
            _scores_write(
                facts,
                today=today,
                scores=scores,
                p_alive=p_alive,
                expected=expected,
                spend=spend,
                clv_values=clv_values,
                risk=risk,
                factors=factors,
            )
        codes, counts = np.unique(np.array(scores.segments, dtype=object), return_counts=True)
        metrics["segments"] = {
            str(code): int(count) for code, count in zip(codes, counts, strict=True)
        }
        return metrics

    return _run(RunKind.CUSTOMERS, as_of, job)


def _half_up(units: np.ndarray, per_cent: int) -> np.ndarray:
    """Whole cents of amounts in 1/``per_cent`` cents, rounded half away from zero
    (``quantize_money``)."""
    return np.sign(units) * ((np.abs(units) + per_cent // 2) // per_cent)


def _round_cents(values: np.ndarray) -> np.ndarray:
    """Cents of ``round(value, 2)`` as Python rounds (exactly, half to even on the binary
    value), as the old job stored them."""
    return np.array([round(round(v, 2) * 100) for v in values.tolist()], dtype=np.int64)


def _scores_write(
    facts, *, today, scores, p_alive, expected, spend, clv_values, risk, factors
) -> None:
    """The ``CustomerScore`` rows, in batches (COPY on PostgreSQL)."""
    from kehu.core.bulk import RowWriter, Vector, copy_escape

    columns = [
        "customer_id",
        "computed_at",
        "orders",
        "first_order_on",
        "last_order_on",
        "recency_days",
        "revenue",
        "cost",
        "gross_profit",
        "r_score",
        "f_score",
        "m_score",
        "segment",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "clv",
        "churn_risk",
        "churn_factors",
    ]
    writer = RowWriter(CustomerScore, columns)
    cells = Vector()
    postgres = connection.vendor == "postgresql"
    now = str(_time_param(timezone.now()))

    def floats(values: np.ndarray) -> list:
        return list(map(repr, values.tolist())) if postgres else values.tolist()

    cost_cents = _half_up(facts["cost"], 1000)
    profit = _half_up(facts["revenue"] * 1000 - facts["cost"], 1000)
    spend_cents = _round_cents(spend)
    clv_cents = _round_cents(clv_values)
    segments = np.array(scores.segments, dtype=object)
    for start in range(0, len(facts["ids"]), WRITE_BATCH):
        part = slice(start, start + WRITE_BATCH)
        count = len(facts["ids"][part])
        if risk is None:
            risk_cells: Any = cells.null
            factor_cells: Any = "[]"
        else:
            risk_cells = floats(risk[part])
            factor_cells = _factor_json(factors[0][part], factors[1][part])
            if postgres:
                factor_cells = [copy_escape(text) for text in factor_cells]
        writer.write_columns(
            [
                cells.ints(facts["ids"][part]),
                now,
                cells.ints(facts["orders"][part]),
                cells.days(facts["first"][part]),
                cells.days(facts["last"][part]),
                cells.ints(today - facts["last"][part]),
                cells.money(facts["revenue"][part]),
                cells.money(cost_cents[part]),
                cells.money(profit[part]),
                cells.ints(scores.r[part]),
                cells.ints(scores.f[part]),
                cells.ints(scores.m[part]),
                cells.texts(segments[part]),
                floats(p_alive[part]),
                floats(expected[part]),
                cells.money(spend_cents[part]),
                cells.money(clv_cents[part]),
                risk_cells,
                factor_cells,
            ],
            count,
        )


def _factor_json(order: np.ndarray, weights: np.ndarray) -> list[str]:
    """Each customer's top risk factors as the JSON the old job stored
    (``[{"feature": …, "weight": …}]``, only those raising the risk)."""
    names = [f'{{"feature": "{name}", "weight": ' for name in CHURN_FEATURES]
    result = []
    for row, values in zip(order.tolist(), weights.tolist(), strict=True):
        parts = [f"{names[i]}{round(v, 3)!r}}}" for i, v in zip(row, values, strict=True) if v > 0]
        result.append(f"[{', '.join(parts)}]")
    return result


def _bgnbd_holdout(facts: dict[str, np.ndarray], as_of: datetime.date) -> dict | None:
    """Fit on all but the last 180 days, predict those 180 days, compare with what happened."""
    split = as_of - datetime.timedelta(days=CHURN_WINDOW_DAYS)
    known = facts["occasions_split"] > 0
    if known.sum() < 20:
        return None
    first = facts["first"][known]
    x = (facts["occasions_split"][known] - 1).astype(float)
    if (x > 0).sum() < 10:
        return None
    t_x = (facts["last_split"][known] - first).astype(float)
    T = np.maximum((_day(split) - first).astype(float), 1)
    params = clv.bgnbd_fit(x, t_x, T, penalizer=0.001)
    predicted = _by_distinct(
        partial(clv.bgnbd_expected_purchases, params, CHURN_WINDOW_DAYS), x, t_x, T
    )
    actual = facts["later_occasions"][known].astype(float)
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


def _churn(facts: dict[str, np.ndarray], *, as_of: datetime.date):
    """Train on an older cutoff, evaluate on a newer one, score everyone as of today.

    Returns (risk, (factor indices, factor weights), metrics); risk None when the history
    is too short."""
    test_cutoff = _day(as_of) - CHURN_WINDOW_DAYS
    train_cutoff = test_cutoff - CHURN_WINDOW_DAYS
    first = facts["first"]
    # Churned = no order in the window after the cutoff.
    train = first <= train_cutoff
    test = first <= test_cutoff
    y_train = (facts["recent_split"][train] == 0).astype(int)
    y_test = (facts["recent_now"][test] == 0).astype(int)
    if (
        train.sum() < 30
        or len(np.unique(y_train)) < 2
        or test.sum() < 30
        or len(np.unique(y_test)) < 2
    ):
        return None, None, {"status": "insufficient_history"}
    x_train = _churn_features(facts, name="train", cutoff=train_cutoff)[train]
    x_test = _churn_features(facts, name="split", cutoff=test_cutoff)[test]
    model = churn.churn_fit(x_train, y_train, CHURN_FEATURES)
    baseline = churn.churn_fit(x_train[:, :1], y_train, CHURN_FEATURES[:1])
    evaluation = churn.churn_evaluate(
        model, x_test, y_test, baseline_scores=baseline.predict(x_test[:, :1])
    )
    # The model that scores today learns from the most recent outcomes available.
    final = churn.churn_fit(x_test, y_test, CHURN_FEATURES)
    x_now = _churn_features(facts, name="now", cutoff=_day(as_of))
    risk = final.predict(x_now)
    factors = final.top_factor_table(x_now, k=3)
    return (
        risk,
        factors,
        {
            "status": "ok",
            "train_cutoff": (as_of - datetime.timedelta(days=2 * CHURN_WINDOW_DAYS)).isoformat(),
            "test_cutoff": (as_of - datetime.timedelta(days=CHURN_WINDOW_DAYS)).isoformat(),
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
    """Co-purchase rules from the distinct (customer, product) pairs of the orders that
    count, read in customer order and counted chunk by chunk (sparse matrices): memory
    follows the catalogue, not the number of customers."""
    as_of = as_of or timezone.localdate()

    def job(run: AnalyticsRun) -> dict:
        from kehu.products.models import Product
        from kehu.sales.models import OrderLine

        counter = recommend.CoPurchases(
            np.array(Product.all_objects.values_list("pk", flat=True), dtype=np.int64)
        )
        sql, params = _query_sql(
            OrderLine.objects.filter(order__in=_orders())
            .values_list("order__customer_id", "product_id")
            .distinct()
            .order_by("order__customer_id", "product_id")
        )
        held = np.zeros((0, 2), dtype=np.int64)
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            while True:
                rows = cursor.fetchmany(CHUNK_ROWS * 5)
                chunk = np.concatenate([held, np.array(rows, dtype=np.int64).reshape(-1, 2)])
                if not rows:
                    counter.add(chunk[:, 0], chunk[:, 1])
                    break
                # The last customer's pairs may go on in the next rows: keep them for then.
                cut = int(np.searchsorted(chunk[:, 0], chunk[-1, 0]))
                counter.add(chunk[:cut, 0], chunk[:cut, 1])
                held = chunk[cut:]
        customers, items, pairs = counter.counts()
        rules = recommend.associations_from_counts(customers, items, pairs, min_support=3)
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
        return {"customers": customers, "pairs": len(objects)}

    return _run(RunKind.ASSOCIATIONS, as_of, job)


def recommendations_for(*, customer, k: int = 5) -> list[dict]:
    """Products for ``customer`` from the stored associations, excluding what they bought."""
    from kehu.products.models import Product
    from kehu.sales.models import OrderLine

    # The customer's orders inside the subquery: as a filter beside it SQLite built the set
    # of every counted order first (11 s at 5,000,000 orders).
    owned = set(
        OrderLine.objects.filter(order__in=_orders().filter(customer=customer))
        .order_by()
        .values_list("product_id", flat=True)
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

        last_full = month_start(as_of, 1)  # the current month is not complete
        months = [month_start(last_full, back) for back in range(FIGURE_MONTHS - 1, -1, -1)]
        future = [month_start(as_of, -step) for step in range(0, 3)]
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
