"""Product, category and stock forms: shape only; the rules live in kehu.products.services."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from kehu.core.forms import KehuForm, KehuModelForm
from kehu.products.models import MANUAL_KINDS, MovementKind, Product, ProductCategory, Warehouse
from kehu.products.selectors import category_tree, warehouse_list
from kehu.system.selectors import dictionary_items


class CategoryChoiceField(forms.ModelChoiceField):
    """Categories in tree order, indented by depth."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("queryset", ProductCategory.objects.all())
        super().__init__(*args, **kwargs)

    def refresh(self, exclude_path: str | None = None) -> None:
        nodes = [
            n
            for n in category_tree()
            if not (exclude_path and n.category.path.startswith(exclude_path))
        ]
        self.choices = [("", self.empty_label or "---------")] + [
            (n.category.pk, f"{'— ' * n.depth}{n.category.name}") for n in nodes
        ]


class CategoryForm(KehuModelForm):
    parent = CategoryChoiceField(
        label=_("Parent category"), required=False, empty_label=_("(top level)")
    )

    class Meta:
        model = ProductCategory
        fields = ["name", "parent"]  # order: the up / down buttons of the tree page

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A category's own subtree is no place to move it (the service refuses too).
        exclude = self.instance.path if self.instance.pk else None
        self.fields["parent"].refresh(exclude_path=exclude)  # type: ignore[attr-defined]


class ProductForm(KehuModelForm):
    category = CategoryChoiceField(label=_("Category"), required=False)
    image = forms.ImageField(
        label=_("Image"),
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}
        ),
        help_text=_("JPEG, PNG, GIF or WebP, at most 5 MB."),
    )

    class Meta:
        model = Product
        fields = [
            "code",
            "name",
            "specification",
            "category",
            "unit",
            "status",
            "list_price",
            "cost_price",
            "currency",
            "tax_rate",
            "barcode",
            "low_stock_threshold",
            "image",
            "description",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].refresh()  # type: ignore[attr-defined]
        self.fields["unit"].queryset = dictionary_items("product_unit")  # type: ignore[attr-defined]
        for name in ("list_price", "cost_price"):
            self.fields[name].min_value = Decimal("0")
            self.fields[name].widget.attrs.update({"min": "0", "step": "0.01"})
        self.fields["tax_rate"].widget.attrs.update({"min": "0", "max": "100", "step": "0.01"})
        threshold = self.fields["low_stock_threshold"]
        threshold.required = False
        threshold.widget.attrs.update({"min": "0", "step": "any"})
        if self.instance.pk:
            # 5, not 5.000: the three places are for kilograms, not for counting boxes.
            self.initial["low_stock_threshold"] = self.instance.low_stock_threshold.normalize()

    def clean_low_stock_threshold(self):
        value = self.cleaned_data.get("low_stock_threshold")
        return Decimal("0") if value is None else value

    def clean_image(self):
        # The form's check is a first pass; the service re-checks the content and size.
        image = self.cleaned_data.get("image")
        if image and hasattr(image, "size") and image.size > 5 * 1024 * 1024:
            raise forms.ValidationError(_("The image is larger than 5 MB."))
        return image

    def service_data(self) -> dict:
        data = super().service_data()
        image = self.cleaned_data.get("image")
        if image is None or (image and not hasattr(image, "content_type")):
            data.pop("image", None)  # unchanged: the stored file came back
        return data


class StockMovementForm(KehuForm):
    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.none())
    warehouse = forms.ModelChoiceField(label=_("Warehouse"), queryset=warehouse_list())
    kind = forms.ChoiceField(
        label=_("Type"),
        choices=[(k.value, k.label) for k in MANUAL_KINDS],
        widget=forms.RadioSelect,
    )
    quantity = forms.DecimalField(
        label=_("Quantity"),
        max_digits=14,
        decimal_places=3,
        help_text=_("Receipts and issues: how many. Adjustments: + or − the difference found."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)
    reference = forms.CharField(label=_("Reference document"), max_length=100, required=False)

    def __init__(self, *args, product: Product | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        warehouses = warehouse_list()
        self.fields["warehouse"].queryset = warehouses  # type: ignore[attr-defined]
        default = next((w for w in warehouses if w.is_default), None)
        if default is not None:
            self.fields["warehouse"].initial = default.pk
        if len(warehouses) <= 1:
            self.fields["warehouse"].widget = forms.HiddenInput()
        self.fields["kind"].initial = MovementKind.IN
        field = self.fields["product"]
        field.queryset = Product.objects.order_by("code")  # type: ignore[attr-defined]
        if product is not None:
            field.initial = product.pk
            field.widget = forms.HiddenInput()


class WarehouseForm(KehuModelForm):
    class Meta:
        model = Warehouse
        fields = ["name", "code"]
        help_texts = {"code": _("Letters, digits, - and _; used in exports and the API.")}

    def validate_unique(self):
        pass  # the service checks name and code, ignoring case


class StockTransferForm(KehuForm):
    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.none())
    from_warehouse = forms.ModelChoiceField(label=_("From warehouse"), queryset=warehouse_list())
    to_warehouse = forms.ModelChoiceField(label=_("To warehouse"), queryset=warehouse_list())
    quantity = forms.DecimalField(
        label=_("Quantity"), max_digits=14, decimal_places=3, min_value=Decimal("0.001")
    )
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)
    reference = forms.CharField(
        label=_("Reference document"),
        max_length=100,
        required=False,
        help_text=_("Leave empty to number the transfer automatically."),
    )

    def __init__(self, *args, product: Product | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        warehouses = list(warehouse_list())
        for name in ("from_warehouse", "to_warehouse"):
            self.fields[name].queryset = warehouse_list()  # type: ignore[attr-defined]
        # Preselect the usual direction: out of the default into the next one.
        if warehouses:
            self.fields["from_warehouse"].initial = warehouses[0].pk
        if len(warehouses) > 1:
            self.fields["to_warehouse"].initial = warehouses[1].pk
        field = self.fields["product"]
        field.queryset = Product.objects.order_by("code")  # type: ignore[attr-defined]
        if product is not None:
            field.initial = product.pk
            field.widget = forms.HiddenInput()
