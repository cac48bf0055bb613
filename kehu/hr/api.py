"""HR API: departments, positions, employees (with handover) and sales targets.

Writes go through kehu.hr.services like the web pages.
"""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from kehu.core.api import ModulePermission, ScopedQuerysetMixin, expected_version
from kehu.hr import services
from kehu.hr.models import Department, Employee, Position, SalesTarget
from kehu.hr.serializers import (
    DepartmentSerializer,
    EmployeeSerializer,
    HandoverRequestSerializer,
    HandoverSerializer,
    PositionSerializer,
    SalesTargetSerializer,
)

_400 = OpenApiResponse(description=_("Invalid input: field messages."))
_403 = OpenApiResponse(description=_("Permission denied."))
_404 = OpenApiResponse(description=_("Not found."))
_409 = OpenApiResponse(description=_("Stale version: someone else changed the record."))


@extend_schema_view(
    list=extend_schema(responses={200: DepartmentSerializer(many=True), 403: _403}),
    retrieve=extend_schema(responses={200: DepartmentSerializer, 403: _403, 404: _404}),
    create=extend_schema(responses={201: DepartmentSerializer, 400: _400, 403: _403}),
    update=extend_schema(
        responses={200: DepartmentSerializer, 400: _400, 403: _403, 404: _404, 409: _409}
    ),
    partial_update=extend_schema(
        responses={200: DepartmentSerializer, 400: _400, 403: _403, 404: _404, 409: _409}
    ),
    destroy=extend_schema(responses={204: None, 400: _400, 403: _403, 404: _404}),
)
class DepartmentViewSet(viewsets.ModelViewSet):
    """Departments in tree order (parents first).

    Not narrowed by data scope on purpose: the department tree is the organisation's
    structure, which every holder of hr.view may see whole; the data scope narrows the
    records that hang off departments (users, customers …), not the tree itself.
    """

    module = "hr"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    # head_count: current employees (probation and active), one aggregate for the page.
    queryset = Department.objects.select_related("manager").annotate(
        head_count=Count(
            "employees",
            filter=Q(employees__deleted_at__isnull=True) & ~Q(employees__status="resigned"),
        )
    )
    serializer_class = DepartmentSerializer
    filterset_fields = ["parent", "manager", "is_active"]
    ordering_fields = ["path", "name", "sort_order", "id"]
    ordering = ["path", "sort_order", "id"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        serializer.instance = services.department_create(actor=self.request.user, data=data)

    def perform_update(self, serializer):
        version = expected_version(serializer)
        serializer.instance = services.department_update(
            actor=self.request.user,
            department=serializer.instance,
            expected_version=version,
            data=dict(serializer.validated_data),
        )

    def perform_destroy(self, instance):
        services.department_delete(actor=self.request.user, department=instance)


@extend_schema_view(
    list=extend_schema(responses={200: PositionSerializer(many=True), 403: _403}),
    retrieve=extend_schema(responses={200: PositionSerializer, 403: _403, 404: _404}),
    create=extend_schema(responses={201: PositionSerializer, 400: _400, 403: _403}),
    update=extend_schema(
        responses={200: PositionSerializer, 400: _400, 403: _403, 404: _404, 409: _409}
    ),
    partial_update=extend_schema(
        responses={200: PositionSerializer, 400: _400, 403: _403, 404: _404, 409: _409}
    ),
)
class PositionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Positions: part of the organisation's structure, like departments (not scoped)."""

    module = "hr"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    queryset = Position.objects.select_related("department").order_by("department__path", "-level")
    serializer_class = PositionSerializer
    filterset_fields = ["department", "is_active"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        serializer.instance = services.position_create(actor=self.request.user, data=data)

    def perform_update(self, serializer):
        version = expected_version(serializer)
        serializer.instance = services.position_update(
            actor=self.request.user,
            position=serializer.instance,
            expected_version=version,
            data=dict(serializer.validated_data),
        )


@extend_schema_view(
    list=extend_schema(responses={200: EmployeeSerializer(many=True), 403: _403}),
    retrieve=extend_schema(responses={200: EmployeeSerializer, 403: _403, 404: _404}),
    create=extend_schema(responses={201: EmployeeSerializer, 400: _400, 403: _403}),
    update=extend_schema(
        responses={200: EmployeeSerializer, 400: _400, 403: _403, 404: _404, 409: _409}
    ),
    partial_update=extend_schema(
        responses={200: EmployeeSerializer, 400: _400, 403: _403, 404: _404, 409: _409}
    ),
    destroy=extend_schema(responses={204: None, 403: _403, 404: _404}),
)
class EmployeeViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):  # type: ignore[misc]
    """Employees in the caller's data scope; sensitive fields follow the field policy."""

    module = "hr"
    queryset = Employee.objects.select_related("department", "position")
    serializer_class = EmployeeSerializer
    filterset_fields = ["department", "position", "status", "user"]
    search_fields = ["name", "employee_no", "phone"]
    ordering_fields = ["employee_no", "name", "hire_date", "id"]
    ordering = ["employee_no"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        serializer.instance = services.employee_create(actor=self.request.user, data=data)

    def perform_update(self, serializer):
        version = expected_version(serializer)
        serializer.instance = services.employee_update(
            actor=self.request.user,
            employee=serializer.instance,
            expected_version=version,
            data=dict(serializer.validated_data),
        )

    def perform_destroy(self, instance):
        services.employee_delete(actor=self.request.user, employee=instance)

    def get_permissions(self):
        if self.action == "handover":
            self.perm_action = "assign"
        return super().get_permissions()

    @extend_schema(
        request=HandoverRequestSerializer,
        responses={201: HandoverSerializer, 400: _400, 403: _403, 404: _404},
    )
    @action(detail=True, methods=["post"])
    def handover(self, request, pk=None):
        """Hand the leaver's customers and open opportunities to ``successor``, mark them
        resigned and deactivate their login, in one transaction."""
        employee = self.get_object()
        payload = HandoverRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        handover = services.employee_handover(
            actor=request.user,
            employee=employee,
            successor=payload.validated_data["successor"],
            reason=payload.validated_data["reason"],
        )
        return Response(HandoverSerializer(handover).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(responses={200: SalesTargetSerializer(many=True), 403: _403}),
    retrieve=extend_schema(responses={200: SalesTargetSerializer, 403: _403, 404: _404}),
    create=extend_schema(responses={201: SalesTargetSerializer, 400: _400, 403: _403, 409: _409}),
    update=extend_schema(
        responses={200: SalesTargetSerializer, 400: _400, 403: _403, 404: _404, 409: _409}
    ),
    partial_update=extend_schema(
        responses={200: SalesTargetSerializer, 400: _400, 403: _403, 404: _404, 409: _409}
    ),
)
class SalesTargetViewSet(  # type: ignore[misc]
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Monthly targets per salesperson or department. Creating an existing month is 409:
    update it with its version instead."""

    module = "hr"
    queryset = SalesTarget.objects.all()
    serializer_class = SalesTargetSerializer
    filterset_fields = ["kind", "user", "department", "year", "month"]
    ordering = ["year", "month", "id"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        data.pop("currency", None)
        serializer.instance = services.sales_target_set(actor=self.request.user, **data)

    def perform_update(self, serializer):
        version = expected_version(serializer)
        target = serializer.instance
        data = serializer.validated_data
        serializer.instance = services.sales_target_set(
            actor=self.request.user,
            kind=target.kind,
            user=target.user,
            department=target.department if target.kind == "department" else None,
            year=target.year,
            month=target.month,
            contract_amount_target=data.get("contract_amount_target"),
            payment_target=data.get("payment_target"),
            expected_version=version,
        )


def register(router) -> None:
    router.register("positions", PositionViewSet, basename="position")
    router.register("employees", EmployeeViewSet, basename="employee")
    router.register("sales-targets", SalesTargetViewSet, basename="sales-target")
