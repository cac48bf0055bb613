"""API shapes for HR. Shape only: the tree rules live in kehu.hr.services."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from kehu.core.api import FieldPolicySerializerMixin, VersionField
from kehu.hr.models import Department, Employee, Handover, Position, SalesTarget


class DepartmentSerializer(serializers.ModelSerializer):
    parent = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=Department.objects.all(), allow_null=True, required=False
    )
    manager = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), allow_null=True, required=False
    )
    manager_name = serializers.CharField(source="manager.name", read_only=True, default="")
    depth = serializers.IntegerField(read_only=True)
    head_count = serializers.IntegerField(read_only=True, default=0)
    version = VersionField()

    class Meta:
        model = Department
        fields = [
            "id",
            "name",
            "code",
            "parent",
            "manager",
            "manager_name",
            "path",
            "depth",
            "sort_order",
            "is_active",
            "head_count",
            "version",
        ]
        read_only_fields = ["path"]
        # (parent, name) uniqueness is checked by the model's full_clean in the service,
        # which reports it as a field error; a serializer-level copy would duplicate it.
        validators: list = []


class PositionSerializer(serializers.ModelSerializer):
    department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(), allow_null=True, required=False
    )
    version = VersionField()

    class Meta:
        model = Position
        fields = ["id", "name", "department", "level", "description", "is_active", "version"]
        validators: list = []


class EmployeeSerializer(FieldPolicySerializerMixin, serializers.ModelSerializer):
    """Shape only. ``id_number`` comes back masked and ``base_salary`` is absent for roles
    without the right (field policy); status moves use the detail page or dedicated calls."""

    department = serializers.PrimaryKeyRelatedField(queryset=Department.objects.all())
    department_name = serializers.CharField(source="department.name", read_only=True)
    position = serializers.PrimaryKeyRelatedField(
        queryset=Position.objects.all(), allow_null=True, required=False
    )
    position_name = serializers.CharField(source="position.name", read_only=True, default="")
    manager = serializers.PrimaryKeyRelatedField(
        queryset=Employee.objects.all(), allow_null=True, required=False
    )
    user = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )
    employee_no = serializers.CharField(max_length=32, required=False, allow_blank=True)
    version = VersionField()

    class Meta:
        model = Employee
        fields = [
            "id",
            "employee_no",
            "name",
            "gender",
            "birth_date",
            "id_number",
            "phone",
            "email",
            "department",
            "department_name",
            "position",
            "position_name",
            "manager",
            "hire_date",
            "status",
            "resign_date",
            "resign_reason",
            "base_salary",
            "salary_currency",
            "user",
            "version",
        ]
        read_only_fields = ["resign_date", "resign_reason"]
        validators: list = []


class HandoverRequestSerializer(serializers.Serializer):
    successor = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all())
    reason = serializers.CharField(max_length=300)


class HandoverSerializer(serializers.ModelSerializer):
    successor_name = serializers.CharField(source="successor.name", read_only=True)

    class Meta:
        model = Handover
        fields = ["id", "employee", "successor", "successor_name", "reason", "counts", "by", "at"]
        read_only_fields = fields


class SalesTargetSerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )
    department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(), allow_null=True, required=False
    )
    version = VersionField()

    class Meta:
        model = SalesTarget
        fields = [
            "id",
            "kind",
            "user",
            "department",
            "year",
            "month",
            "contract_amount_target",
            "payment_target",
            "currency",
            "version",
        ]
        validators: list = []
