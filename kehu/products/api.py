"""Products API: categories, products, stock movements, warehouses.

Writes go through kehu.products.services like the web pages. Catalogue data is company-wide
(no data scope): every holder of products.view reads all of it.
"""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from kehu.core.api import ModulePermission, expected_version
from kehu.products import selectors, services
from kehu.products.models import (
    MovementKind,
    Product,
    ProductCategory,
    ProductStatus,
    StockMovement,
    Warehouse,
)
from kehu.products.selectors import LOW_STOCK_Q, category_subtree, product_search
from kehu.products.serializers import (
    ProductCategorySerializer,
    ProductSerializer,
    StockMovementSerializer,
    StockTransferResultSerializer,
    StockTransferSerializer,
    WarehouseSerializer,
)

_400 = OpenApiResponse(description=_("Invalid input: field messages."))
_403 = OpenApiResponse(description=_("Permission denied."))
_404 = OpenApiResponse(description=_("Not found."))
_409 = OpenApiResponse(description=_("Stale version: someone else changed the record."))


def _crud_schema(serializer):
    return extend_schema_view(
        list=extend_schema(responses={200: serializer(many=True), 403: _403}),
        retrieve=extend_schema(responses={200: serializer, 403: _403, 404: _404}),
        create=extend_schema(responses={201: serializer, 400: _400, 403: _403}),
        update=extend_schema(
            responses={200: serializer, 400: _400, 403: _403, 404: _404, 409: _409}
        ),
        partial_update=extend_schema(
            responses={200: serializer, 400: _400, 403: _403, 404: _404, 409: _409}
        ),
        destroy=extend_schema(responses={204: None, 400: _400, 403: _403, 404: _404}),
    )


@_crud_schema(ProductCategorySerializer)
class ProductCategoryViewSet(viewsets.ModelViewSet):
    """The catalogue tree, parents before children."""

    module = "products"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    queryset = ProductCategory.objects.all()
    serializer_class = ProductCategorySerializer
    filterset_fields = ["parent"]
    ordering_fields = ["path", "name", "sort_order", "id"]
    ordering = ["path", "sort_order", "id"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        serializer.instance = services.category_create(actor=self.request.user, data=data)

    def perform_update(self, serializer):
        version = expected_version(serializer)
        serializer.instance = services.category_update(
            actor=self.request.user,
            category=serializer.instance,
            expected_version=version,
            data=dict(serializer.validated_data),
        )

    def perform_destroy(self, instance):
        services.category_delete(actor=self.request.user, category=instance)


class ProductApiFilter(django_filters.FilterSet):
    category = django_filters.NumberFilter(
        method="filter_category", label=_("Category (sub-categories included)")
    )
    status = django_filters.ChoiceFilter(choices=ProductStatus.choices)
    search = django_filters.CharFilter(method="filter_search", label=_("Code, name or barcode"))
    low_stock = django_filters.BooleanFilter(method="filter_low_stock")

    class Meta:
        model = Product
        fields = ["category", "status", "search", "low_stock"]

    def filter_category(self, queryset, name, value):
        category = ProductCategory.objects.filter(pk=value).first()
        if category is None:
            return queryset.none()
        return queryset.filter(category__in=category_subtree(category))

    def filter_search(self, queryset, name, value):
        return product_search(queryset, value)

    def filter_low_stock(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(LOW_STOCK_Q) if value else queryset.exclude(LOW_STOCK_Q)


@_crud_schema(ProductSerializer)
class ProductViewSet(viewsets.ModelViewSet):
    """Products; ``stock_quantity`` is read-only (post a stock movement to change it)."""

    module = "products"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    queryset = Product.objects.select_related("category", "unit")
    serializer_class = ProductSerializer
    filterset_class = ProductApiFilter
    ordering_fields = ["code", "name", "list_price", "stock_quantity", "updated_at", "id"]
    ordering = ["code"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        serializer.instance = services.product_create(actor=self.request.user, data=data)

    def perform_update(self, serializer):
        version = expected_version(serializer)
        data = dict(serializer.validated_data)
        if "image" in data and data["image"] is None:
            data["image"] = False  # an explicit null clears the picture
        serializer.instance = services.product_update(
            actor=self.request.user,
            product=serializer.instance,
            expected_version=version,
            data=data,
        )

    def perform_destroy(self, instance):
        services.product_delete(actor=self.request.user, product=instance)


class StockMovementApiFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=MovementKind.choices)
    date_from = django_filters.DateFilter(field_name="at", lookup_expr="date__gte")
    date_to = django_filters.DateFilter(field_name="at", lookup_expr="date__lte")

    class Meta:
        model = StockMovement
        fields = ["product", "warehouse", "kind", "date_from", "date_to"]


@extend_schema_view(
    list=extend_schema(responses={200: StockMovementSerializer(many=True), 403: _403}),
    retrieve=extend_schema(responses={200: StockMovementSerializer, 403: _403, 404: _404}),
    create=extend_schema(responses={201: StockMovementSerializer, 400: _400, 403: _403}),
)
class StockMovementViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Stock movements. Create posts a movement (products.change) and changes the product's
    stock atomically; there is no update or delete: a wrong movement is corrected by a new
    adjustment."""

    module = "products"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    queryset = StockMovement.objects.select_related("product", "warehouse", "user")
    serializer_class = StockMovementSerializer
    filterset_class = StockMovementApiFilter
    ordering_fields = ["at", "id"]
    ordering = ["-at", "-id"]

    @property
    def perm_action(self) -> str | None:  # type: ignore[override]
        return "change" if self.action == "create" else None

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.stock_movement_post(
            actor=self.request.user,
            product=data["product"],
            warehouse=data.get("warehouse"),
            kind=data["kind"],
            quantity=data["quantity"],
            reason=data.get("reason", ""),
            reference=data.get("reference", ""),
        )


@_crud_schema(WarehouseSerializer)
class WarehouseViewSet(viewsets.ModelViewSet):
    """Warehouses with their product count and stock value. Creating and editing need
    products.change (stock set-up, like posting); an update carries the version read (409
    when stale). Default and active change through the actions below."""

    module = "products"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    serializer_class = WarehouseSerializer
    filterset_fields = ["is_active", "is_default"]
    ordering_fields = ["code", "name", "id"]

    @property
    def perm_action(self) -> str | None:  # type: ignore[override]
        if self.action == "destroy":
            return "delete"
        if self.action in ("list", "retrieve", None):
            return None
        return "change"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Warehouse.objects.none()
        return selectors.warehouse_list_for(user=self.request.user)

    def _read(self, warehouse: Warehouse, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=warehouse.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("version", None)
        warehouse = services.warehouse_create(actor=request.user, data=data)
        return self._read(warehouse, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        warehouse = self.get_object()
        serializer = self.get_serializer(
            warehouse, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        version = expected_version(serializer)
        warehouse = services.warehouse_update(
            actor=request.user,
            warehouse=warehouse,
            expected_version=version,
            data=dict(serializer.validated_data),
        )
        return self._read(warehouse)

    def destroy(self, request, *args, **kwargs):
        services.warehouse_delete(actor=request.user, warehouse=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: WarehouseSerializer, 400: _400, 403: _403})
    @action(detail=True, methods=["post"], url_path="set-default")
    def set_default(self, request, pk=None):
        """Make this warehouse the default (the previous default stops being it)."""
        warehouse = services.warehouse_set_default(actor=request.user, warehouse=self.get_object())
        return self._read(warehouse)

    @extend_schema(request=None, responses={200: WarehouseSerializer, 400: _400, 403: _403})
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        """Refused for the default warehouse and while it holds stock."""
        warehouse = services.warehouse_deactivate(actor=request.user, warehouse=self.get_object())
        return self._read(warehouse)

    @extend_schema(request=None, responses={200: WarehouseSerializer, 400: _400, 403: _403})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        warehouse = services.warehouse_activate(actor=request.user, warehouse=self.get_object())
        return self._read(warehouse)


class StockTransferViewSet(viewsets.GenericViewSet):
    """Move stock of a product between two warehouses: one out and one in movement, posted
    together (products.change); the product's total does not change."""

    module = "products"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    perm_action = "change"
    serializer_class = StockTransferSerializer

    @extend_schema(
        request=StockTransferSerializer,
        responses={201: StockTransferResultSerializer, 400: _400, 403: _403},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        out, into = services.stock_transfer(
            actor=request.user,
            product=data["product"],
            from_warehouse=data["from_warehouse"],
            to_warehouse=data["to_warehouse"],
            quantity=data["quantity"],
            reason=data["reason"],
            reference=data["reference"],
        )
        result = {
            "reference": out.reference,
            "stock_quantity": data["product"].stock_quantity,
            "movements": [out, into],
        }
        context = self.get_serializer_context()
        return Response(
            StockTransferResultSerializer(result, context=context).data,
            status=status.HTTP_201_CREATED,
        )


def register(router) -> None:
    """Add this module's viewsets to the API router."""
    router.register("product-categories", ProductCategoryViewSet, basename="product-category")
    router.register("products", ProductViewSet, basename="product")
    router.register("stock-movements", StockMovementViewSet, basename="stock-movement")
    router.register("warehouses", WarehouseViewSet, basename="warehouse")
    router.register("stock-transfers", StockTransferViewSet, basename="stock-transfer")
