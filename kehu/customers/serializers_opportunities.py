"""Opportunity and pipeline-stage serializers: shape only; the services decide the rest."""

from __future__ import annotations

from rest_framework import serializers

from kehu.core.api import VersionField
from kehu.customers.models import Customer, Opportunity, PipelineStage
from kehu.system.models import User


class PipelineStageSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = PipelineStage
        fields = [
            "id",
            "name",
            "name_en",
            "display_name",
            "kind",
            "probability",
            "sort_order",
            "is_active",
        ]
        read_only_fields = fields


class OpportunitySerializer(serializers.ModelSerializer):
    # Querysets are narrowed per request in the viewset (scope); these are the widest.
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    stage = serializers.PrimaryKeyRelatedField(
        queryset=PipelineStage.objects.filter(is_active=True), required=False
    )
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), required=False
    )
    probability = serializers.IntegerField(
        min_value=0, max_value=100, required=False, allow_null=True
    )
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    stage_name = serializers.CharField(source="stage.__str__", read_only=True)
    stage_kind = serializers.CharField(source="stage.kind", read_only=True)
    owner_name = serializers.CharField(source="owner.__str__", read_only=True)
    version = VersionField()

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "customer",
            "customer_name",
            "title",
            "amount",
            "currency",
            "expected_close_date",
            "stage",
            "stage_name",
            "stage_kind",
            "probability",
            "owner",
            "owner_name",
            "department",
            "board_position",
            "closed_at",
            "lost_reason",
            "notes",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["department", "board_position", "closed_at", "created_at", "updated_at"]


class OpportunityMoveSerializer(serializers.Serializer):
    stage = serializers.PrimaryKeyRelatedField(queryset=PipelineStage.objects.all())
    position = serializers.IntegerField(min_value=0, default=0)
    version = serializers.IntegerField(min_value=1)
    lost_reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class OpportunityLostSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
