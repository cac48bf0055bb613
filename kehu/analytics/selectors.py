"""Reads of the stored analytics results, always through the viewer's data scope.

Pages and the API only read here: the heavy work (models, monthly totals) was done by the
jobs in ``services``. A few dashboard parts read live tables through the owning module's
scoped selectors (the opportunity funnel, top products, receivables, expenses), so the
figure and the list it links to are the same query with the same scope.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kehu.analytics import services
from kehu.analytics.forms import Period
from kehu.analytics.models import (
    AnalyticsRun,
    CustomerScore,
    Metric,
    MonthlyFigure,
    RunKind,
    Segment,
)
from kehu.core.dates import month_end, month_start
from kehu.core.money import from_cents
from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import DataScope, user_data_scope, visible_to

ZERO = Decimal("0.00")
COUNT_METRICS = {Metric.CONTRACTS, Metric.NEW_CUSTOMERS, Metric.FOLLOWUPS}

# The churn model's features in plain words: the name, and what a value that raises the
# risk looks like (high when the fitted coefficient is positive, low when negative).
FEATURE_LABELS = {
    "recency_days": _("days since the last order"),
    "orders_365d": _("orders in the last year"),
    "revenue_365d": _("revenue in the last year"),
    "order_trend": _("orders in the last half-year compared with the one before"),
    "followups_90d": _("follow-ups in the last 90 days"),
    "days_since_followup": _("days since the last follow-up"),
    "overdue_amount": _("overdue receivables"),
    "tenure_days": _("days since the first order"),
}
FEATURE_RISK_PHRASES = {
    "recency_days": (_("a long time since the last order"), _("ordered very recently")),
    "orders_365d": (_("many orders in the last year"), _("few orders in the last year")),
    "revenue_365d": (_("high revenue in the last year"), _("low revenue in the last year")),
    "order_trend": (_("ordering more often lately"), _("ordering less often lately")),
    "followups_90d": (_("many recent follow-ups"), _("few recent follow-ups")),
    "days_since_followup": (_("no follow-up for a long time"), _("followed up recently")),
    "overdue_amount": (_("overdue receivables"), _("no overdue receivables")),
    "tenure_days": (_("a long-standing customer"), _("a new customer")),
}


def feature_label(name: str) -> str:
    return str(FEATURE_LABELS.get(name, name))


def factor_phrases(factors: list[dict], coefficients: dict[str, float] | None) -> list[str]:
    """A customer's stored top risk factors as plain-language phrases."""
    phrases = []
    for factor in factors or []:
        name = factor.get("feature", "")
        high, low = FEATURE_RISK_PHRASES.get(name, (name, name))
        coefficient = (coefficients or {}).get(name, 1.0)
        phrases.append(str(high if coefficient >= 0 else low))
    return phrases


def latest_run(kind: str) -> AnalyticsRun | None:
    return services.latest_run(kind)


# --- monthly figures ----------------------------------------------------------------------


def figures_visible_to(*, user) -> QuerySet[MonthlyFigure]:
    require_perm(user, "analytics.view")
    return visible_to(MonthlyFigure.objects.all(), user)


def monthly_totals(
    *, user, metrics: list[str], months: list[datetime.date]
) -> dict[str, dict[datetime.date, Decimal]]:
    """metric → month → total over the user's scope, in one query."""
    result: dict[str, dict[datetime.date, Decimal]] = {m: {} for m in metrics}
    if not months:
        return result
    rows = (
        figures_visible_to(user=user)
        .filter(metric__in=metrics, month__gte=min(months), month__lte=max(months))
        .values("metric", "month")
        .annotate(total=Sum("value"))
        .order_by()
    )
    for row in rows:
        result[row["metric"]][row["month"]] = row["total"] or ZERO
    return result


def _number(metric: str, value: Decimal) -> Decimal | int:
    return int(value) if metric in COUNT_METRICS else value


def period_figures(*, user, period: Period, metrics: list[str] | None = None) -> dict[str, dict]:
    """Per metric: the period's monthly values, the same months last year and both totals."""
    metrics = metrics or list(Metric.values)
    months = period.months
    last_year = [month_start(m, 12) for m in months]
    totals = monthly_totals(user=user, metrics=metrics, months=last_year + months)
    result = {}
    for metric in metrics:
        current = [_number(metric, totals[metric].get(m, ZERO)) for m in months]
        previous = [_number(metric, totals[metric].get(m, ZERO)) for m in last_year]
        result[metric] = {
            "months": months,
            "values": current,
            "last_year": previous,
            "total": sum(current),
            "total_last_year": sum(previous),
        }
    return result


# --- live parts of the dashboard ------------------------------------------------------------


def _funnel_rows(*, user, live: bool) -> dict[int, dict[str, Any]]:
    """stage id → count and amount of the opportunities in scope: from the stored figures
    (``OpportunityFigure``, a row per stage, owner and department: time independent of
    the number of opportunities), or with ``live`` from the opportunities (the reference,
    what the opportunity list in scope counts)."""
    from kehu.customers.selectors_opportunities import opportunity_list_visible_to

    if live:
        return {
            row["stage"]: dict(row)
            for row in opportunity_list_visible_to(user=user)
            .order_by()
            .values("stage")
            .annotate(count=Count("id"), amount=Sum("amount"))
        }
    return opportunities_by_stage_stored(user=user)


def opportunities_by_stage_stored(*, user, owner_id: int | None = None) -> dict[int, dict]:
    """stage id → count and amount of the opportunities in scope (of ``owner_id`` only,
    when given), from ``OpportunityFigure``: a read of a row per stage, owner and
    department, whatever the number of opportunities."""
    from kehu.analytics.models import OpportunityFigure

    require_perm(user, "customers.view")
    figures = visible_to(OpportunityFigure.objects.all(), user)
    if owner_id is not None:
        figures = figures.filter(owner_id=owner_id)
    return {
        row["stage"]: {"count": row["count"], "amount": from_cents(row["amount"])}
        for row in figures.values("stage")
        .annotate(count=Sum("opportunities"), amount=Sum("amount_cents"))
        .filter(count__gt=0)
        .order_by()
    }


def funnel(*, user, live: bool = False) -> dict:
    """Opportunities in scope by pipeline stage, with the share reaching each stage.

    An opportunity at a later stage has passed the earlier ones, so "reached" at a stage
    counts it and everything beyond it (won included); lost ones left somewhere unknown and
    count only in the win rate.
    """
    from kehu.customers.models import StageKind
    from kehu.customers.selectors_opportunities import pipeline_stages

    stages = list(pipeline_stages())
    rows = _funnel_rows(user=user, live=live)
    steps = [s for s in stages if s.kind == StageKind.OPEN] + [
        s for s in stages if s.kind == StageKind.WON
    ]
    counts = [rows.get(s.pk, {}).get("count", 0) for s in steps]
    result_steps = []
    for i, stage in enumerate(steps):
        reached = sum(counts[i:])
        previous = sum(counts[i - 1 :]) if i else reached
        result_steps.append(
            {
                "stage": stage,
                "count": counts[i],
                "amount": rows.get(stage.pk, {}).get("amount") or ZERO,
                "reached": reached,
                "conversion": (reached / previous) if previous else None,
            }
        )
    lost_stages = [s for s in stages if s.kind == StageKind.LOST]
    lost = sum(rows.get(s.pk, {}).get("count", 0) for s in lost_stages)
    won = sum(rows.get(s.pk, {}).get("count", 0) for s in steps if s.kind == StageKind.WON)
    open_amount = sum(
        (rows.get(s.pk, {}).get("amount") or ZERO for s in steps if s.kind == StageKind.OPEN),
        ZERO,
    )
    return {
        "steps": result_steps,
        "lost": lost,
        "lost_stages": lost_stages,
        "won": won,
        "open_amount": open_amount,
        "win_rate": won / (won + lost) if won + lost else None,
    }


def _months_by_year(period: Period) -> dict[int, list[int]]:
    years: dict[int, list[int]] = defaultdict(list)
    for month in period.months:
        years[month.year].append(month.month)
    return years


def _period_q(period: Period) -> Q:
    q = Q(pk__in=[])
    for year, months in _months_by_year(period).items():
        q |= Q(year=year, month__in=months)
    return q


def target_achievement(*, user, period: Period, today: datetime.date | None = None) -> dict:
    """Targets in scope for the period's months against what was achieved
    (kehu.hr.selectors.achievement_for: contracts signed, money received).

    A year whose months so far are all in the period is asked for in one call (this year,
    the last 12 months), other months one by one.
    """
    from kehu.hr.models import Department, SalesTarget, TargetKind
    from kehu.hr.selectors import achievement_for
    from kehu.system.models import User

    targets = visible_to(SalesTarget.objects.filter(_period_q(period)), user)
    sums = {"contract": Sum("contract_amount_target"), "payment": Sum("payment_target")}
    people = {
        row["user"]: row
        for row in targets.filter(kind=TargetKind.EMPLOYEE)
        .values("user")
        .annotate(**sums)
        .order_by()
    }
    departments = {
        row["department"]: row
        for row in targets.filter(kind=TargetKind.DEPARTMENT)
        .values("department")
        .annotate(**sums)
        .order_by()
    }
    achieved: dict = {"users": defaultdict(dict), "departments": defaultdict(dict)}
    source_available = True
    today = today or timezone.localdate()
    if people or departments:
        for year, months in _months_by_year(period).items():
            if year > today.year:
                continue  # nothing achieved in the future yet
            # A year's months up to now in the period: one call for the year (its later
            # months have nothing yet), else one per month.
            elapsed = list(range(1, (12 if year < today.year else today.month) + 1))
            whole = set(elapsed) <= set(months)
            for month in [None] if whole else [m for m in months if m in elapsed]:
                figures = achievement_for(
                    year=year,
                    month=month,
                    user_ids=list(people),
                    department_ids=list(departments),
                )
                source_available = figures["source_available"]
                for kind in ("users", "departments"):
                    for pk, values in figures[kind].items():
                        bucket = achieved[kind][pk]
                        for key, value in values.items():
                            bucket[key] = bucket.get(key, ZERO) + value
    names_users = User.objects.in_bulk(list(people))
    names_departments = Department.objects.in_bulk(list(departments))

    def row(kind: str, pk: int, target: dict, obj) -> dict:
        done = achieved["users" if kind == "user" else "departments"].get(pk, {})
        contract_done = done.get("contract_amount", ZERO)
        payment_done = done.get("payment_amount", ZERO)
        contract_target = target["contract"] or ZERO
        payment_target = target["payment"] or ZERO
        return {
            "kind": kind,
            "id": pk,
            "label": str(obj) if obj is not None else "—",
            "contract_target": contract_target,
            "contract_achieved": contract_done,
            "contract_rate": float(contract_done / contract_target) if contract_target else None,
            "payment_target": payment_target,
            "payment_achieved": payment_done,
            "payment_rate": float(payment_done / payment_target) if payment_target else None,
        }

    person_rows = [row("user", pk, t, names_users.get(pk)) for pk, t in people.items()]
    department_rows = [
        row("department", pk, t, names_departments.get(pk)) for pk, t in departments.items()
    ]
    person_rows.sort(key=lambda r: (-r["contract_target"], r["label"]))
    department_rows.sort(key=lambda r: (-r["contract_target"], r["label"]))
    return {
        "people": person_rows,
        "departments": department_rows,
        "source_available": source_available,
    }


def top_products(*, user, period: Period, limit: int = 10) -> list[dict]:
    """Products by amount (before tax) on the orders in scope placed in the period, from the
    stored monthly figures (``ProductFigure``): the same numbers as the order lines of the
    order list, in time independent of the number of orders."""
    from kehu.analytics.models import ProductFigure

    require_perm(user, "sales.view")
    rows = list(
        visible_to(
            ProductFigure.objects.filter(month__gte=period.start, month__lte=period.end), user
        )
        .values("product")
        .annotate(amount=Sum("amount_cents"), quantity=Sum("quantity_milli"), orders=Sum("orders"))
        .filter(orders__gt=0)
        .order_by("-amount", "product")[:limit]
    )
    # Names for the few products shown (joined after the sums, not for every row summed).
    from kehu.products.models import Product

    products = Product.all_objects.only("name", "code").in_bulk([r["product"] for r in rows])
    return [
        {
            "product_id": row["product"],
            "name": products[row["product"]].name,
            "code": products[row["product"]].code,
            "amount": from_cents(row["amount"]),
            "quantity": (Decimal(row["quantity"] or 0) / 1000).quantize(Decimal("0.001")),
            "orders": row["orders"],
        }
        for row in rows
    ]


# --- stored aggregates: target achievement and receivables aging ---------------------------


def achievement_stored(*, user_ids, department_ids, year: int, month: int | None) -> dict:
    """Contract amount signed and net money collected per owner and per department (and the
    departments below it), from ``SalesFigure``: what ``kehu.sales.hooks`` and
    ``kehu.finance.hooks`` compute from the documents. Two queries."""
    from kehu.analytics.models import SalesFigure
    from kehu.hr.models import Department

    if month:
        months = Q(month=datetime.date(year, month, 1))
    else:
        months = Q(month__gte=datetime.date(year, 1, 1), month__lte=datetime.date(year, 12, 1))
    sums = {"contract": Sum("contract_cents"), "collected": Sum("collected_cents")}
    figures: dict = {}

    def values(row: Any) -> dict:
        return {
            "contract_amount": from_cents(row["contract"]),
            "payment_amount": from_cents(row["collected"]),
        }

    if user_ids:
        for person in (
            SalesFigure.objects.filter(months, owner_id__in=user_ids)
            .values("owner_id")
            .annotate(**sums)
            .order_by()
        ):
            figures[("user", person["owner_id"])] = values(person)
    if department_ids:
        paths = dict(Department.objects.filter(pk__in=department_ids).values_list("pk", "path"))
        by_path: dict[str, Any] = {
            row["department__path"]: row
            for row in SalesFigure.objects.filter(months, department__isnull=False)
            .values("department__path")
            .annotate(**sums)
            .order_by()
        }
        for department_id in department_ids:
            prefix = paths.get(department_id)
            total = {"contract": 0, "collected": 0}
            for path, row in by_path.items():
                if prefix and path.startswith(prefix):
                    total["contract"] += int(row["contract"] or 0)
                    total["collected"] += int(row["collected"] or 0)
            figures[("department", department_id)] = values(total)
    return figures


def _aging_windows(today: datetime.date) -> dict[str, Any]:
    """Bucket filters on ``ReceivableDay.due_date`` and ``ReceivableMonth.month``.

    Days are read from the first of the month 90 days back to the end of this month; whole
    months before that are all over 90 days, whole months after this one not yet due. So
    a report sums a bounded number of rows whatever the number of instalments."""

    day = datetime.timedelta(days=1)
    first = month_start(today - 90 * day)
    return {
        "first": first,
        "last": month_end(today),
        "this_month": month_start(today),
        "days": {
            "not_due": Q(due_date__gt=today),
            "d0_30": Q(due_date__lte=today, due_date__gte=today - 30 * day),
            "d31_60": Q(due_date__lt=today - 30 * day, due_date__gte=today - 60 * day),
            "d61_90": Q(due_date__lt=today - 60 * day, due_date__gte=today - 90 * day),
            "d90_plus": Q(due_date__lt=today - 90 * day),
        },
    }


def receivables_buckets_stored(
    *, user, today: datetime.date, group_by: str | None = None
) -> dict[Any, dict[str, Decimal]]:
    """Outstanding money in scope per aging bucket (and ``total``), from the stored rows;
    per owner or department with ``group_by`` (else one entry, key None). Two queries."""
    from kehu.analytics.models import ReceivableDay, ReceivableMonth
    from kehu.finance.selectors import AGING_BUCKETS

    require_perm(user, "finance.view")
    windows = _aging_windows(today)
    result: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(AGING_BUCKETS, 0))

    def summed(queryset, sums: dict) -> list[dict]:
        if group_by:
            return list(queryset.values(group_by).annotate(**sums).order_by())
        return [queryset.aggregate(**sums)]

    days = summed(
        visible_to(
            ReceivableDay.objects.filter(
                due_date__gte=windows["first"], due_date__lte=windows["last"]
            ),
            user,
        ),
        {bucket: Sum("cents", filter=condition) for bucket, condition in windows["days"].items()},
    )
    for row in days:
        sums = result[row.get(group_by) if group_by else None]
        for bucket in AGING_BUCKETS:
            sums[bucket] += int(row[bucket] or 0)
    months = summed(
        visible_to(
            ReceivableMonth.objects.filter(
                Q(month__lt=windows["first"]) | Q(month__gt=windows["this_month"])
            ),
            user,
        ),
        {
            "d90_plus": Sum("cents", filter=Q(month__lt=windows["first"])),
            "not_due": Sum("cents", filter=Q(month__gt=windows["this_month"])),
        },
    )
    for row in months:
        sums = result[row.get(group_by) if group_by else None]
        sums["d90_plus"] += int(row["d90_plus"] or 0)
        sums["not_due"] += int(row["not_due"] or 0)
    return {
        key: {
            **{bucket: from_cents(sums[bucket]) for bucket in AGING_BUCKETS},
            "total": from_cents(sum(sums.values())),
        }
        for key, sums in result.items()
    }


def receivables_debtors_stored(*, user) -> int:
    """How many customers owe money in scope: the debtor counts per owner and department,
    less the extra rows of customers owed on contracts of several of them."""
    from kehu.analytics.models import CustomerReceivable, ReceivableGroup

    rows = visible_to(ReceivableGroup.objects.all(), user).aggregate(n=Sum("debtors"))["n"] or 0
    # Split rows are few: read from their partial index and counted here (a GROUP BY can
    # lead SQLite to walk the whole table in customer order).
    split = list(
        visible_to(CustomerReceivable.objects.filter(split=True), user)
        .order_by()
        .values_list("customer_id", flat=True)
    )
    return int(rows) - (len(split) - len(set(split)))


def receivable_days_overdue_stored(*, user, today: datetime.date):
    """Due dates before ``today`` on which contracts in scope still owe money, oldest first
    (a query over the stored receivables by due date; iterate lazily)."""
    from kehu.analytics.models import ReceivableDay

    require_perm(user, "finance.view")
    return (
        visible_to(ReceivableDay.objects.filter(due_date__lt=today, cents__gt=0), user)
        .order_by("due_date")
        .values_list("due_date", flat=True)
        .distinct()
        .iterator(chunk_size=100)
    )


def receivables_top_customers_stored(*, user, limit: int, offset: int = 0) -> list[tuple[int, int]]:
    """(customer id, cents) of the debtors in scope ranked ``offset`` to ``offset + limit``
    (a page of them), largest first (ties by id). A customer with one row is that row, read
    in amount order from the index (at most ``offset + limit`` rows); the few with several
    rows are summed over their rows in scope."""
    from kehu.analytics.models import CustomerReceivable

    require_perm(user, "finance.view")
    single = list(
        visible_to(CustomerReceivable.objects.filter(split=False), user)
        .order_by("-cents", "customer_id")
        .values_list("customer_id", "cents")[: offset + limit]
    )
    several: dict[int, int] = defaultdict(int)
    for customer_id, cents in (
        visible_to(CustomerReceivable.objects.filter(split=True), user)
        .order_by()
        .values_list("customer_id", "cents")
    ):
        several[customer_id] += cents
    rows = sorted(single + list(several.items()), key=lambda r: (-r[1], r[0]))
    return [r for r in rows if r[1] > 0][offset : offset + limit]


AGING_LABELS = {
    "not_due": _("Not yet due"),
    "d0_30": _("0–30 days"),
    "d31_60": _("31–60 days"),
    "d61_90": _("61–90 days"),
    "d90_plus": _("Over 90 days"),
}


def aging_summary(*, user, today: datetime.date | None = None) -> dict:
    """Outstanding receivables in scope by age and the five largest debtors
    (kehu.finance.selectors: two aggregate queries, whatever the number of customers)."""
    from kehu.finance.selectors import (
        AGING_BUCKETS,
        receivables_aging,
        receivables_aging_totals,
    )

    totals = receivables_aging_totals(user=user, today=today)
    rows = receivables_aging(user=user, group_by="customer", today=today, limit=5)
    buckets = [
        {"key": key, "label": AGING_LABELS[key], "amount": totals[key]} for key in AGING_BUCKETS
    ]
    return {
        "buckets": buckets,
        "total": totals["total"],
        "overdue": sum((b["amount"] for b in buckets if b["key"] != "not_due"), ZERO),
        "top": [{**r, "overdue": r["total"] - r["not_due"]} for r in rows],
    }


EXPENSE_STATUSES = ("approved", "paid")


def expenses_summary(*, user, period: Period, live: bool = False) -> list[dict]:
    """Approved and paid expense claims in scope by category, largest first; the same
    rows as the expense list filtered by those dates (and the category).

    From the stored figures (``ExpenseFigure``: per category, claimant, department and
    month), in time independent of the number of claims, for a period of whole months (the
    dashboard's); with ``live``, or for a period that cuts a month, from the claims (the
    reference)."""
    from kehu.analytics.models import ExpenseFigure
    from kehu.finance.selectors import expense_list_visible_to
    from kehu.system.models import DictionaryItem

    rows: list[Mapping[str, Any]]
    if period.start != month_start(period.start) or period.end != month_end(period.end):
        live = True  # the stored figures are per month: a part of a month is read live
    if live:
        rows = list(
            expense_list_visible_to(user=user)
            .filter(
                status__in=EXPENSE_STATUSES, spent_on__gte=period.start, spent_on__lte=period.end
            )
            .values("category")
            .annotate(amount=Sum("amount"), claims=Count("id"))
            .order_by("-amount", "category")
        )
    else:
        require_perm(user, "finance.view")
        rows = [
            {**row, "amount": from_cents(row["amount"])}
            for row in visible_to(
                ExpenseFigure.objects.filter(month__gte=period.start, month__lte=period.end),
                user,
            )
            .values("category")
            .annotate(amount=Sum("amount_cents"), claims=Sum("claims"))
            .filter(claims__gt=0)
            .order_by("-amount", "category")
        ]
    categories = DictionaryItem.objects.in_bulk([r["category"] for r in rows])
    return [
        {
            "category_id": row["category"],
            "label": categories[row["category"]].display_label
            if row["category"] in categories
            else "—",
            "amount": row["amount"] or ZERO,
            "claims": row["claims"],
        }
        for row in rows
    ]


# --- the whole dashboard ---------------------------------------------------------------


def dashboard_data(*, user, period, today: datetime.date) -> dict[str, Any]:
    """Everything on the dashboard for ``user`` and ``period`` (also the API's answer)."""
    figures = period_figures(user=user, period=period)
    data: dict[str, Any] = {
        "period": period,
        "figures": figures,
        "figures_run": latest_run(RunKind.FIGURES),
        "customers_run": latest_run(RunKind.CUSTOMERS),
        "top_customers": top_customers(user=user),
        "targets": target_achievement(user=user, period=period, today=today),
        "funnel": None,
        "top_products": None,
        "aging": None,
        "expenses": None,
    }
    if has_perm(user, "customers.view"):
        data["funnel"] = funnel(user=user)
    if has_perm(user, "sales.view"):
        data["top_products"] = top_products(user=user, period=period)
    if has_perm(user, "finance.view"):
        data["aging"] = aging_summary(user=user, today=today)
        data["expenses"] = expenses_summary(user=user, period=period)
    return data


# --- customer scores ----------------------------------------------------------------------


def score_list_visible_to(*, user) -> QuerySet[CustomerScore]:
    """Stored customer scores in the user's scope (customers deleted since the run are out)."""
    require_perm(user, "analytics.view")
    return visible_to(
        CustomerScore.objects.filter(customer__deleted_at__isnull=True), user
    ).select_related("customer", "customer__owner")


def top_customers(*, user, limit: int = 10) -> list[CustomerScore]:
    return list(score_list_visible_to(user=user).order_by("-revenue", "customer_id")[:limit])


def segment_summary(*, queryset: QuerySet[CustomerScore]) -> list[dict]:
    """The eight RFM segments (all of them, in their order) with counts, money and average
    scores over ``queryset``."""
    rows = {
        row["segment"]: row
        for row in queryset.order_by()
        .values("segment")
        .annotate(
            customers=Count("pk"),
            revenue=Sum("revenue"),
            cost=Sum("cost"),
            gross_profit=Sum("gross_profit"),
            clv=Sum("clv"),
            avg_r=Avg("r_score"),
            avg_f=Avg("f_score"),
            avg_m=Avg("m_score"),
            avg_recency=Avg("recency_days"),
            avg_orders=Avg("orders"),
            avg_p_alive=Avg("p_alive"),
            avg_churn=Avg("churn_risk"),
        )
    }
    result = []
    for code, label in Segment.choices:
        row: dict[str, Any] = dict(rows.get(code, {}))
        result.append(
            {
                "segment": code,
                "label": label,
                "customers": row.get("customers", 0),
                "revenue": row.get("revenue") or ZERO,
                "cost": row.get("cost") or ZERO,
                "gross_profit": row.get("gross_profit") or ZERO,
                "clv": row.get("clv") or ZERO,
                "avg_r": row.get("avg_r"),
                "avg_f": row.get("avg_f"),
                "avg_m": row.get("avg_m"),
                "avg_recency": row.get("avg_recency"),
                "avg_orders": row.get("avg_orders"),
                "avg_p_alive": row.get("avg_p_alive"),
                "avg_churn": row.get("avg_churn"),
            }
        )
    return result


def segment_totals(rows: list[dict]) -> dict:
    keys = ("customers", "revenue", "cost", "gross_profit", "clv")
    return {key: sum((r[key] for r in rows), 0 if key == "customers" else ZERO) for key in keys}


def churn_coefficients(run: AnalyticsRun | None) -> dict[str, float]:
    if run is None:
        return {}
    churn = (run.metrics or {}).get("churn") or {}
    return churn.get("coefficients") or {}


def churn_watchlist(*, user, limit: int = 20) -> list[CustomerScore]:
    """Customers in scope most at risk of churning, highest first."""
    return list(
        score_list_visible_to(user=user)
        .filter(churn_risk__isnull=False)
        .order_by("-churn_risk", "customer_id")[:limit]
    )


def prediction_summary(run: AnalyticsRun | None) -> dict[str, Any]:
    """The fitted models of the latest customers run, for the predictions page and API."""
    metrics = (run.metrics if run else None) or {}
    churn = metrics.get("churn") or {}
    coefficients = churn.get("coefficients") or {}
    return {
        "customers": metrics.get("customers", 0),
        "bgnbd": metrics.get("bgnbd"),
        "gamma_gamma": metrics.get("gamma_gamma"),
        "calibration": metrics.get("calibration"),
        "churn_status": churn.get("status"),
        "churn": churn if churn.get("status") == "ok" else None,
        "coefficients": sorted(
            (
                {"feature": name, "label": feature_label(name), "coefficient": value}
                for name, value in coefficients.items()
            ),
            key=lambda c: -abs(c["coefficient"]),
        ),
    }


# --- forecast -----------------------------------------------------------------------------


def forecast_series_key(user) -> str:
    """Which stored forecast series the user's data scope sees."""
    scope = user_data_scope(user)
    if scope == DataScope.ALL:
        return "all"
    if scope in (DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE) and user.department_id:
        return f"department:{user.department_id}"
    return f"user:{user.pk}"


def _targets_by_month(*, user, key: str, months: list[datetime.date]) -> dict:
    """(contract, payment) target per month for the forecast's scope.

    A person: their own targets. A department: its department target, else the sum of its
    people's. Everyone: the top-most department targets, else everyone's personal targets.
    """
    from kehu.hr.models import SalesTarget, TargetKind
    from kehu.hr.selectors import department_subtree_ids

    period_q = Q(pk__in=[])
    for month in months:
        period_q |= Q(year=month.year, month=month.month)
    targets = visible_to(SalesTarget.objects.filter(period_q), user).select_related("department")
    kind, _sep, ident = key.partition(":")
    if kind == "user":
        targets = targets.filter(kind=TargetKind.EMPLOYEE, user_id=int(ident))
    elif kind == "department":
        own = list(targets.filter(kind=TargetKind.DEPARTMENT, department_id=int(ident)))
        targets = (
            targets.filter(pk__in=[t.pk for t in own])
            if own
            else targets.filter(
                kind=TargetKind.EMPLOYEE, department_id__in=department_subtree_ids(int(ident))
            )
        )
    else:
        rows = list(targets.filter(kind=TargetKind.DEPARTMENT))
        if rows:
            top = min(t.department.depth for t in rows)
            targets = targets.filter(pk__in=[t.pk for t in rows if t.department.depth == top])
        else:
            targets = targets.filter(kind=TargetKind.EMPLOYEE)
    result: dict = {}
    for target in targets:
        month = datetime.date(target.year, target.month, 1)
        contract, payment = result.get(month, (ZERO, ZERO))
        result[month] = (
            contract + target.contract_amount_target,
            payment + target.payment_target,
        )
    return result


def forecast_for(*, user) -> dict | None:
    """The stored forecast of the user's scope with its history and the targets of the
    forecast months; None before the first forecast run."""
    require_perm(user, "analytics.view")
    run = latest_run(RunKind.FORECAST)
    if run is None:
        return None
    key = forecast_series_key(user)
    metrics = run.metrics or {}
    months = [datetime.date.fromisoformat(m) for m in metrics.get("months", [])]
    future = [datetime.date.fromisoformat(m) for m in metrics.get("future", [])]
    entry = (metrics.get("series") or {}).get(key)
    targets = _targets_by_month(user=user, key=key, months=future)
    series = {}
    for metric, index in ((Metric.CONTRACT_AMOUNT, 0), (Metric.COLLECTED, 1)):
        values = (entry or {}).get(metric)
        if not values:
            continue
        series[metric] = {
            "history": values["history"],
            "mean": values["mean"],
            "lower": values["lower"],
            "upper": values["upper"],
            "method": values["method"],
            "targets": [float(targets[m][index]) if m in targets else None for m in future],
            "forecast_total": sum(values["mean"]),
            "target_total": float(sum((targets[m][index] for m in future if m in targets), ZERO))
            if any(m in targets for m in future)
            else None,
        }
    return {
        "run": run,
        "key": key,
        "months": months,
        "future": future,
        "series": series,
    }


# --- one customer -------------------------------------------------------------------------


def customer_for_insights(*, user, pk) -> Any:
    """A customer whose 360° page the user may open (in scope or in the pool), else 404."""
    from django.http import Http404

    from kehu.customers.models import Customer
    from kehu.customers.selectors import customer_readable_q

    require_perm(user, "analytics.view")
    try:
        return Customer.objects.filter(customer_readable_q(user)).get(pk=pk)
    except (Customer.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(str(_("Not found."))) from exc


def customer_insights(*, user, customer, recommendations: int = 5) -> dict | None:
    """Segment, value, predictions and recommendations of a customer the caller may read;
    None for users without analytics.view."""
    if not has_perm(user, "analytics.view"):
        return None
    score = CustomerScore.objects.filter(customer=customer).first()
    run = latest_run(RunKind.CUSTOMERS)
    factors = (
        factor_phrases(score.churn_factors, churn_coefficients(run)) if score is not None else []
    )
    return {
        "score": score,
        "run": run,
        "factors": factors,
        "recommendations": services.recommendations_for(customer=customer, k=recommendations),
        "recommendations_run": latest_run(RunKind.ASSOCIATIONS),
    }
