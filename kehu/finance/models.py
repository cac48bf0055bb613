"""Receivable plans, payments, invoices, refunds and expense claims.

Money records are never edited or deleted once they count: a confirmed payment is corrected
by a reversal entry (both kept), an issued invoice is voided with a reason. Per contract,
``ContractLedger`` holds the running figures the finance services keep, under a row lock:

    received = confirmed payments (reversals are negative) − approved refunds

and the invariants: 0 ≤ received ≤ contract total, invoiced ≤ contract total.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kehu.core.models import TimeStampedModel, VersionedModel
from kehu.core.money import CurrencyField, MoneyField

ZERO = Decimal("0.00")


def _owner_field():
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="+",
    )


def _department_field():
    return models.ForeignKey(
        "hr.Department",
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )


class ContractLedger(VersionedModel):
    """The money figures of one contract; only finance services write them."""

    scope_owner_field = "contract__owner"
    scope_department_field = "contract__department"

    contract = models.OneToOneField(
        "sales.Contract",
        verbose_name=_("contract"),
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="ledger",
    )
    confirmed_amount = MoneyField(_("confirmed payments"), default=ZERO)
    refunded_amount = MoneyField(_("refunded"), default=ZERO)
    invoiced_amount = MoneyField(_("invoiced"), default=ZERO)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("contract ledger")
        verbose_name_plural = _("contract ledgers")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0)
                & models.Q(invoiced_amount__gte=0)
                & models.Q(confirmed_amount__gte=models.F("refunded_amount")),
                name="finance_ledger_non_negative",
            )
        ]

    def __str__(self) -> str:
        return str(self.contract)

    @property
    def received_amount(self) -> Decimal:
        return self.confirmed_amount - self.refunded_amount


# --- receivable plans -----------------------------------------------------------------------


class ReceivableInstalment(TimeStampedModel):
    """One instalment of a contract's receivable plan (回款计划).

    Received money settles instalments in due-date order; the status is derived from that
    (``kehu.finance.selectors``), never stored, so it cannot drift from the ledger.
    """

    scope_owner_field = "contract__owner"
    scope_department_field = "contract__department"

    contract = models.ForeignKey(
        "sales.Contract",
        verbose_name=_("contract"),
        on_delete=models.PROTECT,
        related_name="instalments",
    )
    sequence = models.PositiveSmallIntegerField(_("instalment"))
    due_date = models.DateField(_("due date"), db_index=True)
    amount = MoneyField(_("amount"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("receivable instalment")
        verbose_name_plural = _("receivable instalments")
        ordering = ["contract", "due_date", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "sequence"], name="finance_instalment_sequence_uniq"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="finance_instalment_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number} #{self.sequence}"

    def get_absolute_url(self) -> str:
        return reverse("finance:plan_detail", args=[self.contract_id])


class InstalmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PARTLY_RECEIVED = "partly_received", _("Partly received")
    RECEIVED = "received", _("Received")
    OVERDUE = "overdue", _("Overdue")


# --- payments -------------------------------------------------------------------------------


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting confirmation")
    CONFIRMED = "confirmed", _("Confirmed")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")


class PaymentKind(models.TextChoices):
    PAYMENT = "payment", _("Payment")
    REVERSAL = "reversal", _("Reversal")


class Payment(TimeStampedModel, VersionedModel):
    """Money received against a contract (回款). Never deleted; a confirmed payment is
    corrected by a reversal: a confirmed entry of the opposite amount pointing at it."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    number = models.CharField(_("number"), max_length=32, unique=True, editable=False)
    contract = models.ForeignKey(
        "sales.Contract",
        verbose_name=_("contract"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    instalment = models.ForeignKey(
        ReceivableInstalment,
        verbose_name=_("instalment"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments",
    )
    kind = models.CharField(
        _("type"), max_length=10, choices=PaymentKind.choices, default=PaymentKind.PAYMENT
    )
    reverses = models.OneToOneField(
        "self",
        verbose_name=_("reverses"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversal",
    )
    amount = MoneyField(_("amount"))
    currency = CurrencyField()
    received_on = models.DateField(_("received on"))
    method = models.CharField(_("method"), max_length=50)
    account = models.CharField(_("receiving account"), max_length=100, blank=True)
    reference = models.CharField(_("bank reference"), max_length=100, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=PaymentStatus.choices,
        default=PaymentStatus.PENDING,
        db_index=True,
    )
    owner = _owner_field()
    department = _department_field()
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("confirmed by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    decision_note = models.CharField(_("reason"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-received_on", "-id"]
        indexes = [
            models.Index(fields=["contract", "status"], name="finance_payment_contract_idx"),
            # The list's order (newest first, id breaking ties), read backwards.
            models.Index(fields=["received_on", "id"], name="finance_payment_date_idx"),
            models.Index(
                fields=["owner", "received_on", "id"], name="finance_payment_own_date_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="payment", amount__gt=0, reverses__isnull=True))
                | models.Q(kind="reversal", amount__lt=0, reverses__isnull=False),
                name="finance_payment_sign_by_kind",
            )
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("finance:payment_detail", args=[self.pk])


class IdempotencyKey(models.Model):
    """A client's key for one write: the same key again returns the first result.

    ``request_hash`` fingerprints the request body; the same key with a different body is
    refused rather than silently answered with an unrelated result.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=50)
    key = models.CharField(max_length=100)
    request_hash = models.CharField(max_length=64)
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "scope", "key"], name="finance_idempotency_key_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


# --- invoices -------------------------------------------------------------------------------


class InvoiceType(models.TextChoices):
    VAT_SPECIAL = "vat_special", _("VAT special invoice")
    VAT_ORDINARY = "vat_ordinary", _("VAT ordinary invoice")


class InvoiceStatus(models.TextChoices):
    PENDING = "pending", _("Pending approval")
    APPROVED = "approved", _("Approved, to issue")
    ISSUED = "issued", _("Issued")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    VOIDED = "voided", _("Voided")


class Invoice(TimeStampedModel, VersionedModel):
    scope_owner_field = "owner"
    scope_department_field = "department"

    number = models.CharField(_("request number"), max_length=32, unique=True, editable=False)
    contract = models.ForeignKey(
        "sales.Contract",
        verbose_name=_("contract"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    invoice_type = models.CharField(
        _("invoice type"),
        max_length=20,
        choices=InvoiceType.choices,
        default=InvoiceType.VAT_ORDINARY,
    )
    title = models.CharField(_("invoice title"), max_length=200)
    tax_number = models.CharField(_("taxpayer identification number"), max_length=30)
    address_phone = models.CharField(_("address and phone"), max_length=300, blank=True)
    bank_account = models.CharField(_("bank and account"), max_length=200, blank=True)
    amount = MoneyField(_("amount"))
    currency = CurrencyField()
    note = models.CharField(_("note"), max_length=500, blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=InvoiceStatus.choices,
        default=InvoiceStatus.PENDING,
        db_index=True,
    )
    invoice_number = models.CharField(_("invoice number"), max_length=50, blank=True)
    issued_on = models.DateField(_("issued on"), null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("issued by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    void_reason = models.CharField(_("reason for voiding"), max_length=500, blank=True)
    owner = _owner_field()
    department = _department_field()

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["contract", "status"], name="finance_invoice_contract_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="finance_invoice_amount_positive"
            ),
            # An invoice number is issued once (blank until issued).
            models.UniqueConstraint(
                fields=["invoice_number"],
                condition=~models.Q(invoice_number=""),
                name="finance_invoice_number_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.invoice_number or self.number

    def get_absolute_url(self) -> str:
        return reverse("finance:invoice_detail", args=[self.pk])


# --- refunds --------------------------------------------------------------------------------


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Pending approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Refund(TimeStampedModel, VersionedModel):
    """Money paid back against a confirmed payment; counts once approved."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    number = models.CharField(_("number"), max_length=32, unique=True, editable=False)
    contract = models.ForeignKey(
        "sales.Contract", verbose_name=_("contract"), on_delete=models.PROTECT, related_name="+"
    )
    payment = models.ForeignKey(
        Payment, verbose_name=_("payment"), on_delete=models.PROTECT, related_name="refunds"
    )
    amount = MoneyField(_("amount"))
    currency = CurrencyField()
    reason = models.CharField(_("reason"), max_length=500)
    refunded_on = models.DateField(_("refund date"), null=True, blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=RefundStatus.choices,
        default=RefundStatus.PENDING,
        db_index=True,
    )
    owner = _owner_field()
    department = _department_field()

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="finance_refund_amount_positive"
            )
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("finance:refund_detail", args=[self.pk])


# --- expense claims -------------------------------------------------------------------------


class ExpenseStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING = "pending", _("Pending approval")
    APPROVED = "approved", _("Approved, to pay")
    PAID = "paid", _("Paid")
    REJECTED = "rejected", _("Rejected")


class ExpenseClaim(TimeStampedModel, VersionedModel):
    """An employee's expense claim (费用报销); receipts are attachments."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    number = models.CharField(_("number"), max_length=32, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("employee"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    department = _department_field()
    category = models.ForeignKey(
        "system.DictionaryItem",
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"dictionary__code": "expense_category"},
    )
    amount = MoneyField(_("amount"))
    currency = CurrencyField()
    spent_on = models.DateField(_("date"), db_index=True)
    description = models.TextField(_("description"))
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    contract = models.ForeignKey(
        "sales.Contract",
        verbose_name=_("contract"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=ExpenseStatus.choices,
        default=ExpenseStatus.DRAFT,
        db_index=True,
    )
    paid_on = models.DateField(_("paid on"), null=True, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("paid by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("expense claim")
        verbose_name_plural = _("expense claims")
        ordering = ["-spent_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="finance_expense_amount_positive"
            )
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("finance:expense_detail", args=[self.pk])
