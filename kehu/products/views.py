"""Product, category and stock pages: thin views over kehu.products services and selectors."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views import View

from kehu.core.exceptions import ServiceError
from kehu.core.exports import ExportColumn
from kehu.core.filters import is_id
from kehu.core.permissions import has_perm
from kehu.core.views import Column, KehuFormView, KehuListView, ModulePermissionMixin
from kehu.products import selectors, services
from kehu.products.filters import ProductFilter, StockMovementFilter
from kehu.products.forms import (
    CategoryForm,
    ProductForm,
    StockMovementForm,
    StockTransferForm,
    WarehouseForm,
)
from kehu.products.models import ProductStatus


def import_url() -> str:
    """The import wizard's address once the core import mechanism provides it."""
    try:
        return reverse("imports:upload", args=["products"])
    except NoReverseMatch:
        return ""


def _yes_no(value: bool) -> str:
    return str(_("Yes") if value else _("No"))


PRODUCT_EXPORT_COLUMNS = [
    ExportColumn("code", _("Code")),
    ExportColumn("name", _("Name")),
    ExportColumn("specification", _("Specification")),
    ExportColumn("category", _("Category"), lambda p: str(p.category or "")),
    ExportColumn("unit", _("Unit"), lambda p: str(p.unit or "")),
    ExportColumn("list_price", _("List price")),
    ExportColumn("cost_price", _("Cost price")),
    ExportColumn("currency", _("Currency")),
    ExportColumn("tax_rate", _("Tax rate (%)")),
    ExportColumn("status", _("Status"), lambda p: str(p.get_status_display())),
    ExportColumn("barcode", _("Barcode")),
    ExportColumn("low_stock_threshold", _("Low-stock threshold")),
    ExportColumn("stock_quantity", _("Stock on hand")),
]


class ProductListView(KehuListView):
    module = "products"
    title = _("Products")
    template_name = "products/product_list.html"
    filterset_class = ProductFilter
    create_url_name = "products:product_create"
    default_sort = "code"
    columns = [
        Column("code", _("Code"), sort="code", link=True),
        Column("name", _("Name"), sort="name"),
        Column("specification", _("Specification")),
        Column("category", _("Category"), sort="category__path"),
        Column("unit", _("Unit")),
        Column("list_price", _("List price"), sort="list_price"),
        Column(
            "stock_quantity",
            _("Stock"),
            sort="stock_quantity",
            template="products/_stock_cell.html",
        ),
        Column("status", _("Status"), sort="status", template="products/_status_cell.html"),
    ]
    export_columns = PRODUCT_EXPORT_COLUMNS
    bulk_actions = [
        (ProductStatus.ON_SALE.value, _("Put on sale")),
        (ProductStatus.OFF_SALE.value, _("Take off sale")),
    ]

    def selector(self, user):
        return selectors.product_list_for(user=user)

    def perform_bulk_action(self, action: str, objects: list) -> int:
        count = 0
        for product in objects:
            services.product_status_set(actor=self.request.user, product=product, status=action)
            count += 1
        return count

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if not has_perm(self.request.user, "products.change"):
            context["bulk_actions"] = []
        context["import_url"] = import_url() if has_perm(self.request.user, "products.add") else ""
        context["can_post_stock"] = has_perm(self.request.user, "products.change")
        context["can_restore"] = has_perm(self.request.user, "products.delete")
        return context


class LowStockListView(KehuListView):
    module = "products"
    title = _("Low stock")
    template_name = "products/product_list.html"
    default_sort = "stock_quantity"
    columns = [
        Column("code", _("Code"), sort="code", link=True),
        Column("name", _("Name"), sort="name"),
        Column("specification", _("Specification")),
        Column("unit", _("Unit")),
        Column(
            "stock_quantity",
            _("Stock"),
            sort="stock_quantity",
            template="products/_stock_cell.html",
        ),
        Column(
            "low_stock_threshold",
            _("Low-stock threshold"),
            sort="low_stock_threshold",
            template="products/_quantity_cell.html",
        ),
        Column("id", _("Receive"), template="products/_receive_cell.html"),
    ]
    export_columns = PRODUCT_EXPORT_COLUMNS

    def selector(self, user):
        return selectors.product_low_stock_list(user=user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_post_stock"] = has_perm(self.request.user, "products.change")
        return context


class StockMovementListView(KehuListView):
    module = "products"
    title = _("Stock movements")
    template_name = "products/movement_list.html"
    filterset_class = StockMovementFilter
    default_sort = "-at"
    columns = [
        Column("at", _("Time"), sort="at", template="products/_time_cell.html"),
        Column("product", _("Product"), template="products/_movement_product_cell.html"),
        Column("warehouse", _("Warehouse")),
        Column("kind", _("Type"), sort="kind", template="products/_kind_cell.html"),
        Column(
            "quantity",
            pgettext_lazy("stock movement", "Change"),
            sort="quantity",
            template="products/_change_cell.html",
        ),
        Column("balance_after", _("Balance after"), template="products/_quantity_cell.html"),
        Column("reason", _("Reason")),
        Column("reference", _("Reference document")),
        Column("user", _("By")),
    ]
    export_columns = [
        ExportColumn("at", _("Time")),
        ExportColumn("product", _("Product code"), lambda m: m.product.code),
        ExportColumn("product_name", _("Product"), lambda m: m.product.name),
        ExportColumn("warehouse", _("Warehouse"), lambda m: str(m.warehouse)),
        ExportColumn("kind", _("Type"), lambda m: str(m.get_kind_display())),
        ExportColumn("quantity", pgettext_lazy("stock movement", "Change")),
        ExportColumn("balance_after", _("Balance after")),
        ExportColumn("reason", _("Reason")),
        ExportColumn("reference", _("Reference document")),
        ExportColumn("user", _("By"), lambda m: str(m.user or "")),
    ]

    def selector(self, user):
        return selectors.stock_movement_list_for(user=user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_post_stock"] = has_perm(self.request.user, "products.change")
        context["can_transfer"] = (
            context["can_post_stock"] and selectors.warehouse_list().count() > 1
        )
        return context


class DeletedProductListView(KehuListView):
    """Soft-deleted products, for those who may delete (and so restore) them."""

    module = "products"
    perm_action = "delete"
    title = _("Deleted products")
    default_sort = "-deleted_at"
    columns = [
        Column("code", _("Code"), sort="code", link=True),
        Column("name", _("Name"), sort="name"),
        Column("category", _("Category")),
        Column("deleted_at", _("Deleted at"), sort="deleted_at"),
        Column("deleted_by", _("Deleted by")),
    ]
    bulk_actions = [("restore", _("Restore"))]

    def selector(self, user):
        return selectors.product_deleted_list_for(user=user)

    def perform_bulk_action(self, action: str, objects: list) -> int:
        for product in objects:
            services.product_restore(actor=self.request.user, product=product)
        return len(objects)


class ProductDetailView(ModulePermissionMixin, View):
    module = "products"

    def get(self, request, pk):
        product = selectors.product_get_for(user=request.user, pk=pk, include_deleted=True)
        movements = list(
            selectors.stock_movement_list_for(user=request.user)
            .filter(product=product)
            .select_related(None)
            .select_related("warehouse", "user")
            .order_by("-at", "-id")[:20]
        )
        context = {
            "product": product,
            "title": str(product),
            "levels": selectors.product_stock_levels(product),
            "can_transfer": selectors.warehouse_list().count() > 1,
            "movements": movements,
            "price_history": selectors.product_price_history(product),
            "can_change": has_perm(request.user, "products.change"),
            "can_delete": has_perm(request.user, "products.delete"),
        }
        return render(request, "products/product_detail.html", context)


class ProductFormView(KehuFormView):
    module = "products"
    form_class = ProductForm
    template_name = "products/product_form.html"
    title = _("New product")

    def get_object(self):
        if self.creating:
            return None
        return selectors.product_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Edit %(product)s") % {"product": obj} if obj else self.title

    def save(self, form, obj):
        if obj is None:
            return services.product_create(actor=self.request.user, data=form.service_data())
        return services.product_update(
            actor=self.request.user,
            product=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
        )

    def get_success_url(self, obj) -> str:
        return obj.get_absolute_url()


class ProductDeleteView(ModulePermissionMixin, View):
    module = "products"
    perm_action = "delete"
    http_method_names = ["post"]

    def post(self, request, pk):
        product = selectors.product_get_for(user=request.user, pk=pk)
        services.product_delete(actor=request.user, product=product)
        messages.success(request, _("The product was deleted."))
        return HttpResponseRedirect(reverse("products:product_list"))


class ProductRestoreView(ModulePermissionMixin, View):
    module = "products"
    perm_action = "delete"
    http_method_names = ["post"]

    def post(self, request, pk):
        product = selectors.product_get_for(user=request.user, pk=pk, include_deleted=True)
        services.product_restore(actor=request.user, product=product)
        messages.success(request, _("The product was restored."))
        return HttpResponseRedirect(product.get_absolute_url())


class StockMovementFormView(KehuFormView):
    """Receive, issue or adjust stock: from a product's page or the stock pages."""

    module = "products"
    form_class: Any = StockMovementForm
    template_name = "products/movement_form.html"
    title = _("Post a stock movement")

    @property
    def creating(self) -> bool:
        return False  # posting stock needs products.change, not products.add

    def product(self):
        if not hasattr(self, "_product"):
            pk = self.request.GET.get("product", "")
            self._product = (
                selectors.product_get_for(user=self.request.user, pk=pk) if is_id(pk) else None
            )
        return self._product

    def get_form_kwargs(self, obj) -> dict:
        return {"product": self.product()}

    def get(self, request, *args, **kwargs):
        form = self.form_class(**self.get_form_kwargs(None))
        kind = request.GET.get("kind", "")
        if kind in dict(form.fields["kind"].choices):
            form.fields["kind"].initial = kind
        return self.render_form(form, None)

    def extra_context(self, obj) -> dict:
        product = self.product()
        # Stock per warehouse beside the form: which warehouse to issue from or transfer out of.
        levels = selectors.product_stock_levels(product) if product is not None else []
        return {"product": product, "levels": levels if len(levels) > 1 else []}

    def save(self, form, obj):
        data = form.cleaned_data
        return services.stock_movement_post(
            actor=self.request.user,
            product=data["product"],
            warehouse=data["warehouse"],
            kind=data["kind"],
            quantity=data["quantity"],
            reason=data["reason"],
            reference=data["reference"],
        )

    def get_success_url(self, obj) -> str:
        return obj.product.get_absolute_url()


class StockTransferFormView(StockMovementFormView):
    """Move stock of one product from one warehouse to another."""

    form_class = StockTransferForm
    template_name = "products/movement_form.html"
    title = _("Transfer stock")

    def get(self, request, *args, **kwargs):
        return self.render_form(self.form_class(**self.get_form_kwargs(None)), None)

    def save(self, form, obj):
        data = form.cleaned_data
        out, _into = services.stock_transfer(
            actor=self.request.user,
            product=data["product"],
            from_warehouse=data["from_warehouse"],
            to_warehouse=data["to_warehouse"],
            quantity=data["quantity"],
            reason=data["reason"],
            reference=data["reference"],
        )
        return out


# --- warehouses -------------------------------------------------------------------------


class WarehouseListView(KehuListView):
    module = "products"
    title = _("Warehouses")
    template_name = "products/warehouse_list.html"
    default_sort = "-is_default"
    paginate_by = 100  # a handful per company; no paging needed
    columns = [
        Column("code", _("Code"), sort="code"),
        Column("name", _("Name"), sort="name", template="products/_warehouse_name_cell.html"),
        Column(
            "product_count",
            _("Products in stock"),
            sort="product_count",
            template="products/_quantity_cell.html",
        ),
        Column(
            "stock_value",
            _("Stock value (at cost)"),
            sort="stock_value",
            template="products/_money_cell.html",
        ),
        Column("id", "", template="products/_warehouse_actions_cell.html"),
    ]

    def selector(self, user):
        return selectors.warehouse_list_for(user=user)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.GET.get("sort", "").lstrip("-") not in self.sort_options():
            queryset = queryset.order_by("-is_default", "-is_active", "code")
        return queryset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["can_change"] = has_perm(user, "products.change")
        context["can_delete"] = has_perm(user, "products.delete")
        context["can_transfer"] = context["can_change"] and (
            sum(1 for row in context["rows"] if row["object"].is_active) > 1
        )
        return context


class WarehouseFormView(KehuFormView):
    module = "products"
    form_class = WarehouseForm
    template_name = "core/form.html"
    success_url_name = "products:warehouse_list"
    title = _("New warehouse")

    @property
    def creating(self) -> bool:
        return False  # warehouses are stock set-up: products.change, also to create one

    def get_object(self):
        if "pk" not in self.kwargs:
            return None
        return selectors.warehouse_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Warehouse %(name)s") % {"name": obj.name} if obj else self.title

    def save(self, form, obj):
        if obj is None:
            return services.warehouse_create(actor=self.request.user, data=form.service_data())
        return services.warehouse_update(
            actor=self.request.user,
            warehouse=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
        )


class WarehouseActionView(ModulePermissionMixin, View):
    """The buttons of the warehouses page: make default, deactivate, reactivate, delete."""

    module = "products"
    perm_action = "change"
    http_method_names = ["post"]
    actions = {
        "set_default": (services.warehouse_set_default, _("%(name)s is now the default.")),
        "deactivate": (services.warehouse_deactivate, _("%(name)s was deactivated.")),
        "activate": (services.warehouse_activate, _("%(name)s is in use again.")),
        "delete": (services.warehouse_delete, _("%(name)s was deleted.")),
    }

    def post(self, request, pk, action):
        warehouse = selectors.warehouse_get_for(user=request.user, pk=pk)
        if action not in self.actions:
            messages.error(request, _("Choose an action."))
        else:
            service, done = self.actions[action]
            try:
                service(actor=request.user, warehouse=warehouse)
            except ServiceError as exc:
                messages.error(request, str(exc.message))
            else:
                messages.success(request, done % {"name": warehouse.name})
        return HttpResponseRedirect(reverse("products:warehouse_list"))


# --- categories -------------------------------------------------------------------------


class CategoryListView(ModulePermissionMixin, View):
    module = "products"

    def get(self, request):
        return render(
            request,
            "products/category_list.html",
            {
                "title": _("Product categories"),
                "nodes": selectors.category_tree(),
                "can_add": has_perm(request.user, "products.add"),
                "can_change": has_perm(request.user, "products.change"),
            },
        )


class CategoryMoveView(ModulePermissionMixin, View):
    module = "products"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        category = selectors.category_get_for(user=request.user, pk=pk)
        try:
            services.category_move(
                actor=request.user, category=category, direction=request.POST.get("direction", "")
            )
        except ServiceError as exc:
            messages.error(request, str(exc.message))
        return HttpResponseRedirect(reverse("products:category_list") + f"#category-{pk}")


class CategoryFormView(KehuFormView):
    module = "products"
    form_class = CategoryForm
    template_name = "products/category_form.html"
    success_url_name = "products:category_list"
    title = _("New category")

    def get_object(self):
        if self.creating:
            return None
        return selectors.category_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Category %(name)s") % {"name": obj.name} if obj else self.title

    def extra_context(self, obj) -> dict:
        return {"can_delete": obj is not None and has_perm(self.request.user, "products.delete")}

    def save(self, form, obj):
        if obj is None:
            return services.category_create(actor=self.request.user, data=form.service_data())
        return services.category_update(
            actor=self.request.user,
            category=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
        )


class CategoryDeleteView(ModulePermissionMixin, View):
    module = "products"
    perm_action = "delete"
    http_method_names = ["post"]

    def post(self, request, pk):
        category = selectors.category_get_for(user=request.user, pk=pk)
        try:
            services.category_delete(actor=request.user, category=category)
        except ServiceError as exc:
            messages.error(request, str(exc.message))
            return HttpResponseRedirect(reverse("products:category_edit", args=[pk]))
        messages.success(request, _("The category was deleted."))
        return HttpResponseRedirect(reverse("products:category_list"))
