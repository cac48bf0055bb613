"""/api/v1/quotes/, /contracts/, /orders/ and /shipments/: thin over the sales services.

Every list, detail and action reads through kehu.sales.selectors (data scope: a document
outside it is a 404); every write calls kehu.sales.services, the same functions the pages
call, so a refused request changes nothing and answers 400/403/404/409. Numbers, statuses,
amounts, departments and shipped quantities are the server's; ``owner`` is kept only from
callers who may assign (sales.assign).
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import HttpResponse
from django.utils import translation
from django.utils.functional import Promise
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
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.generics import get_object_or_404
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from kehu.approvals.models import ApprovalRequest, ApprovalStatus
from kehu.core.api import ModulePermission, expected_version
from kehu.core.exceptions import ServiceError
from kehu.core.exports import export_record_logged
from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import visible_to
from kehu.customers.linked_search import LinkedSearchFilter
from kehu.customers.models import Customer, Opportunity
from kehu.sales import selectors, services
from kehu.sales.api_filters import ContractFilter, OrderFilter, QuoteFilter, ShipmentFilter
from kehu.sales.filters import shipment_search_q
from kehu.sales.models import (
    Contract,
    ContractLine,
    Order,
    OrderLine,
    Quote,
    QuoteLine,
    Shipment,
    ShipmentLine,
)
from kehu.sales.serializers import (
    AmendmentSerializer,
    ContractAmendSerializer,
    ContractOrderSerializer,
    ContractSerializer,
    OrderCancelSerializer,
    OrderReturnSerializer,
    OrderSerializer,
    OrderShipSerializer,
    QuoteConvertSerializer,
    QuoteSerializer,
    SalesCommentSerializer,
    SalesReasonSerializer,
    SalesVersionSerializer,
    ShipmentSerializer,
)

ERRORS = {
    400: OpenApiResponse(description=_("Invalid input or a step the status does not allow.")),
    403: OpenApiResponse(description=_("Permission denied.")),
    404: OpenApiResponse(description=_("Not found or outside your data scope.")),
    409: OpenApiResponse(description=_("Stale version: someone else changed the record.")),
}
PDF_LANGUAGES = ("zh-hans", "en")


def _errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in codes}


def _crud_schema(serializer, *, deletable: str | Promise):
    return extend_schema_view(
        list=extend_schema(responses={200: serializer(many=True), **_errors(403)}),
        retrieve=extend_schema(responses={200: serializer, **_errors(403, 404)}),
        create=extend_schema(responses={201: serializer, **_errors(400, 403)}),
        update=extend_schema(responses={200: serializer, **_errors(400, 403, 404, 409)}),
        partial_update=extend_schema(responses={200: serializer, **_errors(400, 403, 404, 409)}),
        destroy=extend_schema(
            responses={204: None, **_errors(400, 403, 404)}, description=deletable
        ),
    )


def _action_schema(request, response, *codes: int, status_code: int = 200, **kwargs):
    return extend_schema(
        request=request, responses={status_code: response, **_errors(*codes)}, **kwargs
    )


PDF_SCHEMA = extend_schema(
    parameters=[
        OpenApiParameter(
            "lang",
            str,
            enum=list(PDF_LANGUAGES),
            description=_("Language of the document; defaults to the request's language."),
        )
    ],
    responses={(200, "application/pdf"): OpenApiTypes.BINARY, **_errors(400, 403, 404)},
)


def _pdf_response(render: str, document, request) -> HttpResponse:
    """The printable document; ``kehu.sales.pdf`` is imported when first asked for."""
    language = request.query_params.get("lang") or (
        "zh-hans" if (translation.get_language() or "").startswith("zh") else "en"
    )
    if language not in PDF_LANGUAGES:
        raise ServiceError(_("Choose zh-hans or en."), field="lang")
    from kehu.sales import pdf

    kind = type(document)._meta.model_name
    content = getattr(pdf, render)(**{kind: document, "language": language})
    export_record_logged(user=request.user, obj=document, filename=f"{document.number}.pdf")
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{document.number}.pdf"'
    return response


class _SalesViewSet(viewsets.GenericViewSet):
    module = "sales"
    perm_action: str | None = None  # custom actions set it (ModulePermission reads it)
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    filter_backends = [DjangoFilterBackend, SearchFilter, OrderingFilter]
    model: Any = None

    def scoped(self) -> QuerySet:
        """The selector's scoped queryset, with what the serializer reads fetched."""
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return self.model.objects.none()
        return self.scoped()

    def get_object(self):
        # Through the scoped selector only: missing and out of scope are the same 404.
        document = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, document)
        return document

    def perform_content_negotiation(self, request, force=False):
        if self.action == "pdf":
            # The PDF is whatever the client accepts; errors are JSON.
            return JSONRenderer(), JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    def _valid(self, serializer_class) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _read(self, document, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.scoped().get(pk=document.pk)
        serializer = self.get_serializer_class()(fresh, context=self.get_serializer_context())
        return Response(serializer.data, status=code)


class _DocumentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    _SalesViewSet,
):
    """Quotes, contracts and orders: create and update with their lines, through services."""

    # and the customer's name (LinkedSearchFilter)
    search_fields = ["title"]
    search_codes = ["number"]
    filter_backends = [DjangoFilterBackend, LinkedSearchFilter, OrderingFilter]

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if self.action in ("create", "update", "partial_update") and not getattr(
            self, "swagger_fake_view", False
        ):
            user = self.request.user
            fields = serializer.fields
            # Only documents the caller can see are valid choices (others read as missing).
            fields["customer"].queryset = visible_to(Customer.objects.all(), user)
            if "opportunity" in fields:
                fields["opportunity"].queryset = visible_to(Opportunity.objects.all(), user)
            if isinstance(fields.get("contract"), serializers.PrimaryKeyRelatedField):
                fields["contract"].queryset = selectors.contract_list_visible_to(user=user)
        return serializer

    def _payload(self, serializer) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        data = dict(serializer.validated_data)
        data.pop("version", None)
        lines = data.pop("lines", None)
        if "owner" in data and not has_perm(self.request.user, "sales.assign"):
            data.pop("owner")  # the server decides the owner
        return data, [dict(line) for line in lines] if lines is not None else None

    def document_create(self, *, data, lines):
        raise NotImplementedError

    def document_update(self, document, *, version, data, lines):
        raise NotImplementedError

    def document_delete(self, document) -> None:
        raise NotImplementedError

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data, lines = self._payload(serializer)
        document = self.document_create(data=data, lines=lines)
        return self._read(document, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        document = self.get_object()
        serializer = self.get_serializer(
            document, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        version = expected_version(serializer)
        data, lines = self._payload(serializer)
        document = self.document_update(document, version=version, data=data, lines=lines)
        return self._read(document)

    def destroy(self, request, *args, **kwargs):
        self.document_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- quotes ---------------------------------------------------------------------------------


@_crud_schema(QuoteSerializer, deletable=_("Draft and sent quotes only (sales.delete)."))
class QuoteViewSet(_DocumentViewSet):
    """Quotes (报价单) in the caller's data scope; updates carry the version read."""

    model = Quote
    serializer_class = QuoteSerializer
    filterset_class = QuoteFilter
    ordering_fields = ["id", "number", "quote_date", "valid_until", "total_amount", "created_at"]
    ordering = ["-quote_date", "-id"]

    def scoped(self):
        return (
            selectors.quote_list_visible_to(user=self.request.user)
            .select_related("contract")
            .prefetch_related(
                Prefetch("lines", queryset=QuoteLine.objects.select_related("product"))
            )
        )

    def document_create(self, *, data, lines):
        return services.quote_create(actor=self.request.user, data=data, lines=lines)

    def document_update(self, document, *, version, data, lines):
        return services.quote_update(
            actor=self.request.user,
            quote=document,
            expected_version=version,
            data=data,
            lines=lines,
        )

    def document_delete(self, document) -> None:
        services.quote_delete(actor=self.request.user, quote=document)

    @_action_schema(SalesVersionSerializer, QuoteSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="change")
    def send(self, request, pk=None):
        """A draft quote goes to the customer."""
        quote = services.quote_send(
            actor=request.user,
            quote=self.get_object(),
            expected_version=self._valid(SalesVersionSerializer).get("version"),
        )
        return self._read(quote)

    @_action_schema(SalesVersionSerializer, QuoteSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="change")
    def accept(self, request, pk=None):
        """The customer accepted a sent quote."""
        quote = services.quote_accept(
            actor=request.user,
            quote=self.get_object(),
            expected_version=self._valid(SalesVersionSerializer).get("version"),
        )
        return self._read(quote)

    @_action_schema(SalesReasonSerializer, QuoteSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="change")
    def reject(self, request, pk=None):
        """The customer turned a sent quote down; say why."""
        # Out of scope is a 404 before the body is read: a refusal never answers 400.
        target = self.get_object()
        payload = self._valid(SalesReasonSerializer)
        quote = services.quote_reject(
            actor=request.user,
            quote=target,
            reason=payload["reason"],
            expected_version=payload.get("version"),
        )
        return self._read(quote)

    @_action_schema(QuoteConvertSerializer, ContractSerializer, 400, 403, 404, 409, status_code=201)
    @action(detail=True, methods=["post"], perm_action="add")
    def convert(self, request, pk=None):
        """A sent or accepted quote becomes a draft contract with the same lines."""
        quote = self.get_object()
        payload = self._valid(QuoteConvertSerializer)
        version = payload.pop("version", None)
        contract = services.quote_convert_to_contract(
            actor=request.user, quote=quote, data=payload, expected_version=version
        )
        fresh = _contracts(request.user).get(pk=contract.pk)
        return Response(
            ContractSerializer(fresh, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @PDF_SCHEMA
    @action(detail=True, methods=["get"], perm_action="view", filter_backends=[])
    def pdf(self, request, pk=None):
        """The printable quote (``?lang=zh-hans|en``)."""
        return _pdf_response("quote_pdf", self.get_object(), request)


# --- contracts ------------------------------------------------------------------------------


def _contracts(user) -> QuerySet[Contract]:
    """Scoped contracts with their lines and the approval request they wait for."""
    pending = ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(Contract),
        object_id=OuterRef("pk"),
        status=ApprovalStatus.PENDING,
    ).values("pk")[:1]
    return (
        selectors.contract_list_visible_to(user=user)
        .annotate(approval_request=Subquery(pending))
        .prefetch_related(
            Prefetch("lines", queryset=ContractLine.objects.select_related("product"))
        )
    )


def _orders(user) -> QuerySet[Order]:
    return selectors.order_list_visible_to(user=user).prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("product"))
    )


def _shipments(user) -> QuerySet[Shipment]:
    return selectors.shipment_list_visible_to(user=user).prefetch_related(
        Prefetch("lines", queryset=ShipmentLine.objects.select_related("order_line__product"))
    )


@_crud_schema(ContractSerializer, deletable=_("Draft and rejected contracts only (sales.delete)."))
class ContractViewSet(_DocumentViewSet):
    """Contracts (合同) in the caller's data scope. Drafts and rejected contracts are edited
    here; an active contract changes only through an amendment (``amend``)."""

    model = Contract
    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    ordering_fields = [
        "id",
        "number",
        "signed_on",
        "end_date",
        "total_amount",
        "created_at",
        "updated_at",
    ]
    ordering = ["-created_at", "-id"]

    def scoped(self):
        return _contracts(self.request.user)

    def document_create(self, *, data, lines):
        return services.contract_create(actor=self.request.user, data=data, lines=lines)

    def document_update(self, document, *, version, data, lines):
        return services.contract_update(
            actor=self.request.user,
            contract=document,
            expected_version=version,
            data=data,
            lines=lines,
        )

    def document_delete(self, document) -> None:
        services.contract_delete(actor=self.request.user, contract=document)

    @_action_schema(SalesCommentSerializer, ContractSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="change")
    def submit(self, request, pk=None):
        """Send a draft or rejected contract for approval (active at once when no rule
        applies)."""
        payload = self._valid(SalesCommentSerializer)
        contract = services.contract_submit(
            actor=request.user,
            contract=self.get_object(),
            expected_version=payload.get("version"),
            comment=payload["comment"],
        )
        return self._read(contract)

    @_action_schema(SalesVersionSerializer, ContractSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="change")
    def complete(self, request, pk=None):
        """An active contract has been fulfilled."""
        contract = services.contract_complete(
            actor=request.user,
            contract=self.get_object(),
            expected_version=self._valid(SalesVersionSerializer).get("version"),
        )
        return self._read(contract)

    @_action_schema(SalesReasonSerializer, ContractSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="change")
    def terminate(self, request, pk=None):
        """End an active contract early; say why."""
        # Out of scope is a 404 before the body is read: a refusal never answers 400.
        target = self.get_object()
        payload = self._valid(SalesReasonSerializer)
        contract = services.contract_terminate(
            actor=request.user,
            contract=target,
            reason=payload["reason"],
            expected_version=payload.get("version"),
        )
        return self._read(contract)

    @_action_schema(
        ContractAmendSerializer, AmendmentSerializer, 400, 403, 404, 409, status_code=201
    )
    @action(detail=True, methods=["post"], perm_action="change")
    def amend(self, request, pk=None):
        """Propose a change to an active contract (header fields and/or all its lines). It
        is applied when approved, at once when no approval rule applies."""
        contract = self.get_object()
        payload = self._valid(ContractAmendSerializer)
        lines = payload.get("lines")
        amendment = services.contract_amend(
            actor=request.user,
            contract=contract,
            expected_version=payload.get("version"),
            reason=payload["reason"],
            data=dict(payload.get("data") or {}),
            lines=[dict(line) for line in lines] if lines is not None else None,
        )
        fresh = selectors.amendment_get_for(user=request.user, pk=amendment.pk)
        return Response(
            AmendmentSerializer(fresh, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(responses={200: AmendmentSerializer(many=True), **_errors(403, 404)})
    @action(
        detail=True,
        methods=["get"],
        perm_action="view",
        filter_backends=[],
        pagination_class=None,
    )
    def amendments(self, request, pk=None):
        """The contract's amendments, oldest first."""
        contract = self.get_object()
        rows = selectors.amendment_list_visible_to(user=request.user).filter(contract=contract)
        return Response(
            AmendmentSerializer(rows, many=True, context=self.get_serializer_context()).data
        )

    @_action_schema(ContractOrderSerializer, OrderSerializer, 400, 403, 404, status_code=201)
    @action(detail=True, methods=["post"], perm_action="add")
    def orders(self, request, pk=None):
        """Place an order against an active contract, priced as on the contract; without
        lines, everything not yet ordered."""
        contract = self.get_object()
        payload = self._valid(ContractOrderSerializer)
        lines = payload.pop("lines", None) or None
        if "title" in payload and not payload["title"]:
            payload.pop("title")  # the contract's title
        order = services.order_create_from_contract(
            actor=request.user,
            contract=contract,
            data=payload,
            lines=[dict(line) for line in lines] if lines else None,
        )
        fresh = _orders(request.user).get(pk=order.pk)
        return Response(
            OrderSerializer(fresh, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @PDF_SCHEMA
    @action(detail=True, methods=["get"], perm_action="view", filter_backends=[])
    def pdf(self, request, pk=None):
        """The printable contract (``?lang=zh-hans|en``)."""
        return _pdf_response("contract_pdf", self.get_object(), request)


# --- orders ---------------------------------------------------------------------------------


@_crud_schema(OrderSerializer, deletable=_("Pending orders only (sales.delete)."))
class OrderViewSet(_DocumentViewSet):
    """Orders (订单): standalone, or against an active contract (``contract`` with contract
    lines). Pending orders are edited; shipping and returns move stock and need the
    warehouse's permission (products.change)."""

    model = Order
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    ordering_fields = ["id", "number", "order_date", "ship_by", "total_amount", "created_at"]
    ordering = ["-order_date", "-id"]

    def scoped(self):
        return _orders(self.request.user)

    def document_create(self, *, data, lines):
        return services.order_create(actor=self.request.user, data=data, lines=lines)

    def document_update(self, document, *, version, data, lines):
        return services.order_update(
            actor=self.request.user,
            order=document,
            expected_version=version,
            data=data,
            lines=lines,
        )

    def document_delete(self, document) -> None:
        services.order_delete(actor=self.request.user, order=document)

    def _shipment_read(self, shipment) -> Response:
        fresh = _shipments(self.request.user).get(pk=shipment.pk)
        return Response(
            ShipmentSerializer(fresh, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @_action_schema(SalesVersionSerializer, OrderSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="change")
    def confirm(self, request, pk=None):
        """A pending order is confirmed and may be shipped."""
        order = services.order_confirm(
            actor=request.user,
            order=self.get_object(),
            expected_version=self._valid(SalesVersionSerializer).get("version"),
        )
        return self._read(order)

    @_action_schema(OrderShipSerializer, ShipmentSerializer, 400, 403, 404, status_code=201)
    @action(detail=True, methods=["post"], perm_action="view")
    def ship(self, request, pk=None):
        """Ship some lines (or, without lines, everything outstanding) of a confirmed order;
        posts the stock movements. Needs products.change (the warehouse)."""
        order = self.get_object()
        require_perm(request.user, "products.change")  # before the body: refused is a 403
        serializer = OrderShipSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        shipment = services.order_ship(
            actor=request.user,
            order=order,
            quantities=serializer.quantities(),
            warehouse=data.get("warehouse"),
            shipped_on=data.get("shipped_on"),
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
            note=data["note"],
        )
        return self._shipment_read(shipment)

    @_action_schema(OrderReturnSerializer, ShipmentSerializer, 400, 403, 404, status_code=201)
    @action(detail=True, methods=["post"], perm_action="view", url_path="return")
    def return_goods(self, request, pk=None):
        """Take shipped goods back into stock; say why. Needs products.change."""
        order = self.get_object()
        require_perm(request.user, "products.change")  # before the body: refused is a 403
        serializer = OrderReturnSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        shipment = services.order_return(
            actor=request.user,
            order=order,
            quantities=serializer.quantities(),
            reason=data["reason"],
            warehouse=data.get("warehouse"),
            returned_on=data.get("returned_on"),
        )
        return self._shipment_read(shipment)

    @_action_schema(OrderCancelSerializer, OrderSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="view")
    def cancel(self, request, pk=None):
        """Cancel an order that is not completed (sales.change); goods already out come
        back into stock first, which only the warehouse (products.change) may do. A
        reason is required."""
        # Out of scope is a 404 before the body is read, and the service checks who may
        # cancel before the reason: a refusal never answers 400.
        target = self.get_object()
        payload = self._valid(OrderCancelSerializer)
        order = services.order_cancel(
            actor=request.user,
            order=target,
            reason=payload["reason"],
            expected_version=payload.get("version"),
        )
        return self._read(order)

    @_action_schema(SalesVersionSerializer, OrderSerializer, 400, 403, 404, 409)
    @action(detail=True, methods=["post"], perm_action="change")
    def complete(self, request, pk=None):
        """A shipped order is closed."""
        order = services.order_complete(
            actor=request.user,
            order=self.get_object(),
            expected_version=self._valid(SalesVersionSerializer).get("version"),
        )
        return self._read(order)


# --- shipments ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: ShipmentSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: ShipmentSerializer, **_errors(403, 404)}),
)
class ShipmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _SalesViewSet):
    """Shipments and returns of the orders in the caller's data scope (read only: they
    are made by the orders' ``ship`` and ``return`` actions)."""

    model = Shipment
    serializer_class = ShipmentSerializer
    filterset_class = ShipmentFilter
    filter_backends = [DjangoFilterBackend, LinkedSearchFilter, OrderingFilter]

    @staticmethod
    def search_q(query: str):
        """``?search=``: number, tracking number, the order's number or customer."""
        return shipment_search_q(query)

    ordering_fields = ["id", "number", "shipped_on", "created_at"]
    ordering = ["-shipped_on", "-id"]

    def scoped(self):
        return _shipments(self.request.user)


def register(router) -> None:
    """Add this module's viewsets to the API router."""
    router.register("quotes", QuoteViewSet, basename="quote")
    router.register("contracts", ContractViewSet, basename="contract")
    router.register("orders", OrderViewSet, basename="order")
    router.register("shipments", ShipmentViewSet, basename="shipment")
