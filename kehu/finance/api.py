"""Finance API: receivable plans, payments, invoices, refunds, expense claims and reports.

Thin over kehu.finance.services (every write) and kehu.finance.selectors (every read, in the
caller's data scope): a refused request changes nothing and answers 400 (field messages),
403 (permission), 404 (missing or outside the caller's scope) or 409 (stale version).
Money records are never edited or deleted through the API: payments, invoices and refunds
have no update or delete (405); a confirmed payment is corrected by ``reverse``.

Permissions: ``finance.view`` reads; ``finance.add`` registers payments, requests invoices
and refunds, sets receivable plans and claims expenses; ``finance.approve`` confirms, rejects
and reverses payments; ``finance.change`` issues and voids invoices and pays expense claims;
``finance.export`` downloads reports as XLSX.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from kehu.core.api import ModulePermission, StandardPagination, expected_version
from kehu.core.attachments import attachment_add, attachment_validate
from kehu.core.exceptions import ServiceError
from kehu.core.exports import EXPORT_CHUNK, ExportColumn, export_response
from kehu.core.pagination import list_count_cap
from kehu.core.scope import get_visible_or_404
from kehu.finance import selectors, services
from kehu.finance.api_filters import (
    ExpenseApiFilter,
    InstalmentApiFilter,
    InvoiceApiFilter,
    PaymentApiFilter,
    RefundApiFilter,
    instalment_list_visible_to,
)
from kehu.finance.forms import RECONCILIATION_STATES, ReconciliationFilterForm
from kehu.finance.models import (
    ContractLedger,
    ExpenseClaim,
    Invoice,
    Payment,
    ReceivableInstalment,
    Refund,
)
from kehu.finance.serializers import (
    AgingReportSerializer,
    CollectionReportSerializer,
    ContractPlanSerializer,
    ContractPlanWriteSerializer,
    DocumentReasonSerializer,
    ExpectedVersionSerializer,
    ExpensePaySerializer,
    ExpenseReportSerializer,
    ExpenseSerializer,
    InstalmentSerializer,
    InvoiceIssueSerializer,
    InvoiceSerializer,
    PaymentSerializer,
    PeriodSerializer,
    ReconciliationReportSerializer,
    RefundSerializer,
)

ZERO = Decimal("0.00")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ERRORS = {
    400: OpenApiResponse(description=_("Invalid input: field messages.")),
    403: OpenApiResponse(description=_("Permission denied.")),
    404: OpenApiResponse(description=_("Not found or outside your data scope.")),
    405: OpenApiResponse(description=_("Not allowed: money records are not edited.")),
    409: OpenApiResponse(description=_("Stale version: someone else changed the record.")),
    422: OpenApiResponse(
        description=_("The Idempotency-Key was already used for a different request.")
    ),
}


def _errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in codes}


IDEMPOTENCY_KEY_MAX = 100
IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=_(
        "A unique key per payment you mean to register (for example a UUID), at most 100 "
        "characters. Sending the same request again with the same key records nothing new "
        "and answers 200 with the payment first recorded; the same key with a different "
        "request answers 422. Without the key every request records a payment."
    ),
)


class _FinanceViewSet(viewsets.GenericViewSet):
    module = "finance"
    perm_action: str | None = None  # custom actions set it (ModulePermission reads it)
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    filter_backends = [DjangoFilterBackend, OrderingFilter]

    def _fake(self) -> bool:
        return getattr(self, "swagger_fake_view", False)  # schema generation: no user

    def _fresh(self, obj):
        """``obj`` as the caller's list reads it (404 if it has left the caller's scope)."""
        return get_visible_or_404(self.get_queryset(), self.request.user, pk=obj.pk)


# --- receivable plans -----------------------------------------------------------------------


CONTRACT_ID = OpenApiParameter(
    "contract_id", int, OpenApiParameter.PATH, description=_("The contract's id.")
)


@extend_schema_view(
    list=extend_schema(responses={200: InstalmentSerializer(many=True), **_errors(403)}),
)
class ReceivablePlanViewSet(mixins.ListModelMixin, _FinanceViewSet):
    """Receivable instalments (回款计划) of the contracts in your scope, each with what is
    received on it, what is outstanding and its status (derived: received money settles
    instalments in due-date order). ``contract/{contract_id}/`` reads or replaces a
    contract's whole plan."""

    serializer_class = InstalmentSerializer
    filterset_class = InstalmentApiFilter
    ordering_fields = ["due_date", "amount", "contract", "id"]
    ordering = ["due_date", "id"]

    def get_queryset(self):
        if self._fake():
            return ReceivableInstalment.objects.none()
        return instalment_list_visible_to(user=self.request.user)

    def get_permissions(self):
        if self.action == "contract" and self.request.method == "PUT":
            self.perm_action = "add"
        return super().get_permissions()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "today": timezone.localdate()}

    def _plan(self, contract) -> Response:
        money = selectors.contract_money(contract=contract)
        data = {
            "contract": contract.pk,
            "contract_number": contract.number,
            "customer_name": contract.customer.name,
            "currency": contract.currency,
            "total": money.total,
            "received": money.received,
            "invoiced": money.invoiced,
            "outstanding": money.outstanding,
            "overdue": money.overdue,
            "pending_payments": money.pending_payments,
            "planned": money.planned,
            "instalments": money.instalments,
        }
        return Response(ContractPlanSerializer(data).data)

    @extend_schema(
        methods=["GET"],
        parameters=[CONTRACT_ID],
        responses={200: ContractPlanSerializer, **_errors(403, 404)},
    )
    @extend_schema(
        methods=["PUT"],
        parameters=[CONTRACT_ID],
        request=ContractPlanWriteSerializer,
        responses={200: ContractPlanSerializer, **_errors(400, 403, 404)},
        description=_(
            "Replace the contract's plan. The instalments must add up to the contract amount; "
            "an instalment with payments recorded against it cannot be removed."
        ),
    )
    @action(
        detail=False,
        methods=["get", "put"],
        url_path=r"contract/(?P<contract_id>[0-9]+)",
        filter_backends=[],
        pagination_class=None,
    )
    def contract(self, request, contract_id=None):
        """A contract's money and its whole receivable plan."""
        contract = get_visible_or_404(
            selectors.contracts_visible_to(user=request.user).select_related("customer"),
            request.user,
            pk=contract_id,
        )
        if request.method == "PUT":
            serializer = ContractPlanWriteSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            services.receivable_plan_set(
                actor=request.user,
                contract=contract,
                instalments=[dict(item) for item in serializer.validated_data["instalments"]],
            )
        return self._plan(contract)


# --- payments -------------------------------------------------------------------------------


def _idempotency_key(request) -> str | None:
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise ServiceError(
            _("The Idempotency-Key header is longer than %(max)d characters.")
            % {"max": IDEMPOTENCY_KEY_MAX},
            field="idempotency_key",
        )
    return key or None


@extend_schema_view(
    list=extend_schema(responses={200: PaymentSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: PaymentSerializer, **_errors(403, 404)}),
)
class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _FinanceViewSet):
    """Payments received (回款) and their reversal entries. A payment counts once finance
    confirms it. There is no update or delete: a confirmed payment is corrected by
    ``reverse``, which records a reversal entry of the opposite amount (both stay)."""

    serializer_class = PaymentSerializer
    filterset_class = PaymentApiFilter
    ordering_fields = ["received_on", "amount", "created_at", "number", "id"]
    ordering = ["-received_on", "-id"]

    def get_queryset(self):
        if self._fake():
            return Payment.objects.none()
        return selectors.payment_list_visible_to(user=self.request.user).select_related("reversal")

    def _read(self, payment: Payment, code: int = status.HTTP_200_OK) -> Response:
        fresh = self._fresh(payment)
        return Response(
            PaymentSerializer(fresh, context=self.get_serializer_context()).data, status=code
        )

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=PaymentSerializer,
        responses={
            201: PaymentSerializer,
            200: OpenApiResponse(
                PaymentSerializer,
                description=_("Repeated with the same Idempotency-Key: the first payment."),
            ),
            **_errors(400, 403, 422),
        },
        description=_(
            "Register money received against a contract. Refused (400, on amount) when the "
            "contract's received and awaiting-confirmation money would exceed its amount."
        ),
    )
    def create(self, request, *args, **kwargs):
        key = _idempotency_key(request)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            payment, created = services.payment_register(
                actor=request.user, data=dict(serializer.validated_data), idempotency_key=key
            )
        except ServiceError as exc:
            if exc.code == "idempotency_mismatch":
                return Response(exc.as_dict(), status=status.HTTP_422_UNPROCESSABLE_ENTITY)
            raise
        return self._read(payment, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=ExpectedVersionSerializer,
        responses={200: PaymentSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="approve")
    def confirm(self, request, pk=None):
        """Finance confirms the money is in the account; from now on it counts."""
        payment = self.get_object()
        serializer = ExpectedVersionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_confirm(
            actor=request.user,
            payment=payment,
            expected_version=serializer.validated_data.get("version"),
        )
        return self._read(payment)

    @extend_schema(
        request=DocumentReasonSerializer,
        responses={200: PaymentSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="approve")
    def reject(self, request, pk=None):
        """Finance found no such money: the registration is closed and never counts."""
        payment = self.get_object()
        serializer = DocumentReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_reject(
            actor=request.user,
            payment=payment,
            reason=serializer.validated_data["reason"],
            expected_version=serializer.validated_data.get("version"),
        )
        return self._read(payment)

    @extend_schema(
        request=ExpectedVersionSerializer,
        responses={200: PaymentSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="add")
    def cancel(self, request, pk=None):
        """Whoever registered the payment takes it back before it is confirmed."""
        payment = self.get_object()
        serializer = ExpectedVersionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_cancel(
            actor=request.user,
            payment=payment,
            expected_version=serializer.validated_data.get("version"),
        )
        return self._read(payment)

    @extend_schema(
        request=DocumentReasonSerializer,
        responses={
            201: OpenApiResponse(PaymentSerializer, description=_("The reversal entry.")),
            **_errors(400, 403, 404, 409),
        },
    )
    @action(detail=True, methods=["post"], perm_action="approve")
    def reverse(self, request, pk=None):
        """Correct a confirmed payment: a confirmed reversal entry of the opposite amount."""
        payment = self.get_object()
        serializer = DocumentReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reversal = services.payment_reverse(
            actor=request.user,
            payment=payment,
            reason=serializer.validated_data["reason"],
            expected_version=serializer.validated_data.get("version"),
        )
        return self._read(reversal, status.HTTP_201_CREATED)


# --- invoices -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: InvoiceSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: InvoiceSerializer, **_errors(403, 404)}),
)
class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _FinanceViewSet):
    """Invoice requests (开票). Creating one requests it (it goes through approval); finance
    ``issue``s an approved one with the invoice number and date, or ``void``s it."""

    serializer_class = InvoiceSerializer
    filterset_class = InvoiceApiFilter
    ordering_fields = ["created_at", "issued_on", "amount", "number", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        if self._fake():
            return Invoice.objects.none()
        return selectors.invoice_list_visible_to(user=self.request.user)

    def _read(self, invoice: Invoice, code: int = status.HTTP_200_OK) -> Response:
        fresh = self._fresh(invoice)
        return Response(
            InvoiceSerializer(fresh, context=self.get_serializer_context()).data, status=code
        )

    @extend_schema(
        responses={201: InvoiceSerializer, **_errors(400, 403)},
        description=_(
            "Request an invoice. Refused (400, on amount) when the contract's issued and "
            "requested invoices would exceed its amount."
        ),
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = services.invoice_request(actor=request.user, data=dict(serializer.validated_data))
        return self._read(invoice, status.HTTP_201_CREATED)

    @extend_schema(
        request=InvoiceIssueSerializer,
        responses={200: InvoiceSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="change")
    def issue(self, request, pk=None):
        """Record the approved invoice as issued, with its number and date."""
        invoice = self.get_object()
        serializer = InvoiceIssueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invoice = services.invoice_issue(
            actor=request.user,
            invoice=invoice,
            invoice_number=data["invoice_number"],
            issued_on=data.get("issued_on"),
            expected_version=data.get("version"),
        )
        return self._read(invoice)

    @extend_schema(
        request=DocumentReasonSerializer,
        responses={200: InvoiceSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="change")
    def void(self, request, pk=None):
        """Void an approved or issued invoice; an issued one stops counting."""
        invoice = self.get_object()
        serializer = DocumentReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = services.invoice_void(
            actor=request.user,
            invoice=invoice,
            reason=serializer.validated_data["reason"],
            expected_version=serializer.validated_data.get("version"),
        )
        return self._read(invoice)


# --- refunds --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: RefundSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: RefundSerializer, **_errors(403, 404)}),
)
class RefundViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _FinanceViewSet):
    """Refunds (退款) against confirmed payments; they count once approved."""

    serializer_class = RefundSerializer
    filterset_class = RefundApiFilter
    ordering_fields = ["created_at", "amount", "number", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        if self._fake():
            return Refund.objects.none()
        return selectors.refund_list_visible_to(user=self.request.user)

    @extend_schema(
        responses={201: RefundSerializer, **_errors(400, 403)},
        description=_("Never more than was received on the payment and on the contract."),
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refund = services.refund_request(
            actor=request.user,
            payment=data["payment"],
            amount=data["amount"],
            reason=data["reason"],
        )
        fresh = self._fresh(refund)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_201_CREATED)


# --- expense claims -------------------------------------------------------------------------

EXPENSE_FIELDS = ("category", "amount", "spent_on", "description", "customer", "contract")
EXPENSE_REQUEST = {"multipart/form-data": ExpenseSerializer, "application/json": ExpenseSerializer}


def _receipts_checked(files: list) -> list:
    """Every receipt checked before anything is written; errors on ``files``."""
    for file in files:
        try:
            attachment_validate(file)
        except ServiceError as exc:
            raise ServiceError(exc.message, field="files", code=exc.code) from exc
    return files


@extend_schema_view(
    list=extend_schema(responses={200: ExpenseSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: ExpenseSerializer, **_errors(403, 404)}),
    create=extend_schema(
        request=EXPENSE_REQUEST, responses={201: ExpenseSerializer, **_errors(400, 403)}
    ),
    update=extend_schema(
        request=EXPENSE_REQUEST,
        responses={200: ExpenseSerializer, **_errors(400, 403, 404, 409)},
    ),
    partial_update=extend_schema(
        request=EXPENSE_REQUEST,
        responses={200: ExpenseSerializer, **_errors(400, 403, 404, 409)},
    ),
)
class ExpenseViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    _FinanceViewSet,
):
    """Expense claims (费用报销). You claim your own expenses as a draft, change it while a
    draft or rejected (with the version you read), ``submit`` it for approval (department
    manager, then finance); finance ``pay``s an approved claim."""

    serializer_class = ExpenseSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    filterset_class = ExpenseApiFilter
    ordering_fields = ["spent_on", "amount", "created_at", "number", "id"]
    ordering = ["-spent_on", "-id"]

    def get_queryset(self):
        if self._fake():
            return ExpenseClaim.objects.none()
        return selectors.expense_list_visible_to(user=self.request.user)

    def get_permissions(self):
        # Changing one's own claim is part of claiming (finance.add), like the service says.
        if self.action in ("update", "partial_update"):
            self.perm_action = "add"
        return super().get_permissions()

    def _read(self, claim: ExpenseClaim, code: int = status.HTTP_200_OK) -> Response:
        fresh = self._fresh(claim)
        return Response(self.get_serializer(fresh).data, status=code)

    def list(self, request, *args, **kwargs):
        from kehu.core.attachments import attachments_for

        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {**self.get_serializer_context(), "attachments": attachments_for(page or [])}
        return self.get_paginated_response(ExpenseSerializer(page, many=True, context=context).data)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("version", None)
        files = _receipts_checked(data.pop("files", []))
        # The claim and its receipts are one write. (Move the receipts into the service call
        # once expense_create takes them.)
        with transaction.atomic():
            claim = services.expense_create(actor=request.user, data=data)
            for file in files:
                attachment_add(actor=request.user, obj=claim, file=file)
        return self._read(claim, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        claim = self.get_object()
        services.expense_change_allowed_check(actor=request.user, claim=claim)
        serializer = self.get_serializer(
            claim, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        version = expected_version(serializer)
        data = {name: getattr(claim, name) for name in EXPENSE_FIELDS}
        data.update(serializer.validated_data)
        files = _receipts_checked(data.pop("files", []))
        with transaction.atomic():
            claim = services.expense_update(
                actor=request.user, claim=claim, expected_version=version, data=data
            )
            for file in files:
                attachment_add(actor=request.user, obj=claim, file=file)
        return self._read(claim)

    @extend_schema(
        request=ExpectedVersionSerializer,
        responses={200: ExpenseSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="add")
    def submit(self, request, pk=None):
        """Send your draft or rejected claim for approval."""
        claim = self.get_object()
        serializer = ExpectedVersionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        claim = services.expense_submit(
            actor=request.user,
            claim=claim,
            expected_version=serializer.validated_data.get("version"),
        )
        return self._read(claim)

    @extend_schema(
        request=ExpensePaySerializer,
        responses={200: ExpenseSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="change")
    def pay(self, request, pk=None):
        """Finance records an approved claim as paid."""
        claim = self.get_object()
        serializer = ExpensePaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        claim = services.expense_pay(
            actor=request.user,
            claim=claim,
            paid_on=serializer.validated_data.get("paid_on"),
            expected_version=serializer.validated_data.get("version"),
        )
        return self._read(claim)


# --- reports --------------------------------------------------------------------------------


class _FormatSerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=["json", "xlsx", "csv"],
        required=False,
        default="json",
        help_text="xlsx or csv downloads the report (finance.export).",
    )


AGING_PAGE_SIZE = 100
REPORT_PAGE_SIZE = 50
REPORT_PAGE_SIZE_MAX = 500


def _page_size_field(default: int) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1,
        max_value=REPORT_PAGE_SIZE_MAX,
        required=False,
        default=default,
        help_text=f"Rows a page, 1 to {REPORT_PAGE_SIZE_MAX}.",
    )


class _PagedQuerySerializer(_FormatSerializer):
    """A report read a page at a time as JSON (a download has every row)."""

    page = serializers.IntegerField(
        min_value=1,
        required=False,
        default=1,
        help_text="The page of rows (JSON only: a download has every row).",
    )
    page_size = _page_size_field(REPORT_PAGE_SIZE)


class AgingQuerySerializer(_PagedQuerySerializer):
    group_by = serializers.ChoiceField(
        choices=["customer", "owner", "department"], required=False, default="customer"
    )
    page_size = _page_size_field(AGING_PAGE_SIZE)


class ReportPagination(StandardPagination):
    """The project's page numbers and links, with the reports' sizes."""

    page_size = REPORT_PAGE_SIZE
    max_page_size = REPORT_PAGE_SIZE_MAX


class AgingPagination(ReportPagination):
    page_size = AGING_PAGE_SIZE


def _page_fields(pagination: ReportPagination) -> dict:
    """The page's number, size and links of a paged report's body."""
    page = pagination.page
    assert page is not None  # paginated already
    return {
        "page": page.number,
        "page_size": page.paginator.per_page,
        "next": pagination.get_next_link(),
        "previous": pagination.get_previous_link(),
    }


class ReconciliationQuerySerializer(_PagedQuerySerializer):
    """The reconciliation's pages and filters (those of the page in the browser)."""

    contract = serializers.CharField(required=False, help_text="Part of the number or title.")
    customer = serializers.CharField(required=False, help_text="Part of the customer's name.")
    owner = serializers.IntegerField(required=False, help_text="The contract owner's id.")
    department = serializers.IntegerField(
        required=False, help_text="A department's id: its contracts and those below it."
    )
    state = serializers.ChoiceField(
        choices=[value for value, _label in RECONCILIATION_STATES], required=False
    )


class PeriodQuerySerializer(_FormatSerializer, PeriodSerializer):
    pass


def _money_column(field: str, label) -> ExportColumn:
    return ExportColumn(field, label, value=lambda row: row.get(field, ""))


def _sum(rows: list[dict], *fields: str) -> dict:
    return {f: sum((row[f] for row in rows), ZERO) for f in fields}


def _with_total_row(rows: Iterable[dict], fields: list[str], total: dict) -> Iterator[dict]:
    """The rows as they come, then ``total`` with ``fields`` summed on the way."""
    totals = dict.fromkeys(fields, ZERO)
    for row in rows:
        for name in fields:
            totals[name] += row[name]
        yield row
    yield {**total, **totals}


def _download(
    request, *, fmt: str, rows: Iterable[dict], columns: list[ExportColumn], filename: str
):
    return export_response(
        user=request.user,
        module="finance",
        model=ContractLedger,
        queryset=rows,
        columns=columns,
        fmt=fmt,
        filename=filename,
    )


def _report_schema(query, body, description, errors=(400, 403)):
    return extend_schema(
        parameters=[query],
        responses={
            (200, "application/json"): body,
            (200, XLSX): OpenApiTypes.BINARY,
            (200, "text/csv"): OpenApiTypes.STR,
            **_errors(*errors),
        },
        description=description,
    )


AGING_BUCKET_LABELS: list[tuple[str, object]] = [
    ("not_due", _("Not yet due")),
    ("d0_30", _("0–30 days")),
    ("d31_60", _("31–60 days")),
    ("d61_90", _("61–90 days")),
    ("d90_plus", _("Over 90 days")),
    ("total", _("Total outstanding")),
]


class ReportViewSet(viewsets.ViewSet):
    """Finance reports over the caller's data scope; ``?format=xlsx`` downloads one."""

    module = "finance"
    perm_action: str | None = None
    permission_classes = [permissions.IsAuthenticated, ModulePermission]

    def perform_content_negotiation(self, request, force=False):
        # ``?format=xlsx|csv`` names the file format, not a DRF renderer; errors are JSON.
        return JSONRenderer(), JSONRenderer.media_type

    def _query(self, serializer_class, request) -> dict:
        serializer = serializer_class(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @_report_schema(
        AgingQuerySerializer,
        AgingReportSerializer,
        _(
            "Outstanding instalment amounts by days past due (0–30, 31–60, 61–90, over 90) "
            "per customer, owner or department, largest total first (customers tied by "
            "id), a page of rows at a time; the totals and the count cover the whole scope. "
            "Pages stop at the list cap (10,000 rows unless configured; 404 beyond): the "
            "download (format=xlsx or csv) has every row. Contracts without a receivable "
            "plan are not aged."
        ),
        errors=(400, 403, 404),
    )
    @action(detail=False, methods=["get"], url_path="receivables-aging")
    def receivables_aging(self, request):
        query = self._query(AgingQuerySerializer, request)
        today = timezone.localdate()
        if query["format"] == "json":
            return self._aging_page(request, query, today)
        rows = selectors.receivables_aging_stream(
            user=request.user, group_by=query["group_by"], today=today
        )
        heading = {
            "customer": _("Customer"),
            "owner": _("Owner"),
            "department": _("Department"),
        }[query["group_by"]]
        columns = [ExportColumn("label", heading, value=lambda row: row["label"])]
        columns += [_money_column(name, label) for name, label in AGING_BUCKET_LABELS]
        return _download(
            request,
            fmt=query["format"],
            rows=_with_total_row(
                rows, [name for name, _label in AGING_BUCKET_LABELS], {"label": str(_("Total"))}
            ),
            columns=columns,
            filename="receivables-aging",
        )

    def _aging_page(self, request, query: dict, today: datetime.date) -> Response:
        """One page of rows, read from the stored aggregates; totals and count of all."""
        totals = selectors.receivables_aging_totals(user=request.user, today=today)
        rows = selectors.receivables_aging_pageable(
            user=request.user,
            group_by=query["group_by"],
            today=today,
            debtors=totals["customers"],
        )
        cap = list_count_cap()
        if cap <= (query["page"] - 1) * query["page_size"] < len(rows):
            raise NotFound(
                _(
                    "Pages stop at the first %(cap)s rows: download the report "
                    "(format=xlsx or csv) for all of them."
                )
                % {"cap": f"{cap:,}"}
            )
        pagination = AgingPagination()
        page = pagination.paginate_queryset(rows, request, view=self)
        body = {
            "group_by": query["group_by"],
            "as_of": today,
            "count": len(rows),
            **_page_fields(pagination),
            "rows": page,
            "totals": totals,
        }
        return Response(AgingReportSerializer(body).data)

    @_report_schema(
        ReconciliationQuerySerializer,
        ReconciliationReportSerializer,
        _(
            "Per contract in force (or that was): amount, received, invoiced, outstanding "
            "and overdue, newest signed first, a page at a time, narrowed by the filters. "
            "The totals cover every page while the count is exact (at most the list cap, "
            "10,000 unless configured); over it they are null: narrow the filters. The "
            "download (format=xlsx or csv) has every row and their totals."
        ),
    )
    @action(detail=False, methods=["get"])
    def reconciliation(self, request):
        query = self._query(ReconciliationQuerySerializer, request)
        form = ReconciliationFilterForm(request.query_params, actor=request.user)
        if not form.is_valid():
            raise serializers.ValidationError(
                {name: list(errors) for name, errors in form.errors.items()}
            )
        contracts = form.apply(selectors.contract_reconciliation(user=request.user))
        if query["format"] != "json":
            contract_value: dict[str, Callable] = {
                "contract_number": lambda c: c.number,
                "title": lambda c: c.title,
                "customer_name": lambda c: c.customer.name,
                "owner_name": lambda c: c.owner.name,
                "currency": lambda c: c.currency,
            }

            def text(name: str) -> Callable:
                getter = contract_value[name]
                return lambda row: getter(row["contract"]) if row.get("contract") else ""

            columns = [
                ExportColumn("contract_number", _("Contract"), value=text("contract_number")),
                ExportColumn("title", _("Title"), value=text("title")),
                ExportColumn("customer_name", _("Customer"), value=text("customer_name")),
                ExportColumn("owner_name", _("Owner"), value=text("owner_name")),
                ExportColumn("currency", _("Currency"), value=text("currency")),
                _money_column("total", _("Contract amount")),
                _money_column("received", _("Received")),
                _money_column("invoiced", _("Invoiced")),
                _money_column("outstanding", _("Outstanding")),
                _money_column("overdue", _("Overdue")),
            ]
            contracts = selectors.reconciliation_download(contracts)
            rows = map(selectors.reconciliation_row, contracts.iterator(chunk_size=EXPORT_CHUNK))
            return _download(
                request,
                fmt=query["format"],
                rows=_with_total_row(rows, list(selectors.RECONCILIATION_SUMS), {"contract": None}),
                columns=columns,
                filename="reconciliation",
            )
        pagination = ReportPagination()
        page = pagination.paginate_queryset(contracts, request, view=self)
        paginator = pagination.page.paginator
        body = {
            "as_of": timezone.localdate(),
            "count": paginator.count,
            "count_capped": paginator.capped,
            **_page_fields(pagination),
            "rows": [selectors.reconciliation_row(c) for c in page or ()],
            "totals": selectors.reconciliation_totals(contracts) if paginator.exact else None,
        }
        return Response(ReconciliationReportSerializer(body).data)

    def _period(self, request) -> tuple[datetime.date, datetime.date, str]:
        query = self._query(PeriodQuerySerializer, request)
        today = timezone.localdate()
        end = query.get("end") or today
        start = query.get("start") or end.replace(month=1, day=1)
        if start > end:
            raise ServiceError(_("The end is before the start."), field="end")
        return start, end, query["format"]

    @_report_schema(
        PeriodQuerySerializer,
        CollectionReportSerializer,
        _(
            "Net money received per month between start and end (default: this year so "
            "far): confirmed payments (reversals negative) less approved refunds."
        ),
    )
    @action(detail=False, methods=["get"])
    def collections(self, request):
        start, end, fmt = self._period(request)
        rows = selectors.collections_by_month(user=request.user, start=start, end=end)
        totals = _sum(rows, "received", "refunded", "net")
        if fmt != "json":
            columns = [
                ExportColumn(
                    "month",
                    _("Month"),
                    value=lambda row: row["month"].strftime("%Y-%m") if row.get("month") else "",
                ),
                _money_column("received", _("Received")),
                _money_column("refunded", _("Refunded")),
                _money_column("net", _("Net")),
            ]
            return _download(
                request,
                fmt=fmt,
                rows=[*rows, {"month": None, **totals}],
                columns=columns,
                filename="collections",
            )
        body = {"start": start, "end": end, "rows": rows, "totals": totals}
        return Response(CollectionReportSerializer(body).data)

    @_report_schema(
        PeriodQuerySerializer,
        ExpenseReportSerializer,
        _(
            "Approved and paid expense claims by category and department between start and "
            "end (default: this year so far)."
        ),
    )
    @action(detail=False, methods=["get"])
    def expenses(self, request):
        start, end, fmt = self._period(request)
        rows = selectors.expenses_by_category(user=request.user, start=start, end=end)
        totals = _sum(rows, "amount")
        if fmt != "json":
            columns = [
                ExportColumn("category", _("Category"), value=lambda row: row["category"]),
                ExportColumn("department", _("Department"), value=lambda row: row["department"]),
                _money_column("amount", _("Amount")),
            ]
            return _download(
                request,
                fmt=fmt,
                rows=[*rows, {"category": str(_("Total")), "department": "", **totals}],
                columns=columns,
                filename="expenses",
            )
        body = {"start": start, "end": end, "rows": rows, "totals": totals}
        return Response(ExpenseReportSerializer(body).data)


def register(router) -> None:
    """Add this module's viewsets to the API router."""
    router.register("receivable-plans", ReceivablePlanViewSet, basename="receivable-plan")
    router.register("payments", PaymentViewSet, basename="payment")
    router.register("invoices", InvoiceViewSet, basename="invoice")
    router.register("refunds", RefundViewSet, basename="refund")
    router.register("expenses", ExpenseViewSet, basename="expense")
    router.register("reports", ReportViewSet, basename="report")
