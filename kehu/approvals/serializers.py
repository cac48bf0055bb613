"""API shapes of the approval engine. Shape only: rules live in kehu.approvals.services."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kehu.approvals import selectors
from kehu.approvals.models import (
    ApprovalAction,
    ApprovalRequest,
    ApprovalRule,
    ApprovalRuleStep,
    ApprovalStep,
    ApproverKind,
)
from kehu.core.api import VersionField


class ApprovalUserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(source="__str__", read_only=True)


class ApprovalStepSerializer(serializers.ModelSerializer):
    order = serializers.SerializerMethodField()
    candidates = ApprovalUserSerializer(many=True, read_only=True)
    decided_by = ApprovalUserSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ApprovalStep
        fields = [
            "id",
            "order",
            "approver_kind",
            "approver_label",
            "status",
            "candidates",
            "decided_by",
            "decided_at",
            "comment",
        ]
        read_only_fields = fields

    def get_order(self, obj) -> int:
        """1 for the first step."""
        return obj.sort_order + 1


class ApprovalActionSerializer(serializers.ModelSerializer):
    actor = ApprovalUserSerializer(read_only=True, allow_null=True)
    step: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True
    )

    class Meta:
        model = ApprovalAction
        fields = ["id", "kind", "actor", "step", "comment", "at"]
        read_only_fields = fields


class ApprovalRequestSerializer(serializers.ModelSerializer):
    document_type_label = serializers.SerializerMethodField()
    document_id = serializers.IntegerField(source="object_id", read_only=True)
    document_url = serializers.SerializerMethodField()
    submitter = ApprovalUserSerializer(read_only=True)
    department = serializers.StringRelatedField(read_only=True)  # type: ignore[var-annotated]
    rule = serializers.CharField(source="rule_name", read_only=True)
    steps = ApprovalStepSerializer(many=True, read_only=True)
    actions = ApprovalActionSerializer(many=True, read_only=True)
    can_decide = serializers.SerializerMethodField()
    can_withdraw = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "document_type",
            "document_type_label",
            "document_id",
            "document_url",
            "title",
            "amount",
            "currency",
            "status",
            "submitter",
            "department",
            "rule",
            "submitted_at",
            "decided_at",
            "steps",
            "actions",
            "can_decide",
            "can_withdraw",
            "version",
        ]
        read_only_fields = fields

    def _user(self):
        request = self.context.get("request")
        return getattr(request, "user", None)

    def get_document_type_label(self, obj) -> str:
        return selectors.approval_document_type_label(obj.document_type)

    def get_document_url(self, obj) -> str:
        """The document's web page (empty when it no longer exists)."""
        return selectors.approval_document_url(obj.document)

    def get_can_decide(self, obj) -> bool:
        """Whether the caller may approve or reject the current step."""
        user = self._user()
        return user is not None and selectors.can_decide(obj, user)

    def get_can_withdraw(self, obj) -> bool:
        user = self._user()
        return user is not None and selectors.can_withdraw(obj, user)


class ApprovalDecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="Optional to approve or withdraw; required to reject.",
    )
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        allow_null=True,
        default=None,
        help_text="The version you read; a request that has moved on since is refused (409).",
    )


# --- rules ----------------------------------------------------------------------------------


class ApprovalRuleStepSerializer(serializers.ModelSerializer):
    approver_label = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = ApprovalRuleStep
        fields = ["approver_kind", "role", "user", "approver_label"]
        extra_kwargs = {"role": {"required": False}, "user": {"required": False}}
        # The (kind, role, user) check constraint is the service's and the model's business.
        validators: list = []

    def validate(self, attrs):
        kind = attrs.get("approver_kind")
        if kind == ApproverKind.ROLE and not attrs.get("role"):
            raise serializers.ValidationError({"role": [_("Choose a role.")]})
        if kind == ApproverKind.USER and not attrs.get("user"):
            raise serializers.ValidationError({"user": [_("Choose a user.")]})
        return attrs


@extend_schema_field(
    {
        "type": "string",
        "description": "A registered document type, e.g. sales.contract.",
    }
)
class DocumentTypeField(serializers.ChoiceField):
    """Choices are the registered document types, read when the serializer is built."""

    def __init__(self, **kwargs):
        super().__init__(choices=[], **kwargs)

    def bind(self, field_name, parent):
        super().bind(field_name, parent)
        self.choices = selectors.approval_document_type_choices()


class ApprovalRuleSerializer(serializers.ModelSerializer):
    document_type = DocumentTypeField()
    document_type_label = serializers.SerializerMethodField()
    steps = ApprovalRuleStepSerializer(many=True)
    amount_over = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        required=False,
        allow_null=True,
        min_value=Decimal("0"),
        help_text="Applies above this amount (excluded); null for no minimum.",
    )
    amount_up_to = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        required=False,
        allow_null=True,
        min_value=Decimal("0"),
        help_text="Applies up to this amount (included); null for no maximum.",
    )
    version = VersionField()

    class Meta:
        model = ApprovalRule
        fields = [
            "id",
            "document_type",
            "document_type_label",
            "name",
            "amount_over",
            "amount_up_to",
            "departments",
            "sort_order",
            "is_active",
            "steps",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"departments": {"required": False}}

    def get_document_type_label(self, obj) -> str:
        return selectors.approval_document_type_label(obj.document_type)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = self.instance
        over = attrs.get("amount_over", getattr(instance, "amount_over", None))
        up_to = attrs.get("amount_up_to", getattr(instance, "amount_up_to", None))
        if over is not None and up_to is not None and up_to <= over:
            raise serializers.ValidationError(
                {"amount_up_to": [_("Must be more than “amount over”.")]}
            )
        return attrs
