"""HR API: the department tree. Writes go through kehu.hr.services like the web pages."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, viewsets

from kehu.core.api import ModulePermission, expected_version
from kehu.hr import services
from kehu.hr.models import Department
from kehu.hr.serializers import DepartmentSerializer

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
    queryset = Department.objects.select_related("manager")
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
