from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from kehu.core.forms import KehuForm
from kehu.products.models import (
    MovementKind,
    Product,
    ProductCategory,
    ProductStatus,
    StockMovement,
    Warehouse,
)
from kehu.products.selectors import LOW_STOCK_Q, category_subtree, category_tree, product_search


def _category_choices():
    return [(n.category.pk, f"{'— ' * n.depth}{n.category.name}") for n in category_tree()]


class ProductFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_q",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Code, name, barcode or pinyin initials")}
        ),
    )
    category = django_filters.ChoiceFilter(
        label=_("Category"), method="filter_category", empty_label=_("All")
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=ProductStatus.choices, empty_label=_("All")
    )
    low_stock = django_filters.BooleanFilter(
        label=_("Low stock only"), method="filter_low_stock", widget=forms.CheckboxInput
    )

    class Meta:
        model = Product
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["category"].extra["choices"] = _category_choices()

    def filter_q(self, queryset, name, value):
        return product_search(queryset, value)

    def filter_category(self, queryset, name, value):
        category = ProductCategory.objects.filter(pk=value).first()
        if category is None:
            return queryset.none()
        # The category and every sub-category: one prefix query on the path.
        return queryset.filter(category__in=category_subtree(category))

    def filter_low_stock(self, queryset, name, value):
        return queryset.filter(LOW_STOCK_Q) if value else queryset


class StockMovementFilter(django_filters.FilterSet):
    product = django_filters.CharFilter(
        label=_("Product"),
        method="filter_product",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Code or name")}),
    )
    kind = django_filters.ChoiceFilter(
        label=_("Type"), choices=MovementKind.choices, empty_label=_("All")
    )
    # Inactive warehouses stay in the filter: their history is still looked up.
    warehouse = django_filters.ModelChoiceFilter(
        label=_("Warehouse"),
        queryset=Warehouse.objects.order_by("-is_default", "-is_active", "code"),
        empty_label=_("All"),
    )
    date_from = django_filters.DateFilter(
        label=_("From"),
        field_name="at",
        lookup_expr="date__gte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = django_filters.DateFilter(
        label=_("To"),
        field_name="at",
        lookup_expr="date__lte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = StockMovement
        fields: list[str] = []
        form = KehuForm

    def filter_product(self, queryset, name, value):
        value = value.strip()
        exact = Product.all_objects.filter(code=value).values_list("id", flat=True).first()
        if exact is not None:  # the product page links here with its code
            return queryset.filter(product_id=exact)
        ids = product_search(Product.all_objects.all(), value).values("id")
        return queryset.filter(product_id__in=ids)
