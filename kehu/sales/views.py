"""Sales pages: quotes, contracts (with amendments and attachments), orders and shipments.

Thin: parse, call a service or a selector, render. Scope comes from the selectors (404 for
anything outside it); rules, statuses, totals and permissions of actions from the services
(a refused permission is the ordinary 403 page). The line editor's totals are computed by
the server (``kehu.sales.totals``), never by the browser.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.formats import localize
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views import View

from kehu.core.attachments import attachment_add, attachments_for
from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.core.exports import ExportColumn, export_record_logged
from kehu.core.filters import is_id
from kehu.core.money import Currency
from kehu.core.permissions import has_perm
from kehu.core.templatetags.kehu import cell as cell_display
from kehu.core.views import (
    ROW_URL_ATTR,
    Column,
    KehuFormView,
    KehuListView,
    ModulePermissionMixin,
    choice_labels,
    is_htmx,
    register_cell_renderer,
)
from kehu.customers.models import Contact
from kehu.products.models import Product, ProductStatus
from kehu.products.selectors import product_search
from kehu.sales import selectors, services
from kehu.sales.filters import ContractFilter, OrderFilter, QuoteFilter, ShipmentFilter
from kehu.sales.forms import (
    AmendmentForm,
    AttachmentForm,
    ContractForm,
    ContractQuantitiesForm,
    LineEditor,
    OrderForm,
    OrderFromContractForm,
    QuoteForm,
    ReasonForm,
    ReturnForm,
    ShipForm,
    line_initial,
)
from kehu.sales.models import (
    AmendmentStatus,
    Contract,
    ContractAmendment,
    ContractStatus,
    Order,
    OrderStatus,
    Quote,
    QuoteStatus,
    ShipmentLine,
)
from kehu.sales.templatetags.sales import BADGES, money

LOOKUP_LIMIT = 20
NUMBER = pgettext_lazy("document", "Number")  # 编号, not 数字


def _version(request) -> int | None:
    raw = request.POST.get("version", "")
    return int(raw) if is_id(raw) else None


def _redirect(request, url: str) -> HttpResponse:
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def approval_panel_available() -> bool:
    """The approvals app's ``{% approval_panel %}`` tag, once it is installed."""
    try:
        return importlib.util.find_spec("kehu.approvals.templatetags.approvals") is not None
    except ModuleNotFoundError:
        return False


def _url_or_empty(name: str, *args) -> str:
    from django.urls import NoReverseMatch

    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


# --- lists ----------------------------------------------------------------------------------


def _display(attribute: str):
    return lambda obj: str(getattr(obj, f"get_{attribute}_display")())


def _str(attribute: str):
    return lambda obj: str(getattr(obj, attribute) or "")


COMMON_EXPORT_HEAD = [
    ExportColumn("number", NUMBER),
    ExportColumn("title", _("Title")),
    ExportColumn("customer", _("Customer"), _str("customer")),
    ExportColumn("status", _("Status"), _display("status")),
]
COMMON_EXPORT_TAIL = [
    ExportColumn("currency", _("Currency")),
    ExportColumn("subtotal_amount", _("Amount before tax")),
    ExportColumn("tax_amount", _("Tax")),
    ExportColumn("total_amount", _("Total")),
    ExportColumn("owner", _("Owner"), _str("owner")),
    ExportColumn("department", _("Department"), _str("department")),
    ExportColumn("created_at", _("Created at")),
]

NUMBER_CELL = "sales/_cell_number.html"
STATUS_CELL = "sales/_cell_status.html"
MONEY_CELL = "sales/_cell_money.html"
DATE_CELL = "sales/_cell_date.html"
NOWRAP_CELL = "sales/_cell_nowrap.html"


# The list cells above written in Python (the templates stay the reference; same markup).
def _number_cell(obj, value) -> str:
    # build_rows leaves the row's URL on the object when the view reverses it once a page.
    url = getattr(obj, ROW_URL_ATTR, None) or obj.get_absolute_url()
    return format_html('<a href="{}" class="text-nowrap fw-semibold">{}</a>', url, value)


def _money_cell(obj, value) -> str:
    return format_html('<span class="text-nowrap kehu-num">{}</span>', money(value, obj.currency))


def _nowrap_cell(obj, value) -> str:
    return format_html('<span class="text-nowrap">{}</span>', localize(cell_display(value)))


def _status_cell(obj, value) -> str:
    # status_badge with the label from a cached table (get_status_display is ~150 µs a row).
    label = choice_labels(type(obj), "status").get(obj.status, obj.status)
    return format_html(
        '<span class="badge {} kehu-status" data-status="{}">{}</span>',
        BADGES.get(obj.status, "text-bg-light border"),
        obj.status,
        label,
    )


register_cell_renderer(NUMBER_CELL, _number_cell)
register_cell_renderer(STATUS_CELL, _status_cell)
register_cell_renderer(MONEY_CELL, _money_cell)
register_cell_renderer(DATE_CELL, _nowrap_cell)
register_cell_renderer(NOWRAP_CELL, _nowrap_cell)


class _SalesListView(KehuListView):
    module = "sales"
    default_sort = "-id"
    search_placeholder = _("Number, title or customer")


class QuoteListView(_SalesListView):
    title = _("Quotes")
    filterset_class = QuoteFilter
    create_url_name = "sales:quote_create"
    columns = [
        Column("number", NUMBER, sort="number", template=NUMBER_CELL),
        Column("title", _("Title")),
        Column("customer", _("Customer"), sort="customer__name"),
        Column("status", _("Status"), sort="status", template=STATUS_CELL),
        Column("total_amount", _("Total"), sort="total_amount", template=MONEY_CELL),
        Column("quote_date", _("Quote date"), sort="quote_date", template=DATE_CELL),
        Column("valid_until", _("Valid until"), sort="valid_until", template=DATE_CELL),
        Column("owner", _("Owner"), sort="owner__username"),
    ]
    export_columns = [
        *COMMON_EXPORT_HEAD,
        ExportColumn("quote_date", _("Quote date")),
        ExportColumn("valid_until", _("Valid until")),
        ExportColumn("contact", _("Contact"), _str("contact")),
        *COMMON_EXPORT_TAIL,
    ]

    def selector(self, user):
        return selectors.quote_list_visible_to(user=user)


class ContractListView(_SalesListView):
    title = _("Contracts")
    filterset_class = ContractFilter
    create_url_name = "sales:contract_create"
    columns = [
        Column("number", NUMBER, sort="number", template=NUMBER_CELL),
        Column("title", _("Title")),
        Column("customer", _("Customer"), sort="customer__name"),
        Column("status", _("Status"), sort="status", template=STATUS_CELL),
        Column("total_amount", _("Total"), sort="total_amount", template=MONEY_CELL),
        Column("signed_on", _("Signed on"), sort="signed_on", template=DATE_CELL),
        Column("end_date", _("End date"), sort="end_date", template=DATE_CELL),
        Column("owner", _("Owner"), sort="owner_id"),  # by owner id, as the customer list
    ]
    export_columns = [
        *COMMON_EXPORT_HEAD,
        ExportColumn("signed_on", _("Signing date")),
        ExportColumn("start_date", _("Start date")),
        ExportColumn("end_date", _("End date")),
        ExportColumn("quote", _("Quote"), lambda c: c.quote.number if c.quote_id else ""),
        ExportColumn("payment_terms", _("Payment terms")),
        *COMMON_EXPORT_TAIL,
    ]

    row_url_name = "sales:contract_detail"

    def selector(self, user):
        return selectors.contract_list_visible_to(user=user)

    def rows_queryset(self, queryset):
        return selectors.contract_list_page_rows(queryset)


class OrderListView(_SalesListView):
    title = _("Orders")
    filterset_class = OrderFilter
    create_url_name = "sales:order_create"
    columns = [
        Column("number", NUMBER, sort="number", template=NUMBER_CELL),
        Column("title", _("Title")),
        Column("customer", _("Customer"), sort="customer__name"),
        Column("contract", _("Contract"), template="sales/_cell_contract.html"),
        Column("status", _("Status"), sort="status", template=STATUS_CELL),
        Column("total_amount", _("Total"), sort="total_amount", template=MONEY_CELL),
        Column("order_date", _("Order date"), sort="order_date", template=DATE_CELL),
        Column("ship_by", _("Ship by"), sort="ship_by", template="sales/_cell_ship_by.html"),
        Column("owner", _("Owner"), sort="owner__username"),
    ]
    export_columns = [
        *COMMON_EXPORT_HEAD,
        ExportColumn("contract", _("Contract"), lambda o: o.contract.number if o.contract else ""),
        ExportColumn("order_date", _("Order date")),
        ExportColumn("ship_by", _("Ship by")),
        ExportColumn("warehouse", _("Ship from"), _str("warehouse")),
        ExportColumn("receiver_name", _("Receiver")),
        ExportColumn("shipping_address", _("Shipping address")),
        *COMMON_EXPORT_TAIL,
    ]

    def selector(self, user):
        return selectors.order_list_visible_to(user=user)


class ShipmentListView(KehuListView):
    module = "sales"
    title = _("Shipments")
    filterset_class = ShipmentFilter
    default_sort = "-shipped_on"
    columns = [
        Column("number", NUMBER, sort="number", template=NUMBER_CELL),
        Column("kind", _("Type"), sort="kind", template="sales/_cell_kind.html"),
        Column(
            "order",
            pgettext_lazy("sales order", "Order"),
            sort="order__number",
            template="sales/_cell_order.html",
        ),
        Column("shipped_on", _("Date"), sort="shipped_on", template=DATE_CELL),
        Column("warehouse", _("Warehouse"), template=NOWRAP_CELL),
        Column("carrier", _("Carrier"), template=NOWRAP_CELL),
        Column("tracking_number", _("Tracking number"), template=NOWRAP_CELL),
        Column("created_by", _("By")),
    ]
    export_columns = [
        ExportColumn("number", NUMBER),
        ExportColumn("kind", _("Type"), _display("kind")),
        ExportColumn("order", pgettext_lazy("sales order", "Order"), lambda s: s.order.number),
        ExportColumn("customer", _("Customer"), lambda s: str(s.order.customer)),
        ExportColumn("shipped_on", _("Date")),
        ExportColumn("warehouse", _("Warehouse"), _str("warehouse")),
        ExportColumn("carrier", _("Carrier")),
        ExportColumn("tracking_number", _("Tracking number")),
        ExportColumn("note", _("Note")),
        ExportColumn("created_by", _("By"), _str("created_by")),
    ]

    def selector(self, user):
        return selectors.shipment_list_visible_to(user=user)

    def get_queryset(self):
        queryset = super().get_queryset()
        # The default sort is one column: a day's shipments tie, so the id breaks the tie as
        # for the sortable columns (pages neither repeat nor skip one; the date index's order).
        if queryset.query.order_by == (self.default_sort,):
            queryset = queryset.order_by(self.default_sort, "-pk")
        return queryset


# --- look-ups for the forms (htmx) ----------------------------------------------------------


class _EditorMixin(ModulePermissionMixin):
    """Look-ups serve people writing sales documents: sales.add or sales.change."""

    module = "sales"

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and not (
            has_perm(user, "sales.add") or has_perm(user, "sales.change")
        ):
            raise PermissionRefused()
        return super().dispatch(request, *args, **kwargs)


class CustomerOptionsView(_EditorMixin, View):
    """The user's own customers (not the pool) matching what was typed."""

    def get(self, request):
        from kehu.customers.selectors import customer_list_visible_to, customer_search

        query = request.GET.get("q", "").strip()[:100]
        customers = (
            customer_search(user=request.user, query=query)
            if query
            else customer_list_visible_to(user=request.user).order_by("-id")
        )
        rows = list(
            customers.select_related(None)
            .prefetch_related(None)
            .only("id", "name", "code")[:LOOKUP_LIMIT]
        )
        return render(request, "sales/_customer_options.html", {"customers": rows, "query": query})


class ProductOptionsView(_EditorMixin, View):
    """Products on sale matching what was typed, with their list price and tax rate."""

    def get(self, request):
        query = request.GET.get("q", "").strip()[:100]
        products = product_search(
            Product.objects.filter(status=ProductStatus.ON_SALE).select_related("unit"), query
        ).order_by("code")[:LOOKUP_LIMIT]
        return render(
            request, "sales/_product_options.html", {"products": list(products), "query": query}
        )


DEPENDENT_FORMS: dict[str, Any] = {"quote": QuoteForm, "contract": ContractForm}


class CustomerFieldsView(_EditorMixin, View):
    """Contact and opportunity choices for the customer just picked."""

    def get(self, request):
        form_class = DEPENDENT_FORMS.get(request.GET.get("kind", ""))
        if form_class is None:
            raise Http404
        raw = request.GET.get("customer", "")
        form = form_class(actor=request.user, initial={"customer": raw} if is_id(raw) else {})
        return render(request, "sales/_customer_dependent.html", {"form": form})


def _currency(value: str) -> str:
    return value if value in Currency.values else Currency.CNY


class LinesPreviewView(_EditorMixin, View):
    """The line editor's amounts, computed on the server from what is in the form."""

    http_method_names = ["post"]

    def post(self, request):
        editor = LineEditor(request.POST)
        totals = editor.preview()
        return render(
            request,
            "sales/_line_totals.html",
            {
                "editor": editor,
                "totals": totals,
                "currency": _currency(request.POST.get("currency", "")),
                "oob": True,
            },
        )


# --- create and edit ------------------------------------------------------------------------


class _DocumentFormView(KehuFormView):
    """A document header plus its line editor, saved by one service call."""

    module = "sales"
    template_name = "sales/document_form.html"
    kind = ""
    allow_line_ids = False

    def get_form_kwargs(self, obj) -> dict:
        kwargs = super().get_form_kwargs(obj)
        kwargs["actor"] = self.request.user
        if obj is None:
            kwargs["initial"] = self.initial_from_query()
        return kwargs

    def initial_from_query(self) -> dict:
        """``?customer=`` (360° page) or ``?opportunity=`` (opportunity page)."""
        initial: dict[str, Any] = {}
        user = self.request.user
        raw = self.request.GET.get("opportunity", "")
        if is_id(raw) and "opportunity" in self.form_class.base_fields:
            from kehu.customers.selectors_opportunities import opportunity_list_visible_to

            opportunity = opportunity_list_visible_to(user=user).filter(pk=raw).first()
            if opportunity is not None:
                initial.update(
                    customer=opportunity.customer_id,
                    opportunity=opportunity.pk,
                    title=opportunity.title,
                )
        raw = self.request.GET.get("customer", "")
        if is_id(raw) and "customer" not in initial:
            initial["customer"] = int(raw)
        return initial

    def initial_lines(self, obj) -> list[dict]:
        if obj is None:
            return []
        return [line_initial(line) for line in obj.lines.all()]

    def get_object(self):
        return None

    def not_editable(self, obj) -> HttpResponse | None:
        if obj is not None and not obj.is_editable():
            messages.error(
                self.request,
                _("A %(document)s that is “%(status)s” cannot be changed.")
                % {"document": obj._meta.verbose_name, "status": obj.get_status_display()},
            )
            return HttpResponseRedirect(obj.get_absolute_url())
        return None

    def make_editor(self, obj, data=None) -> LineEditor:
        if data is not None:
            return LineEditor(data, allow_ids=self.allow_line_ids)
        return LineEditor(initial=self.initial_lines(obj), allow_ids=self.allow_line_ids)

    def render_editor(self, form, editor, obj, status=200):
        totals = editor.preview()
        context = {
            "form": form,
            "editor": editor,
            "totals": totals,
            "object": obj,
            "title": self.get_title(obj),
            "view": self,
            "kind": self.kind,
            "currency": getattr(obj, "currency", "CNY"),
            "cancel_url": obj.get_absolute_url() if obj else reverse(f"sales:{self.kind}_list"),
        }
        context.update(self.extra_context(obj))
        return render(self.request, self.template_name, context, status=status)

    def get(self, request, *args, **kwargs):
        obj = self.get_object()
        refused = self.not_editable(obj)
        if refused:
            return refused
        form = self.form_class(**self.get_form_kwargs(obj))
        return self.render_editor(form, self.make_editor(obj), obj)

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        refused = self.not_editable(obj)
        if refused:
            return refused
        form = self.form_class(request.POST, **self.get_form_kwargs(obj))
        editor = self.make_editor(obj, request.POST)
        form_ok = form.is_valid()
        lines_ok = editor.is_valid()
        if form_ok and lines_ok:
            try:
                saved = self.save(form, editor, obj)
            except PermissionRefused:
                raise
            except ServiceError as exc:
                _form_error(form, editor, exc)
            except ValidationError as exc:
                _validation_error(form, exc)
            else:
                messages.success(request, self.saved_message(saved, obj))
                return _redirect(request, saved.get_absolute_url())
        return self.render_editor(form, editor, obj, status=400)

    def saved_message(self, saved, obj) -> str:
        return str(
            _("%(document)s %(number)s saved.")
            % {"document": capfirst(saved._meta.verbose_name), "number": saved.number}
        )

    def save(self, form, editor, obj):  # type: ignore[override]
        raise NotImplementedError


def _form_error(form, editor, exc: ServiceError) -> None:
    if isinstance(exc, ConflictError):
        form.add_error(None, str(exc.message))
    elif exc.field == "lines":
        editor.error = str(exc.message)
    elif exc.field in form.fields:
        form.add_error(exc.field, str(exc.message))
    else:
        form.add_error(None, str(exc.message))


def _validation_error(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class QuoteFormView(_DocumentFormView):
    form_class = QuoteForm
    kind = "quote"
    title = _("New quote")

    def get_object(self):
        if self.creating:
            return None
        return selectors.quote_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Edit quote %(number)s") % {"number": obj.number} if obj else self.title

    def save(self, form, editor, obj):
        if obj is None:
            return services.quote_create(
                actor=self.request.user, data=form.service_data(), lines=editor.service_lines()
            )
        return services.quote_update(
            actor=self.request.user,
            quote=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
            lines=editor.service_lines(),
        )


class ContractFormView(_DocumentFormView):
    form_class = ContractForm
    kind = "contract"
    title = _("New contract")

    def get_object(self):
        if self.creating:
            return None
        return selectors.contract_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Edit contract %(number)s") % {"number": obj.number} if obj else self.title

    def save(self, form, editor, obj):
        if obj is None:
            return services.contract_create(
                actor=self.request.user, data=form.service_data(), lines=editor.service_lines()
            )
        return services.contract_update(
            actor=self.request.user,
            contract=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
            lines=editor.service_lines(),
        )


class OrderFormView(_DocumentFormView):
    """Standalone orders with the line editor; an order of a contract edits its header and
    how much of each contract line it takes."""

    form_class = OrderForm
    kind = "order"
    title = _("New order")

    def get_object(self):
        if self.creating:
            return None
        return selectors.order_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Edit order %(number)s") % {"number": obj.number} if obj else self.title

    def quantities_form(self, obj, data=None):
        if obj is None or not obj.contract_id:
            return None
        remaining = selectors.contract_lines_ordered(obj.contract, exclude_order=obj)
        current = {
            line.contract_line_id: line.quantity
            for line in obj.lines.all()
            if line.contract_line_id
        }
        return ContractQuantitiesForm(data, remaining=remaining, current=current)

    def extra_context(self, obj) -> dict:
        return {"quantities_form": getattr(self, "_quantities_form", None)}

    def get(self, request, *args, **kwargs):
        obj = self.get_object()
        if obj is not None and obj.contract_id:
            refused = self.not_editable(obj)
            if refused:
                return refused
            self._quantities_form = self.quantities_form(obj)
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        if obj is None or not obj.contract_id:
            return super().post(request, *args, **kwargs)
        refused = self.not_editable(obj)
        if refused:
            return refused
        form = self.form_class(request.POST, **self.get_form_kwargs(obj))
        quantities = self._quantities_form = self.quantities_form(obj, request.POST)
        assert quantities is not None
        editor = LineEditor(initial=self.initial_lines(obj))
        if form.is_valid() & quantities.is_valid():
            try:
                saved = services.order_update(
                    actor=request.user,
                    order=obj,
                    expected_version=form.cleaned_data["version"],
                    data=form.service_data(),
                    lines=quantities.service_lines(),
                )
            except PermissionRefused:
                raise
            except ServiceError as exc:
                _form_error(form, editor, exc)
                if editor.error:
                    quantities.add_error(None, editor.error)
            else:
                messages.success(request, self.saved_message(saved, obj))
                return _redirect(request, saved.get_absolute_url())
        return self.render_editor(form, editor, obj, status=400)

    def save(self, form, editor, obj):
        if obj is None:
            return services.order_create(
                actor=self.request.user, data=form.service_data(), lines=editor.service_lines()
            )
        return services.order_update(
            actor=self.request.user,
            order=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
            lines=editor.service_lines(),
        )


class ContractAmendView(_DocumentFormView):
    """Propose a change to an active contract: reason, header fields and lines."""

    form_class = AmendmentForm
    kind = "amendment"
    allow_line_ids = True

    @property
    def creating(self) -> bool:
        return False  # amending needs sales.change

    def get_object(self):
        return selectors.contract_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Amend contract %(number)s") % {"number": obj.number}

    def not_editable(self, obj) -> HttpResponse | None:
        if not obj.can_amend():
            messages.error(
                self.request,
                _("Only an active contract is amended; this one is “%(status)s”.")
                % {"status": obj.get_status_display()},
            )
            return HttpResponseRedirect(obj.get_absolute_url())
        return None

    def save(self, form, editor, obj):
        lines = editor.service_lines()
        if _same_lines(lines, list(obj.lines.all())):
            lines = None  # header only: the lines stay as they are
        return services.contract_amend(
            actor=self.request.user,
            contract=obj,
            expected_version=form.cleaned_data["version"],
            reason=form.cleaned_data["reason"],
            data=form.service_data(),
            lines=lines,
        )

    def saved_message(self, saved, obj) -> str:
        if saved.status == AmendmentStatus.APPLIED:
            return str(_("Amendment %(number)s applied.") % {"number": saved})
        return str(_("Amendment %(number)s submitted for approval.") % {"number": saved})


def _same_lines(lines: list[dict], existing: list) -> bool:
    if len(lines) != len(existing):
        return False
    for new, old in zip(lines, existing, strict=True):
        if new.get("id") != old.pk or new["product"].pk != old.product_id:
            return False
        price = new.get("unit_price")
        tax = new.get("tax_rate")
        if (
            new["quantity"] != old.quantity
            or (price is not None and price != old.unit_price)
            or (new.get("discount_rate") or Decimal("0")) != old.discount_rate
            or (tax is not None and tax != old.tax_rate)
        ):
            return False
    return True


class ContractOrderCreateView(ModulePermissionMixin, View):
    """An order against an active contract: how much of each remaining line, and when."""

    module = "sales"
    perm_action = "add"
    template_name = "sales/contract_order_form.html"

    def _render(self, request, contract, form, quantities, status=200):
        context = {
            "title": _("New order from %(number)s") % {"number": contract.number},
            "contract": contract,
            "currency": contract.currency,
            "form": form,
            "quantities_form": quantities,
        }
        return render(request, self.template_name, context, status=status)

    def _contract(self, request, pk):
        contract = selectors.contract_get_for(user=request.user, pk=pk)
        if contract.status != ContractStatus.ACTIVE:
            messages.error(
                request,
                _("Orders are placed against an active contract; this one is “%(status)s”.")
                % {"status": contract.get_status_display()},
            )
            return contract, HttpResponseRedirect(contract.get_absolute_url())
        return contract, None

    def get(self, request, pk):
        contract, refused = self._contract(request, pk)
        if refused:
            return refused
        remaining = selectors.contract_lines_ordered(contract)
        return self._render(
            request,
            contract,
            OrderFromContractForm(actor=request.user, contract=contract),
            ContractQuantitiesForm(remaining=remaining),
        )

    def post(self, request, pk):
        contract, refused = self._contract(request, pk)
        if refused:
            return refused
        remaining = selectors.contract_lines_ordered(contract)
        form = OrderFromContractForm(request.POST, actor=request.user, contract=contract)
        quantities = ContractQuantitiesForm(request.POST, remaining=remaining)
        if form.is_valid() & quantities.is_valid():
            try:
                order = services.order_create_from_contract(
                    actor=request.user,
                    contract=contract,
                    data=form.service_data(),
                    lines=quantities.service_lines(),
                )
            except PermissionRefused:
                raise
            except ServiceError as exc:
                if exc.field in form.fields:
                    form.add_error(exc.field, str(exc.message))
                else:
                    quantities.add_error(None, str(exc.message))
            else:
                messages.success(request, _("Order %(number)s created.") % {"number": order.number})
                return HttpResponseRedirect(order.get_absolute_url())
        return self._render(request, contract, form, quantities, status=400)


class _GoodsView(ModulePermissionMixin, View):
    """Ship or take back goods of an order: the warehouse's work (products.change)."""

    module = "products"
    perm_action = "change"
    form_class: Any = ShipForm
    template_name = "sales/order_goods_form.html"
    title: Any = ""

    def get_order(self, request, pk):
        return selectors.order_get_for(user=request.user, pk=pk)

    def _render(self, request, order, form, status=200):
        context = {"title": self.title, "order": order, "form": form, "view": self}
        return render(request, self.template_name, context, status=status)

    def lines(self, order):
        return list(order.lines.select_related("product"))

    def get(self, request, pk):
        order = self.get_order(request, pk)
        refused = self.refuse(request, order)
        if refused:
            return refused
        return self._render(request, order, self.form_class(order=order, lines=self.lines(order)))

    def post(self, request, pk):
        order = self.get_order(request, pk)
        form = self.form_class(request.POST, order=order, lines=self.lines(order))
        if form.is_valid():
            try:
                shipment = self.perform(request, order, form)
            except PermissionRefused:
                raise
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            else:
                messages.success(request, self.done_message(shipment))
                return HttpResponseRedirect(order.get_absolute_url())
        return self._render(request, order, form, status=400)

    def refuse(self, request, order) -> HttpResponse | None:
        return None


class OrderShipView(_GoodsView):
    form_class = ShipForm
    title = _("Ship goods")

    def refuse(self, request, order):
        if not order.can_ship():
            messages.error(
                request,
                _("Only a confirmed order is shipped; this one is “%(status)s”.")
                % {"status": order.get_status_display()},
            )
            return HttpResponseRedirect(order.get_absolute_url())
        return None

    def perform(self, request, order, form):
        data = form.cleaned_data
        return services.order_ship(
            actor=request.user,
            order=order,
            quantities=form.quantities(),
            warehouse=data["warehouse"],
            shipped_on=data["shipped_on"],
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
            note=data["note"],
        )

    def done_message(self, shipment) -> str:
        return str(_("Shipment %(number)s recorded.") % {"number": shipment.number})


class OrderReturnView(_GoodsView):
    form_class = ReturnForm
    title = _("Take goods back")

    def refuse(self, request, order):
        if order.status not in (
            OrderStatus.PARTIALLY_SHIPPED,
            OrderStatus.SHIPPED,
            OrderStatus.COMPLETED,
        ):
            messages.error(request, _("Nothing has been shipped on this order."))
            return HttpResponseRedirect(order.get_absolute_url())
        return None

    def perform(self, request, order, form):
        data = form.cleaned_data
        return services.order_return(
            actor=request.user,
            order=order,
            quantities=form.quantities(),
            reason=data["reason"],
            warehouse=data["warehouse"],
            returned_on=data["returned_on"],
        )

    def done_message(self, shipment) -> str:
        return str(_("Return %(number)s recorded.") % {"number": shipment.number})


# --- detail pages ---------------------------------------------------------------------------


def _status_labels(model) -> dict[str, str]:
    return {value: str(label) for value, label in model._meta.get_field("status").choices}


def _timeline(document) -> list:
    labels = _status_labels(type(document))
    events = list(selectors.document_events_for(document))
    for event in events:
        event.from_label = labels.get(event.from_status, event.from_status)  # type: ignore[attr-defined]
        event.to_label = labels.get(event.to_status, event.to_status)  # type: ignore[attr-defined]
    return events


def _approvals(document) -> dict[str, Any]:
    """The approval panel tag when the approvals app provides it; otherwise the requests."""
    if approval_panel_available():
        return {"approval_panel": True}
    from django.contrib.contenttypes.models import ContentType

    from kehu.approvals.models import ApprovalRequest

    requests = list(
        ApprovalRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(type(document)),
            object_id=document.pk,
        )
        .select_related("submitter")
        .prefetch_related("steps__decided_by")
        .order_by("-submitted_at", "-id")[:10]
    )
    return {"approval_panel": False, "approval_requests": requests}


def _common(request, document) -> dict[str, Any]:
    user = request.user
    return {
        "title": str(document),
        "document": document,
        "timeline": _timeline(document),
        "can_change": has_perm(user, "sales.change"),
        "can_add": has_perm(user, "sales.add"),
        "can_delete": has_perm(user, "sales.delete") and document.is_editable(),
        "can_see_customer": has_perm(user, "customers.view"),
        "reason_form": ReasonForm(),
    }


def quote_context(request, quote: Quote, **extra) -> dict[str, Any]:
    user = request.user
    context = _common(request, quote)
    can_change = context["can_change"]
    contract = Contract.objects.filter(quote=quote).first() if quote.status == "converted" else None
    context.update(
        {
            "lines": list(quote.lines.all()),
            "contract": contract,
            "can_edit": can_change and quote.is_editable(),
            "can_send": can_change and quote.status == QuoteStatus.DRAFT,
            "can_decide": can_change and quote.status == QuoteStatus.SENT,
            "can_convert": has_perm(user, "sales.add")
            and quote.status in (QuoteStatus.SENT, QuoteStatus.ACCEPTED),
            "pdf_url": reverse("sales:quote_pdf", args=[quote.pk]),
            "modal_actions": ("reject",),
            **extra,
        }
    )
    return context


def contract_context(request, contract: Contract, **extra) -> dict[str, Any]:
    user = request.user
    context = _common(request, contract)
    can_change = context["can_change"]
    lines = list(contract.lines.all())
    remaining = []
    if contract.status in (ContractStatus.ACTIVE, ContractStatus.COMPLETED):
        remaining = selectors.contract_lines_ordered(contract)
        lines = [line for line, _o, _r in remaining]
        for line, ordered, left in remaining:
            line.ordered = ordered  # type: ignore[attr-defined]
            line.remaining = left  # type: ignore[attr-defined]
    orders = list(
        selectors.order_list_visible_to(user=user)
        .filter(contract=contract)
        .select_related(None)
        .order_by("-id")
    )
    amendments = list(contract.amendments.select_related("created_by").order_by("-sequence"))
    pending_amendment = any(a.status == AmendmentStatus.PENDING for a in amendments)
    context.update(
        {
            "lines": lines,
            "show_ordered": bool(remaining),
            "orders": orders,
            "amendments": amendments,
            "attachments": attachments_for([contract]).get(str(contract.pk), []),
            "attachment_form": extra.pop("attachment_form", None) or AttachmentForm(),
            "can_edit": can_change and contract.is_editable(),
            "can_submit": can_change and contract.can_submit(),
            "can_complete": can_change and contract.can_complete(),
            "can_terminate": can_change and contract.can_terminate(),
            "can_amend": can_change and contract.can_amend() and not pending_amendment,
            "pending_amendment": pending_amendment,
            "can_order": has_perm(user, "sales.add")
            and contract.status == ContractStatus.ACTIVE
            and any(left > 0 for _l, _o, left in remaining),
            "can_attach": can_change and contract.status not in (ContractStatus.TERMINATED,),
            "pdf_url": reverse("sales:contract_pdf", args=[contract.pk]),
            "modal_actions": ("submit", "terminate"),
            **_approvals(contract),
            **extra,
        }
    )
    return context


def order_context(request, order: Order, **extra) -> dict[str, Any]:
    user = request.user
    context = _common(request, order)
    can_change = context["can_change"]
    lines = list(order.lines.all())
    shipments = list(
        order.shipments.select_related("warehouse", "created_by").prefetch_related(
            Prefetch("lines", queryset=ShipmentLine.objects.select_related("order_line"))
        )
    )
    goods_out = any(line.shipped_quantity - line.returned_quantity > 0 for line in lines)
    can_move = has_perm(user, "products.change")
    open_statuses = (
        OrderStatus.PENDING,
        OrderStatus.CONFIRMED,
        OrderStatus.PARTIALLY_SHIPPED,
        OrderStatus.SHIPPED,
    )
    context.update(
        {
            "lines": lines,
            "shipments": shipments,
            "can_edit": can_change and order.is_editable(),
            "can_confirm": can_change and order.status == OrderStatus.PENDING,
            "can_ship": can_move and order.can_ship(),
            "can_return": can_move
            and goods_out
            and order.status
            in (OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.COMPLETED),
            "can_complete": can_change and order.status == OrderStatus.SHIPPED,
            "can_cancel": order.status in open_statuses and (can_move if goods_out else can_change),
            "goods_out": goods_out,
            "modal_actions": ("cancel",),
            **extra,
        }
    )
    return context


class _DetailView(ModulePermissionMixin, View):
    module = "sales"
    template_name = ""

    def get_document(self, request, pk):
        raise NotImplementedError

    def context(self, request, document, **extra) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, request, pk):
        document = self.get_document(request, pk)
        return render(request, self.template_name, self.context(request, document))


class QuoteDetailView(_DetailView):
    template_name = "sales/quote_detail.html"

    def get_document(self, request, pk):
        return selectors.quote_get_for(user=request.user, pk=pk)

    def context(self, request, document, **extra):
        return quote_context(request, document, **extra)


class ContractDetailView(_DetailView):
    template_name = "sales/contract_detail.html"

    def get_document(self, request, pk):
        return selectors.contract_get_for(user=request.user, pk=pk)

    def context(self, request, document, **extra):
        return contract_context(request, document, **extra)


class OrderDetailView(_DetailView):
    template_name = "sales/order_detail.html"

    def get_document(self, request, pk):
        return selectors.order_get_for(user=request.user, pk=pk)

    def context(self, request, document, **extra):
        return order_context(request, document, **extra)


def _field_label(name: str) -> str:
    return str(getattr(Contract._meta.get_field(name), "verbose_name", name))


def _amendment_changes(amendment: ContractAmendment) -> dict[str, Any]:
    """Before → after of the header fields and the lines, with names instead of ids."""
    fields = amendment.proposed.get("fields", {})
    contact_ids = [
        value for value in (fields.get("contact"), amendment.before.get("contact")) if value
    ]
    contacts = Contact.all_objects.in_bulk(contact_ids) if contact_ids else {}

    def show(name, value):
        if value in (None, ""):
            return "—"
        if name == "contact":
            return str(contacts.get(value, value))
        if name in ("signed_on", "start_date", "end_date"):
            return datetime.date.fromisoformat(value)
        return value

    field_rows = [
        {
            "label": _field_label(name),
            "before": show(name, amendment.before.get(name)),
            "after": show(name, value),
        }
        for name, value in fields.items()
    ]
    line_rows: list[dict[str, Any]] = []
    if "lines" in amendment.proposed:
        before = amendment.before.get("lines", [])
        after = amendment.proposed["lines"]
        product_ids = {line["product"] for line in [*before, *after]}
        products = Product.all_objects.in_bulk(product_ids)
        by_id = {line["id"]: line for line in before}
        kept = set()
        keys = ("product", "quantity", "unit_price", "discount_rate", "tax_rate")
        for line in after:
            old = by_id.get(line.get("id"))
            if old is not None:
                kept.add(old["id"])
            changed = old is None or any(
                str(old.get(k)) != str(line.get(k))
                and Decimal(str(old.get(k) or 0)) != Decimal(str(line.get(k) or 0))
                for k in keys
            )
            line_rows.append(
                _line_row(
                    "added" if old is None else ("changed" if changed else "same"),
                    old,
                    line,
                    products,
                )
            )
        for line in before:
            if line["id"] not in kept:
                line_rows.append(_line_row("removed", line, None, products))
    return {"field_rows": field_rows, "line_rows": line_rows}


AMENDED_CELLS = (
    ("quantity", _("Quantity"), "qty"),
    ("unit_price", _("Unit price"), "money"),
    ("discount_rate", _("Discount"), "percent"),
    ("tax_rate", _("Tax rate"), "percent"),
    ("total_amount", _("Total"), "money"),
)


def _line_row(change: str, before: dict | None, after: dict | None, products) -> dict[str, Any]:
    """One line of an amendment: its product and each figure before and after."""

    def number(line, key):
        if line is None or line.get(key) in (None, ""):
            return None
        return Decimal(str(line[key]))

    source = after or before or {}
    product = products.get(source.get("product"))
    cells = []
    for key, label, kind in AMENDED_CELLS:
        old, new = number(before, key), number(after, key)
        cells.append(
            {
                "label": label,
                "kind": kind,
                "before": old,
                "after": new,
                "changed": change == "changed" and old != new,
            }
        )
    return {
        "change": change,
        "product": f"{product.code} {product.name}" if product else source.get("description"),
        "cells": cells,
    }


class AmendmentDetailView(ModulePermissionMixin, View):
    module = "sales"

    def get(self, request, pk):
        amendment = selectors.amendment_get_for(user=request.user, pk=pk)
        context = {
            "title": _("Amendment %(number)s") % {"number": amendment},
            "amendment": amendment,
            "document": amendment,
            "contract": amendment.contract,
            **_amendment_changes(amendment),
            **_approvals(amendment),
        }
        return render(request, "sales/amendment_detail.html", context)


# --- actions --------------------------------------------------------------------------------


class _ActionView(ModulePermissionMixin, View):
    """A POST changing a document's status; the service checks permission and state.

    Errors re-render the detail page with the message beside the action (and the action's
    dialog open again when it has one), with nothing written.
    """

    module = "sales"
    http_method_names = ["post"]
    detail_view: Any = None
    actions: tuple[str, ...] = ()

    def post(self, request, pk, action):
        if action not in self.actions:
            raise Http404
        detail = self.detail_view()
        document = detail.get_document(request, pk)
        try:
            url, message = getattr(self, f"do_{action}")(request, document)
        except PermissionRefused:
            raise
        except ServiceError as exc:
            fresh = detail.get_document(request, pk)
            error = {"action": action, "message": str(exc.message), "field": exc.field}
            status = 409 if isinstance(exc, ConflictError) else 400
            return render(
                request,
                detail.template_name,
                detail.context(request, fresh, action_error=error, posted=request.POST),
                status=status,
            )
        messages.success(request, message)
        return _redirect(request, url)


class QuoteActionView(_ActionView):
    detail_view = QuoteDetailView
    actions = ("send", "accept", "reject", "convert", "delete")

    def do_send(self, request, quote):
        quote = services.quote_send(
            actor=request.user, quote=quote, expected_version=_version(request)
        )
        return quote.get_absolute_url(), _("Marked as sent to the customer.")

    def do_accept(self, request, quote):
        quote = services.quote_accept(
            actor=request.user, quote=quote, expected_version=_version(request)
        )
        return quote.get_absolute_url(), _("The customer accepted the quote.")

    def do_reject(self, request, quote):
        quote = services.quote_reject(
            actor=request.user,
            quote=quote,
            reason=request.POST.get("reason", "")[:500],
            expected_version=_version(request),
        )
        return quote.get_absolute_url(), _("The customer rejected the quote.")

    def do_convert(self, request, quote):
        contract = services.quote_convert_to_contract(
            actor=request.user, quote=quote, expected_version=_version(request)
        )
        return contract.get_absolute_url(), _(
            "Contract %(number)s created from the quote; check it and submit it for approval."
        ) % {"number": contract.number}

    def do_delete(self, request, quote):
        services.quote_delete(actor=request.user, quote=quote)
        return reverse("sales:quote_list"), _("Quote %(number)s deleted.") % {
            "number": quote.number
        }


class ContractActionView(_ActionView):
    detail_view = ContractDetailView
    actions = ("submit", "complete", "terminate", "delete")

    def do_submit(self, request, contract):
        contract = services.contract_submit(
            actor=request.user,
            contract=contract,
            expected_version=_version(request),
            comment=request.POST.get("comment", "")[:1000],
        )
        if contract.status == ContractStatus.ACTIVE:
            return contract.get_absolute_url(), _("No approval needed: the contract is active.")
        return contract.get_absolute_url(), _("Submitted for approval.")

    def do_complete(self, request, contract):
        contract = services.contract_complete(
            actor=request.user, contract=contract, expected_version=_version(request)
        )
        return contract.get_absolute_url(), _("The contract is completed.")

    def do_terminate(self, request, contract):
        contract = services.contract_terminate(
            actor=request.user,
            contract=contract,
            reason=request.POST.get("reason", ""),
            expected_version=_version(request),
        )
        return contract.get_absolute_url(), _("The contract is terminated.")

    def do_delete(self, request, contract):
        services.contract_delete(actor=request.user, contract=contract)
        return reverse("sales:contract_list"), _("Contract %(number)s deleted.") % {
            "number": contract.number
        }


class OrderActionView(_ActionView):
    detail_view = OrderDetailView
    actions = ("confirm", "complete", "cancel", "delete")

    def do_confirm(self, request, order):
        order = services.order_confirm(
            actor=request.user, order=order, expected_version=_version(request)
        )
        return order.get_absolute_url(), _("The order is confirmed; the warehouse can ship it.")

    def do_complete(self, request, order):
        order = services.order_complete(
            actor=request.user, order=order, expected_version=_version(request)
        )
        return order.get_absolute_url(), _("The order is completed.")

    def do_cancel(self, request, order):
        order = services.order_cancel(
            actor=request.user,
            order=order,
            reason=request.POST.get("reason", ""),
            expected_version=_version(request),
        )
        return order.get_absolute_url(), _("The order is cancelled.")

    def do_delete(self, request, order):
        services.order_delete(actor=request.user, order=order)
        return reverse("sales:order_list"), _("Order %(number)s deleted.") % {
            "number": order.number
        }


class ContractAttachmentView(ModulePermissionMixin, View):
    """Attach a file (the signed scan) to a contract."""

    module = "sales"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        contract = selectors.contract_get_for(user=request.user, pk=pk)
        form = AttachmentForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                attachment = attachment_add(
                    actor=request.user, obj=contract, file=form.cleaned_data["file"]
                )
            except ServiceError as exc:
                form.add_error("file", str(exc.message))
            else:
                messages.success(
                    request, _("“%(name)s” attached.") % {"name": attachment.original_name}
                )
                return HttpResponseRedirect(contract.get_absolute_url() + "#attachments")
        context = contract_context(request, contract, attachment_form=form)
        return render(request, "sales/contract_detail.html", context, status=400)


# --- PDF ------------------------------------------------------------------------------------


def _pdf_language(request) -> str:
    languages = dict(settings.LANGUAGES)
    requested = request.GET.get("lang", "")
    if requested in languages:
        return requested
    current = translation.get_language() or settings.LANGUAGE_CODE
    return current if current in languages else settings.LANGUAGE_CODE


def _pdf_response(content: bytes, number: str, *, download: bool) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    disposition = "attachment" if download else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{number}.pdf"'
    return response


def _pdf_module():
    try:
        return importlib.import_module("kehu.sales.pdf")
    except ModuleNotFoundError as exc:  # the PDF helper is not installed yet
        raise Http404 from exc


class QuotePdfView(ModulePermissionMixin, View):
    module = "sales"

    def get(self, request, pk):
        quote = selectors.quote_get_for(user=request.user, pk=pk)
        content = _pdf_module().quote_pdf(quote=quote, language=_pdf_language(request))
        export_record_logged(user=request.user, obj=quote, filename=f"{quote.number}.pdf")
        return _pdf_response(content, quote.number, download="download" in request.GET)


class ContractPdfView(ModulePermissionMixin, View):
    module = "sales"

    def get(self, request, pk):
        contract = selectors.contract_get_for(user=request.user, pk=pk)
        content = _pdf_module().contract_pdf(contract=contract, language=_pdf_language(request))
        export_record_logged(user=request.user, obj=contract, filename=f"{contract.number}.pdf")
        return _pdf_response(content, contract.number, download="download" in request.GET)
