"""Sales forms: the document headers, the line-item editor and the action forms.

Shape only. Totals, statuses, owners and every business rule are the services' (the line
editor's preview asks ``kehu.sales.totals`` on the server; the services recompute on save).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django import forms
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kehu.core.filters import is_id
from kehu.core.forms import KehuForm, KehuModelForm
from kehu.core.permissions import has_perm
from kehu.core.scope import visible_to
from kehu.customers.forms import assignable_users
from kehu.customers.models import Contact, Customer, Opportunity
from kehu.products.models import Product, ProductStatus
from kehu.products.selectors import warehouse_list
from kehu.sales.models import Contract, Order, Quote
from kehu.sales.totals import LineAmounts, document_amounts, line_amounts

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
LINE_KEY = re.compile(r"^line-(\d{1,6})-")
MAX_LINES = 200
HUNDRED = Decimal("100")


def plain(value: Decimal) -> Decimal:
    """A quantity or rate as people write it: 10.000 → 10, 2.500 → 2.5 (never 1E+1)."""
    value = value.normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


class PickerWidget(forms.Widget):
    """A search box that looks records up as you type (htmx) and keeps the chosen id in a
    hidden input: for customers and products, of which there may be thousands."""

    template_name = "sales/widgets/picker.html"

    def __init__(self, *, url_name: str, kind: str, placeholder="", attrs=None):
        super().__init__(attrs)
        self.url_name = url_name
        self.kind = kind
        self.placeholder = placeholder
        self.label = ""  # the chosen record's name, shown in the search box
        self.dependent_url = ""  # refreshed when the choice changes (contact, opportunity)
        self.aria_label: Any = ""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"].update(
            {
                "url": reverse(self.url_name),
                "kind": self.kind,
                "label": self.label,
                "placeholder": self.placeholder,
                "dependent_url": self.dependent_url,
                "aria_label": self.aria_label,
            }
        )
        return context


def _customer_picker() -> PickerWidget:
    return PickerWidget(
        url_name="sales:customer_options",
        kind="customer",
        placeholder=_("Type a name, code or pinyin initials"),
    )


# --- document headers -----------------------------------------------------------------------


class DocumentForm(KehuModelForm):
    """The header of a quote, contract or order. The customer is looked up among the
    actor's own (not the pool); contact and opportunity follow the chosen customer."""

    dependent_kind = ""  # the kind CustomerFieldsView renders contact / opportunity for

    def __init__(self, *args, actor, customer: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.fixed_customer = customer
        if "customer" in self.fields:
            field = self.fields["customer"]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = visible_to(Customer.objects.filter(in_pool=False), actor).only(
                "id", "name", "code"
            )
            field.widget = _customer_picker()
            if self.dependent_kind:
                field.widget.dependent_url = (  # type: ignore[attr-defined]
                    reverse("sales:customer_fields") + f"?kind={self.dependent_kind}"
                )
        chosen = self.chosen_customer()
        if "customer" in self.fields and chosen is not None:
            self.fields["customer"].widget.label = chosen.name  # type: ignore[attr-defined]
        if "contact" in self.fields:
            contact = self.fields["contact"]
            assert isinstance(contact, forms.ModelChoiceField)
            if chosen is None:
                contact.empty_label = str(_("Choose the customer first"))
            contact.queryset = (
                Contact.objects.filter(customer=chosen).order_by("-is_primary", "id")
                if chosen
                else Contact.objects.none()
            )
        if "opportunity" in self.fields:
            opportunity = self.fields["opportunity"]
            assert isinstance(opportunity, forms.ModelChoiceField)
            if chosen is None:
                opportunity.empty_label = str(_("Choose the customer first"))
            opportunity.queryset = (
                visible_to(Opportunity.objects.filter(customer=chosen), actor).only("id", "title")
                if chosen
                else Opportunity.objects.none()
            )
        if "owner" in self.fields:
            owner = self.fields["owner"]
            assert isinstance(owner, forms.ModelChoiceField)
            if has_perm(actor, "sales.assign"):
                owner.queryset = assignable_users(actor)
                if not self.instance.pk:
                    owner.required = False
                    owner.empty_label = str(_("Me"))
            else:
                del self.fields["owner"]
        for name, field in self.fields.items():
            if isinstance(field, forms.DateField):
                field.widget = forms.DateInput(
                    attrs={"type": "date", "class": "form-control"}, format="%Y-%m-%d"
                )
            if name in ("notes", "terms", "payment_terms"):
                field.widget = forms.Textarea(attrs={"rows": 2, "class": "form-control"})

    def chosen_customer(self) -> Customer | None:
        """The customer the form is about: fixed, posted, initial or the instance's."""
        if self.fixed_customer is not None:
            return self.fixed_customer
        if not hasattr(self, "_chosen"):
            if "customer" not in self.fields:
                self._chosen = getattr(self.instance, "customer", None)
                return self._chosen
            raw: Any = None
            if self.is_bound:
                raw = self.data.get(self.add_prefix("customer"))
            else:
                raw = self.initial.get("customer")
                if raw is None and self.instance.pk:
                    raw = self.instance.customer_id
            if isinstance(raw, Customer):
                self._chosen = raw
            else:
                field = self.fields["customer"]
                assert isinstance(field, forms.ModelChoiceField)
                assert field.queryset is not None
                self._chosen = field.queryset.filter(pk=raw).first() if is_id(raw) else None
        return self._chosen


class QuoteForm(DocumentForm):
    dependent_kind = "quote"

    class Meta:
        model = Quote
        fields = [
            "customer",
            "contact",
            "opportunity",
            "title",
            "quote_date",
            "valid_until",
            "currency",
            "owner",
            "terms",
            "notes",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.fields["quote_date"].initial = timezone.localdate()
            self.fields["valid_until"].required = False
            self.fields["valid_until"].help_text = _("Leave empty for the usual validity.")

    def clean(self):
        data = super().clean()
        start, end = data.get("quote_date"), data.get("valid_until")
        if start and end and end < start:
            self.add_error("valid_until", _("The quote cannot expire before its date."))
        return data


class ContractForm(DocumentForm):
    dependent_kind = "contract"

    class Meta:
        model = Contract
        fields = [
            "customer",
            "contact",
            "opportunity",
            "title",
            "signed_on",
            "start_date",
            "end_date",
            "currency",
            "owner",
            "payment_terms",
            "notes",
        ]

    def clean(self):
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The end date is before the start date."))
        return data


class OrderForm(DocumentForm):
    class Meta:
        model = Order
        fields = [
            "customer",
            "title",
            "order_date",
            "ship_by",
            "warehouse",
            "currency",
            "owner",
            "receiver_name",
            "receiver_phone",
            "shipping_address",
            "notes",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.contract_id:
            # An order of a contract keeps the contract's customer and currency.
            for name in ("customer", "currency"):
                self.fields.pop(name, None)
        if not self.instance.pk:
            self.fields["order_date"].initial = timezone.localdate()
        warehouse = self.fields["warehouse"]
        assert isinstance(warehouse, forms.ModelChoiceField)
        warehouse.queryset = warehouse_list()
        warehouse.required = False
        warehouse.empty_label = str(_("Default warehouse"))


class OrderFromContractForm(DocumentForm):
    """The header of an order placed against a contract (customer and prices are its)."""

    class Meta:
        model = Order
        fields = [
            "title",
            "order_date",
            "ship_by",
            "warehouse",
            "receiver_name",
            "receiver_phone",
            "shipping_address",
            "notes",
        ]

    def __init__(self, *args, contract: Contract, **kwargs):
        super().__init__(*args, customer=contract.customer, **kwargs)
        self.fields["title"].initial = contract.title
        self.fields["order_date"].initial = timezone.localdate()
        warehouse = self.fields["warehouse"]
        assert isinstance(warehouse, forms.ModelChoiceField)
        warehouse.queryset = warehouse_list()
        warehouse.required = False
        warehouse.empty_label = str(_("Default warehouse"))


class AmendmentForm(DocumentForm):
    """What an amendment may change on an active contract, and why."""

    reason = forms.CharField(
        label=_("Reason for the amendment"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    class Meta:
        model = Contract
        fields = [
            "title",
            "contact",
            "signed_on",
            "start_date",
            "end_date",
            "payment_terms",
            "notes",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].widget.attrs["class"] = "form-control"
        self.order_fields(["reason"])

    def clean(self):
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The end date is before the start date."))
        return data

    def service_data(self) -> dict:
        data = super().service_data()
        data.pop("reason", None)
        return data


# --- line items -----------------------------------------------------------------------------


def _decimal_field(label, *, max_digits: int, places: int, **kwargs) -> forms.DecimalField:
    step = "any" if places == 3 else "0.01"
    return forms.DecimalField(
        label=label,
        max_digits=max_digits,
        decimal_places=places,
        required=False,
        widget=forms.NumberInput(attrs={"step": step, "inputmode": "decimal"}),
        **kwargs,
    )


class LineForm(KehuForm):
    """One row of the line editor. An empty row (no product, no quantity) is skipped."""

    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    description = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)
    product = forms.IntegerField(label=_("Product"), required=False)
    quantity = _decimal_field(_("Quantity"), max_digits=14, places=3, min_value=Decimal("0.001"))
    unit_price = _decimal_field(_("Unit price"), max_digits=18, places=2, min_value=Decimal("0"))
    discount_rate = _decimal_field(
        _("Discount (%)"), max_digits=5, places=2, min_value=Decimal("0"), max_value=HUNDRED
    )
    tax_rate = _decimal_field(
        _("Tax rate (%)"), max_digits=5, places=2, min_value=Decimal("0"), max_value=HUNDRED
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        picker = PickerWidget(
            url_name="sales:product_options",
            kind="product",
            placeholder=_("Code, name or pinyin initials"),
        )
        picker.aria_label = _("Product")
        self.fields["product"].widget = picker
        for name in ("quantity", "unit_price", "discount_rate", "tax_rate"):
            attrs = self.fields[name].widget.attrs
            attrs["class"] = "form-control text-end kehu-line-number"
            attrs["min"] = "0"
            attrs["aria-label"] = self.fields[name].label
        for name in ("discount_rate", "tax_rate"):
            self.fields[name].widget.attrs["max"] = "100"
        self.product_obj: Product | None = None
        self.amounts: LineAmounts | None = None

    def raw(self, name: str) -> str:
        return str(self.data.get(self.add_prefix(name), "") or "").strip() if self.is_bound else ""

    @property
    def is_blank(self) -> bool:
        return self.is_bound and not self.raw("product") and not self.raw("quantity")

    @property
    def index(self) -> str:
        return (self.prefix or "").removeprefix("line-")

    def clean(self):
        data = super().clean()
        if self.is_blank:
            return data
        if not data.get("product") and "product" not in self.errors:
            self.add_error("product", _("Choose a product."))
        if data.get("quantity") is None and "quantity" not in self.errors:
            self.add_error("quantity", _("Enter the quantity."))
        return data

    def compute(self) -> LineAmounts | None:
        """The line's amounts as the services will store them (defaults from the product)."""
        product = self.product_obj
        if product is None:
            return None
        data: Mapping[str, Any]
        if self.is_bound:
            if not self.is_valid() or self.is_blank:
                return None
            data = self.cleaned_data
        else:
            data = self.initial  # a stored line, shown before anything is changed
        if data.get("quantity") is None:
            return None
        unit_price = (
            data["unit_price"] if data.get("unit_price") is not None else product.list_price
        )
        tax_rate = data["tax_rate"] if data.get("tax_rate") is not None else product.tax_rate
        self.amounts = line_amounts(
            quantity=data["quantity"],
            unit_price=unit_price,
            discount_rate=data.get("discount_rate") or Decimal("0"),
            tax_rate=tax_rate,
        )
        return self.amounts


class LineEditor:
    """The rows of a document's line editor, read from ``line-<n>-<field>`` keys.

    Row numbers are whatever the page gave them (rows are added and removed in the
    browser); their order is kept. Products are read in one query for all rows.
    """

    def __init__(self, data=None, *, initial: list[dict] | None = None, allow_ids: bool = False):
        self.data = data
        self.allow_ids = allow_ids
        self.error = ""
        if data is not None:
            indices = sorted({int(m.group(1)) for key in data for m in [LINE_KEY.match(key)] if m})
            self.forms = [LineForm(data, prefix=f"line-{i}") for i in indices[:MAX_LINES]]
            if len(indices) > MAX_LINES:
                self.error = str(_("At most %(n)d lines.") % {"n": MAX_LINES})
        else:
            rows = initial or [{}]
            self.forms = [
                LineForm(prefix=f"line-{i}", initial=row) for i, row in enumerate(rows, start=1)
            ]
            products = Product.all_objects.in_bulk(
                [row["product"] for row in rows if row.get("product")]
            )
            for form, row in zip(self.forms, rows, strict=True):
                form.product_obj = products.get(row.get("product"))
                self._label(form)
        self.empty_form = LineForm(prefix="line-__prefix__")
        self._validated = False

    @staticmethod
    def _label(form: LineForm) -> None:
        product = form.product_obj
        if product is not None:
            form.fields["product"].widget.label = f"{product.code} {product.name}"  # type: ignore[attr-defined]

    def _resolve_products(self) -> None:
        ids = {form.raw("product") for form in self.forms if is_id(form.raw("product"))}
        products = Product.objects.in_bulk([int(i) for i in ids]) if ids else {}
        for form in self.forms:
            raw = form.raw("product")
            form.product_obj = products.get(int(raw)) if is_id(raw) else None
            self._label(form)

    def is_valid(self) -> bool:
        if self.data is None:
            return False
        if self._validated:
            return not self.error and all(f.is_valid() for f in self.forms)
        self._validated = True
        self._resolve_products()
        for form in self.forms:
            if not form.is_valid() or form.is_blank:
                continue
            if form.product_obj is None:
                form.add_error("product", _("Choose a product from the list."))
        if not self.error and not self.filled:
            self.error = str(_("Add at least one line."))
        return not self.error and all(f.is_valid() for f in self.forms)

    @property
    def filled(self) -> list[LineForm]:
        return [form for form in self.forms if not form.is_blank]

    def rows_for_display(self) -> list[LineForm]:
        """After a failed post: the filled rows (blank ones dropped), at least one row."""
        if self.data is None:
            return self.forms
        return self.filled or self.forms[:1] or [LineForm(prefix="line-1")]

    @property
    def next_index(self) -> int:
        indices = [int(f.index) for f in self.forms if f.index.isdigit()]
        return max(indices, default=0) + 1

    def service_lines(self) -> list[dict[str, Any]]:
        lines = []
        for form in self.filled:
            data = form.cleaned_data
            line: dict[str, Any] = {
                "product": form.product_obj,
                "quantity": data["quantity"],
                "unit_price": data.get("unit_price"),
                "discount_rate": data.get("discount_rate") or Decimal("0"),
                "tax_rate": data.get("tax_rate"),
            }
            if data.get("description"):
                line["description"] = data["description"]
            if self.allow_ids and data.get("id"):
                line["id"] = data["id"]
            lines.append(line)
        return lines

    def preview(self):
        """Every row's amounts and the document's, computed on the server."""
        if self.data is not None:
            self.is_valid()
        computed = [form.compute() for form in self.forms]
        totals = document_amounts([amounts for amounts in computed if amounts is not None])
        return totals


def line_initial(line) -> dict[str, Any]:
    """A stored line as the editor's initial row."""
    return {
        "id": line.pk,
        "product": line.product_id,
        "description": line.description,
        "quantity": plain(line.quantity),
        "unit_price": line.unit_price,
        "discount_rate": plain(line.discount_rate),
        "tax_rate": plain(line.tax_rate),
    }


# --- actions --------------------------------------------------------------------------------


class ReasonForm(KehuForm):
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )


class QuantitiesMixin:
    """Per-line quantity inputs named ``qty-<line id>``; read back as {line id: Decimal}."""

    def quantity_fields(self, lines, *, limit, initial) -> None:
        self.lines = []  # type: ignore[misc]
        for line in lines:
            name = f"qty-{line.pk}"
            maximum = limit(line)
            field = forms.DecimalField(
                label=line.description,
                max_digits=14,
                decimal_places=3,
                min_value=Decimal("0"),
                max_value=maximum,
                required=False,
                initial=plain(initial(line)),
                widget=forms.NumberInput(
                    attrs={"step": "any", "class": "form-control text-end", "inputmode": "decimal"}
                ),
            )
            field.widget.attrs.update(min="0", max=str(plain(maximum)))
            self.fields[name] = field  # type: ignore[attr-defined]
            self.lines.append((line, name, maximum))  # type: ignore[attr-defined]

    def quantities(self) -> dict[int, Decimal]:
        return {
            line.pk: self.cleaned_data[name]  # type: ignore[attr-defined]
            for line, name, _maximum in self.lines  # type: ignore[attr-defined]
            if self.cleaned_data.get(name)  # type: ignore[attr-defined]
        }

    def bound_lines(self):
        return [
            (line, self[name], maximum)  # type: ignore[index]
            for line, name, maximum in self.lines  # type: ignore[attr-defined]
        ]


class ShipForm(QuantitiesMixin, KehuForm):
    warehouse = forms.ModelChoiceField(label=_("Ship from"), queryset=warehouse_list())
    shipped_on = forms.DateField(label=_("Date shipped"), widget=DATE)
    carrier = forms.CharField(label=_("Carrier"), max_length=100, required=False)
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=100, required=False)
    note = forms.CharField(label=_("Note"), max_length=500, required=False)

    def __init__(self, *args, order: Order, lines, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["warehouse"].queryset = warehouse_list()  # type: ignore[attr-defined]
        default = order.warehouse or next((w for w in warehouse_list() if w.is_default), None)
        if default is not None:
            self.fields["warehouse"].initial = default.pk
        self.fields["shipped_on"].initial = timezone.localdate()
        self.quantity_fields(
            [line for line in lines if line.outstanding_quantity > 0],
            limit=lambda line: line.outstanding_quantity,
            initial=lambda line: line.outstanding_quantity,
        )


class ReturnForm(QuantitiesMixin, KehuForm):
    reason = forms.CharField(
        label=_("Why are the goods coming back?"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    warehouse = forms.ModelChoiceField(label=_("Into warehouse"), queryset=warehouse_list())
    returned_on = forms.DateField(label=_("Date received"), widget=DATE)

    def __init__(self, *args, order: Order, lines, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["warehouse"].queryset = warehouse_list()  # type: ignore[attr-defined]
        default = order.warehouse or next((w for w in warehouse_list() if w.is_default), None)
        if default is not None:
            self.fields["warehouse"].initial = default.pk
        self.fields["returned_on"].initial = timezone.localdate()
        self.quantity_fields(
            [line for line in lines if line.shipped_quantity - line.returned_quantity > 0],
            limit=lambda line: line.shipped_quantity - line.returned_quantity,
            initial=lambda line: Decimal("0"),
        )


class ContractQuantitiesForm(QuantitiesMixin, KehuForm):
    """How much of each contract line an order takes (defaults: what is left)."""

    def __init__(self, *args, remaining, current: dict[int, Decimal] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.remaining = remaining
        # ``remaining`` leaves out the order being edited: what it holds is available again.
        current = current or {}
        available = {line.pk: left for line, _o, left in remaining}
        self.quantity_fields(
            [line for line, _o, _left in remaining if available[line.pk] > 0],
            limit=lambda line: available[line.pk],
            initial=lambda line: (
                current.get(line.pk, Decimal("0")) if current else available[line.pk]
            ),
        )

    def service_lines(self) -> list[dict[str, Any]]:
        return [
            {"contract_line": line_id, "quantity": quantity}
            for line_id, quantity in self.quantities().items()
        ]


class AttachmentForm(KehuForm):
    file = forms.FileField(
        label=_("File"),
        help_text=_("A scan of the signed contract: image, PDF or Office document, up to 10 MB."),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".pdf,.png,.jpg,.jpeg,.gif,.webp,.bmp,.doc,.docx,.xls,.xlsx"}
        ),
    )


def product_is_offered(product: Product) -> bool:
    return product.status == ProductStatus.ON_SALE and product.deleted_at is None
