"""The approval engine: rules route a document to ordered steps; requests record each decision.

Generic on purpose: contracts use it now, finance documents (payments, invoices, refunds,
expense claims) later. A module registers a document type (``registry.py``); rules for that
type say, by amount and department, which steps a submission goes through. Each submission
is an ``ApprovalRequest`` whose steps are copied from the rule when submitted, with the users
who may decide each step resolved then, so later rule edits never change a running request.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kehu.core.models import TimeStampedModel, VersionedModel
from kehu.core.money import CurrencyField, MoneyField


class ApproverKind(models.TextChoices):
    ROLE = "role", _("Anyone with a role")
    USER = "user", _("A named user")
    DEPARTMENT_MANAGER = "department_manager", _("The submitter's department manager")


class ApprovalRule(TimeStampedModel, VersionedModel):
    """Which steps a document of ``document_type`` goes through, by amount and department.

    A rule applies when the amount is over ``amount_over`` (if set), at most ``amount_up_to``
    (if set), and the document's department is one of ``departments`` or below it (any
    department when empty). The active rule with the lowest ``sort_order`` that applies wins;
    when none applies the document is approved at once (recorded as such).
    """

    document_type = models.CharField(_("document type"), max_length=50, db_index=True)
    name = models.CharField(_("name"), max_length=100)
    amount_over = MoneyField(_("amount over"), null=True, blank=True)
    amount_up_to = MoneyField(_("amount up to"), null=True, blank=True)
    departments = models.ManyToManyField(
        "hr.Department",
        verbose_name=_("departments"),
        blank=True,
        related_name="+",
        help_text=_("Leave empty for every department; a department includes those below it."),
    )
    sort_order = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("approval rule")
        verbose_name_plural = _("approval rules")
        ordering = ["document_type", "sort_order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_over__isnull=True)
                | models.Q(amount_up_to__isnull=True)
                | models.Q(amount_up_to__gt=models.F("amount_over")),
                name="approvals_rule_amount_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("approvals:rule_edit", args=[self.pk])


class ApprovalRuleStep(models.Model):
    rule = models.ForeignKey(
        ApprovalRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="steps"
    )
    sort_order = models.PositiveSmallIntegerField(_("order"), default=0)
    approver_kind = models.CharField(
        _("approver"), max_length=20, choices=ApproverKind.choices, default=ApproverKind.ROLE
    )
    role = models.ForeignKey(
        "system.Role",
        verbose_name=_("role"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("approval rule step")
        verbose_name_plural = _("approval rule steps")
        ordering = ["rule", "sort_order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(approver_kind=ApproverKind.ROLE, role__isnull=False, user__isnull=True)
                    | models.Q(
                        approver_kind=ApproverKind.USER, user__isnull=False, role__isnull=True
                    )
                    | models.Q(
                        approver_kind=ApproverKind.DEPARTMENT_MANAGER,
                        role__isnull=True,
                        user__isnull=True,
                    )
                ),
                name="approvals_rule_step_approver",
            )
        ]

    def __str__(self) -> str:
        if self.approver_kind == ApproverKind.ROLE and self.role_id:
            return str(self.role)
        if self.approver_kind == ApproverKind.USER and self.user_id:
            return str(self.user)
        return str(self.get_approver_kind_display())


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class ApprovalRequest(TimeStampedModel, VersionedModel):
    """One submission of one document. Resubmitting after a rejection makes a new request."""

    scope_owner_field = "submitter"
    scope_department_field = "department"

    document_type = models.CharField(_("document type"), max_length=50, db_index=True)
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,
    )
    object_id = models.PositiveBigIntegerField(editable=False)
    # Read-only convenience: lists prefetch it (one query per document type) for links.
    document = GenericForeignKey("content_type", "object_id")
    title = models.CharField(_("document"), max_length=300)
    amount = MoneyField(_("amount"), null=True, blank=True)
    currency = CurrencyField()
    department = models.ForeignKey(
        "hr.Department",
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    submitter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("submitted by"),
        on_delete=models.PROTECT,
        related_name="approval_requests",
    )
    rule = models.ForeignKey(
        ApprovalRule,
        verbose_name=_("rule"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requests",
    )
    rule_name = models.CharField(_("rule"), max_length=100, blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=ApprovalStatus.choices,
        default=ApprovalStatus.PENDING,
        db_index=True,
    )
    submitted_at = models.DateTimeField(_("submitted at"), db_index=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("approval request")
        verbose_name_plural = _("approval requests")
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="approvals_req_document_idx"),
        ]
        constraints = [
            # At most one running request per document.
            models.UniqueConstraint(
                fields=["content_type", "object_id"],
                condition=models.Q(status="pending"),
                name="approvals_req_one_pending_per_document",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("approvals:request_detail", args=[self.pk])

    @property
    def is_pending(self) -> bool:
        return self.status == ApprovalStatus.PENDING


class StepStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    PENDING = "pending", _("Awaiting decision")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Not reached")


class ApprovalStep(models.Model):
    """A step of a running request; ``candidates`` may decide it while it is pending."""

    request = models.ForeignKey(
        ApprovalRequest, verbose_name=_("request"), on_delete=models.CASCADE, related_name="steps"
    )
    sort_order = models.PositiveSmallIntegerField(_("order"))
    approver_kind = models.CharField(_("approver"), max_length=20, choices=ApproverKind.choices)
    approver_label = models.CharField(_("approver"), max_length=200)
    candidates = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("may decide"),
        related_name="approval_steps",
        blank=True,
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=StepStatus.choices,
        default=StepStatus.WAITING,
        db_index=True,
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        verbose_name = _("approval step")
        verbose_name_plural = _("approval steps")
        ordering = ["request", "sort_order"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "sort_order"], name="approvals_step_order_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.request} #{self.sort_order + 1} {self.approver_label}"


class ApprovalActionKind(models.TextChoices):
    SUBMIT = "submit", _("Submitted")
    APPROVE = "approve", _("Approved")
    REJECT = "reject", _("Rejected")
    WITHDRAW = "withdraw", _("Withdrawn")
    AUTO_APPROVE = "auto_approve", _("Approved automatically (no rule applies)")


class ApprovalAction(models.Model):
    """The history of a request, one row per thing that happened; never edited."""

    request = models.ForeignKey(
        ApprovalRequest,
        verbose_name=_("request"),
        on_delete=models.CASCADE,
        related_name="actions",
    )
    step = models.ForeignKey(
        ApprovalStep,
        verbose_name=_("step"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="actions",
    )
    kind = models.CharField(_("action"), max_length=20, choices=ApprovalActionKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    comment = models.TextField(_("comment"), blank=True)
    at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("approval action")
        verbose_name_plural = _("approval actions")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.request}"
