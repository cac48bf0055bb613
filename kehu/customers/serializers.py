"""API shapes for customers, contacts and follow-ups. Shape only: rules live in services."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kehu.core.api import FieldPolicySerializerMixin, VersionField
from kehu.customers.models import Contact, Customer, FollowUp
from kehu.system.models import DictionaryItem, User


def _dictionary_field(code: str, label) -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(
        slug_field="value",
        queryset=DictionaryItem.objects.filter(dictionary__code=code, is_active=True),
        required=False,
        allow_null=True,
        label=label,
        help_text=_("The dictionary item's value (see /api/v1/dictionaries/)."),
    )


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class TagNamesField(serializers.Field):
    """Tags as a list of names; unknown names are created."""

    def to_representation(self, value):
        return [tag.name for tag in value.all()]

    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise serializers.ValidationError(_("Give a list of tag names."))
        return [v.strip()[:50] for v in data if v.strip()]


class CustomerSerializer(FieldPolicySerializerMixin, serializers.ModelSerializer):
    industry = _dictionary_field("industry", _("industry"))
    source = _dictionary_field("customer_source", _("source"))  # type: ignore[assignment]  # a field named "source"
    level = _dictionary_field("customer_level", _("level"))
    industry_label = serializers.CharField(
        source="industry.display_label", read_only=True, default=None, allow_null=True
    )
    source_label = serializers.CharField(
        source="source.display_label", read_only=True, default=None, allow_null=True
    )
    level_label = serializers.CharField(
        source="level.display_label", read_only=True, default=None, allow_null=True
    )
    tags = TagNamesField(required=False)
    owner_name = serializers.CharField(
        source="owner.name", read_only=True, default=None, allow_null=True
    )
    department_name = serializers.CharField(
        source="department.name", read_only=True, default=None, allow_null=True
    )
    custom_fields = serializers.JSONField(required=False)
    allow_duplicate = serializers.BooleanField(
        required=False,
        write_only=True,
        default=False,
        help_text=_("Create or save even if a customer with the same name or number exists."),
    )
    version = VersionField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "code",
            "kind",
            "name",
            "short_name",
            "phone",
            "mobile",
            "email",
            "website",
            "province",
            "city",
            "district",
            "street",
            "industry",
            "industry_label",
            "source",
            "source_label",
            "level",
            "level_label",
            "stage",
            "tags",
            "notes",
            "owner",
            "owner_name",
            "department",
            "department_name",
            "in_pool",
            "pool_entered_at",
            "assigned_at",
            "last_followup_at",
            "next_followup_at",
            "last_deal_at",
            "custom_fields",
            "allow_duplicate",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = [
            "code",
            "owner",
            "department",
            "in_pool",
            "pool_entered_at",
            "assigned_at",
            "last_followup_at",
            "next_followup_at",
            "last_deal_at",
            "created_at",
            "updated_at",
        ]

    def validate_custom_fields(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("Give an object of custom field values."))
        return value


class CustomerCreateSerializer(CustomerSerializer):
    """On create a manager may name the owner (customers.assign); default is the caller."""

    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), required=False, allow_null=True
    )

    class Meta(CustomerSerializer.Meta):
        read_only_fields = [f for f in CustomerSerializer.Meta.read_only_fields if f != "owner"]


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, label=_("reason"))


class TransferSerializer(ReasonSerializer):
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), label=_("new owner")
    )


class ContactSerializer(FieldPolicySerializerMixin, serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    version = VersionField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "customer",
            "customer_name",
            "name",
            "title",
            "phone",
            "mobile",
            "email",
            "wechat",
            "birthday",
            "is_primary",
            "notes",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["created_at", "updated_at"]


class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="original_name")
    content_type = serializers.CharField(source="content_type_name")
    size = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        # The checked download view, never the storage URL.
        return obj.get_absolute_url() if obj.file else ""


class FollowUpSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    contact = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(), required=False, allow_null=True
    )
    method = _dictionary_field("followup_method", _("method"))
    method_label = serializers.CharField(
        source="method.display_label", read_only=True, default=None, allow_null=True
    )
    author_name = serializers.CharField(source="author.name", read_only=True)
    happened_at = serializers.DateTimeField(required=False)
    attachments = serializers.SerializerMethodField()
    files = serializers.ListField(
        child=serializers.FileField(), required=False, write_only=True, label=_("attachments")
    )
    version = VersionField()

    class Meta:
        model = FollowUp
        fields = [
            "id",
            "customer",
            "customer_name",
            "contact",
            "method",
            "method_label",
            "content",
            "happened_at",
            "next_followup_at",
            "next_action",
            "author",
            "author_name",
            "attachments",
            "files",
            "created_at",
            "version",
        ]
        read_only_fields = ["author", "created_at"]

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, obj):
        files = self.context.get("attachments")
        if files is None:
            from kehu.core.attachments import attachments_for

            files = attachments_for([obj])
        return AttachmentSerializer(files.get(str(obj.pk), []), many=True).data


class TimelineEntrySerializer(serializers.Serializer):
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    title = serializers.CharField()
    detail = serializers.CharField()
    user = serializers.CharField(allow_null=True)
