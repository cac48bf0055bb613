"""Product import through the core import mechanism (/imports/products/).

The columns match the product list's export, so an exported file can be edited and
imported again. Duplicates are matched by code; the "update" policy changes them through
``product_update`` (price history included). A blank cell leaves the stored value as it is.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kehu.core.imports import ColumnType, ImportColumn, Importer, RowError, register_importer
from kehu.core.money import Currency
from kehu.products.models import Product, ProductCategory, ProductStatus
from kehu.products.selectors import category_by_full_name
from kehu.products.services import product_create, product_update


@register_importer
class ProductImporter(Importer):
    name = "products"
    model = Product
    module = "products"
    list_url_name = "products:product_list"
    with_custom_fields = False
    ignored_headers = [gettext_lazy("Stock on hand")]  # the export's read-only column
    columns = [
        ImportColumn(
            "code", gettext_lazy("Code"), required=True, max_length=50, example="HP-M1136"
        ),
        ImportColumn(
            "name", gettext_lazy("Name"), required=True, max_length=200, example="惠普激光打印机"
        ),
        ImportColumn(
            "specification", gettext_lazy("Specification"), max_length=200, example="A4 黑白"
        ),
        ImportColumn(
            "category", gettext_lazy("Category"), max_length=500, example="办公设备/打印机"
        ),
        ImportColumn("unit", gettext_lazy("Unit"), dictionary="product_unit", example="个"),
        ImportColumn(
            "list_price", gettext_lazy("List price"), type=ColumnType.DECIMAL, example="1999.00"
        ),
        ImportColumn(
            "cost_price", gettext_lazy("Cost price"), type=ColumnType.DECIMAL, example="1500.00"
        ),
        ImportColumn(
            "currency",
            gettext_lazy("Currency"),
            type=ColumnType.CHOICE,
            choices=Currency.choices,
            example="CNY",
        ),
        ImportColumn(
            "tax_rate", gettext_lazy("Tax rate (%)"), type=ColumnType.DECIMAL, example="13"
        ),
        ImportColumn(
            "status",
            gettext_lazy("Status"),
            type=ColumnType.CHOICE,
            choices=ProductStatus.choices,
            example="on_sale",
        ),
        ImportColumn("barcode", gettext_lazy("Barcode"), max_length=64),
        ImportColumn(
            "low_stock_threshold",
            gettext_lazy("Low-stock threshold"),
            type=ColumnType.DECIMAL,
            example="5",
        ),
    ]

    _categories: dict[str, ProductCategory] | None = None

    def clean_row(self, row: dict[str, Any]) -> None:
        path = (row.get("category") or "").strip().strip("/")
        if not path:
            row["category"] = None
            return
        if self._categories is None:
            self._categories = category_by_full_name()  # one read per import run
        # "电子/配件", with any of the usual separators.
        key = "/".join(p.strip() for p in path.replace("／", "/").replace(">", "/").split("/"))
        category = self._categories.get(key)
        if category is None:
            raise RowError(
                _("No category “%(name)s”; create it first or give its full path (A/B).")
                % {"name": path[:100]},
                column="category",
            )
        row["category"] = category

    def find_duplicate(self, row: dict[str, Any]):
        product = Product.all_objects.filter(code=row["code"]).first()
        if product is not None and product.is_deleted:
            raise RowError(
                _("A deleted product uses this code; restore it or choose another code."),
                column="code",
            )
        return product

    @staticmethod
    def _data(row: dict[str, Any]) -> dict[str, Any]:
        # Blank cells are left out: defaults on create, unchanged on update.
        return {
            key: value
            for key, value in row.items()
            if key != "custom_fields" and value is not None and value != ""
        }

    def create(self, row: dict[str, Any], *, actor):
        return product_create(actor=actor, data=self._data(row))

    def update(self, obj, row: dict[str, Any], *, actor):
        return product_update(
            actor=actor, product=obj, expected_version=obj.version, data=self._data(row)
        )
