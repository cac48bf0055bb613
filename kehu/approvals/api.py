"""/api/v1/approvals/ and /api/v1/approval-rules/: thin over the approval engine.

Requests: any authenticated user; each sees what the selectors let them (their submissions,
requests they may decide or decided, and their data scope for modules they may view);
others answer 404. Decisions go through the same services as the web pages: refusals are
403 (not your step, your own submission), 409 (already decided, or a stale ``version``) and
400 (a rejection without a comment). Rules need system.view to read, system.change to write,
system.delete to delete.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from kehu.approvals import selectors, services
from kehu.approvals.filters import ApprovalRequestApiFilter
from kehu.approvals.models import ApprovalAction, ApprovalRequest, ApprovalStep
from kehu.approvals.serializers import (
    ApprovalDecisionSerializer,
    ApprovalRequestSerializer,
    ApprovalRuleSerializer,
)
from kehu.core.api import ModulePermission, expected_version

ERRORS = {
    400: OpenApiResponse(description=_("Invalid input: field messages.")),
    403: OpenApiResponse(description=_("Permission denied.")),
    404: OpenApiResponse(description=_("Not found or outside your data scope.")),
    409: OpenApiResponse(description=_("Already decided, or someone else changed it.")),
}


def _request_queryset(user):
    from kehu.system.models import User

    return selectors.approval_list_visible_to(user=user).prefetch_related(
        Prefetch(
            "steps",
            queryset=ApprovalStep.objects.select_related("decided_by")
            .prefetch_related(Prefetch("candidates", queryset=User.objects.order_by("username")))
            .order_by("sort_order"),
        ),
        Prefetch(
            "actions", queryset=ApprovalAction.objects.select_related("actor").order_by("at", "id")
        ),
        "document",
    )


_DECISION = extend_schema(
    request=ApprovalDecisionSerializer,
    responses={200: ApprovalRequestSerializer, **{k: ERRORS[k] for k in (400, 403, 404, 409)}},
)


@extend_schema_view(
    list=extend_schema(responses={200: ApprovalRequestSerializer(many=True)}),
    retrieve=extend_schema(responses={200: ApprovalRequestSerializer, 404: ERRORS[404]}),
)
class ApprovalRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Approval requests, newest first; ``?inbox=true`` for those awaiting your decision."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = ApprovalRequestSerializer
    filterset_class = ApprovalRequestApiFilter
    ordering_fields = ["submitted_at", "amount", "id"]
    ordering = ["-submitted_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return ApprovalRequest.objects.none()
        return _request_queryset(self.request.user)

    def _decide(self, request, service):
        approval = self.get_object()
        payload = ApprovalDecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        service(
            actor=request.user,
            request=approval,
            comment=payload.validated_data["comment"],
            expected_version=payload.validated_data["version"],
        )
        fresh = self.get_queryset().get(pk=approval.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_200_OK)

    @_DECISION
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve the current step (you must be one of its candidates, not the submitter)."""
        return self._decide(request, services.approval_approve)

    @_DECISION
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject at the current step; ``comment`` is required."""
        return self._decide(request, services.approval_reject)

    @_DECISION
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        """The submitter takes a pending request back; the document returns to draft."""
        return self._decide(request, services.approval_withdraw)


@extend_schema_view(
    list=extend_schema(responses={200: ApprovalRuleSerializer(many=True), 403: ERRORS[403]}),
    retrieve=extend_schema(
        responses={200: ApprovalRuleSerializer, 403: ERRORS[403], 404: ERRORS[404]}
    ),
    create=extend_schema(
        responses={201: ApprovalRuleSerializer, 400: ERRORS[400], 403: ERRORS[403]}
    ),
    update=extend_schema(
        responses={200: ApprovalRuleSerializer, **{k: ERRORS[k] for k in (400, 403, 404, 409)}}
    ),
    partial_update=extend_schema(
        responses={200: ApprovalRuleSerializer, **{k: ERRORS[k] for k in (400, 403, 404, 409)}}
    ),
    destroy=extend_schema(responses={204: None, **{k: ERRORS[k] for k in (400, 403, 404)}}),
)
class ApprovalRuleViewSet(viewsets.ModelViewSet):
    """Approval rules with their ordered steps. Updates carry the version read (409 when
    stale); ``steps`` replaces the rule's steps, in the order given. A rule that routed
    requests cannot be deleted (400): deactivate it."""

    module = "system"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    serializer_class = ApprovalRuleSerializer
    filterset_fields = ["document_type", "is_active"]
    ordering_fields = ["document_type", "sort_order", "id"]
    ordering = ["document_type", "sort_order", "id"]

    @property
    def perm_action(self) -> str | None:  # type: ignore[override]
        if self.action == "destroy":
            return "delete"
        if self.action in ("create", "update", "partial_update"):
            return "change"
        return None

    def get_queryset(self):
        return selectors.approval_rule_list()

    def _read(self, rule, code=status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=rule.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    @staticmethod
    def _split(validated: dict, instance=None) -> tuple[dict, list, list[dict]]:
        data = dict(validated)
        data.pop("version", None)
        departments = data.pop("departments", None)
        steps = data.pop("steps", None)
        if departments is None:
            departments = list(instance.departments.all()) if instance is not None else []
        if steps is None:
            steps = (
                [
                    {"approver_kind": s.approver_kind, "role": s.role, "user": s.user}
                    for s in instance.steps.all()
                ]
                if instance is not None
                else []
            )
        return data, departments, steps

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data, departments, steps = self._split(serializer.validated_data)
        rule = services.approval_rule_create(
            actor=request.user, data=data, departments=departments, steps=steps
        )
        return self._read(rule, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        rule = self.get_object()
        serializer = self.get_serializer(
            rule, data=request.data, partial=kwargs.pop("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        version = expected_version(serializer)
        data, departments, steps = self._split(serializer.validated_data, rule)
        rule = services.approval_rule_update(
            actor=request.user,
            rule=rule,
            expected_version=version,
            data=data,
            departments=departments,
            steps=steps,
        )
        return self._read(rule)

    def destroy(self, request, *args, **kwargs):
        services.approval_rule_delete(actor=request.user, rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def register(router) -> None:
    """Add this module's viewsets to the API router."""
    router.register("approvals", ApprovalRequestViewSet, basename="approval")
    router.register("approval-rules", ApprovalRuleViewSet, basename="approval-rule")
