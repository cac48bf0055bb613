"""Reads of the products module.

Products, categories and stock are company-wide catalogue data, not records owned by a
salesperson: everyone holding ``products.view`` sees all of them, so these selectors check
the permission but apply no data scope (``kehu.core.scope``) on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from kehu.core.permissions import has_perm, require_perm
from kehu.products.models import (
    Product,
    ProductCategory,
    ProductPriceChange,
    StockLevel,
    StockMovement,
    Warehouse,
)

# Low stock is judged on the product's total over all warehouses, like its one threshold:
# stock sitting in a second warehouse can be transferred, so it is not "low". A per-warehouse
# view would need a threshold per warehouse, which the catalogue does not have.
LOW_STOCK_Q = Q(low_stock_threshold__gt=0, stock_quantity__lte=F("low_stock_threshold"))


@dataclass
class CategoryNode:
    category: ProductCategory
    depth: int
    full_name: str
    product_count: int
    first: bool
    last: bool


def category_tree() -> list[CategoryNode]:
    """Every category in display order (siblings by ``sort_order``), two queries in all."""
    categories = list(ProductCategory.objects.all())
    counts = dict(Product.objects.values_list("category_id").annotate(n=Count("id")).order_by())
    children: dict[int | None, list[ProductCategory]] = {}
    for category in categories:
        children.setdefault(category.parent_id, []).append(category)
    for siblings in children.values():
        siblings.sort(key=lambda c: (c.sort_order, c.name, c.pk))
    nodes: list[CategoryNode] = []

    def walk(parent_id, depth, prefix):
        siblings = children.get(parent_id, [])
        for index, category in enumerate(siblings):
            full_name = f"{prefix}{category.name}"
            nodes.append(
                CategoryNode(
                    category=category,
                    depth=depth,
                    full_name=full_name,
                    product_count=counts.get(category.pk, 0),
                    first=index == 0,
                    last=index == len(siblings) - 1,
                )
            )
            walk(category.pk, depth + 1, f"{full_name}/")

    walk(None, 0, "")
    return nodes


def category_by_full_name() -> dict[str, ProductCategory]:
    """ "办公设备/打印机" → category, for imports; plain names map too when unambiguous."""
    mapping: dict[str, ProductCategory] = {}
    names: dict[str, list[ProductCategory]] = {}
    for node in category_tree():
        mapping[node.full_name] = node.category
        names.setdefault(node.category.name, []).append(node.category)
    for name, found in names.items():
        if len(found) == 1:
            mapping.setdefault(name, found[0])
    return mapping


def category_subtree(category: ProductCategory) -> QuerySet[ProductCategory]:
    return ProductCategory.objects.filter(path__startswith=category.path)


def category_get_for(*, user, pk) -> ProductCategory:
    require_perm(user, "products.view")
    return get_object_or_404(ProductCategory.objects.select_related("parent"), pk=pk)


def product_list_for(*, user) -> QuerySet[Product]:
    require_perm(user, "products.view")
    return Product.objects.select_related("category", "unit")


def product_search(queryset: QuerySet[Product], query: str) -> QuerySet[Product]:
    """Code, name, barcode or pinyin initials ("dyj" finds 打印机)."""
    query = query.strip()
    if not query:
        return queryset
    return queryset.filter(
        Q(code__icontains=query)
        | Q(name__icontains=query)
        | Q(barcode=query)
        | Q(name_initials__contains=query.lower())
    )


def product_get_for(*, user, pk, include_deleted: bool = False) -> Product:
    """A product; deleted ones only when asked for and only for holders of products.delete
    (who may restore them)."""
    require_perm(user, "products.view")
    queryset = product_list_for(user=user)
    if include_deleted and has_perm(user, "products.delete"):
        queryset = Product.all_objects.select_related("category", "unit")
    return get_object_or_404(queryset, pk=pk)


def product_deleted_list_for(*, user) -> QuerySet[Product]:
    require_perm(user, "products.delete")
    return Product.all_objects.deleted().select_related("category", "unit", "deleted_by")


def product_low_stock_list(*, user) -> QuerySet[Product]:
    """Products at or below their threshold (a threshold of 0 means "no warning")."""
    return product_list_for(user=user).filter(LOW_STOCK_Q)


def product_stock_levels(product: Product) -> list[StockLevel]:
    return list(
        StockLevel.objects.filter(product=product)
        .select_related("warehouse")
        .order_by("-warehouse__is_default", "warehouse__code")
    )


def product_price_history(product: Product, *, limit: int = 20) -> list[ProductPriceChange]:
    return list(
        ProductPriceChange.objects.filter(product=product).select_related("changed_by")[:limit]
    )


def stock_movement_list_for(*, user) -> QuerySet[StockMovement]:
    require_perm(user, "products.view")
    return StockMovement.objects.select_related("product", "warehouse", "user")


def warehouse_list() -> QuerySet[Warehouse]:
    """Active warehouses, the default first: the choices of stock and transfer forms."""
    return Warehouse.objects.filter(is_active=True).order_by("-is_default", "code")


def warehouse_list_for(*, user) -> QuerySet[Warehouse]:
    """Every warehouse (inactive ones too) with ``product_count`` (products with stock there)
    and ``stock_value`` (quantity × cost price), computed in the same query.

    The value counts products priced in the company currency only: other currencies are not
    converted, and adding dollars to yuan would be a wrong number rather than a rough one.
    """
    require_perm(user, "products.view")
    levels = (
        StockLevel.objects.filter(warehouse=OuterRef("pk"))
        .exclude(quantity=0)
        .order_by()
        .values("warehouse")
    )
    currency = settings.KEHU.get("DEFAULT_CURRENCY", "CNY")
    value = DecimalField(max_digits=32, decimal_places=5)
    return Warehouse.objects.annotate(
        product_count=Coalesce(Subquery(levels.annotate(n=Count("id")).values("n")), 0),
        stock_value=Coalesce(
            Subquery(
                levels.filter(product__currency=currency)
                .annotate(v=Sum(F("quantity") * F("product__cost_price"), output_field=value))
                .values("v"),
                output_field=value,
            ),
            Value(Decimal("0")),
            output_field=value,
        ),
    ).order_by("-is_default", "-is_active", "code")


def warehouse_get_for(*, user, pk) -> Warehouse:
    require_perm(user, "products.view")
    return get_object_or_404(Warehouse, pk=pk)
