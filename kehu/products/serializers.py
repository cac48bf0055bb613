"""API shapes of the products module. Shape only: rules live in kehu.products.services."""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from kehu.core.api import FieldPolicySerializerMixin, VersionField
from kehu.products.models import (
    MANUAL_KINDS,
    MovementKind,
    Product,
    ProductCategory,
    StockMovement,
    Warehouse,
)
from kehu.system.models import DictionaryItem


class ProductCategorySerializer(serializers.ModelSerializer):
    parent = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=ProductCategory.objects.all(), allow_null=True, required=False
    )
    depth = serializers.IntegerField(read_only=True)
    version = VersionField()

    class Meta:
        model = ProductCategory
        fields = ["id", "name", "parent", "path", "depth", "sort_order", "version"]
        read_only_fields = ["path"]
        # (parent, name) uniqueness is reported by the model's full_clean in the service.
        validators: list = []


class ProductImageField(serializers.ImageField):
    """Takes an upload; reads as the checked download URL, never the storage path."""

    def to_representation(self, value):
        if not value:
            return None
        url = reverse("files:product", args=[value.instance.pk, self.field_name])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class ProductSerializer(FieldPolicySerializerMixin, serializers.ModelSerializer):
    unit = serializers.PrimaryKeyRelatedField(
        queryset=DictionaryItem.objects.filter(dictionary__code="product_unit"),
        allow_null=True,
        required=False,
    )
    category = serializers.PrimaryKeyRelatedField(
        queryset=ProductCategory.objects.all(), allow_null=True, required=False
    )
    unit_label = serializers.CharField(source="unit.display_label", read_only=True, default="")
    category_name = serializers.CharField(source="category.name", read_only=True, default="")
    image = ProductImageField(required=False, allow_null=True)
    thumbnail = ProductImageField(read_only=True)
    is_low_stock = serializers.BooleanField(read_only=True)
    version = VersionField()

    class Meta:
        model = Product
        fields = [
            "id",
            "code",
            "name",
            "specification",
            "category",
            "category_name",
            "unit",
            "unit_label",
            "list_price",
            "cost_price",
            "currency",
            "tax_rate",
            "status",
            "description",
            "barcode",
            "low_stock_threshold",
            "stock_quantity",
            "is_low_stock",
            "image",
            "thumbnail",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["stock_quantity", "created_at", "updated_at"]
        extra_kwargs = {
            "list_price": {"min_value": Decimal("0")},
            "cost_price": {"min_value": Decimal("0")},
            "tax_rate": {"min_value": Decimal("0"), "max_value": Decimal("100")},
            "low_stock_threshold": {"min_value": Decimal("0")},
        }


class WarehouseSerializer(serializers.ModelSerializer):
    product_count = serializers.IntegerField(
        read_only=True, default=0, help_text="Products with stock in this warehouse."
    )
    stock_value = serializers.DecimalField(
        max_digits=20,
        decimal_places=2,
        read_only=True,
        default=Decimal("0"),
        help_text="Quantity × cost price, products priced in the company currency.",
    )
    version = VersionField()

    class Meta:
        model = Warehouse
        fields = [
            "id",
            "name",
            "code",
            "is_default",
            "is_active",
            "product_count",
            "stock_value",
            "version",
        ]
        # Default and active change through their actions; uniqueness (ignoring case) is
        # checked by the service.
        read_only_fields = ["is_default", "is_active"]
        extra_kwargs: dict[str, dict] = {"name": {"validators": []}, "code": {"validators": []}}


class StockMovementSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    warehouse = serializers.PrimaryKeyRelatedField(
        queryset=Warehouse.objects.filter(is_active=True), required=False, allow_null=True
    )
    # All kinds are listed; only the manual ones may be posted (order kinds come from sales).
    kind = serializers.ChoiceField(choices=MovementKind.choices)
    quantity = serializers.DecimalField(
        max_digits=14,
        decimal_places=3,
        help_text="Positive for in/out (the kind gives the direction); signed for adjustment.",
    )
    product_code = serializers.CharField(source="product.code", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)
    user = serializers.SerializerMethodField()

    class Meta:
        model = StockMovement
        fields = [
            "id",
            "product",
            "product_code",
            "product_name",
            "warehouse",
            "kind",
            "quantity",
            "balance_after",
            "reason",
            "reference",
            "user",
            "at",
        ]
        read_only_fields = ["balance_after", "at"]

    def validate_kind(self, value: str) -> str:
        if value in (MovementKind.TRANSFER_OUT, MovementKind.TRANSFER_IN):
            raise serializers.ValidationError(
                _("Post transfers to /api/v1/stock-transfers/: both halves at once.")
            )
        if value not in MANUAL_KINDS:
            raise serializers.ValidationError(
                _("Order shipments and returns are posted by the sales module.")
            )
        return value

    def get_user(self, obj) -> str:
        return str(obj.user or "")


class StockTransferSerializer(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    from_warehouse = serializers.PrimaryKeyRelatedField(
        queryset=Warehouse.objects.filter(is_active=True)
    )
    to_warehouse = serializers.PrimaryKeyRelatedField(
        queryset=Warehouse.objects.filter(is_active=True)
    )
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, min_value=Decimal("0.001"))
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    reference = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="Empty: the transfer gets the next DB-<year>-<n> number.",
    )


class StockTransferResultSerializer(serializers.Serializer):
    reference = serializers.CharField()
    stock_quantity = serializers.DecimalField(
        max_digits=14, decimal_places=3, help_text="The product's total: unchanged."
    )
    movements = StockMovementSerializer(many=True, help_text="The out and the in movement.")
