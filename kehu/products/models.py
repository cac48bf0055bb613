"""Catalogue (categories, products, price history) and stock (warehouses, levels, movements).

Products are company-wide catalogue data: there is no owner or department, so these models
take no part in the data-scope mechanism. Everyone holding ``products.view`` sees every
product; writes need ``products.add`` / ``change`` / ``delete``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kehu.core.models import BusinessModel, TimeStampedModel, VersionedModel
from kehu.core.money import CurrencyField, MoneyField

QUANTITY_DIGITS = 14
QUANTITY_PLACES = 3  # kilograms and hours come in fractions


def quantity_field(verbose_name, **kwargs) -> models.DecimalField:
    kwargs.setdefault("default", Decimal("0"))
    return models.DecimalField(
        verbose_name,
        max_digits=QUANTITY_DIGITS,
        decimal_places=QUANTITY_PLACES,
        **kwargs,
    )


class ProductCategory(TimeStampedModel, VersionedModel):
    """A node of the catalogue tree.

    ``path`` is the materialised path of ids ("/00000001/00000004/"), so "this category and
    everything below it" is one indexed prefix query. Siblings are shown by ``sort_order``;
    services keep both in step.
    """

    name = models.CharField(_("name"), max_length=100)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    path = models.CharField(_("path"), max_length=500, editable=False, db_index=True, default="")
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("product category")
        verbose_name_plural = _("product categories")
        ordering = ["path", "sort_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="prod_category_sibling_uniq"),
            # NULL parents are distinct in a unique index: top-level names need their own.
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(parent__isnull=True),
                name="prod_category_root_name_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("products:category_edit", args=[self.pk])

    @property
    def depth(self) -> int:
        return max(self.path.count("/") - 2, 0)


class ProductStatus(models.TextChoices):
    ON_SALE = "on_sale", _("On sale")
    OFF_SALE = "off_sale", _("Off sale")


class Product(BusinessModel):
    code = models.CharField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    # Pinyin initials of the name ("hp打印机" → "hpdyj"), kept by services for search.
    name_initials = models.CharField(max_length=200, editable=False, db_index=True, default="")
    specification = models.CharField(_("specification"), max_length=200, blank=True)
    category = models.ForeignKey(
        ProductCategory,
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="products",
    )
    unit = models.ForeignKey(
        "system.DictionaryItem",
        verbose_name=_("unit"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"dictionary__code": "product_unit"},
    )
    list_price = MoneyField(_("list price"), default=Decimal("0"))
    cost_price = MoneyField(_("cost price"), default=Decimal("0"))
    currency = CurrencyField()
    tax_rate = models.DecimalField(
        _("tax rate (%)"), max_digits=5, decimal_places=2, default=Decimal("13.00")
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=ProductStatus.choices,
        default=ProductStatus.ON_SALE,
    )
    description = models.TextField(_("description"), blank=True)
    image = models.ImageField(_("image"), upload_to="products/%Y/%m/", blank=True)
    thumbnail = models.ImageField(
        _("thumbnail"), upload_to="products/%Y/%m/", blank=True, editable=False
    )
    barcode = models.CharField(_("barcode"), max_length=64, blank=True, db_index=True)
    low_stock_threshold = quantity_field(
        _("low-stock threshold"), help_text=_("0 means no low-stock warning.")
    )
    # Denormalised sum of the stock levels; only the stock service writes it.
    stock_quantity = quantity_field(_("stock on hand"), editable=False)

    class Meta(BusinessModel.Meta):
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]
        indexes = [
            models.Index(fields=["status", "code"], name="prod_status_code_idx"),
            models.Index(fields=["category", "code"], name="prod_category_code_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(list_price__gte=0), name="prod_list_price_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(cost_price__gte=0), name="prod_cost_price_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(tax_rate__gte=0) & models.Q(tax_rate__lte=100),
                name="prod_tax_rate_range",
            ),
            models.CheckConstraint(
                condition=models.Q(low_stock_threshold__gte=0),
                name="prod_low_stock_threshold_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("products:product_detail", args=[self.pk])

    @property
    def is_low_stock(self) -> bool:
        return self.low_stock_threshold > 0 and self.stock_quantity <= self.low_stock_threshold


class PriceField(models.TextChoices):
    LIST = "list_price", _("List price")
    COST = "cost_price", _("Cost price")


class ProductPriceChange(models.Model):
    """One price change, written by the product service; the price history is these rows."""

    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="price_changes"
    )
    field = models.CharField(_("price"), max_length=20, choices=PriceField.choices)
    old_value = MoneyField(_("old price"))
    new_value = MoneyField(_("new price"))
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("price change")
        verbose_name_plural = _("price changes")
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["product", "-changed_at"], name="prod_pricechange_idx")]

    def __str__(self) -> str:
        return f"{self.product_id} {self.field}: {self.old_value} → {self.new_value}"


class Warehouse(TimeStampedModel, VersionedModel):
    """A place stock is kept. Exactly one is the default (sales ship from it); warehouses
    that held stock are deactivated, never deleted, so their movements keep their place."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    code = models.SlugField(_("code"), max_length=50, unique=True)
    is_default = models.BooleanField(_("default"), default=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["-is_default", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="prod_one_default_warehouse",
            )
        ]

    def __str__(self) -> str:
        return self.name


class StockLevel(models.Model):
    """Quantity on hand of one product in one warehouse: the sum of its movements."""

    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="stock_levels"
    )
    warehouse = models.ForeignKey(
        Warehouse, verbose_name=_("warehouse"), on_delete=models.PROTECT, related_name="+"
    )
    quantity = quantity_field(_("quantity"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        ordering = ["warehouse", "product"]
        constraints = [
            models.UniqueConstraint(fields=["product", "warehouse"], name="prod_stocklevel_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.warehouse_id}: {self.quantity}"


class MovementKind(models.TextChoices):
    IN = "in", _("Receipt")
    OUT = "out", _("Issue")
    ADJUSTMENT = "adjustment", _("Adjustment")
    ORDER_SHIPMENT = "order_shipment", _("Order shipment")
    ORDER_RETURN = "order_return", _("Order return")
    TRANSFER_OUT = "transfer_out", _("Transfer out")
    TRANSFER_IN = "transfer_in", _("Transfer in")


# Kinds people post by hand; the order kinds come from the sales module's services and the
# transfer kinds only from ``stock_transfer`` (always in pairs).
MANUAL_KINDS = (MovementKind.IN, MovementKind.OUT, MovementKind.ADJUSTMENT)
INBOUND_KINDS = (MovementKind.IN, MovementKind.ORDER_RETURN, MovementKind.TRANSFER_IN)
OUTBOUND_KINDS = (MovementKind.OUT, MovementKind.ORDER_SHIPMENT, MovementKind.TRANSFER_OUT)


class StockMovement(models.Model):
    """One change of stock; append-only. Mistakes are corrected by a new adjustment."""

    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        on_delete=models.PROTECT,
        related_name="movements",
        db_index=False,
    )
    warehouse = models.ForeignKey(
        Warehouse, verbose_name=_("warehouse"), on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("type"), max_length=20, choices=MovementKind.choices)
    quantity = models.DecimalField(
        _("change"), max_digits=QUANTITY_DIGITS, decimal_places=QUANTITY_PLACES
    )  # signed: receipts positive, issues negative
    balance_after = models.DecimalField(
        _("balance after"), max_digits=QUANTITY_DIGITS, decimal_places=QUANTITY_PLACES
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    reference = models.CharField(_("reference document"), max_length=100, blank=True)
    reference_type = models.ForeignKey(
        "contenttypes.ContentType",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    reference_id = models.CharField(max_length=64, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        db_index=False,
    )
    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["product", "-at"], name="prod_movement_product_idx"),
            models.Index(fields=["kind", "-at"], name="prod_movement_kind_idx"),
            models.Index(fields=["reference_type", "reference_id"], name="prod_movement_ref_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(quantity=0), name="prod_movement_quantity_not_zero"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity}"
