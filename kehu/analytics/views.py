"""Analytics pages: dashboard, customer value, RFM segments, predictions and forecast.

Every page reads stored results (``selectors``) through the viewer's data scope and says
when they were computed; nothing here fits a model. Charts are drawn by
``static/kehu/analytics.js`` from the JSON the page carries (``json_script``), and every
figure links to the list behind it when that page exists and the viewer may open it.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views import View

from kehu.analytics import selectors
from kehu.analytics.forms import CustomerScoreFilter, PeriodForm
from kehu.analytics.models import CustomerScore, Metric, MonthlyFigure, RunKind, Segment
from kehu.analytics.templatetags.analytics import money
from kehu.core.dates import month_end, month_start
from kehu.core.exports import FORMATS, ExportColumn, export_response
from kehu.core.permissions import has_perm
from kehu.core.views import Column, KehuListView, ModulePermissionMixin, is_htmx

NOT_COMPUTED = _(
    "Not computed yet — the analytics run nightly; an administrator can run "
    "`manage.py analytics_refresh` now."
)


def drill(user, perm: str, name: str, *args, **query) -> str:
    """The URL of the list behind a figure with its filters, or "" when that page is not
    installed in this tree or the viewer may not open it (the page shows no link then)."""
    if perm and not has_perm(user, perm):
        return ""
    try:
        url = reverse(name, args=args)
    except NoReverseMatch:
        return ""
    params = {
        key: value.isoformat() if isinstance(value, datetime.date) else value
        for key, value in query.items()
        if value not in (None, "")
    }
    return f"{url}?{urlencode(params)}" if params else url


def _month_label(month: datetime.date) -> str:
    return f"{month:%Y-%m}"


def _float(value) -> float | None:
    return None if value is None else float(value)


class AnalyticsView(ModulePermissionMixin, View):
    module = "analytics"

    def export_format(self) -> str | None:
        return self.request.GET.get("export") or None


def _bad_format():
    return HttpResponseBadRequest(str(_("Unknown export format.")))


# --- dashboard ----------------------------------------------------------------------------

SALES_FIRST = ("kpis", "money", "funnel", "activity", "targets", "top", "receivables")
MONEY_FIRST = ("kpis", "money", "receivables", "targets", "top", "activity", "funnel")


def dashboard_sections(user) -> list[str]:
    """Role-aware order: people who run the books (they change finance records but do not
    sell) see the money first; everyone else the pipeline first. Sections the viewer has no
    permission for are left out."""
    money_first = has_perm(user, "finance.change") and not has_perm(user, "sales.add")
    order = MONEY_FIRST if money_first else SALES_FIRST
    allowed = {
        "funnel": has_perm(user, "customers.view"),
        "receivables": has_perm(user, "finance.view"),
    }
    return [s for s in order if allowed.get(s, True)]


def _dashboard_links(user, data) -> dict[str, Any]:
    period = data["period"]
    months = period.months

    def per_month(perm, name, **fixed):
        return [drill(user, perm, name, date_from=m, date_to=month_end(m), **fixed) for m in months]

    def whole(perm, name, **fixed):
        return drill(user, perm, name, date_from=period.start, date_to=period.end, **fixed)

    return {
        "contracts": per_month("sales.view", "sales:contract_list"),
        "contracts_all": whole("sales.view", "sales:contract_list"),
        "collected": per_month("finance.view", "finance:payment_list", status="confirmed"),
        "collected_all": whole("finance.view", "finance:payment_list", status="confirmed"),
        "orders_all": whole("sales.view", "sales:order_list"),
        "new_customers": [
            drill(
                user,
                "customers.view",
                "customers:customer_list",
                created_after=m,
                created_before=month_end(m),
            )
            for m in months
        ],
        "new_customers_all": drill(
            user,
            "customers.view",
            "customers:customer_list",
            created_after=period.start,
            created_before=period.end,
        ),
        "followups": per_month("customers.view", "customers:followup_list"),
        "followups_all": whole("customers.view", "customers:followup_list"),
        "expenses_all": whole("finance.view", "finance:expense_list"),
        "aging": drill(user, "finance.view", "finance:aging", by="customer"),
        "targets_people": drill(
            user, "hr.view", "hr:target_list", year=period.end.year, kind="employee"
        ),
        "targets_departments": drill(
            user, "hr.view", "hr:target_list", year=period.end.year, kind="department"
        ),
        "opportunities": drill(user, "customers.view", "customers:opportunity_list"),
    }


def _attach_row_links(user, data, links) -> None:
    period = data["period"]
    for step in (data["funnel"] or {}).get("steps", []):
        step["url"] = drill(
            user, "customers.view", "customers:opportunity_list", stage=step["stage"].pk
        )
    funnel = data["funnel"]
    if funnel:
        lost = funnel["lost_stages"]
        funnel["lost_url"] = (
            drill(user, "customers.view", "customers:opportunity_list", status="lost")
            if lost
            else ""
        )
    for score in data["top_customers"]:
        score.url = drill(user, "customers.view", "customers:customer_detail", score.customer_id)
    for product in data["top_products"] or []:
        product["url"] = drill(
            user, "products.view", "products:product_detail", product["product_id"]
        )
    for row in data["expenses"] or []:
        row["url"] = drill(
            user,
            "finance.view",
            "finance:expense_list",
            date_from=period.start,
            date_to=period.end,
            category=row["category_id"],
        )
    for row in (data["aging"] or {}).get("top", []):
        row["url"] = (
            drill(user, "customers.view", "customers:customer_detail", row["key"])
            if row["key"]
            else ""
        )
    for row in data["targets"]["people"]:
        row["url"] = drill(
            user,
            "sales.view",
            "sales:contract_list",
            owner=row["id"],
            date_from=period.start,
            date_to=period.end,
        )
    for row in data["targets"]["departments"]:
        row["url"] = links["targets_departments"]


# Not yet due is fine; the later the money, the redder the bar.
AGING_COLOURS = ["#2da44e", "#d4a72c", "#e16f24", "#cf222e", "#82071e"]
WON_COLOUR = "#2da44e"


def _dashboard_charts(data, links) -> dict[str, Any]:
    figures = data["figures"]
    categories = [_month_label(m) for m in data["period"].months]
    contract, collected = figures[Metric.CONTRACT_AMOUNT], figures[Metric.COLLECTED]
    new_customers, followups = figures[Metric.NEW_CUSTOMERS], figures[Metric.FOLLOWUPS]
    charts: dict[str, Any] = {
        "money": {
            "kind": "category",
            "months": True,
            "categories": categories,
            "axes": [{"format": "money"}],
            "series": [
                {
                    "name": str(_("Contract amount")),
                    "type": "bar",
                    "data": [float(v) for v in contract["values"]],
                    "urls": links["contracts"],
                },
                {
                    "name": str(_("Collections")),
                    "type": "bar",
                    "data": [float(v) for v in collected["values"]],
                    "urls": links["collected"],
                },
                {
                    "name": str(_("Contract amount, last year")),
                    "type": "line",
                    "dashed": True,
                    "data": [float(v) for v in contract["last_year"]],
                },
                {
                    "name": str(_("Collections, last year")),
                    "type": "line",
                    "dashed": True,
                    "data": [float(v) for v in collected["last_year"]],
                },
            ],
        },
        "activity": {
            "kind": "category",
            "months": True,
            "categories": categories,
            "axes": [{"format": "count"}],
            "series": [
                {
                    "name": str(_("New customers")),
                    "type": "bar",
                    "data": new_customers["values"],
                    "urls": links["new_customers"],
                },
                {
                    "name": str(_("Follow-ups")),
                    "type": "bar",
                    "data": followups["values"],
                    "urls": links["followups"],
                },
                {
                    "name": str(_("Follow-ups, last year")),
                    "type": "line",
                    "dashed": True,
                    "data": followups["last_year"],
                },
            ],
        },
    }
    funnel = data["funnel"]
    if funnel and any(step["count"] for step in funnel["steps"]):
        charts["funnel"] = {
            "kind": "funnel",
            "format": "count",
            "data": [
                {
                    "name": str(step["stage"]),
                    "value": step["reached"],
                    "url": step["url"],
                    **({"color": WON_COLOUR} if step["stage"].kind == "won" else {}),
                }
                for step in funnel["steps"]
            ],
        }
    targets = data["targets"]["people"][:12]
    if targets:
        charts["targets"] = {
            "kind": "category",
            "horizontal": True,
            "categories": [row["label"] for row in targets],
            "axes": [{"format": "money"}],
            "series": [
                {
                    "name": str(_("Contract target")),
                    "type": "bar",
                    "data": [float(row["contract_target"]) for row in targets],
                },
                {
                    "name": str(_("Achieved")),
                    "type": "bar",
                    "data": [float(row["contract_achieved"]) for row in targets],
                    "urls": [row["url"] for row in targets],
                },
            ],
        }
    top = data["top_customers"]
    if top:
        charts["top_customers"] = {
            "kind": "category",
            "horizontal": True,
            "categories": [score.customer.name for score in top],
            "axes": [{"format": "money"}],
            "series": [
                {
                    "name": str(_("Revenue")),
                    "type": "bar",
                    "data": [float(score.revenue) for score in top],
                    "urls": [score.url for score in top],
                },
                {
                    "name": str(_("Gross profit")),
                    "type": "bar",
                    "data": [float(score.gross_profit) for score in top],
                },
            ],
        }
    aging = data["aging"]
    if aging and aging["total"]:
        charts["aging"] = {
            "kind": "category",
            "categories": [str(b["label"]) for b in aging["buckets"]],
            "axes": [{"format": "money"}],
            "series": [
                {
                    "name": str(_("Outstanding")),
                    "type": "bar",
                    "colors": AGING_COLOURS,
                    "data": [float(b["amount"]) for b in aging["buckets"]],
                    "urls": [links["aging"]] * len(aging["buckets"]),
                }
            ],
        }
    expenses = data["expenses"]
    if expenses:
        charts["expenses"] = {
            "kind": "pie",
            "format": "money",
            "data": [
                {"name": row["label"], "value": float(row["amount"]), "url": row["url"]}
                for row in expenses
            ],
        }
    for key in ("money", "activity"):
        if not any(v for series in charts[key]["series"] for v in series["data"]):
            del charts[key]  # an empty chart says less than "nothing in this period"
    return charts


def _kpis(data, links) -> list[dict]:
    figures = data["figures"]

    def change(metric):
        now, before = figures[metric]["total"], figures[metric]["total_last_year"]
        return float((now - before) / before) if before else None

    kpis = [
        {
            "key": "contract_amount",
            "label": _("Contract amount"),
            "value": figures[Metric.CONTRACT_AMOUNT]["total"],
            "money": True,
            "change": change(Metric.CONTRACT_AMOUNT),
            "sub": _("%(count)d contracts") % {"count": figures[Metric.CONTRACTS]["total"]},
            "url": links["contracts_all"],
        },
        {
            "key": "collected",
            "label": _("Collections"),
            "value": figures[Metric.COLLECTED]["total"],
            "money": True,
            "change": change(Metric.COLLECTED),
            "sub": _("net of refunds"),
            "url": links["collected_all"],
        },
        {
            "key": "new_customers",
            "label": _("New customers"),
            "value": figures[Metric.NEW_CUSTOMERS]["total"],
            "change": change(Metric.NEW_CUSTOMERS),
            "url": links["new_customers_all"],
        },
        {
            "key": "followups",
            "label": _("Follow-ups"),
            "value": figures[Metric.FOLLOWUPS]["total"],
            "change": change(Metric.FOLLOWUPS),
            "url": links["followups_all"],
        },
    ]
    if data["aging"] is not None:
        kpis.append(
            {
                "key": "overdue",
                "label": _("Overdue receivables"),
                "value": data["aging"]["overdue"],
                "money": True,
                "sub": _("of %(total)s outstanding") % {"total": money(data["aging"]["total"])},
                "url": links["aging"],
                "bad": bool(data["aging"]["overdue"]),
            }
        )
    if data["expenses"] is not None:
        kpis.append(
            {
                "key": "expenses",
                "label": _("Expenses"),
                "value": sum((r["amount"] for r in data["expenses"]), Decimal("0.00")),
                "money": True,
                "sub": _("approved and paid"),
                "url": links["expenses_all"],
            }
        )
    return kpis


class DashboardView(AnalyticsView):
    def get(self, request):
        today = timezone.localdate()
        form = PeriodForm(request.GET or None, today=today)
        period = form.period()
        user = request.user
        data = selectors.dashboard_data(user=user, period=period, today=today)
        fmt = self.export_format()
        if fmt:
            return self.export(data, fmt)
        links = _dashboard_links(user, data)
        _attach_row_links(user, data, links)
        context = {
            "title": _("Analytics dashboard"),
            "form": form,
            "period": period,
            "data": data,
            "links": links,
            "kpis": _kpis(data, links),
            "sections": dashboard_sections(user),
            "charts": _dashboard_charts(data, links),
            "can_export": has_perm(user, "analytics.export"),
            "export_query": _export_query(request),
        }
        template = (
            "analytics/_dashboard_body.html"
            if is_htmx(request) and not request.headers.get("HX-Boosted")
            else "analytics/dashboard.html"
        )
        return render(request, template, context)

    def export(self, data, fmt: str):
        if fmt not in FORMATS:
            return _bad_format()
        figures = data["figures"]
        rows: list[dict[str, Any]] = []
        for i, month in enumerate(data["period"].months):
            rows.append(
                {
                    "month": _month_label(month),
                    **{
                        metric: figures[metric]["values"][i]
                        for metric in (
                            Metric.CONTRACT_AMOUNT,
                            Metric.CONTRACTS,
                            Metric.COLLECTED,
                            Metric.ORDER_AMOUNT,
                            Metric.NEW_CUSTOMERS,
                            Metric.FOLLOWUPS,
                            Metric.EXPENSES,
                        )
                    },
                    "contract_amount_last_year": figures[Metric.CONTRACT_AMOUNT]["last_year"][i],
                    "collected_last_year": figures[Metric.COLLECTED]["last_year"][i],
                }
            )
        columns = [ExportColumn("month", _("Month"), lambda r: r["month"])]
        headings: tuple[tuple[str, Any], ...] = (
            (Metric.CONTRACT_AMOUNT, _("Contract amount")),
            ("contract_amount_last_year", _("Contract amount, last year")),
            (Metric.CONTRACTS, _("Contracts signed")),
            (Metric.COLLECTED, _("Collections")),
            ("collected_last_year", _("Collections, last year")),
            (Metric.ORDER_AMOUNT, _("Order amount")),
            (Metric.NEW_CUSTOMERS, _("New customers")),
            (Metric.FOLLOWUPS, _("Follow-ups")),
            (Metric.EXPENSES, _("Expenses")),
        )
        for key, label in headings:
            columns.append(ExportColumn(str(key), label, _getter(key)))
        return export_response(
            user=self.request.user,
            module="analytics",
            model=MonthlyFigure,
            queryset=rows,
            columns=columns,
            fmt=fmt,
            filename=str(_("Analytics dashboard")),
        )


def _getter(key: str):
    return lambda row: row[key]


def _export_query(request, **extra) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("export", None)
    for key, value in extra.items():
        query[key] = value
    return query.urlencode()


# --- customer value -----------------------------------------------------------------------


def _percent(value) -> str:
    return "" if value is None else f"{value * 100:.0f}%"


def score_export_columns(coefficients: dict[str, float]) -> list[ExportColumn]:
    segments = dict(Segment.choices)
    return [
        ExportColumn("customer", _("Customer"), lambda s: s.customer.name),
        ExportColumn("code", _("Code"), lambda s: s.customer.code),
        ExportColumn("owner", _("Owner"), lambda s: str(s.customer.owner or "")),
        ExportColumn("segment", _("Segment"), lambda s: str(segments.get(s.segment, s.segment))),
        ExportColumn("r_score", "R"),
        ExportColumn("f_score", "F"),
        ExportColumn("m_score", "M"),
        ExportColumn("orders", pgettext_lazy("count", "Orders")),
        ExportColumn("first_order_on", _("First order")),
        ExportColumn("last_order_on", _("Last order")),
        ExportColumn("recency_days", _("Days since last order")),
        ExportColumn("revenue", _("Revenue")),
        ExportColumn("cost", _("Cost of goods")),
        ExportColumn("gross_profit", _("Gross profit")),
        ExportColumn("clv", _("Customer lifetime value (12 months)")),
        ExportColumn("p_alive", _("Probability still active"), lambda s: round(s.p_alive, 4)),
        ExportColumn(
            "expected_purchases",
            _("Expected orders, next 90 days"),
            lambda s: round(s.expected_purchases, 2),
        ),
        ExportColumn(
            "churn_risk",
            _("Churn risk"),
            lambda s: None if s.churn_risk is None else round(s.churn_risk, 4),
        ),
        ExportColumn(
            "churn_factors",
            _("Main risk factors"),
            lambda s: "; ".join(selectors.factor_phrases(s.churn_factors, coefficients)),
        ),
    ]


class CustomerValueView(KehuListView):
    module = "analytics"
    title = _("Customer value")
    template_name = "analytics/customer_value.html"
    results_template_name = "analytics/_customer_value_results.html"
    filterset_class = CustomerScoreFilter
    default_sort = "-gross_profit"
    columns = [
        Column(
            "customer",
            _("Customer"),
            sort="customer__name_initials",
            template="analytics/_cell_customer.html",
        ),
        Column("segment", _("Segment"), sort="segment", template="analytics/_cell_segment.html"),
        Column("orders", pgettext_lazy("count", "Orders"), sort="orders"),
        Column("revenue", _("Revenue"), sort="revenue", template="analytics/_cell_money.html"),
        Column("cost", _("Cost of goods"), sort="cost", template="analytics/_cell_money.html"),
        Column(
            "gross_profit",
            _("Gross profit"),
            sort="gross_profit",
            template="analytics/_cell_money.html",
        ),
        Column("clv", _("CLV, 12 months"), sort="clv", template="analytics/_cell_money.html"),
        Column(
            "p_alive",
            _("Still active"),
            sort="p_alive",
            template="analytics/_cell_percent.html",
        ),
        Column(
            "expected_purchases",
            _("Expected orders, 90 days"),
            sort="expected_purchases",
            template="analytics/_cell_decimal.html",
        ),
        Column(
            "churn_risk", _("Churn risk"), sort="churn_risk", template="analytics/_cell_risk.html"
        ),
    ]

    def selector(self, user):
        return selectors.score_list_visible_to(user=user)

    @property
    def export_columns(self):  # type: ignore[override]
        return score_export_columns(
            selectors.churn_coefficients(selectors.latest_run(RunKind.CUSTOMERS))
        )

    def get(self, request, *args, **kwargs):
        fmt = request.GET.get("export")
        if fmt and fmt not in FORMATS:
            return _bad_format()
        return super().get(request, *args, **kwargs)

    def get_title(self):
        segment = self.request.GET.get("segment", "")
        label = dict(Segment.choices).get(segment)
        return f"{self.title} · {label}" if label else self.title

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = selectors.segment_summary(queryset=self.object_list)
        context.update(
            {
                "run": selectors.latest_run(RunKind.CUSTOMERS),
                "not_computed": NOT_COMPUTED,
                "segment_rows": [r for r in rows if r["customers"]],
                "segment_totals": selectors.segment_totals(rows),
                "active_tab": "customer_value",
            }
        )
        return context


# --- RFM segments -------------------------------------------------------------------------


class RfmView(AnalyticsView):
    def get(self, request):
        user = request.user
        rows = selectors.segment_summary(queryset=selectors.score_list_visible_to(user=user))
        fmt = self.export_format()
        if fmt:
            return self.export(rows, fmt)
        value_url = reverse("analytics:customer_value")
        can_export = has_perm(user, "analytics.export")
        for row in rows:
            query = urlencode({"segment": row["segment"]})
            row["url"] = f"{value_url}?{query}"
            row["export_url"] = f"{value_url}?{query}&export=xlsx" if can_export else ""
        totals = selectors.segment_totals(rows)
        charts = {}
        if totals["customers"]:
            charts["segments"] = {
                "kind": "category",
                "categories": [str(r["label"]) for r in rows],
                "axes": [{"format": "count"}, {"format": "money"}],
                "series": [
                    {
                        "name": str(pgettext_lazy("number of", "Customers")),
                        "type": "bar",
                        "data": [r["customers"] for r in rows],
                        "urls": [r["url"] for r in rows],
                    },
                    {
                        "name": str(_("Revenue")),
                        "type": "bar",
                        "axis": 1,
                        "data": [float(r["revenue"]) for r in rows],
                        "urls": [r["url"] for r in rows],
                    },
                ],
            }
        return render(
            request,
            "analytics/rfm.html",
            {
                "title": _("RFM segments"),
                "rows": rows,
                "totals": totals,
                "run": selectors.latest_run(RunKind.CUSTOMERS),
                "not_computed": NOT_COMPUTED,
                "charts": charts,
                "can_export": can_export,
                "active_tab": "rfm",
            },
        )

    def export(self, rows, fmt: str):
        if fmt not in FORMATS:
            return _bad_format()

        def avg(key):
            return lambda r: None if r[key] is None else round(float(r[key]), 2)

        columns = [
            ExportColumn("label", _("Segment"), lambda r: str(r["label"])),
            ExportColumn(
                "customers", pgettext_lazy("number of", "Customers"), lambda r: r["customers"]
            ),
            ExportColumn("revenue", _("Revenue"), lambda r: r["revenue"]),
            ExportColumn("cost", _("Cost of goods"), lambda r: r["cost"]),
            ExportColumn("gross_profit", _("Gross profit"), lambda r: r["gross_profit"]),
            ExportColumn("clv", _("Customer lifetime value (12 months)"), lambda r: r["clv"]),
            ExportColumn("avg_r", _("Average R"), avg("avg_r")),
            ExportColumn("avg_f", _("Average F"), avg("avg_f")),
            ExportColumn("avg_m", _("Average M"), avg("avg_m")),
            ExportColumn("avg_recency", _("Average days since last order"), avg("avg_recency")),
            ExportColumn("avg_orders", _("Average orders"), avg("avg_orders")),
        ]
        return export_response(
            user=self.request.user,
            module="analytics",
            model=CustomerScore,
            queryset=rows,
            columns=columns,
            fmt=fmt,
            filename=str(_("RFM segments")),
        )


# --- predictions --------------------------------------------------------------------------


class PredictionsView(AnalyticsView):
    def get(self, request):
        user = request.user
        run = selectors.latest_run(RunKind.CUSTOMERS)
        fmt = self.export_format()
        if fmt:
            if fmt not in FORMATS:
                return _bad_format()
            queryset = (
                selectors.score_list_visible_to(user=user)
                .order_by("-churn_risk", "customer_id")
                .iterator(chunk_size=2000)
            )
            return export_response(
                user=user,
                module="analytics",
                model=CustomerScore,
                queryset=queryset,
                columns=score_export_columns(selectors.churn_coefficients(run)),
                fmt=fmt,
                filename=str(_("Predictions")),
            )
        summary = selectors.prediction_summary(run)
        coefficients = selectors.churn_coefficients(run)
        watchlist = selectors.churn_watchlist(user=user)
        for score in watchlist:
            score.factor_phrases = selectors.factor_phrases(score.churn_factors, coefficients)
            score.url = drill(
                user, "customers.view", "customers:customer_detail", score.customer_id
            )
        return render(
            request,
            "analytics/predictions.html",
            {
                "title": _("Predictions"),
                "run": run,
                "summary": summary,
                "watchlist": watchlist,
                "charts": _prediction_charts(summary),
                "not_computed": NOT_COMPUTED,
                "can_export": has_perm(user, "analytics.export"),
                "active_tab": "predictions",
            },
        )


def _prediction_charts(summary) -> dict[str, Any]:
    charts: dict[str, Any] = {}
    calibration = summary["calibration"]
    if calibration and calibration.get("groups"):
        groups = calibration["groups"]
        charts["holdout"] = {
            "kind": "category",
            "categories": [g["repeat_purchases"] for g in groups],
            "axes": [{"format": "decimal", "name": str(_("orders per customer"))}],
            "xName": str(_("repeat purchases before the holdout")),
            "series": [
                {
                    "name": str(_("Predicted")),
                    "type": "bar",
                    "data": [round(g["predicted"], 3) for g in groups],
                },
                {
                    "name": str(_("Actual")),
                    "type": "bar",
                    "data": [round(g["actual"], 3) for g in groups],
                },
            ],
        }
    churn = summary["churn"]
    if churn and churn.get("calibration"):
        charts["churn_calibration"] = {
            "kind": "xy",
            "format": "percent",
            "xName": str(_("predicted churn risk")),
            "yName": str(_("share that churned")),
            "series": [
                {
                    "name": str(_("Model")),
                    "type": "line",
                    "data": [[round(p, 4), round(o, 4)] for p, o in churn["calibration"]],
                },
                {
                    "name": str(_("Perfect calibration")),
                    "type": "line",
                    "dashed": True,
                    "data": [[0, 0], [1, 1]],
                },
            ],
        }
    if summary["coefficients"]:
        coefficients = list(reversed(summary["coefficients"]))
        charts["coefficients"] = {
            "kind": "category",
            "horizontal": True,
            "labelWidth": 230,
            "wrapLabels": True,
            "categories": [str(c["label"]) for c in coefficients],
            "axes": [{"format": "decimal"}],
            "signColors": True,
            "series": [
                {
                    "name": str(_("Effect on churn risk (log-odds per standard deviation)")),
                    "type": "bar",
                    "data": [round(c["coefficient"], 3) for c in coefficients],
                }
            ],
        }
    return charts


# --- forecast -----------------------------------------------------------------------------

FORECAST_METHODS = {
    "ets_seasonal": _("exponential smoothing with trend and yearly season"),
    "ets_damped": _("exponential smoothing with a damped trend"),
    "mean": _("average of the months so far (too little history for a model)"),
}
HISTORY_SHOWN = 24


class ForecastView(AnalyticsView):
    def get(self, request):
        user = request.user
        forecast = selectors.forecast_for(user=user)
        fmt = self.export_format()
        if fmt:
            return self.export(forecast, fmt)
        panels = []
        charts: dict[str, Any] = {}
        if forecast:
            history_months = forecast["months"][-HISTORY_SHOWN:]
            categories = [_month_label(m) for m in history_months + forecast["future"]]
            for metric, label, link in (
                (Metric.CONTRACT_AMOUNT, _("Contract amount"), "sales:contract_list"),
                (Metric.COLLECTED, _("Collections"), "finance:payment_list"),
            ):
                series = forecast["series"].get(metric)
                if not series or not any(series["history"]):
                    continue  # nothing signed or received yet: no flat line at zero
                history = series["history"][-HISTORY_SHOWN:]
                gap = [None] * len(history)
                pad = [None] * (len(history) - 1)
                last = [history[-1]] if history else []
                charts[metric] = {
                    "kind": "band",
                    "categories": categories,
                    "format": "money",
                    "history": {"name": str(_("Actual")), "data": history + [None] * 3},
                    "mean": {
                        "name": str(_("Forecast")),
                        "data": pad + last + series["mean"],
                    },
                    "lower": pad + last + series["lower"],
                    "upper": pad + last + series["upper"],
                    # xgettext:no-python-format
                    "band": str(_("80% interval")),
                    "target": {
                        "name": str(_("Target")),
                        "data": gap + series["targets"],
                    },
                }
                rows = []
                for i, month in enumerate(forecast["future"]):
                    target = series["targets"][i]
                    rows.append(
                        {
                            "month": month,
                            "mean": series["mean"][i],
                            "lower": series["lower"][i],
                            "upper": series["upper"][i],
                            "target": target,
                            "gap": None if target is None else series["mean"][i] - target,
                        }
                    )
                same_quarter_last_year = sum(
                    series["history"][i]
                    for i, m in enumerate(forecast["months"])
                    if month_start(m, -12) in forecast["future"]
                )
                panels.append(
                    {
                        "metric": metric,
                        "label": label,
                        "rows": rows,
                        "total": series["forecast_total"],
                        "target_total": series["target_total"],
                        "last_year_total": same_quarter_last_year,
                        "method": FORECAST_METHODS.get(series["method"], series["method"]),
                        "history_url": drill(
                            user,
                            "sales.view" if metric == Metric.CONTRACT_AMOUNT else "finance.view",
                            link,
                        ),
                    }
                )
        return render(
            request,
            "analytics/forecast.html",
            {
                "title": _("Sales forecast"),
                "forecast": forecast,
                "run": forecast["run"] if forecast else None,
                "scope_label": _scope_label(user, forecast["key"]) if forecast else "",
                "panels": panels,
                "charts": charts,
                "not_computed": NOT_COMPUTED,
                "can_export": has_perm(user, "analytics.export"),
                "active_tab": "forecast",
            },
        )

    def export(self, forecast, fmt: str):
        if fmt not in FORMATS:
            return _bad_format()
        rows = []
        if forecast:
            for metric, label in (
                (Metric.CONTRACT_AMOUNT, _("Contract amount")),
                (Metric.COLLECTED, _("Collections")),
            ):
                series = forecast["series"].get(metric)
                if not series or not any(series["history"]):
                    continue
                for i, month in enumerate(forecast["months"]):
                    rows.append(
                        {
                            "metric": label,
                            "month": month,
                            "kind": _("Actual"),
                            "value": series["history"][i],
                        }
                    )
                for i, month in enumerate(forecast["future"]):
                    rows.append(
                        {
                            "metric": label,
                            "month": month,
                            "kind": _("Forecast"),
                            "value": series["mean"][i],
                            "lower": series["lower"][i],
                            "upper": series["upper"][i],
                            "target": series["targets"][i],
                        }
                    )
        columns = [
            ExportColumn("metric", _("Figure"), lambda r: str(r["metric"])),
            ExportColumn("month", _("Month"), lambda r: _month_label(r["month"])),
            ExportColumn("kind", _("Actual or forecast"), lambda r: str(r["kind"])),
            ExportColumn("value", _("Amount"), lambda r: round(r["value"], 2)),
            ExportColumn("lower", _("Lower bound (80%)"), lambda r: _round(r.get("lower"))),
            ExportColumn("upper", _("Upper bound (80%)"), lambda r: _round(r.get("upper"))),
            ExportColumn("target", _("Target"), lambda r: _round(r.get("target"))),
        ]
        return export_response(
            user=self.request.user,
            module="analytics",
            model=MonthlyFigure,
            queryset=rows,
            columns=columns,
            fmt=fmt,
            filename=str(_("Sales forecast")),
        )


def _round(value) -> float | None:
    return None if value is None else round(value, 2)


def _scope_label(user, key: str) -> str:
    kind, _sep, _ident = key.partition(":")
    if kind == "all":
        return str(_("the whole company"))
    if kind == "department" and user.department_id:
        return str(
            _("%(department)s and the departments below it") % {"department": user.department}
        )
    return str(_("your own customers"))
