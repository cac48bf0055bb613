"""API shapes of the products module. Shape only: rules live in kehu.products.services."""

from __future__ import annotations

from decimal import Decimal

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
    image = serializers.ImageField(required=False, allow_null=True)
    thumbnail = serializers.ImageField(read_only=True)
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
    class Meta:
        model = Warehouse
        fields = ["id", "name", "code", "is_default", "is_active"]


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
        if value not in MANUAL_KINDS:
            raise serializers.ValidationError(
                _("Order shipments and returns are posted by the sales module.")
            )
        return value

    def get_user(self, obj) -> str:
        return str(obj.user or "")
