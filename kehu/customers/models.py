"""Customers, their contacts, follow-ups and opportunities, and the public pool (公海)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kehu.core.models import BusinessModel, TimeStampedModel, VersionedModel
from kehu.core.money import CurrencyField, MoneyField
from kehu.core.reference import ReferenceManager


class CustomerKind(models.TextChoices):
    COMPANY = "company", _("Company")
    INDIVIDUAL = "individual", _("Individual")


class CustomerStage(models.TextChoices):
    POTENTIAL = "potential", _("Potential")
    INTENT = "intent", _("Intent")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class CustomerTag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)

    objects = ReferenceManager()

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _dictionary_fk(verbose_name, related_name: str):
    return models.ForeignKey(
        "system.DictionaryItem",
        verbose_name=verbose_name,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name=related_name,
    )


class Customer(BusinessModel):
    """A company or person the business sells to; owned by a salesperson or in the pool."""

    scope_owner_field = "owner"
    scope_department_field = "department"
    sensitive_fields = {"phone": "phone", "mobile": "phone", "email": "email"}

    code = models.CharField(_("code"), max_length=32, unique=True, editable=False)
    kind = models.CharField(
        _("type"), max_length=12, choices=CustomerKind.choices, default=CustomerKind.COMPANY
    )
    name = models.CharField(_("name"), max_length=200)
    short_name = models.CharField(_("short name"), max_length=100, blank=True)
    # Derived by services for search and duplicate checks; never entered by users.
    name_normalized = models.CharField(max_length=200, editable=False, db_index=True, default="")
    name_initials = models.CharField(max_length=200, editable=False, db_index=True, default="")
    name_pinyin = models.CharField(max_length=600, editable=False, default="")
    phone = models.CharField(_("phone"), max_length=30, blank=True, db_index=True)
    mobile = models.CharField(_("mobile"), max_length=30, blank=True, db_index=True)
    # Digits only (no +86), derived by services: duplicate checks and phone search.
    phone_digits = models.CharField(max_length=30, editable=False, db_index=True, default="")
    mobile_digits = models.CharField(max_length=30, editable=False, db_index=True, default="")
    email = models.EmailField(_("e-mail"), blank=True, db_index=True)
    website = models.URLField(_("website"), blank=True)
    province = models.CharField(_("province"), max_length=50, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    district = models.CharField(_("district"), max_length=50, blank=True)
    street = models.CharField(_("street address"), max_length=200, blank=True)
    industry = _dictionary_fk(_("industry"), "+")
    source = _dictionary_fk(_("source"), "+")
    level = _dictionary_fk(_("level"), "+")
    stage = models.CharField(
        _("stage"), max_length=12, choices=CustomerStage.choices, default=CustomerStage.POTENTIAL
    )
    tags = models.ManyToManyField(CustomerTag, verbose_name=_("tags"), blank=True)
    notes = models.TextField(_("notes"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        db_index=False,
    )
    department = models.ForeignKey(
        "hr.Department",
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        db_index=False,
    )
    in_pool = models.BooleanField(_("in the public pool"), default=False)
    pool_entered_at = models.DateTimeField(_("entered the pool at"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("owned since"), null=True, blank=True)
    last_followup_at = models.DateTimeField(_("last follow-up"), null=True, blank=True)
    next_followup_at = models.DateTimeField(_("next follow-up"), null=True, blank=True)
    last_deal_at = models.DateTimeField(_("last deal"), null=True, blank=True)
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)

    class Meta(BusinessModel.Meta):
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["owner", "-id"], name="cust_owner_id_idx"),
            models.Index(fields=["department", "-id"], name="cust_dept_id_idx"),
            models.Index(fields=["in_pool", "-id"], name="cust_pool_id_idx"),
            # The list's sortable columns: it orders by (column, id) ascending or (-column,
            # -id) descending (the id breaks ties in the same direction), so one index per
            # column and scope serves both directions, read forwards or backwards, with no
            # sort of the rows (a big group of equal values or NULLs, e.g. no follow-up
            # planned, would otherwise be sorted whole). Owner scope and scope all.
            models.Index(fields=["owner", "next_followup_at", "id"], name="cust_owner_nfu_idx"),
            models.Index(fields=["next_followup_at", "id"], name="cust_nfu_idx"),
            models.Index(fields=["owner", "last_followup_at", "id"], name="cust_owner_lfu_idx"),
            models.Index(fields=["last_followup_at", "id"], name="cust_lfu_idx"),
            models.Index(fields=["owner", "name_initials", "id"], name="cust_owner_initials_idx"),
            models.Index(fields=["name_initials", "id"], name="cust_initials_idx"),
            models.Index(fields=["owner", "stage", "id"], name="cust_owner_stage_idx"),
            models.Index(fields=["stage", "id"], name="cust_stage_idx"),
            # The list's rows (live, not in the pool): its bounded count reads only these,
            # for an owner (also the sort by owner) and for scope all. The predicate's columns
            # are key columns too, or SQLite counts the index as not covering and prefers the
            # table (count of 10,001 rows: 6 ms -> 0.4 ms).
            models.Index(
                fields=["owner", "id", "deleted_at", "in_pool"],
                name="cust_live_owner_idx",
                condition=models.Q(deleted_at__isnull=True, in_pool=False),
            ),
            models.Index(
                fields=["id", "deleted_at", "in_pool"],
                name="cust_live_idx",
                condition=models.Q(deleted_at__isnull=True, in_pool=False),
            ),
            # The public pool, newest arrivals first (its default order): a page reads 20
            # entries instead of sorting the whole pool.
            models.Index(
                fields=["pool_entered_at", "id"],
                name="cust_pool_entered_idx",
                condition=models.Q(deleted_at__isnull=True, in_pool=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(in_pool=False) | models.Q(owner__isnull=True),
                name="cust_pool_has_no_owner",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("customers:customer_detail", args=[self.pk])


class CustomerEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    ASSIGNED = "assigned", _("Assigned")
    TRANSFERRED = "transferred", _("Transferred")
    RETURNED = "returned", _("Returned to the pool")
    AUTO_RETURNED = "auto_returned", _("Returned to the pool automatically")
    CLAIMED = "claimed", _("Claimed from the pool")
    MERGED = "merged", _("Merged")
    UNMERGED = "unmerged", _("Merge reverted")
    STAGE = "stage", _("Stage changed")


class PoolRule(models.Model):
    """When owned customers fall back into the pool; one row per customer level.

    The row without a level is the default. Empty day counts follow the company settings
    (``SystemSettings.pool_no_followup_days`` / ``pool_no_deal_days``); 0 switches the rule off.
    """

    level = models.OneToOneField(
        "system.DictionaryItem",
        verbose_name=_("customer level"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    no_followup_days = models.PositiveIntegerField(
        _("days without follow-up"), null=True, blank=True
    )
    no_deal_days = models.PositiveIntegerField(_("days without a deal"), null=True, blank=True)

    class Meta:
        verbose_name = _("pool rule")
        verbose_name_plural = _("pool rules")
        ordering = ["level_id"]

    def __str__(self) -> str:
        return str(self.level) if self.level_id else str(_("Default"))


class CustomerEvent(models.Model):
    """Ownership moves and other milestones: the customer's timeline, as rows."""

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
    )
    kind = models.CharField(_("event"), max_length=20, choices=CustomerEventKind.choices)
    from_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("from"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    to_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("to"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("customer event")
        verbose_name_plural = _("customer events")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-at"], name="cust_event_cust_at_idx"),
            models.Index(fields=["from_owner", "kind", "-at"], name="cust_event_from_kind_idx"),
            models.Index(fields=["to_owner", "kind", "-at"], name="cust_event_to_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} {self.kind}"


class Contact(BusinessModel):
    scope_owner_field = "customer__owner"
    scope_department_field = "customer__department"
    sensitive_fields = {"phone": "phone", "mobile": "phone", "email": "email", "wechat": "text"}

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="contacts",
        db_index=False,
    )
    name = models.CharField(_("name"), max_length=100)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True, db_index=True)
    mobile = models.CharField(_("mobile"), max_length=30, blank=True, db_index=True)
    email = models.EmailField(_("e-mail"), blank=True)
    wechat = models.CharField(_("WeChat"), max_length=100, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    is_primary = models.BooleanField(_("primary contact"), default=False)
    notes = models.TextField(_("notes"), blank=True)

    class Meta(BusinessModel.Meta):
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-is_primary", "id"]
        indexes = [models.Index(fields=["customer", "-is_primary"], name="contact_cust_idx")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("customers:contact_edit", args=[self.pk])


class FollowUp(BusinessModel):
    """A call, visit or message with a customer, and the next step planned."""

    scope_owner_field = "customer__owner"
    scope_department_field = "customer__department"

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="followups",
        db_index=False,
    )
    contact = models.ForeignKey(
        Contact,
        verbose_name=_("contact"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="followups",
    )
    method = _dictionary_fk(_("method"), "+")
    content = models.TextField(_("content"))
    happened_at = models.DateTimeField(_("time"), db_index=True)
    next_followup_at = models.DateTimeField(_("next follow-up"), null=True, blank=True)
    next_action = models.CharField(_("planned action"), max_length=300, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        related_name="followups",
        db_index=False,
    )

    class Meta(BusinessModel.Meta):
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-happened_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-happened_at"], name="followup_cust_at_idx"),
            models.Index(fields=["author", "next_followup_at"], name="followup_author_next_idx"),
            # The calendar's days: a day's first plans by time, whoever wrote them.
            models.Index(
                fields=["next_followup_at", "id"],
                name="followup_next_idx",
                condition=models.Q(deleted_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} {self.happened_at:%Y-%m-%d}"

    def get_absolute_url(self) -> str:
        return (
            reverse("customers:customer_detail", args=[self.customer_id]) + f"#followup-{self.pk}"
        )


class StageKind(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class PipelineStage(TimeStampedModel, VersionedModel):
    """A configurable step of the sales pipeline with its win probability."""

    name = models.CharField(_("name"), max_length=50)
    name_en = models.CharField(_("English name"), max_length=50, blank=True)
    kind = models.CharField(
        _("kind"), max_length=10, choices=StageKind.choices, default=StageKind.OPEN
    )
    probability = models.PositiveSmallIntegerField(_("win probability (%)"), default=10)
    sort_order = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("pipeline stage")
        verbose_name_plural = _("pipeline stages")
        ordering = ["sort_order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(probability__lte=100), name="stage_probability_max_100"
            )
        ]

    def __str__(self) -> str:
        from django.utils.translation import get_language

        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class Opportunity(BusinessModel):
    scope_owner_field = "owner"
    scope_department_field = "department"

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="opportunities",
        db_index=False,
    )
    title = models.CharField(_("title"), max_length=200)
    amount = MoneyField(_("amount"), default=0)
    currency = CurrencyField()
    expected_close_date = models.DateField(_("expected close date"), null=True, blank=True)
    stage = models.ForeignKey(
        PipelineStage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="+"
    )
    probability = models.PositiveSmallIntegerField(_("win probability (%)"), default=10)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="opportunities",
    )
    department = models.ForeignKey(
        "hr.Department",
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="opportunities",
    )
    board_position = models.PositiveIntegerField(_("position on the board"), default=0)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    lost_reason = models.CharField(_("reason lost"), max_length=300, blank=True)
    notes = models.TextField(_("notes"), blank=True)

    class Meta(BusinessModel.Meta):
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["stage__sort_order", "board_position", "-id"]
        indexes = [
            models.Index(fields=["owner", "stage"], name="opp_owner_stage_idx"),
            models.Index(fields=["customer"], name="opp_customer_idx"),
            # A board column's first cards in board order, without sorting the stage.
            models.Index(
                fields=["stage", "board_position", "-id"],
                name="opp_board_idx",
                condition=models.Q(deleted_at__isnull=True),
            ),
            # The board's won and lost columns: the last 30 days' closings.
            models.Index(
                fields=["closed_at"],
                name="opp_closed_idx",
                condition=models.Q(closed_at__isnull=False, deleted_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="opp_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(probability__lte=100), name="opp_probability_max_100"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("customers:opportunity_edit", args=[self.pk])


class CustomerMerge(models.Model):
    """A merge of two customers, with what moved, so it can be reversed."""

    survivor = models.ForeignKey(
        Customer, verbose_name=_("kept customer"), on_delete=models.PROTECT, related_name="+"
    )
    merged = models.ForeignKey(
        Customer, verbose_name=_("merged customer"), on_delete=models.PROTECT, related_name="+"
    )
    moved = models.JSONField(_("moved records"), default=dict)
    merged_snapshot = models.JSONField(_("merged customer before the merge"), default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(_("time"), auto_now_add=True)
    reverted_at = models.DateTimeField(_("reverted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.merged} → {self.survivor}"
