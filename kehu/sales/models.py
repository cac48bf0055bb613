"""Quotes, contracts (with amendments), orders and their shipments.

Each document has an owner and the owner's department for data scope, line items whose
amounts the server computes (``kehu.sales.totals``), a gap-free number, and a status that
only services change, writing a ``DocumentEvent`` row for every change.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kehu.core.models import BusinessModel, TimeStampedModel
from kehu.core.money import CurrencyField, MoneyField
from kehu.products.models import quantity_field

PERCENT = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]
DEFAULT_TAX_RATE = Decimal("13.00")  # China's standard VAT rate for goods


def percent_field(verbose_name, **kwargs) -> models.DecimalField:
    kwargs.setdefault("default", Decimal("0"))
    return models.DecimalField(
        verbose_name, max_digits=5, decimal_places=2, validators=PERCENT, **kwargs
    )


class SalesDocument(BusinessModel):
    """What quotes, contracts and orders share: number, customer, owner, money, notes."""

    scope_owner_field = "owner"
    scope_department_field = "department"

    number = models.CharField(_("number"), max_length=32, unique=True, editable=False)
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    currency = CurrencyField()
    subtotal_amount = MoneyField(_("amount before tax"), default=Decimal("0"), editable=False)
    tax_amount = MoneyField(_("tax"), default=Decimal("0"), editable=False)
    total_amount = MoneyField(_("total"), default=Decimal("0"), editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    department = models.ForeignKey(
        "hr.Department",
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta(BusinessModel.Meta):
        abstract = True

    def __str__(self) -> str:
        return f"{self.number} {self.title}".strip()  # type: ignore[attr-defined]


class LineItem(models.Model):
    """A priced line. ``subtotal``, ``tax_amount`` and ``total_amount`` are computed."""

    product = models.ForeignKey(
        "products.Product", verbose_name=_("product"), on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(_("description"), max_length=300, blank=True)
    unit = models.CharField(_("unit"), max_length=20, blank=True)
    quantity = quantity_field(_("quantity"))
    unit_price = MoneyField(_("unit price"))
    discount_rate = percent_field(_("discount (%)"))
    tax_rate = percent_field(_("tax rate (%)"), default=DEFAULT_TAX_RATE)
    subtotal = MoneyField(_("amount before tax"), default=Decimal("0"), editable=False)
    tax_amount = MoneyField(_("tax"), default=Decimal("0"), editable=False)
    total_amount = MoneyField(_("total"), default=Decimal("0"), editable=False)
    sort_order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        abstract = True
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return f"{self.description or self.product_id} × {self.quantity}"


# --- quotes ---------------------------------------------------------------------------------


class QuoteStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired")
    CONVERTED = "converted", _("Converted to contract")


class Quote(SalesDocument):
    contact = models.ForeignKey(
        "customers.Contact",
        verbose_name=_("contact"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    opportunity = models.ForeignKey(
        "customers.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="quotes",
    )
    title = models.CharField(_("title"), max_length=200)
    quote_date = models.DateField(_("quote date"))
    valid_until = models.DateField(_("valid until"))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=QuoteStatus.choices,
        default=QuoteStatus.DRAFT,
        db_index=True,
        editable=False,
    )
    terms = models.TextField(_("terms"), blank=True)

    class Meta(SalesDocument.Meta):
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")
        ordering = ["-quote_date", "-id"]
        indexes = [
            models.Index(fields=["customer", "-quote_date"], name="sales_quote_customer_idx"),
            models.Index(fields=["owner", "-quote_date"], name="sales_quote_owner_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("quote_date")),
                name="sales_quote_valid_after_date",
            )
        ]

    def get_absolute_url(self) -> str:
        return reverse("sales:quote_detail", args=[self.pk])

    def is_editable(self) -> bool:
        return self.status in (QuoteStatus.DRAFT, QuoteStatus.SENT)


class QuoteLine(LineItem):
    quote = models.ForeignKey(
        Quote, verbose_name=_("quote"), on_delete=models.CASCADE, related_name="lines"
    )

    class Meta(LineItem.Meta):
        verbose_name = _("quote line")
        verbose_name_plural = _("quote lines")


# --- contracts ------------------------------------------------------------------------------


class ContractStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING = "pending", _("Pending approval")
    ACTIVE = "active", _("Active")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    TERMINATED = "terminated", _("Terminated")


# Sortable columns of the contract list (field, short name for the index names).
CONTRACT_SORTS = (
    ("number", "num"),
    ("status", "status"),
    ("total_amount", "total"),
    ("signed_on", "signed"),
    ("end_date", "end"),
)


class Contract(SalesDocument):
    opportunity = models.ForeignKey(
        "customers.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="contracts",
    )
    quote = models.OneToOneField(
        Quote,
        verbose_name=_("quote"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="contract",
        editable=False,
    )
    contact = models.ForeignKey(
        "customers.Contact",
        verbose_name=_("customer signatory"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    title = models.CharField(_("title"), max_length=200)
    signed_on = models.DateField(_("signing date"), null=True, blank=True, db_index=True)
    start_date = models.DateField(_("start date"), null=True, blank=True)
    end_date = models.DateField(_("end date"), null=True, blank=True, db_index=True)
    payment_terms = models.TextField(_("payment terms"), blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=ContractStatus.choices,
        default=ContractStatus.DRAFT,
        db_index=True,
        editable=False,
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True, editable=False)
    terminated_at = models.DateTimeField(_("terminated at"), null=True, blank=True, editable=False)
    termination_reason = models.CharField(
        _("reason for termination"), max_length=500, blank=True, editable=False
    )

    class Meta(SalesDocument.Meta):
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="sales_contract_customer_idx"),
            models.Index(fields=["owner", "-created_at"], name="sales_contract_owner_idx"),
            models.Index(fields=["status", "end_date"], name="sales_contract_status_end_idx"),
            # A salesperson's list (newest first) and its bounded count read only this
            # index: no table row per contract to check it is not deleted.
            models.Index(
                fields=["owner", "id", "deleted_at"],  # deleted_at: covering (see customers)
                name="sales_contract_owner_live_idx",
                condition=models.Q(deleted_at__isnull=True),
            ),
            # Scope all: the bounded count and newest-first page without table rows.
            models.Index(
                fields=["id", "deleted_at"],
                name="sales_contract_live_idx",
                condition=models.Q(deleted_at__isnull=True),
            ),
            # The list's sortable columns of the contract itself, (column, id) for both
            # directions (see the customer indexes), live contracts only like the list.
            *(
                index
                for column, short in CONTRACT_SORTS
                for index in (
                    models.Index(
                        fields=["owner", column, "id"],
                        name=f"sales_contract_own_{short}_idx",
                        condition=models.Q(deleted_at__isnull=True),
                    ),
                    models.Index(
                        fields=[column, "id"],
                        name=f"sales_contract_{short}_idx",
                        condition=models.Q(deleted_at__isnull=True),
                    ),
                )
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start_date__isnull=True)
                | models.Q(end_date__isnull=True)
                | models.Q(end_date__gte=models.F("start_date")),
                name="sales_contract_end_after_start",
            )
        ]

    def get_absolute_url(self) -> str:
        return reverse("sales:contract_detail", args=[self.pk])

    def is_editable(self) -> bool:
        """Drafts and rejected contracts are edited; active ones only through an amendment."""
        return self.status in (ContractStatus.DRAFT, ContractStatus.REJECTED)

    def can_submit(self) -> bool:
        return self.status in (ContractStatus.DRAFT, ContractStatus.REJECTED)

    def can_amend(self) -> bool:
        return self.status == ContractStatus.ACTIVE

    def can_complete(self) -> bool:
        return self.status == ContractStatus.ACTIVE

    def can_terminate(self) -> bool:
        return self.status == ContractStatus.ACTIVE


class ContractLine(LineItem):
    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="lines"
    )

    class Meta(LineItem.Meta):
        verbose_name = _("contract line")
        verbose_name_plural = _("contract lines")


class AmendmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending approval")
    APPLIED = "applied", _("Applied")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class ContractAmendment(TimeStampedModel):
    """A change to an active contract: what it was, what it becomes, and why.

    ``proposed`` holds the new header fields and lines; they are applied to the contract
    when the amendment is approved (at once when no approval rule applies).
    """

    scope_owner_field = "contract__owner"
    scope_department_field = "contract__department"

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.PROTECT, related_name="amendments"
    )
    sequence = models.PositiveSmallIntegerField(_("amendment no."), editable=False)
    reason = models.TextField(_("reason"))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=AmendmentStatus.choices,
        default=AmendmentStatus.PENDING,
        db_index=True,
        editable=False,
    )
    before = models.JSONField(_("before"), default=dict, editable=False)
    proposed = models.JSONField(_("proposed"), default=dict, editable=False)
    total_before = MoneyField(_("total before"), editable=False)
    total_after = MoneyField(_("total after"), editable=False)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("contract amendment")
        verbose_name_plural = _("contract amendments")
        ordering = ["contract", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "sequence"], name="sales_amendment_sequence_uniq"
            ),
            models.UniqueConstraint(
                fields=["contract"],
                condition=models.Q(status="pending"),
                name="sales_amendment_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number}-A{self.sequence}"

    def get_absolute_url(self) -> str:
        return reverse("sales:amendment_detail", args=[self.pk])

    @property
    def department(self):
        return self.contract.department

    @property
    def currency(self) -> str:
        return self.contract.currency


# --- orders ---------------------------------------------------------------------------------


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CONFIRMED = "confirmed", _("Confirmed")
    PARTIALLY_SHIPPED = "partially_shipped", _("Partially shipped")
    SHIPPED = "shipped", _("Shipped")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


class Order(SalesDocument):
    contract = models.ForeignKey(
        Contract,
        verbose_name=_("contract"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    order_date = models.DateField(_("order date"))
    ship_by = models.DateField(_("ship by"), null=True, blank=True, db_index=True)
    warehouse = models.ForeignKey(
        "products.Warehouse",
        verbose_name=_("ship from"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    receiver_name = models.CharField(_("receiver"), max_length=100, blank=True)
    receiver_phone = models.CharField(_("receiver phone"), max_length=30, blank=True)
    shipping_address = models.CharField(_("shipping address"), max_length=300, blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=OrderStatus.choices,
        default=OrderStatus.PENDING,
        db_index=True,
        editable=False,
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True, editable=False)
    cancel_reason = models.CharField(
        _("reason for cancelling"), max_length=500, blank=True, editable=False
    )

    class Meta(SalesDocument.Meta):
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-order_date", "-id"]
        indexes = [
            models.Index(fields=["customer", "-order_date"], name="sales_order_customer_idx"),
            models.Index(fields=["owner", "-order_date"], name="sales_order_owner_idx"),
            models.Index(fields=["status", "ship_by"], name="sales_order_status_ship_idx"),
            # The list's default order (newest first, the id breaking ties) read backwards
            # from one index, live orders only like the list: a salesperson's, and all (a
            # department's list reads that one too, skipping other departments' orders).
            models.Index(
                fields=["owner", "order_date", "id"],
                name="sales_order_own_date_idx",
                condition=models.Q(deleted_at__isnull=True),
            ),
            models.Index(
                fields=["order_date", "id"],
                name="sales_order_date_idx",
                condition=models.Q(deleted_at__isnull=True),
            ),
        ]

    def get_absolute_url(self) -> str:
        return reverse("sales:order_detail", args=[self.pk])

    def is_editable(self) -> bool:
        return self.status == OrderStatus.PENDING

    def can_ship(self) -> bool:
        return self.status in (OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_SHIPPED)


class OrderLine(LineItem):
    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="lines"
    )
    contract_line = models.ForeignKey(
        ContractLine,
        verbose_name=_("contract line"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="order_lines",
    )
    # Kept by the shipment services: the sums of this line's shipment and return lines.
    shipped_quantity = quantity_field(_("shipped"), editable=False)
    returned_quantity = quantity_field(_("returned"), editable=False)

    class Meta(LineItem.Meta):
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")

    @property
    def outstanding_quantity(self) -> Decimal:
        """Still to ship."""
        return self.quantity - self.shipped_quantity + self.returned_quantity


class ShipmentKind(models.TextChoices):
    SHIPMENT = "shipment", _("Shipment")
    RETURN = "return", _("Return")


class Shipment(TimeStampedModel):
    """Goods leaving for (or coming back from) the customer; posts stock movements."""

    scope_owner_field = "order__owner"
    scope_department_field = "order__department"

    number = models.CharField(_("number"), max_length=32, unique=True, editable=False)
    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="shipments"
    )
    kind = models.CharField(
        _("type"), max_length=10, choices=ShipmentKind.choices, default=ShipmentKind.SHIPMENT
    )
    warehouse = models.ForeignKey(
        "products.Warehouse",
        verbose_name=_("warehouse"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    shipped_on = models.DateField(_("date"))
    carrier = models.CharField(_("carrier"), max_length=100, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=100, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["-shipped_on", "-id"]
        # The list's order read backwards. Scoped lists filter through the order's owner or
        # department (no index spans the join): they walk this one and check each order.
        indexes = [models.Index(fields=["shipped_on", "id"], name="sales_shipment_date_idx")]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("sales:order_detail", args=[self.order_id])


class ShipmentLine(models.Model):
    shipment = models.ForeignKey(
        Shipment, verbose_name=_("shipment"), on_delete=models.CASCADE, related_name="lines"
    )
    order_line = models.ForeignKey(
        OrderLine, verbose_name=_("order line"), on_delete=models.PROTECT, related_name="+"
    )
    quantity = quantity_field(_("quantity"))
    stock_movement = models.ForeignKey(
        "products.StockMovement",
        verbose_name=_("stock movement"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("shipment line")
        verbose_name_plural = _("shipment lines")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="sales_shipment_line_qty_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.shipment} {self.quantity}"


# --- history --------------------------------------------------------------------------------


class DocumentEvent(models.Model):
    """A status change of a quote, contract or order: the document's timeline."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    object_id = models.PositiveBigIntegerField()
    from_status = models.CharField(_("from"), max_length=20, blank=True)
    to_status = models.CharField(_("to"), max_length=20)
    note = models.CharField(_("note"), max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("document event")
        verbose_name_plural = _("document events")
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="sales_event_document_idx")
        ]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"
