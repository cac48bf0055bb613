"""API shapes for system management. Shape only: rules live in kehu.system.services."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kehu.core.api import FieldPolicySerializerMixin, VersionField
from kehu.core.permissions import user_permissions
from kehu.core.scope import DataScope, user_data_scope
from kehu.hr.models import Department
from kehu.system.models import (
    AuditLog,
    Dictionary,
    DictionaryItem,
    Notification,
    Role,
    User,
)

# --- auth -----------------------------------------------------------------------------------


class TokenObtainSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


# --- small nested shapes --------------------------------------------------------------------


class DepartmentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name"]


class RoleRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Role
        fields = ["id", "code", "name"]


# --- me -------------------------------------------------------------------------------------


class MeSerializer(serializers.ModelSerializer):
    """The caller's own account: no field policy, everyone sees their own details."""

    department = DepartmentRefSerializer(read_only=True)
    roles = RoleRefSerializer(many=True, read_only=True)
    permissions = serializers.SerializerMethodField()
    data_scope = serializers.SerializerMethodField()
    # Declared so the schema says what an unset language reads as (a read-only model
    # choice field would drop the blank choice).
    language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        allow_blank=True,
        read_only=True,
        help_text=_("Empty: the browser's language."),
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "display_name",
            "email",
            "phone",
            "department",
            "roles",
            "permissions",
            "data_scope",
            "language",
        ]
        read_only_fields = fields

    def get_permissions(self, user) -> list[str]:
        return sorted(user_permissions(user))

    @extend_schema_field(serializers.ChoiceField(choices=DataScope.choices))
    def get_data_scope(self, user) -> str:
        return str(user_data_scope(user).value)


# --- users ----------------------------------------------------------------------------------


class UserSerializer(FieldPolicySerializerMixin, serializers.ModelSerializer):
    """Users as the caller's roles may see them (phone and e-mail masked unless granted).

    ``is_active`` is read-only here: (de)activation has its own audited actions.
    """

    department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(), allow_null=True, required=False
    )
    department_name = serializers.CharField(source="department.name", read_only=True, default="")
    roles = serializers.PrimaryKeyRelatedField(
        queryset=Role.objects.all(), many=True, required=False
    )
    version = VersionField()

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "display_name",
            "email",
            "phone",
            "department",
            "department_name",
            "roles",
            "language",
            "is_active",
            "last_login",
            "date_joined",
            "version",
        ]
        read_only_fields = ["is_active", "last_login", "date_joined"]


class UserCreateSerializer(UserSerializer):
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text=_("Optional: without one the user cannot log in until a password is set."),
    )

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "password"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        password = attrs.get("password")
        if password:
            candidate = User(
                username=attrs.get("username", ""),
                email=attrs.get("email", ""),
                display_name=attrs.get("display_name", ""),
            )
            try:
                validate_password(password, candidate)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class VersionOnlySerializer(serializers.Serializer):
    version = VersionField(required=True)


class PasswordSetSerializer(serializers.Serializer):
    password = serializers.CharField(
        max_length=128, trim_whitespace=False, style={"input_type": "password"}
    )


# --- roles ----------------------------------------------------------------------------------


class RoleSerializer(serializers.ModelSerializer):
    permissions = serializers.ListField(
        child=serializers.CharField(max_length=50),
        required=False,
        help_text=_("module.action codes, e.g. customers.view"),
    )
    version = VersionField()

    class Meta:
        model = Role
        fields = [
            "id",
            "code",
            "name",
            "description",
            "data_scope",
            "permissions",
            "is_system",
            "version",
        ]
        read_only_fields = ["is_system"]


# --- dictionaries ---------------------------------------------------------------------------


class DictionaryItemNestedSerializer(serializers.ModelSerializer):
    display_label = serializers.CharField(read_only=True)

    class Meta:
        model = DictionaryItem
        fields = ["id", "value", "label", "label_en", "display_label", "sort_order"]


class DictionarySerializer(serializers.ModelSerializer):
    items = DictionaryItemNestedSerializer(source="active_items", many=True, read_only=True)

    class Meta:
        model = Dictionary
        fields = ["id", "code", "name", "name_en", "description", "is_system", "items"]


class DictionaryItemSerializer(serializers.ModelSerializer):
    dictionary = serializers.SlugRelatedField(slug_field="code", queryset=Dictionary.objects.all())
    display_label = serializers.CharField(read_only=True)
    version = VersionField()

    class Meta:
        model = DictionaryItem
        fields = [
            "id",
            "dictionary",
            "value",
            "label",
            "label_en",
            "display_label",
            "sort_order",
            "is_active",
            "version",
        ]
        # The unique (dictionary, value) rule is enforced by the model's full_clean in the
        # service, so a duplicate is a field error either way.
        validators: list = []


class DictionaryItemUpdateSerializer(DictionaryItemSerializer):
    """An item never moves to another dictionary."""

    dictionary = serializers.SlugRelatedField(slug_field="code", read_only=True)


# --- operation log --------------------------------------------------------------------------


class AuditLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditLog
        fields = [
            "id",
            "at",
            "user",
            "username",
            "action",
            "model",
            "object_id",
            "object_repr",
            "changes",
            "ip_address",
            "note",
        ]
        read_only_fields = fields


# --- notifications --------------------------------------------------------------------------


class NotificationSerializer(serializers.ModelSerializer):
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "title", "body", "url", "level", "created_at", "read_at", "is_read"]
        read_only_fields = fields

    def get_is_read(self, obj) -> bool:
        return obj.read_at is not None


class NotificationMarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=True,
        help_text=_("Notifications to mark read; all unread ones when omitted."),
    )


class NotificationMarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(read_only=True)
