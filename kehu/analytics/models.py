"""Stored results of the analytics jobs; pages and the API read these, never compute them.

Each job run is an ``AnalyticsRun`` with its metrics (fitted parameters, AUC, calibration …)
and the time it finished, so every page can say how fresh its figures are.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kehu.core.money import MoneyField


class RunKind(models.TextChoices):
    FIGURES = "figures", _("Monthly figures")
    CUSTOMERS = "customers", _("Customer value, segments and predictions")
    ASSOCIATIONS = "associations", _("Product recommendations")
    FORECAST = "forecast", _("Sales forecast")
    AGGREGATES = "aggregates", _("Stored totals rebuilt")


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class AnalyticsRun(models.Model):
    kind = models.CharField(_("job"), max_length=20, choices=RunKind.choices, db_index=True)
    status = models.CharField(
        _("status"), max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING
    )
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, db_index=True)
    as_of = models.DateField(_("data as of"), null=True, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("analytics run")
        verbose_name_plural = _("analytics runs")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started_at:%Y-%m-%d %H:%M}"


class Segment(models.TextChoices):
    CHAMPIONS = "champions", _("Champions")
    PROMISING_BIG = "promising_big", _("Promising big spenders")
    VALUABLE_AT_RISK = "valuable_at_risk", _("Valuable, slipping away")
    CANNOT_LOSE = "cannot_lose", _("Can't lose them")
    LOYAL = "loyal", _("Loyal")
    NEW = "new", _("New and occasional")
    NEED_ATTENTION = "need_attention", _("Need attention")
    HIBERNATING = "hibernating", _("Hibernating")


class CustomerScore(models.Model):
    """One customer's value, RFM segment and predictions as of the last customers run.

    Only customers who have bought at least once have a row.
    """

    scope_owner_field = "customer__owner"
    scope_department_field = "customer__department"

    customer = models.OneToOneField(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="score",
    )
    computed_at = models.DateTimeField(_("computed at"))
    orders = models.PositiveIntegerField(pgettext_lazy("count", "orders"))
    first_order_on = models.DateField(_("first order"))
    last_order_on = models.DateField(_("last order"))
    recency_days = models.PositiveIntegerField(_("days since last order"))
    revenue = MoneyField(_("revenue"))
    cost = MoneyField(_("cost of goods"))
    gross_profit = MoneyField(_("gross profit"), db_index=True)
    r_score = models.PositiveSmallIntegerField("R")
    f_score = models.PositiveSmallIntegerField("F")
    m_score = models.PositiveSmallIntegerField("M")
    segment = models.CharField(_("segment"), max_length=20, choices=Segment.choices, db_index=True)
    p_alive = models.FloatField(_("probability still active"))
    expected_purchases = models.FloatField(_("expected orders, next 90 days"))
    expected_spend = MoneyField(_("expected spend per order"))
    clv = MoneyField(_("customer lifetime value (12 months)"), db_index=True)
    churn_risk = models.FloatField(_("churn risk"), null=True, blank=True, db_index=True)
    churn_factors = models.JSONField(_("main risk factors"), default=list, blank=True)

    class Meta:
        verbose_name = _("customer score")
        verbose_name_plural = _("customer scores")
        ordering = ["-gross_profit", "customer_id"]
        # The dashboard's top customers by revenue: read in index order, not sorted.
        indexes = [
            models.Index(fields=["-revenue", "customer"], name="analytics_score_revenue_idx")
        ]

    def __str__(self) -> str:
        return str(self.customer)


class ProductAssociation(models.Model):
    """Customers who bought ``source`` also bought ``target``."""

    source = models.ForeignKey(
        "products.Product", on_delete=models.CASCADE, related_name="associations"
    )
    target = models.ForeignKey("products.Product", on_delete=models.CASCADE, related_name="+")
    support = models.PositiveIntegerField(_("customers with both"))
    confidence = models.FloatField(_("confidence"))
    lift = models.FloatField(_("lift"))

    class Meta:
        verbose_name = _("product association")
        verbose_name_plural = _("product associations")
        ordering = ["source", "-lift"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="analytics_assoc_pair_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.source_id} → {self.target_id}"


class Metric(models.TextChoices):
    CONTRACT_AMOUNT = "contract_amount", _("Contract amount")
    CONTRACTS = "contracts", _("Contracts signed")
    COLLECTED = "collected", _("Collections")
    ORDER_AMOUNT = "order_amount", _("Order amount")
    NEW_CUSTOMERS = "new_customers", _("New customers")
    FOLLOWUPS = "followups", _("Follow-ups")
    EXPENSES = "expenses", _("Expenses")


class MonthlyFigure(models.Model):
    """A monthly total per owner, rebuilt by the figures job: dashboards sum these rows
    instead of scanning the documents, in time independent of how many there are."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    month = models.DateField(_("month"))
    metric = models.CharField(_("metric"), max_length=20, choices=Metric.choices)
    owner = models.ForeignKey(
        "system.User", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    department = models.ForeignKey(
        "hr.Department", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    value = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal("0"))

    class Meta:
        verbose_name = _("monthly figure")
        verbose_name_plural = _("monthly figures")
        indexes = [models.Index(fields=["metric", "month"], name="analytics_figure_metric_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["month", "metric", "owner", "department"], name="analytics_figure_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.metric} {self.value}"


# --- stored aggregates, kept by the services (kehu.analytics.aggregates) --------------------
#
# Money in whole cents (BigInteger): increments stay exact on SQLite, which adds decimals as
# floating point. ``department_key`` is the department's id or 0: unique constraints treat
# NULLs as distinct on both databases, and a key must name exactly one row for the upsert.


def _owner():
    return models.ForeignKey(
        "system.User", verbose_name=_("owner"), on_delete=models.PROTECT, related_name="+"
    )


def _department():
    return models.ForeignKey(
        "hr.Department",
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )


class SalesFigure(models.Model):
    """Per owner, department and month: the amount of contracts signed (in force or
    completed) and the money collected (confirmed payments less approved refunds), as
    sales targets count them."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    owner = _owner()
    department = _department()
    department_key = models.PositiveIntegerField(default=0)
    month = models.DateField(_("month"))
    contract_cents = models.BigIntegerField(default=0)
    collected_cents = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("sales figure")
        verbose_name_plural = _("sales figures")
        indexes = [models.Index(fields=["department", "month"], name="analytics_salesfig_dept_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "department_key", "month"], name="analytics_salesfig_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.owner_id}/{self.department_key}"


class ProductFigure(models.Model):
    """Per product, owner, department and month: order lines of orders that count (not
    cancelled, not deleted) by order date."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    product = models.ForeignKey(
        "products.Product", verbose_name=_("product"), on_delete=models.PROTECT, related_name="+"
    )
    owner = _owner()
    department = _department()
    department_key = models.PositiveIntegerField(default=0)
    month = models.DateField(_("month"))
    amount_cents = models.BigIntegerField(default=0)
    quantity_milli = models.BigIntegerField(default=0)
    orders = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("product figure")
        verbose_name_plural = _("product figures")
        indexes = [models.Index(fields=["month"], name="analytics_productfig_month_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "owner", "department_key", "month"],
                name="analytics_productfig_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.product_id}"


class ReceivableDay(models.Model):
    """Outstanding instalment money per contract owner, department and due date."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    owner = _owner()
    department = _department()
    department_key = models.PositiveIntegerField(default=0)
    due_date = models.DateField(_("due date"))
    cents = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("receivable by due date")
        verbose_name_plural = _("receivables by due date")
        indexes = [models.Index(fields=["due_date"], name="analytics_recday_due_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "department_key", "due_date"], name="analytics_recday_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.due_date} {self.owner_id}/{self.department_key}"


class ReceivableMonth(models.Model):
    """The same by month of the due date: the aging buckets far from today (over 90 days,
    not yet due) are whole months, so a report reads a bounded number of rows."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    owner = _owner()
    department = _department()
    department_key = models.PositiveIntegerField(default=0)
    month = models.DateField(_("month"))
    cents = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("receivable by due month")
        verbose_name_plural = _("receivables by due month")
        indexes = [models.Index(fields=["month"], name="analytics_recmonth_month_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "department_key", "month"], name="analytics_recmonth_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.owner_id}/{self.department_key}"


class CustomerReceivable(models.Model):
    """What a customer owes on the contracts of one owner and department; a row only while
    it is more than 0. ``split`` marks customers with more than one row (contracts of
    several owners), whose totals in a scope are summed over their rows; the others are a
    row each, so the largest debtors are read from the amount index."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    owner = _owner()
    department = _department()
    department_key = models.PositiveIntegerField(default=0)
    cents = models.BigIntegerField(default=0)
    split = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("customer receivable")
        verbose_name_plural = _("customer receivables")
        indexes = [
            models.Index(
                fields=["-cents", "customer"],
                name="analytics_custrec_top_idx",
                condition=models.Q(split=False),
            ),
            models.Index(fields=["owner", "-cents"], name="analytics_custrec_owner_idx"),
            models.Index(fields=["department", "-cents"], name="analytics_custrec_dept_idx"),
            models.Index(
                fields=["customer"],
                name="analytics_custrec_split_idx",
                condition=models.Q(split=True),
            ),
            # A scope's few split rows: through the owner index SQLite read all of a
            # salesperson's rows to find none (84 ms of the aging page at 1,000,000).
            models.Index(
                fields=["owner"],
                name="analytics_custrec_split_own",
                condition=models.Q(split=True),
            ),
            models.Index(
                fields=["department"],
                name="analytics_custrec_split_dept",
                condition=models.Q(split=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "owner", "department_key"], name="analytics_custrec_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.owner_id}/{self.department_key}"


class ReceivableGroup(models.Model):
    """How many customer rows (``CustomerReceivable``) each owner and department has: the
    number of debtors in a scope without counting them one by one."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    owner = _owner()
    department = _department()
    department_key = models.PositiveIntegerField(default=0)
    debtors = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("receivable group")
        verbose_name_plural = _("receivable groups")
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "department_key"], name="analytics_recgroup_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.owner_id}/{self.department_key}: {self.debtors}"


class ContractWithoutPlan(models.Model):
    """A contract in force (or that was) with no receivable plan, kept by the services: the
    aging page lists the newest of them without looking at every contract."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    contract = models.OneToOneField(
        "sales.Contract",
        verbose_name=_("contract"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
    )
    owner = _owner()
    department = _department()
    signed_on = models.DateField(_("signing date"), null=True, blank=True)

    class Meta:
        verbose_name = _("contract without a plan")
        verbose_name_plural = _("contracts without a plan")
        indexes = [
            models.Index(fields=["-signed_on", "-contract"], name="analytics_unplanned_new_idx"),
            models.Index(fields=["owner", "-signed_on"], name="analytics_unplanned_owner_idx"),
        ]

    def __str__(self) -> str:
        return str(self.contract_id)


class OpportunityFigure(models.Model):
    """Per pipeline stage, owner and department: the opportunities (not deleted) and their
    amount, kept by the opportunity services; the dashboard's funnel sums these rows."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    stage = models.ForeignKey(
        "customers.PipelineStage",
        verbose_name=_("stage"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    owner = _owner()
    department = _department()
    department_key = models.PositiveIntegerField(default=0)
    opportunities = models.IntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("opportunity figure")
        verbose_name_plural = _("opportunity figures")
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "owner", "department_key"], name="analytics_oppfig_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stage_id} {self.owner_id}/{self.department_key}"


class ExpenseFigure(models.Model):
    """Per expense category, claimant, department and month of the expense: the approved
    and paid claims and their amount, kept by the expense services; the dashboard's
    expenses sum these rows."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    category = models.ForeignKey(
        "system.DictionaryItem",
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    owner = _owner()
    department = _department()
    department_key = models.PositiveIntegerField(default=0)
    month = models.DateField(_("month"))
    claims = models.IntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("expense figure")
        verbose_name_plural = _("expense figures")
        indexes = [models.Index(fields=["month"], name="analytics_expfig_month_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "owner", "department_key", "month"],
                name="analytics_expfig_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.category_id} {self.owner_id}/{self.department_key}"
