"""Finance pages: payments, invoices, refunds, expense claims, receivable plans and reports.

Thin: parse, call a service or selector, render. Scope comes from the selectors (404 for
anything outside it), rules and amounts from the services (their message lands on the field
it names), permissions from both (403 before anything is written).
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from operator import attrgetter
from typing import Any

from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template import engines
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View

from kehu.core.attachments import attachment_add, attachment_validate, attachments_for
from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.core.exports import ExportColumn, export_response
from kehu.core.filters import is_id
from kehu.core.pagination import BoundedPaginator, list_count_budget_ms
from kehu.core.permissions import has_perm
from kehu.core.scope import get_visible_or_404
from kehu.core.views import Column, KehuFormView, KehuListView, ModulePermissionMixin, is_htmx
from kehu.finance import selectors, services
from kehu.finance.filters import ExpenseFilter, InvoiceFilter, PaymentFilter, RefundFilter
from kehu.finance.forms import (
    DateRangeForm,
    ExpenseForm,
    InvoiceIssueForm,
    InvoiceRequestForm,
    PayForm,
    PaymentForm,
    PlanEditor,
    ReasonForm,
    ReconciliationFilterForm,
    RefundForm,
    billable_contracts,
    contract_label,
    contract_search,
    customer_search,
    invoice_room,
    payment_method_labels,
    refundable,
    visible_customers,
)
from kehu.finance.models import (
    ContractLedger,
    ExpenseClaim,
    ExpenseStatus,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReceivableInstalment,
    RefundStatus,
)
from kehu.sales.models import Contract

OPTION_LIMIT = 50
NUMBER_CELL = "finance/_cell_number.html"
DATE_CELL = "finance/_cell_date.html"


def _url_or_empty(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _redirect(request, url: str) -> HttpResponse:
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def _money_text(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def approval_context(document) -> dict[str, Any]:
    """The document's latest approval request and its steps, for the status box; and
    whether the approvals app's own panel (``{% approval_panel %}``) is installed yet."""
    from kehu.approvals.models import ApprovalRequest

    request = (
        ApprovalRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(type(document)),
            object_id=document.pk,
        )
        .prefetch_related("steps__candidates")
        .order_by("-submitted_at", "-id")
        .first()
    )
    return {
        "approval_request": request,
        "approval_url": _url_or_empty("approvals:request_detail", request.pk) if request else "",
        "approval_panel_available": "approvals" in engines["django"].engine.template_libraries,  # type: ignore[attr-defined]
    }


# --- lists ----------------------------------------------------------------------------------


class _FinanceListView(KehuListView):
    module = "finance"
    template_name = "finance/list.html"
    ordering: tuple[str, ...] = ("-id",)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.GET.get("sort", "").lstrip("-") not in self.sort_options():
            queryset = queryset.order_by(*self.ordering)  # a stable order for paging
        return queryset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["method_labels"] = payment_method_labels()
        return context


def _payment_export_columns() -> list[ExportColumn]:
    labels = payment_method_labels()
    return [
        ExportColumn("number", _("Number")),
        ExportColumn("kind", _("Type"), lambda p: str(p.get_kind_display())),
        ExportColumn("contract", _("Contract"), lambda p: p.contract.number),
        ExportColumn("customer", _("Customer"), lambda p: str(p.contract.customer)),
        ExportColumn(
            "instalment", _("Instalment"), lambda p: p.instalment.sequence if p.instalment else ""
        ),
        ExportColumn("amount", _("Amount")),
        ExportColumn("currency", _("Currency")),
        ExportColumn("received_on", _("Received on")),
        ExportColumn("method", _("Payment method"), lambda p: labels.get(p.method, p.method)),
        ExportColumn("account", _("Receiving account")),
        ExportColumn("reference", _("Bank reference")),
        ExportColumn("status", _("Status"), lambda p: str(p.get_status_display())),
        ExportColumn("owner", _("Owner"), lambda p: str(p.owner)),
        ExportColumn("confirmed_by", _("Confirmed by"), lambda p: str(p.confirmed_by or "")),
        ExportColumn("confirmed_at", _("Confirmed at")),
        ExportColumn("note", _("Note")),
        ExportColumn("decision_note", _("Reason")),
    ]


class PaymentListView(_FinanceListView):
    title = _("Payments")
    filterset_class = PaymentFilter
    create_url_name = "finance:payment_create"
    ordering = ("-received_on", "-id")
    columns = [
        Column("number", _("Number"), sort="number", template=NUMBER_CELL),
        Column("received_on", _("Received on"), sort="received_on", template=DATE_CELL),
        Column(
            "contract",
            _("Contract"),
            sort="contract__number",
            template="finance/_cell_contract.html",
        ),
        Column("customer", _("Customer"), template="finance/_cell_customer.html"),
        Column("amount", _("Amount"), sort="amount", template="finance/_cell_money.html"),
        Column("method", _("Method"), template="finance/_cell_method.html"),
        Column("status", _("Status"), sort="status", template="finance/_cell_status.html"),
        Column("owner", _("Owner"), sort="owner__username"),
    ]

    @property
    def export_columns(self):  # type: ignore[override]
        return _payment_export_columns()

    def selector(self, user):
        return selectors.payment_list_visible_to(user=user)


class InvoiceListView(_FinanceListView):
    title = _("Invoices")
    filterset_class = InvoiceFilter
    create_url_name = "finance:invoice_create"
    ordering = ("-created_at", "-id")
    columns = [
        Column("number", _("Request number"), sort="number", template=NUMBER_CELL),
        Column("invoice_number", _("Invoice number"), sort="invoice_number"),
        Column(
            "contract",
            _("Contract"),
            sort="contract__number",
            template="finance/_cell_contract.html",
        ),
        Column("title", _("Invoice title")),
        Column("get_invoice_type_display", _("Invoice type"), sort="invoice_type"),
        Column("amount", _("Amount"), sort="amount", template="finance/_cell_money.html"),
        Column("issued_on", _("Issued on"), sort="issued_on", template=DATE_CELL),
        Column("status", _("Status"), sort="status", template="finance/_cell_status.html"),
        Column("owner", _("Owner"), sort="owner__username"),
    ]
    export_columns = [
        ExportColumn("number", _("Request number")),
        ExportColumn("invoice_number", _("Invoice number")),
        ExportColumn("contract", _("Contract"), lambda i: i.contract.number),
        ExportColumn("customer", _("Customer"), lambda i: str(i.contract.customer)),
        ExportColumn(
            "invoice_type", _("Invoice type"), lambda i: str(i.get_invoice_type_display())
        ),
        ExportColumn("title", _("Invoice title")),
        ExportColumn("tax_number", _("Taxpayer identification number")),
        ExportColumn("amount", _("Amount")),
        ExportColumn("currency", _("Currency")),
        ExportColumn("status", _("Status"), lambda i: str(i.get_status_display())),
        ExportColumn("issued_on", _("Issued on")),
        ExportColumn("owner", _("Owner"), lambda i: str(i.owner)),
        ExportColumn("created_at", _("Requested at")),
        ExportColumn("void_reason", _("Reason for voiding")),
    ]

    def selector(self, user):
        return selectors.invoice_list_visible_to(user=user)


class RefundListView(_FinanceListView):
    title = _("Refunds")
    filterset_class = RefundFilter
    ordering = ("-created_at", "-id")
    columns = [
        Column("number", _("Number"), sort="number", template=NUMBER_CELL),
        Column("created_at", _("Requested at"), sort="created_at", template=DATE_CELL),
        Column(
            "contract",
            _("Contract"),
            sort="contract__number",
            template="finance/_cell_contract.html",
        ),
        Column("customer", _("Customer"), template="finance/_cell_customer.html"),
        Column("payment", _("Payment"), template="finance/_cell_payment.html"),
        Column("amount", _("Amount"), sort="amount", template="finance/_cell_money.html"),
        Column("reason", _("Reason")),
        Column("status", _("Status"), sort="status", template="finance/_cell_status.html"),
    ]
    export_columns = [
        ExportColumn("number", _("Number")),
        ExportColumn("contract", _("Contract"), lambda r: r.contract.number),
        ExportColumn("customer", _("Customer"), lambda r: str(r.contract.customer)),
        ExportColumn("payment", _("Payment"), lambda r: r.payment.number),
        ExportColumn("amount", _("Amount")),
        ExportColumn("currency", _("Currency")),
        ExportColumn("reason", _("Reason")),
        ExportColumn("status", _("Status"), lambda r: str(r.get_status_display())),
        ExportColumn("refunded_on", _("Refund date")),
        ExportColumn("owner", _("Owner"), lambda r: str(r.owner)),
        ExportColumn("created_at", _("Requested at")),
    ]

    def selector(self, user):
        return selectors.refund_list_visible_to(user=user)


class ExpenseListView(_FinanceListView):
    title = _("Expense claims")
    filterset_class = ExpenseFilter
    create_url_name = "finance:expense_create"
    ordering = ("-spent_on", "-id")
    columns = [
        Column("number", _("Number"), sort="number", template=NUMBER_CELL),
        Column("spent_on", _("Date"), sort="spent_on", template=DATE_CELL),
        Column("owner", _("Employee"), sort="owner__username"),
        Column("department", _("Department")),
        Column("category", _("Category"), template="finance/_cell_category.html"),
        Column("amount", _("Amount"), sort="amount", template="finance/_cell_money.html"),
        Column("description", _("Description"), template="finance/_cell_truncate.html"),
        Column("status", _("Status"), sort="status", template="finance/_cell_status.html"),
    ]
    export_columns = [
        ExportColumn("number", _("Number")),
        ExportColumn("spent_on", _("Date")),
        ExportColumn("owner", _("Employee"), lambda e: str(e.owner)),
        ExportColumn("department", _("Department"), lambda e: str(e.department or "")),
        ExportColumn("category", _("Category"), lambda e: e.category.display_label),
        ExportColumn("amount", _("Amount")),
        ExportColumn("currency", _("Currency")),
        ExportColumn("description", _("Description")),
        ExportColumn("customer", _("Customer"), lambda e: str(e.customer or "")),
        ExportColumn("contract", _("Contract"), lambda e: e.contract.number if e.contract else ""),
        ExportColumn("status", _("Status"), lambda e: str(e.get_status_display())),
        ExportColumn("paid_on", _("Paid on")),
    ]

    def selector(self, user):
        return selectors.expense_list_visible_to(user=user)


# --- searchable selects ---------------------------------------------------------------------


class ContractOptionsView(ModulePermissionMixin, View):
    """htmx: ``<option>``s of the user's contracts matching ``q`` (in force unless ``all``)."""

    module = "finance"

    def get(self, request):
        if request.GET.get("all"):
            contracts = (
                selectors.contracts_visible_to(user=request.user)
                .select_related("customer")
                .order_by("-signed_on", "-id")
            )
        else:
            contracts = billable_contracts(request.user)
        found = contract_search(contracts, request.GET.get("q", ""))[:OPTION_LIMIT]
        options = [(c.pk, contract_label(c)) for c in found]
        return render(request, "core/_options.html", {"options": options})


class CustomerOptionsView(ModulePermissionMixin, View):
    module = "finance"

    def get(self, request):
        found = customer_search(visible_customers(request.user), request.GET.get("q", ""))
        options = [(c.pk, str(c)) for c in found.only("id", "name")[:OPTION_LIMIT]]
        return render(request, "core/_options.html", {"options": options})


# --- forms ----------------------------------------------------------------------------------


class _FinanceFormView(KehuFormView):
    """Service errors on their field; a refused permission is a 403, not a form error."""

    module = "finance"
    template_name = "finance/form.html"
    body_template_name = "finance/_form_body.html"
    submit_label: Any = _("Save")

    def render_form(self, form, obj, status=200):
        template = self.body_template_name if is_htmx(self.request) else self.template_name
        context = {
            "form": form,
            "object": obj,
            "title": self.get_title(obj),
            "view": self,
            "submit_label": self.submit_label,
            "cancel_url": self.cancel_url(obj),
        }
        context.update(self.extra_context(obj, form))
        return render(self.request, template, context, status=status)

    def extra_context(self, obj, form=None) -> dict:  # type: ignore[override]
        return {}

    def cancel_url(self, obj) -> str:
        return obj.get_absolute_url() if obj is not None else reverse(self.success_url_name)

    def success_message(self, saved) -> str:
        return gettext("Saved.")

    def form_error(self, form, exc: ServiceError) -> None:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        form = self.form_class(request.POST, request.FILES, **self.get_form_kwargs(obj))
        if form.is_valid():
            try:
                saved = self.save(form, obj)
            except PermissionRefused as exc:
                raise PermissionDenied(str(exc.message)) from exc
            except ServiceError as exc:
                self.form_error(form, exc)
            else:
                messages.success(request, self.success_message(saved))
                return _redirect(request, self.get_success_url(saved))
        # 200 for htmx so the form with its errors is swapped in; 400 for plain posts.
        return self.render_form(form, obj, status=200 if is_htmx(request) else 400)

    def get_success_url(self, obj) -> str:
        return obj.get_absolute_url()


class PaymentCreateView(_FinanceFormView):
    """Register a payment. The form carries an idempotency token made when it is shown: a
    second submission of the same form answers with the payment the first one recorded."""

    form_class = PaymentForm
    title = _("Register a payment")
    success_url_name = "finance:payment_list"
    submit_label = _("Register the payment")
    body_template_name = "finance/_payment_form_body.html"

    def get_form_kwargs(self, obj) -> dict:
        return {"actor": self.request.user}

    def get(self, request, *args, **kwargs):
        # Values already typed come back when the contract changes (htmx fetches the form).
        form = self.form_class(**self.get_form_kwargs(None))
        initial = {name: request.GET[name] for name in form.fields if request.GET.get(name)}
        form = self.form_class(initial=initial, **self.get_form_kwargs(None))
        return self.render_form(form, None)

    def extra_context(self, obj, form=None) -> dict:
        contract = form.selected_contract() if form is not None else None
        return {"contract": contract, "money": _money_of(contract)}

    def save(self, form, obj):
        payment, created = services.payment_register(
            actor=self.request.user,
            data=form.service_data(),
            idempotency_key=form.cleaned_data["idempotency_key"],
        )
        self.created = created
        return payment

    def success_message(self, saved) -> str:
        if not self.created:
            return gettext(
                "This form was already submitted: payment %(number)s was recorded then."
            ) % {"number": saved.number}
        return gettext("Payment %(number)s of %(amount)s recorded; finance confirms it next.") % {
            "number": saved.number,
            "amount": _money_text(saved.amount),
        }

    def form_error(self, form, exc: ServiceError) -> None:
        if exc.field == "idempotency_key":
            # The same form, changed after it was submitted: a fresh token makes the next
            # submission a new request (the user is told what happened first).
            form.data = form.data.copy()
            form.data["idempotency_key"] = uuid.uuid4().hex
            form.add_error(
                None,
                gettext(
                    "This form was already used to record a payment. Check the payments list; "
                    "submit again to record another payment."
                ),
            )
            return
        super().form_error(form, exc)


def _money_of(contract: Contract | None):
    if contract is None:
        return None
    money = selectors.contract_money(contract=contract)
    money.room = max(money.total - money.received - money.pending_payments, Decimal("0"))  # type: ignore[attr-defined]
    return money


class InvoiceCreateView(_FinanceFormView):
    form_class = InvoiceRequestForm
    title = _("Request an invoice")
    success_url_name = "finance:invoice_list"
    submit_label = _("Send the request")
    body_template_name = "finance/_invoice_form_body.html"

    def get_form_kwargs(self, obj) -> dict:
        return {"actor": self.request.user}

    def get(self, request, *args, **kwargs):
        contract = request.GET.get("contract", "")
        initial = {"contract": contract} if is_id(contract) else {}
        return self.render_form(self.form_class(initial=initial, actor=request.user), None)

    def extra_context(self, obj, form=None) -> dict:
        contract = None
        if form is not None:
            field = form.fields["contract"]
            selected = form.data.get("contract") if form.is_bound else form.initial.get("contract")
            if selected and is_id(selected):
                contract = field.queryset.filter(pk=selected).first()
        money = _money_of(contract)
        return {
            "contract": contract,
            "money": money,
            "invoice_room": invoice_room(contract) if contract is not None else None,
        }

    def save(self, form, obj):
        return services.invoice_request(actor=self.request.user, data=form.cleaned_data)

    def success_message(self, saved) -> str:
        return gettext("Invoice request %(number)s sent for approval.") % {"number": saved.number}


class RefundCreateView(_FinanceFormView):
    form_class = RefundForm
    title = _("Request a refund")
    submit_label = _("Send the request")
    body_template_name = "finance/_refund_form_body.html"

    @property
    def creating(self) -> bool:
        return True  # finance.add, on an existing payment

    def payment(self) -> Payment:
        if not hasattr(self, "_payment"):
            self._payment = selectors.payment_get_for(user=self.request.user, pk=self.kwargs["pk"])
        return self._payment

    def get_form_kwargs(self, obj) -> dict:
        return {"payment": self.payment()}

    def get_title(self, obj):
        return gettext("Request a refund of %(number)s") % {"number": self.payment().number}

    def cancel_url(self, obj) -> str:
        return self.payment().get_absolute_url()

    def extra_context(self, obj, form=None) -> dict:
        return {"payment": self.payment(), "refundable": refundable(self.payment())}

    def save(self, form, obj):
        return services.refund_request(
            actor=self.request.user,
            payment=self.payment(),
            amount=form.cleaned_data["amount"],
            reason=form.cleaned_data["reason"],
        )

    def success_message(self, saved) -> str:
        return gettext("Refund %(number)s sent for approval.") % {"number": saved.number}


class ExpenseFormView(_FinanceFormView):
    form_class = ExpenseForm
    title = _("New expense claim")
    success_url_name = "finance:expense_list"
    body_template_name = "finance/_expense_form_body.html"

    def get_object(self):
        if self.creating:
            return None
        claim = selectors.expense_get_for(user=self.request.user, pk=self.kwargs["pk"])
        if claim.owner_id != self.request.user.pk:
            raise PermissionDenied
        return claim

    @property
    def creating(self) -> bool:
        return "pk" not in self.kwargs

    def dispatch(self, request, *args, **kwargs):
        self.perm_action = "add"  # editing one's own claim is part of claiming it
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self, obj) -> dict:
        return {"actor": self.request.user, "instance": obj}

    def get_title(self, obj):
        return gettext("Edit %(number)s") % {"number": obj.number} if obj else self.title

    def extra_context(self, obj, form=None) -> dict:
        receipts = attachments_for([obj]).get(str(obj.pk), []) if obj is not None else []
        return {"receipts": receipts, "offer_submit": True}

    def save(self, form, obj):
        user = self.request.user
        files = form.cleaned_data.get("receipts") or []
        for file in files:  # every receipt checked before anything is written
            attachment_validate(file)
        # The claim and its receipts are one write: a receipt that fails to store undoes the
        # claim. (The expense services take no files yet; see the report to the lead.)
        with transaction.atomic():
            if obj is None:
                claim = services.expense_create(actor=user, data=form.service_data())
            else:
                claim = services.expense_update(
                    actor=user,
                    claim=obj,
                    expected_version=form.cleaned_data.get("version"),
                    data=form.service_data(),
                )
            for file in files:
                attachment_add(actor=user, obj=claim, file=file)
        self.submitted = False
        if self.request.POST.get("then") == "submit":
            # Saved first: a refused submission leaves a draft to fix, not lost typing.
            try:
                claim = services.expense_submit(actor=user, claim=claim)
                self.submitted = True
            except ServiceError as exc:
                messages.error(self.request, str(exc.message))
        return claim

    def form_error(self, form, exc: ServiceError) -> None:
        field = "receipts" if exc.field == "attachments" else exc.field
        form.add_error(field if field in form.fields else None, str(exc.message))

    def success_message(self, saved) -> str:
        if self.submitted:
            return gettext("Expense claim %(number)s sent for approval.") % {"number": saved.number}
        return gettext("Expense claim %(number)s saved as a draft.") % {"number": saved.number}


# --- detail pages and their actions ---------------------------------------------------------


def _run(request, call) -> ServiceError | None:
    """Run a service call; a refused permission is a 403, any other refusal is returned."""
    try:
        call()
    except PermissionRefused as exc:
        raise PermissionDenied(str(exc.message)) from exc
    except ServiceError as exc:
        return exc
    return None


class _DetailView(ModulePermissionMixin, View):
    module = "finance"
    template_name = ""

    def get_object(self, request, pk):
        raise NotImplementedError

    def context(self, request, obj, **forms_: Any) -> dict:
        raise NotImplementedError

    def get(self, request, pk):
        obj = self.get_object(request, pk)
        return render(request, self.template_name, self.context(request, obj))


class _ActionView(_DetailView):
    """POST ``<pk>/<action>/``: the action's permission, then the service; a refusal comes
    back on the detail page, under the action's form when it has one."""

    http_method_names = ["post"]
    permissions: dict[str, str] = {}

    def dispatch(self, request, *args, **kwargs):
        action = kwargs.get("action", "")
        if action not in self.permissions:
            raise Http404
        self.perm_action = self.permissions[action]
        return super().dispatch(request, *args, **kwargs)

    def perform(self, request, obj, action: str) -> tuple[Any, Any]:
        """Return (form or None, callable running the service) for ``action``."""
        raise NotImplementedError

    def done_message(self, action: str, obj) -> str:
        return gettext("Done.")

    def post(self, request, pk, action):
        obj = self.get_object(request, pk)
        form, call = self.perform(request, obj, action)
        if form is not None and not form.is_valid():
            return self.refused(request, obj, action, form)
        error = _run(request, lambda: setattr(self, "result", call(form)))
        if error is not None:
            if form is not None and error.field in form.fields:
                form.add_error(error.field, str(error.message))
                return self.refused(request, obj, action, form)
            messages.error(request, str(error.message))
            return HttpResponseRedirect(obj.get_absolute_url())
        messages.success(request, self.done_message(action, self.result))
        # Back to the document (a reversal's message names the new entry and links it).
        return HttpResponseRedirect(obj.get_absolute_url())

    def refused(self, request, obj, action, form):
        context = self.context(request, obj, **{f"{action}_form": form})
        context["open_action"] = action
        return render(request, self.template_name, context, status=400)


def payment_context(request, payment: Payment, **forms_: Any) -> dict:
    user = request.user
    pending = payment.status == PaymentStatus.PENDING
    is_payment = payment.kind == PaymentKind.PAYMENT
    confirmed = payment.status == PaymentStatus.CONFIRMED
    reversal = Payment.objects.filter(reverses=payment).first() if is_payment else None
    refunds = list(payment.refunds.order_by("-created_at", "-id")) if is_payment else []
    open_refunds = [r for r in refunds if r.status in (RefundStatus.PENDING, RefundStatus.APPROVED)]
    may_approve = has_perm(user, "finance.approve")
    return {
        "title": payment.number,
        "payment": payment,
        "method_label": payment_method_labels().get(payment.method, payment.method),
        "reversal": reversal,
        "refunds": refunds,
        "can_confirm": pending and may_approve,
        "can_reject": pending and may_approve,
        "can_cancel": pending
        and has_perm(user, "finance.add")
        and (payment.created_by_id == user.pk or may_approve),
        "can_reverse": confirmed
        and is_payment
        and reversal is None
        and not open_refunds
        and may_approve,
        "can_refund": confirmed
        and is_payment
        and reversal is None
        and has_perm(user, "finance.add"),
        "reject_form": forms_.get("reject_form") or ReasonForm(prefix="reject"),
        "reverse_form": forms_.get("reverse_form") or ReasonForm(prefix="reverse"),
        **approval_context(payment),
    }


class PaymentDetailView(_DetailView):
    template_name = "finance/payment_detail.html"

    def get_object(self, request, pk):
        return selectors.payment_get_for(user=request.user, pk=pk)

    def context(self, request, obj, **forms_):
        return payment_context(request, obj, **forms_)


class PaymentActionView(PaymentDetailView, _ActionView):
    permissions = {"confirm": "approve", "reject": "approve", "reverse": "approve", "cancel": "add"}

    def perform(self, request, obj, action):
        user = request.user
        if action == "confirm":
            return None, lambda f: services.payment_confirm(actor=user, payment=obj)
        if action == "cancel":
            return None, lambda f: services.payment_cancel(actor=user, payment=obj)
        form = ReasonForm(request.POST, prefix=action)
        if action == "reject":
            return form, lambda f: services.payment_reject(
                actor=user, payment=obj, reason=f.cleaned_data["reason"]
            )
        return form, lambda f: services.payment_reverse(
            actor=user, payment=obj, reason=f.cleaned_data["reason"]
        )

    def done_message(self, action, obj):
        return {
            "confirm": gettext("Payment confirmed: it counts as received now."),
            "reject": gettext("Payment rejected."),
            "cancel": gettext("Payment cancelled."),
            "reverse": gettext("Reversal %(number)s recorded; both entries are kept.")
            % {"number": obj.number},
        }[action]


def invoice_context(request, invoice: Invoice, **forms_: Any) -> dict:
    user = request.user
    may_change = has_perm(user, "finance.change")
    return {
        "title": invoice.invoice_number or invoice.number,
        "invoice": invoice,
        "can_issue": may_change and invoice.status == InvoiceStatus.APPROVED,
        "can_void": may_change and invoice.status in (InvoiceStatus.APPROVED, InvoiceStatus.ISSUED),
        "issue_form": forms_.get("issue_form") or InvoiceIssueForm(prefix="issue"),
        "void_form": forms_.get("void_form") or ReasonForm(prefix="void"),
        **approval_context(invoice),
    }


class InvoiceDetailView(_DetailView):
    template_name = "finance/invoice_detail.html"

    def get_object(self, request, pk):
        return selectors.invoice_get_for(user=request.user, pk=pk)

    def context(self, request, obj, **forms_):
        return invoice_context(request, obj, **forms_)


class InvoiceActionView(InvoiceDetailView, _ActionView):
    permissions = {"issue": "change", "void": "change"}

    def perform(self, request, obj, action):
        user = request.user
        if action == "issue":
            form = InvoiceIssueForm(request.POST, prefix="issue")
            return form, lambda f: services.invoice_issue(
                actor=user,
                invoice=obj,
                invoice_number=f.cleaned_data["invoice_number"],
                issued_on=f.cleaned_data["issued_on"],
            )
        form = ReasonForm(request.POST, prefix="void")
        return form, lambda f: services.invoice_void(
            actor=user, invoice=obj, reason=f.cleaned_data["reason"]
        )

    def done_message(self, action, obj):
        if action == "issue":
            return gettext("Invoice %(number)s issued.") % {"number": obj.invoice_number}
        return gettext("Invoice voided.")


class RefundDetailView(_DetailView):
    template_name = "finance/refund_detail.html"

    def get_object(self, request, pk):
        return selectors.refund_get_for(user=request.user, pk=pk)

    def context(self, request, obj, **forms_):
        return {"title": obj.number, "refund": obj, **approval_context(obj)}


def expense_context(request, claim: ExpenseClaim, **forms_: Any) -> dict:
    user = request.user
    own = claim.owner_id == user.pk
    editable = claim.status in (ExpenseStatus.DRAFT, ExpenseStatus.REJECTED)
    return {
        "title": claim.number,
        "claim": claim,
        "receipts": attachments_for([claim]).get(str(claim.pk), []),
        "can_edit": own and editable and has_perm(user, "finance.add"),
        "can_submit": own and editable and has_perm(user, "finance.add"),
        "can_pay": claim.status == ExpenseStatus.APPROVED and has_perm(user, "finance.change"),
        "pay_form": forms_.get("pay_form") or PayForm(prefix="pay"),
        **approval_context(claim),
    }


class ExpenseDetailView(_DetailView):
    template_name = "finance/expense_detail.html"

    def get_object(self, request, pk):
        return selectors.expense_get_for(user=request.user, pk=pk)

    def context(self, request, obj, **forms_):
        return expense_context(request, obj, **forms_)


class ExpenseActionView(ExpenseDetailView, _ActionView):
    permissions = {"submit": "add", "pay": "change"}

    def perform(self, request, obj, action):
        user = request.user
        if action == "submit":
            return None, lambda f: services.expense_submit(actor=user, claim=obj)
        form = PayForm(request.POST, prefix="pay")
        return form, lambda f: services.expense_pay(
            actor=user, claim=obj, paid_on=f.cleaned_data["paid_on"]
        )

    def done_message(self, action, obj):
        if action == "submit":
            return gettext("Expense claim sent for approval.")
        return gettext("Expense claim marked as paid.")


# --- the contract's money: panel and receivable plan ----------------------------------------


def contract_money_context(user, contract: Contract) -> dict[str, Any]:
    """What the finance panel of a contract shows (``{% contract_money_panel contract %}``):
    the plan with derived statuses, payments, invoices, refunds and the totals."""
    if not has_perm(user, "finance.view"):
        return {"visible": False}
    payments = list(
        selectors.payment_list_visible_to(user=user)
        .filter(contract=contract)
        .select_related(None)
        .order_by("-received_on", "-id")[:50]
    )
    invoices = list(
        selectors.invoice_list_visible_to(user=user)
        .filter(contract=contract)
        .select_related(None)
        .order_by("-created_at", "-id")[:50]
    )
    refunds = list(
        selectors.refund_list_visible_to(user=user)
        .filter(contract=contract)
        .select_related(None)
        .select_related("payment")
        .order_by("-created_at", "-id")[:50]
    )
    billable = contract.status in services.BILLABLE_STATUSES
    may_add = has_perm(user, "finance.add")
    return {
        "visible": True,
        "contract": contract,
        "money": selectors.contract_money(contract=contract),
        "payments": payments,
        "invoices": invoices,
        "refunds": refunds,
        "method_labels": payment_method_labels(),
        "can_register": billable and may_add,
        "can_invoice": billable and may_add,
        "can_edit_plan": billable and may_add,
    }


def _contract_for(user, pk) -> Contract:
    return get_visible_or_404(
        selectors.contracts_visible_to(user=user).select_related("customer", "owner"), user, pk=pk
    )


class PlanDetailView(ModulePermissionMixin, View):
    """A contract's receivable plan: instalments with their derived status, the money on the
    contract, and the editor (rows added and removed with htmx, split by percentage, the
    difference to the contract amount computed by the server)."""

    module = "finance"
    template_name = "finance/plan_detail.html"

    def render_page(self, request, contract, editor: PlanEditor, status=200, editing=False):
        context = {
            "title": gettext("Receivable plan of %(number)s") % {"number": contract.number},
            "contract": contract,
            "contract_url": _url_or_empty("sales:contract_detail", contract.pk),
            "editor": editor,
            **contract_money_context(request.user, contract),
        }
        # Open while editing (a POST without htmx) and when there is no plan to show yet.
        context["open_editor"] = editing or not context["money"].instalments
        return render(request, self.template_name, context, status=status)

    def get(self, request, pk):
        contract = _contract_for(request.user, pk)
        editor = PlanEditor.from_instalments(
            contract.instalments.order_by("due_date", "sequence"), total=contract.total_amount
        )
        return self.render_page(request, contract, editor)

    def post(self, request, pk):
        if not has_perm(request.user, "finance.add"):
            raise PermissionDenied
        contract = _contract_for(request.user, pk)
        editor = PlanEditor.from_post(request.POST, total=contract.total_amount)
        op = request.POST.get("op", "save")
        if op == "recalc":
            return render(request, "finance/_plan_difference.html", {"editor": editor})
        if op == "add":
            editor.add_row()
        elif op.startswith("remove:") and is_id(op[7:]):
            editor.remove_row(int(op[7:]))
        elif op == "split":
            editor.split()
        else:
            instalments = editor.cleaned()
            if instalments is not None:
                error = _run(
                    request,
                    lambda: services.receivable_plan_set(
                        actor=request.user, contract=contract, instalments=instalments
                    ),
                )
                if error is None:
                    messages.success(request, gettext("Receivable plan saved."))
                    return _redirect(request, reverse("finance:plan_detail", args=[contract.pk]))
                editor.errors.append(str(error.message))
            status = 200 if is_htmx(request) else 400
            if is_htmx(request):
                return self.render_editor(request, contract, editor, status)
            return self.render_page(request, contract, editor, status=status, editing=True)
        if is_htmx(request):
            return self.render_editor(request, contract, editor)
        return self.render_page(request, contract, editor, editing=True)

    def render_editor(self, request, contract, editor, status=200):
        return render(
            request,
            "finance/_plan_editor.html",
            {"contract": contract, "editor": editor, "open_editor": True},
            status=status,
        )


# --- reports --------------------------------------------------------------------------------


def _export_allowed(user) -> bool:
    return has_perm(user, "finance.export")


RECONCILIATION_COLUMNS = [
    ExportColumn("contract", _("Contract"), lambda c: c.number),
    ExportColumn("title", _("Title"), lambda c: c.title),
    ExportColumn("customer", _("Customer"), lambda c: str(c.customer)),
    ExportColumn("owner", _("Owner"), lambda c: str(c.owner)),
    ExportColumn("signed_on", _("Signing date"), lambda c: c.signed_on),
    ExportColumn("status", _("Status"), lambda c: str(c.get_status_display())),
    *(
        ExportColumn(key, label, attrgetter(selectors.RECONCILIATION_SUMS[key]))
        for key, label in (
            ("total", _("Contract amount")),
            ("received", _("Received")),
            ("invoiced", _("Invoiced")),
            ("outstanding", _("Outstanding")),
            ("overdue", _("Overdue")),
        )
    ),
]


def _totals(rows, keys) -> dict[str, Decimal]:
    return {key: sum((row[key] for row in rows), Decimal("0.00")) for key in keys}


RECONCILIATION_PAGE_ROWS = 50


class ReconciliationView(ModulePermissionMixin, View):
    """Per contract: amount, received, invoiced, outstanding and overdue, with totals."""

    module = "finance"

    def get(self, request):
        form = ReconciliationFilterForm(request.GET or None, actor=request.user)
        contracts = selectors.contract_reconciliation(user=request.user)
        if form.is_bound and form.is_valid():
            contracts = form.apply(contracts)
        title = gettext("Receivables by contract")
        if request.GET.get("export"):
            return export_response(
                user=request.user,
                module="finance",
                model=ContractLedger,
                queryset=selectors.reconciliation_download(contracts),
                columns=RECONCILIATION_COLUMNS,
                fmt=request.GET["export"],
                filename=title,
            )
        # Counted up to the list cap (within a time budget when filtered); the totals are
        # added up only below it, so a page costs the same at any number of contracts.
        paginator = BoundedPaginator(
            contracts,
            RECONCILIATION_PAGE_ROWS,
            budget_ms=list_count_budget_ms() if form.is_filtering() else None,
        )
        page = paginator.get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        return render(
            request,
            "finance/reconciliation.html",
            {
                "title": title,
                "form": form,
                "page_obj": page,
                "paginator": paginator,
                "is_paginated": paginator.num_pages > 1,
                "rows": [selectors.reconciliation_row(c) for c in page.object_list],
                "count": paginator.count,
                "totals": selectors.reconciliation_totals(contracts) if paginator.exact else None,
                "total_cap": paginator.cap,
                "querystring": query.urlencode(),
                "can_export": _export_allowed(request.user),
            },
        )


AGING_GROUPS = (
    ("customer", _("Customer")),
    ("owner", _("Owner")),
    ("department", _("Department")),
)
BUCKET_LABELS = (
    ("not_due", _("Not yet due")),
    ("d0_30", _("0–30 days")),
    ("d31_60", _("31–60 days")),
    ("d61_90", _("61–90 days")),
    ("d90_plus", _("Over 90 days")),
)


AGING_PAGE_ROWS = 100


class AgingView(ModulePermissionMixin, View):
    """Outstanding instalments by age, grouped by customer, owner or department."""

    module = "finance"

    def get(self, request):
        group_by = request.GET.get("by", "customer")
        if group_by not in dict(AGING_GROUPS):
            group_by = "customer"
        group_label = dict(AGING_GROUPS)[group_by]
        title = gettext("Receivables aging")
        if request.GET.get("export"):
            rows = selectors.receivables_aging_stream(user=request.user, group_by=group_by)
            columns = [ExportColumn("label", group_label, lambda r: r["label"] or "—")]
            columns += [
                ExportColumn(key, label, lambda r, key=key: r[key]) for key, label in BUCKET_LABELS
            ]
            columns.append(ExportColumn("total", _("Total"), lambda r: r["total"]))
            return export_response(
                user=request.user,
                module="finance",
                model=ReceivableInstalment,
                queryset=rows,
                columns=columns,
                fmt=request.GET["export"],
                filename=f"{title}-{group_label}",
            )
        # The page shows the largest debtors; the totals (and the export) cover everyone.
        limit = AGING_PAGE_ROWS if group_by == "customer" else None  # owners are few
        rows = selectors.receivables_aging(user=request.user, group_by=group_by, limit=limit)
        totals = selectors.receivables_aging_totals(user=request.user)
        reconciliation = reverse("finance:reconciliation")
        for row in rows:
            if row["key"] is None:
                row["url"] = ""
            elif group_by == "customer":
                row["url"] = f"{reconciliation}?{urlencode({'customer': row['label']})}"
            else:
                row["url"] = f"{reconciliation}?{urlencode({group_by: row['key']})}"
            row["buckets"] = [(label, row[key]) for key, label in BUCKET_LABELS]
        without_plan = list(
            selectors.contracts_without_plan(user=request.user)
            .select_related("customer", "owner")
            .order_by("-signed_on", "-id")[:100]
        )
        return render(
            request,
            "finance/aging.html",
            {
                "title": title,
                "group_by": group_by,
                "group_label": group_label,
                "groups": AGING_GROUPS,
                "buckets": BUCKET_LABELS,
                "rows": rows,
                "rows_cut": limit is not None and totals["customers"] > len(rows),
                "customers_owing": totals["customers"],
                "totals": totals,
                "total_buckets": [(label, totals[key]) for key, label in BUCKET_LABELS],
                "without_plan": without_plan,
                "can_export": _export_allowed(request.user),
                "today": timezone.localdate(),
            },
        )


class ReportsView(ModulePermissionMixin, View):
    """Collections by month (with a bar chart) and expenses by category and department."""

    module = "finance"

    def get(self, request):
        form = DateRangeForm(request.GET or None)
        start, end = form.dates()
        collections = selectors.collections_by_month(user=request.user, start=start, end=end)
        expenses = selectors.expenses_by_category(user=request.user, start=start, end=end)
        export = request.GET.get("export")
        if export:
            if request.GET.get("table") == "expenses":
                columns = [
                    ExportColumn("category", _("Category"), lambda r: r["category"]),
                    ExportColumn("department", _("Department"), lambda r: r["department"]),
                    ExportColumn("amount", _("Amount"), lambda r: r["amount"]),
                ]
                rows, name = expenses, gettext("Expenses by category")
            else:
                columns = [
                    ExportColumn("month", _("Month"), lambda r: r["month"].strftime("%Y-%m")),
                    ExportColumn("received", _("Received"), lambda r: r["received"]),
                    ExportColumn("refunded", _("Refunded"), lambda r: r["refunded"]),
                    ExportColumn("net", _("Net"), lambda r: r["net"]),
                ]
                rows, name = _all_months(collections, start, end), gettext("Collections by month")
            return export_response(
                user=request.user,
                module="finance",
                model=Payment,
                queryset=rows,
                columns=columns,
                fmt=export,
                filename=f"{name} {start:%Y%m%d}-{end:%Y%m%d}",
            )
        months = _all_months(collections, start, end)
        pivot = _expense_pivot(expenses)
        return render(
            request,
            "finance/reports.html",
            {
                "title": gettext("Finance reports"),
                "form": form,
                "start": start,
                "end": end,
                "months": months,
                "collection_totals": _totals(months, ("received", "refunded", "net")),
                "chart": {
                    "months": [m["month"].strftime("%Y-%m") for m in months],
                    "received": [float(m["received"]) for m in months],
                    "refunded": [float(m["refunded"]) for m in months],
                    "net": [float(m["net"]) for m in months],
                    "labels": {
                        "received": gettext("Received"),
                        "refunded": gettext("Refunded"),
                        "net": gettext("Net"),
                    },
                },
                "pivot": pivot,
                "querystring": urlencode({"start": start.isoformat(), "end": end.isoformat()}),
                "can_export": _export_allowed(request.user),
            },
        )


def _all_months(collections: list[dict], start: datetime.date, end: datetime.date) -> list[dict]:
    """Every month of the range, empty ones included, so the chart has no gaps."""
    by_month = {row["month"]: row for row in collections}
    zero = Decimal("0.00")
    months: list[dict] = []
    month = start.replace(day=1)
    while month <= end and len(months) < 240:
        months.append(
            by_month.get(month, {"month": month, "received": zero, "refunded": zero, "net": zero})
        )
        month = (month + datetime.timedelta(days=32)).replace(day=1)
    return months


def _expense_pivot(rows: list[dict]) -> dict[str, Any]:
    """Categories down, departments across, with totals both ways."""
    departments = sorted({row["department"] for row in rows})
    categories = sorted({row["category"] for row in rows})
    cells = {(row["category"], row["department"]): row["amount"] for row in rows}
    zero = Decimal("0.00")
    table = []
    for category in categories:
        amounts = [cells.get((category, department), zero) for department in departments]
        table.append({"category": category, "amounts": amounts, "total": sum(amounts, zero)})
    column_totals = [sum((cells.get((c, d), zero) for c in categories), zero) for d in departments]
    return {
        "departments": departments,
        "rows": table,
        "totals": column_totals,
        "total": sum(column_totals, zero),
    }
