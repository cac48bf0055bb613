"""API shapes for HR. Shape only: the tree rules live in kehu.hr.services."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from kehu.core.api import VersionField
from kehu.hr.models import Department


class DepartmentSerializer(serializers.ModelSerializer):
    parent = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=Department.objects.all(), allow_null=True, required=False
    )
    manager = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), allow_null=True, required=False
    )
    manager_name = serializers.CharField(source="manager.name", read_only=True, default="")
    depth = serializers.IntegerField(read_only=True)
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
            "version",
        ]
        read_only_fields = ["path"]
        # (parent, name) uniqueness is checked by the model's full_clean in the service,
        # which reports it as a field error; a serializer-level copy would duplicate it.
        validators: list = []
