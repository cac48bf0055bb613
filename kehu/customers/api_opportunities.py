"""/api/v1/opportunities/ and /api/v1/pipeline-stages/: thin over the opportunity services."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from kehu.core.api import ScopedQuerysetMixin, expected_version
from kehu.core.filters import IdFilter
from kehu.core.scope import visible_to
from kehu.customers import services_opportunities as services
from kehu.customers.linked_search import LinkedSearchFilter
from kehu.customers.models import Customer, Opportunity, PipelineStage
from kehu.customers.serializers_opportunities import (
    OpportunityLostSerializer,
    OpportunityMoveSerializer,
    OpportunitySerializer,
    PipelineStageSerializer,
    VersionSerializer,
)

ERRORS = {
    400: OpenApiResponse(description=_("Invalid input: field messages.")),
    403: OpenApiResponse(description=_("Permission denied.")),
    404: OpenApiResponse(description=_("Not found or outside your data scope.")),
    409: OpenApiResponse(description=_("Stale version: someone else changed the record.")),
}

STATUS_CHOICES = (("open", _("Open")), ("won", _("Won")), ("lost", _("Lost")))


class OpportunityFilter(django_filters.FilterSet):
    stage = IdFilter(field_name="stage_id")
    owner = IdFilter(field_name="owner_id")
    customer = IdFilter(field_name="customer_id")
    status = django_filters.ChoiceFilter(
        choices=STATUS_CHOICES, field_name="stage__kind", label=_("Status")
    )

    class Meta:
        model = Opportunity
        fields = ["stage", "owner", "customer", "status"]


@extend_schema_view(
    list=extend_schema(responses={200: OpportunitySerializer(many=True), 403: ERRORS[403]}),
    retrieve=extend_schema(responses={200: OpportunitySerializer, 404: ERRORS[404]}),
    create=extend_schema(responses={201: OpportunitySerializer, 400: ERRORS[400]}),
    update=extend_schema(responses={200: OpportunitySerializer, 409: ERRORS[409]}),
    partial_update=extend_schema(responses={200: OpportunitySerializer, 409: ERRORS[409]}),
)
class OpportunityViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):  # type: ignore[misc]
    """Opportunities (商机) in the caller's data scope; updates need the version read."""

    module = "customers"
    serializer_class = OpportunitySerializer
    queryset = Opportunity.objects.select_related("customer", "stage", "owner")
    filterset_class = OpportunityFilter
    filter_backends = [DjangoFilterBackend, LinkedSearchFilter, OrderingFilter]
    ordering_fields = ["id", "amount", "expected_close_date", "created_at", "board_position"]
    ordering = ["-id"]
    search_fields = ["title"]  # and the customer's name (LinkedSearchFilter)

    @property
    def perm_action(self):
        return {"move": "change", "won": "change", "lost": "change"}.get(self.action or "")

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        fields = getattr(serializer, "fields", {})
        if "customer" in fields:
            # Only customers the caller can see are valid choices (others read as "not found").
            fields["customer"].queryset = visible_to(Customer.objects.all(), self.request.user)
        return serializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        serializer.instance = services.opportunity_create(actor=self.request.user, data=data)

    def perform_update(self, serializer):
        version = expected_version(serializer)
        serializer.instance = services.opportunity_update(
            actor=self.request.user,
            opportunity=serializer.instance,
            expected_version=version,
            data=dict(serializer.validated_data),
        )

    def perform_destroy(self, instance):
        services.opportunity_delete(actor=self.request.user, opportunity=instance)

    @extend_schema(
        request=OpportunityMoveSerializer,
        responses={200: OpportunitySerializer, **{k: ERRORS[k] for k in (400, 404, 409)}},
    )
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Move to a stage and position on the board; a lost stage needs ``lost_reason``."""
        opportunity = self.get_object()
        payload = OpportunityMoveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        moved = services.opportunity_move(
            actor=request.user,
            opportunity=opportunity,
            stage=payload.validated_data["stage"],
            position=payload.validated_data["position"],
            expected_version=payload.validated_data["version"],
            lost_reason=payload.validated_data.get("lost_reason", ""),
        )
        return Response(self.get_serializer(moved).data)

    @extend_schema(
        request=VersionSerializer,
        responses={200: OpportunitySerializer, **{k: ERRORS[k] for k in (400, 404, 409)}},
    )
    @action(detail=True, methods=["post"])
    def won(self, request, pk=None):
        opportunity = self.get_object()
        payload = VersionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        done = services.opportunity_mark_won(
            actor=request.user,
            opportunity=opportunity,
            expected_version=payload.validated_data["version"],
        )
        return Response(self.get_serializer(done).data)

    @extend_schema(
        request=OpportunityLostSerializer,
        responses={200: OpportunitySerializer, **{k: ERRORS[k] for k in (400, 404, 409)}},
    )
    @action(detail=True, methods=["post"])
    def lost(self, request, pk=None):
        opportunity = self.get_object()
        payload = OpportunityLostSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        done = services.opportunity_mark_lost(
            actor=request.user,
            opportunity=opportunity,
            expected_version=payload.validated_data["version"],
            reason=payload.validated_data.get("reason", ""),
        )
        return Response(self.get_serializer(done).data, status=status.HTTP_200_OK)


class PipelineStageViewSet(  # type: ignore[misc]
    ScopedQuerysetMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """The pipeline's stages in board order (read only; edited on the stage settings page)."""

    module = "customers"
    serializer_class = PipelineStageSerializer
    pagination_class = None
    filterset_fields = ["kind", "is_active"]

    def get_queryset(self):
        return PipelineStage.objects.all()  # not scoped: configuration, same for everyone


def register(router) -> None:
    router.register("opportunities", OpportunityViewSet, basename="opportunity")
    router.register("pipeline-stages", PipelineStageViewSet, basename="pipeline-stage")
