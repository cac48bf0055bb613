"""/api/v1/customers/, /contacts/ and /followups/: thin over the customer services.

Lists and details read through the selectors (data scope; the pool is its own list and
is readable by everyone with customers.view); writes go through the same services as the
web pages, so a refused request changes nothing and answers 400/403/404/409.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import BaseFilterBackend, OrderingFilter
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from kehu.core.api import ModulePermission, expected_version
from kehu.core.scope import visible_to
from kehu.customers import selectors, services
from kehu.customers.filters import ContactFilter, CustomerFilter, FollowUpFilter
from kehu.customers.models import Customer, FollowUp
from kehu.customers.serializers import (
    ContactSerializer,
    CustomerCreateSerializer,
    CustomerSerializer,
    FollowUpSerializer,
    ReasonSerializer,
    TimelineEntrySerializer,
    TransferSerializer,
)

ERRORS = {
    400: OpenApiResponse(description=_("Invalid input: field messages.")),
    403: OpenApiResponse(description=_("Permission denied.")),
    404: OpenApiResponse(description=_("Not found or outside your data scope.")),
    409: OpenApiResponse(description=_("Stale version: someone else changed the record.")),
}


def _errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in codes}


class CustomerSearchFilter(BaseFilterBackend):
    """``?search=``: name substring, pinyin initials, phone, e-mail, contact name."""

    def filter_queryset(self, request, queryset, view):
        query = request.query_params.get("search", "").strip()
        if not query:
            return queryset
        return queryset.filter(selectors.customer_search_q(user=request.user, query=query))

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "search",
                "required": False,
                "in": "query",
                "description": str(
                    _("Name (substring or pinyin initials), phone, e-mail or contact name.")
                ),
                "schema": {"type": "string"},
            }
        ]


class _ModuleViewSet(viewsets.GenericViewSet):
    module = "customers"
    perm_action: str | None = None  # custom actions set it (ModulePermission reads it)
    permission_classes = [permissions.IsAuthenticated, ModulePermission]


@extend_schema_view(
    list=extend_schema(responses={200: CustomerSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: CustomerSerializer, **_errors(403, 404)}),
    create=extend_schema(
        request=CustomerCreateSerializer,
        responses={201: CustomerSerializer, **_errors(400, 403)},
        description=_(
            "A name, phone number or e-mail matching an existing customer answers 400 with "
            '"duplicates" unless "allow_duplicate" is true.'
        ),
    ),
    update=extend_schema(responses={200: CustomerSerializer, **_errors(400, 403, 404, 409)}),
    partial_update=extend_schema(
        responses={200: CustomerSerializer, **_errors(400, 403, 404, 409)}
    ),
    destroy=extend_schema(responses={204: None, **_errors(403, 404)}),
)
class CustomerViewSet(  # type: ignore[misc]
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    _ModuleViewSet,
):
    """Customers in the caller's data scope (the pool: ``pool/``)."""

    serializer_class = CustomerSerializer
    queryset = Customer.objects.none()
    filter_backends = [DjangoFilterBackend, CustomerSearchFilter, OrderingFilter]
    filterset_class = CustomerFilter
    ordering_fields = [
        "id",
        "code",
        "name",
        "stage",
        "created_at",
        "updated_at",
        "last_followup_at",
        "next_followup_at",
        "pool_entered_at",
    ]
    ordering = ["-id"]

    def get_queryset(self):
        user = self.request.user
        if getattr(self, "swagger_fake_view", False):
            return Customer.objects.none()
        if self.action == "list":
            return selectors.customer_list_visible_to(user=user)
        if self.action == "pool":
            return selectors.pool_list(user=user)
        if self.action in ("retrieve", "timeline"):
            # Pool customers are readable by anyone who may view customers.
            return Customer.objects.filter(selectors.customer_readable_q(user)).select_related(
                *selectors.LIST_RELATED
            )
        # Writes and moves: only customers in the caller's scope (pool ones: admins).
        return visible_to(Customer.objects.select_related(*selectors.LIST_RELATED), user)

    def get_serializer_class(self):
        if self.action == "create":
            return CustomerCreateSerializer
        if self.action == "transfer":
            return TransferSerializer
        if self.action == "return_to_pool":
            return ReasonSerializer
        return CustomerSerializer

    def _split(self, validated: dict) -> tuple[dict, dict]:
        data = dict(validated)
        extra = {
            "tags": data.pop("tags", None),
            "custom_fields": data.pop("custom_fields", None),
            "allow_duplicate": data.pop("allow_duplicate", False),
        }
        data.pop("version", None)
        return data, extra

    def _read(self, customer: Customer, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.customer_get_for(user=self.request.user, pk=customer.pk)
        return Response(
            CustomerSerializer(fresh, context=self.get_serializer_context()).data, status=code
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data, extra = self._split(serializer.validated_data)
        owner = data.pop("owner", None)
        customer = services.customer_create(
            actor=request.user,
            data=data,
            tags=extra["tags"] or (),
            custom_fields=extra["custom_fields"],
            owner=owner,
            allow_duplicate=extra["allow_duplicate"],
        )
        return self._read(customer, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        customer = self.get_object()
        serializer = self.get_serializer(
            customer, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        version = expected_version(serializer)
        data, extra = self._split(serializer.validated_data)
        customer = services.customer_update(
            actor=request.user,
            customer=customer,
            expected_version=version,
            data=data,
            tags=extra["tags"],
            custom_fields=extra["custom_fields"],
            allow_duplicate=extra["allow_duplicate"],
        )
        return self._read(customer)

    def destroy(self, request, *args, **kwargs):
        services.customer_delete(actor=request.user, customer=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=ReasonSerializer, responses={200: CustomerSerializer, **_errors(400, 403, 404)}
    )
    @action(detail=True, methods=["post"], url_path="return-to-pool", perm_action="view")
    def return_to_pool(self, request, pk=None):
        """The owner (or a manager with customers.assign) returns the customer to the pool."""
        customer = self.get_object()
        services.customer_return_allowed_check(actor=request.user, customer=customer)
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.customer_return_to_pool(
            actor=request.user, customer=customer, reason=serializer.validated_data["reason"]
        )
        return self._read(customer)

    @extend_schema(request=None, responses={200: CustomerSerializer, **_errors(400, 403, 404)})
    @action(detail=True, methods=["post"], perm_action="change")
    def claim(self, request, pk=None):
        """Claim a pool customer; an id that is not in the pool is a 404."""
        customer = selectors.pool_customer_get_for_claim(user=request.user, pk=pk)
        customer = services.customer_claim(actor=request.user, customer=customer)
        return self._read(customer)

    @extend_schema(
        request=TransferSerializer, responses={200: CustomerSerializer, **_errors(400, 403, 404)}
    )
    @action(detail=True, methods=["post"], perm_action="assign")
    def transfer(self, request, pk=None):
        """Give the customer to another salesperson; a reason is required."""
        customer = self.get_object()
        serializer = TransferSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.customer_transfer(
            actor=request.user,
            customer=customer,
            owner=serializer.validated_data["owner"],
            reason=serializer.validated_data["reason"],
        )
        return self._read(customer)

    @extend_schema(responses={200: CustomerSerializer(many=True), **_errors(403)})
    @action(detail=False, methods=["get"], perm_action="view")
    def pool(self, request):
        """The public pool: every unowned customer, for anyone with customers.view."""
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        serializer = CustomerSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)

    @extend_schema(responses={200: TimelineEntrySerializer(many=True), **_errors(403, 404)})
    @action(
        detail=True,
        methods=["get"],
        perm_action="view",
        filter_backends=[],
        pagination_class=None,  # the whole timeline in one list
    )
    def timeline(self, request, pk=None):
        """Ownership moves, stage changes, follow-ups and opportunities, newest first."""
        customer = self.get_object()
        entries = [_timeline_row(e) for e in selectors.customer_timeline(customer=customer)]
        return Response(TimelineEntrySerializer(entries, many=True).data)


def _timeline_row(entry) -> dict:
    obj = entry.obj
    if entry.kind == "event":
        detail = " → ".join(
            str(u) for u in (obj.from_owner, obj.to_owner) if u is not None
        ) or ", ".join(f"{k}: {v}" for k, v in (obj.data or {}).items())
        if obj.reason:
            detail = f"{detail} ({obj.reason})" if detail else obj.reason
        return {
            "kind": f"event.{obj.kind}",
            "at": entry.at,
            "title": obj.get_kind_display(),
            "detail": detail,
            "user": str(obj.actor) if obj.actor else None,
        }
    if entry.kind == "followup":
        return {
            "kind": "followup",
            "at": entry.at,
            "title": str(obj.method or _("Follow-up")),
            "detail": obj.content,
            "user": str(obj.author),
        }
    return {
        "kind": "opportunity",
        "at": entry.at,
        "title": obj.title,
        "detail": f"{obj.stage} · {obj.amount} {obj.currency}",
        "user": str(obj.owner),
    }


@extend_schema_view(
    list=extend_schema(responses={200: ContactSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: ContactSerializer, **_errors(403, 404)}),
    create=extend_schema(responses={201: ContactSerializer, **_errors(400, 403, 404)}),
    update=extend_schema(responses={200: ContactSerializer, **_errors(400, 403, 404, 409)}),
    partial_update=extend_schema(responses={200: ContactSerializer, **_errors(400, 403, 404, 409)}),
    destroy=extend_schema(responses={204: None, **_errors(403, 404)}),
)
class ContactViewSet(  # type: ignore[misc]
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    _ModuleViewSet,
):
    """Contacts of the customers the caller may read; writes need the customer in scope."""

    serializer_class = ContactSerializer
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = ContactFilter
    ordering_fields = ["id", "name", "created_at"]
    ordering = ["-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            from kehu.customers.models import Contact

            return Contact.objects.none()
        return selectors.contact_list_visible_to(user=self.request.user)

    def get_permissions(self):
        # Adding, editing and removing contacts is changing the customer.
        if self.action in ("create", "update", "partial_update", "destroy"):
            self.perm_action = "change"
        return super().get_permissions()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("version", None)
        customer = data.pop("customer")
        contact = services.contact_create(actor=request.user, customer=customer, data=data)
        return Response(
            self.get_serializer(selectors.contact_get_for(user=request.user, pk=contact.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def update(self, request, *args, **kwargs):
        contact = self.get_object()
        serializer = self.get_serializer(
            contact, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        version = expected_version(serializer)
        data = dict(serializer.validated_data)
        data.pop("customer", None)  # a contact does not move between customers
        contact = services.contact_update(
            actor=request.user, contact=contact, expected_version=version, data=data
        )
        return Response(self.get_serializer(contact).data)

    def destroy(self, request, *args, **kwargs):
        services.contact_delete(actor=request.user, contact=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(responses={200: FollowUpSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: FollowUpSerializer, **_errors(403, 404)}),
    create=extend_schema(
        request={"multipart/form-data": FollowUpSerializer, "application/json": FollowUpSerializer},
        responses={201: FollowUpSerializer, **_errors(400, 403, 404)},
    ),
    update=extend_schema(responses={200: FollowUpSerializer, **_errors(400, 403, 404, 409)}),
    partial_update=extend_schema(
        responses={200: FollowUpSerializer, **_errors(400, 403, 404, 409)}
    ),
    destroy=extend_schema(responses={204: None, **_errors(403, 404)}),
)
class FollowUpViewSet(  # type: ignore[misc]
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    _ModuleViewSet,
):
    """Follow-ups of the customers the caller may read; attachments as multipart ``files``."""

    serializer_class = FollowUpSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = FollowUpFilter
    ordering_fields = ["id", "happened_at", "next_followup_at", "created_at"]
    ordering = ["-happened_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return FollowUp.objects.none()
        return selectors.followup_list_visible_to(user=self.request.user)

    def get_permissions(self):
        if self.action in ("create", "update", "partial_update", "destroy"):
            self.perm_action = "change"
        return super().get_permissions()

    def list(self, request, *args, **kwargs):
        from kehu.core.attachments import attachments_for

        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        context = {**self.get_serializer_context(), "attachments": attachments_for(page or [])}
        return self.get_paginated_response(
            FollowUpSerializer(page, many=True, context=context).data
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("version", None)
        files = data.pop("files", [])
        customer = data.pop("customer")
        followup = services.followup_create(
            actor=request.user, customer=customer, data=data, files=files
        )
        return Response(
            self.get_serializer(selectors.followup_get_for(user=request.user, pk=followup.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def update(self, request, *args, **kwargs):
        followup = self.get_object()
        serializer = self.get_serializer(
            followup, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        version = expected_version(serializer)
        data = dict(serializer.validated_data)
        data.pop("customer", None)
        files = data.pop("files", [])
        followup = services.followup_update(
            actor=request.user,
            followup=followup,
            expected_version=version,
            data=data,
            files=files,
        )
        return Response(self.get_serializer(followup).data)

    def destroy(self, request, *args, **kwargs):
        services.followup_delete(actor=request.user, followup=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def register(router) -> None:
    """Add this module's viewsets to the API router."""
    router.register("customers", CustomerViewSet, basename="customer")
    router.register("contacts", ContactViewSet, basename="contact")
    router.register("followups", FollowUpViewSet, basename="followup")


def extra_urls() -> list:
    """Paths that must come before the router's (e.g. customers/import/)."""
    from kehu.customers.api_imports import urls

    return urls()
