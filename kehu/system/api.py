"""System management API: token auth, the caller, users, roles, dictionaries, log, notifications.

Thin by design: serializers check shape, the same services the web pages use do the work,
and every queryset goes through the data scope or a selector.
"""

from __future__ import annotations

import django_filters
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from kehu.core.api import ModulePermission, ScopedQuerysetMixin, expected_version
from kehu.core.filters import IdFilter
from kehu.core.permissions import has_perm
from kehu.core.scope import scope_q
from kehu.system import selectors, services
from kehu.system.lockout import lockout_message
from kehu.system.models import (
    AuditAction,
    AuditLog,
    Dictionary,
    DictionaryItem,
    Notification,
    Role,
    User,
)
from kehu.system.serializers import (
    AuditLogSerializer,
    DictionaryItemSerializer,
    DictionaryItemUpdateSerializer,
    DictionarySerializer,
    MeSerializer,
    NotificationMarkedSerializer,
    NotificationMarkReadSerializer,
    NotificationSerializer,
    PasswordSetSerializer,
    RoleSerializer,
    TokenObtainSerializer,
    TokenSerializer,
    UserCreateSerializer,
    UserSerializer,
    VersionOnlySerializer,
)

ERRORS = {
    400: OpenApiResponse(description=_("Invalid input: field messages.")),
    403: OpenApiResponse(description=_("Permission denied.")),
    404: OpenApiResponse(description=_("Not found or outside your data scope.")),
    409: OpenApiResponse(description=_("Stale version: someone else changed the record.")),
}


def _errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in codes}


# --- auth -----------------------------------------------------------------------------------


class LoginRateThrottle(ScopedRateThrottle):
    """Rate-limits token requests per client address (DEFAULT_THROTTLE_RATES["login"])."""


class AuthTokenView(APIView):
    """Obtain or revoke an API token."""

    throttle_scope = "login"

    def get_permissions(self):
        if self.request.method == "POST":
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_throttles(self):
        # Only logging in is throttled; revoking is harmless.
        return [LoginRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        operation_id="auth_token_obtain",
        request=TokenObtainSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(description=_("Wrong user name or password.")),
            403: OpenApiResponse(description=_("Locked out after too many failed logins.")),
            429: OpenApiResponse(description=_("Too many login requests.")),
        },
        auth=[],
    )
    def post(self, request):
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # request= lets django-axes count this attempt and refuse a locked-out account,
        # even when the password is right; the failure also reaches the operation log.
        user = authenticate(
            request=request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if getattr(request, "axes_locked_out", False):
            raise exceptions.PermissionDenied(lockout_message())
        if user is None or not user.is_active:
            # The login page's own message (translated by Django), without telling an
            # inactive account apart from a wrong password.
            message = AuthenticationForm.error_messages["invalid_login"] % {
                "username": User._meta.get_field("username").verbose_name
            }
            raise exceptions.ValidationError({"non_field_errors": [message]})
        token, _created = Token.objects.get_or_create(user=user)
        services.audit_log_record(user=user, action=AuditAction.LOGIN, note="API token")
        return Response({"token": token.key})

    @extend_schema(operation_id="auth_token_revoke", request=None, responses={204: None})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The caller: roles, permissions and widest data scope."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        user = (
            User.objects.select_related("department")
            .prefetch_related("roles")
            .get(pk=request.user.pk)
        )
        return Response(MeSerializer(user, context={"request": request}).data)


# --- users ----------------------------------------------------------------------------------


class UserFilter(django_filters.FilterSet):
    department = IdFilter(field_name="department_id")
    role = IdFilter(field_name="roles", distinct=True)
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = User
        fields = ["department", "role", "is_active"]


@extend_schema_view(
    list=extend_schema(responses={200: UserSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: UserSerializer, **_errors(403, 404)}),
    create=extend_schema(
        request=UserCreateSerializer, responses={201: UserSerializer, **_errors(400, 403)}
    ),
    update=extend_schema(responses={200: UserSerializer, **_errors(400, 403, 404, 409)}),
    partial_update=extend_schema(responses={200: UserSerializer, **_errors(400, 403, 404, 409)}),
)
class UserViewSet(  # type: ignore[misc]  # mixin narrows permission_classes
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Users inside the caller's data scope; no delete, deactivate instead."""

    module = "system"
    perm_action: str | None = None  # custom actions set it (ModulePermission reads it)
    queryset = User.objects.select_related("department").prefetch_related("roles")
    serializer_class = UserSerializer
    filterset_class = UserFilter
    filter_backends = [DjangoFilterBackend, OrderingFilter, SearchFilter]
    search_fields = ["username", "display_name", "email"]
    ordering_fields = ["username", "display_name", "date_joined", "last_login", "id"]
    ordering = ["username"]

    def get_serializer_class(self):
        if self.action == "create":
            return UserCreateSerializer
        if self.action in ("activate", "deactivate"):
            return VersionOnlySerializer
        if self.action == "set_password":
            return PasswordSetSerializer
        return UserSerializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("version", None)
        roles = data.pop("roles", [])
        password = data.pop("password", None) or None
        user = services.user_create(actor=request.user, data=data, roles=roles, password=password)
        return Response(self._read(user), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        version = expected_version(serializer)
        data = dict(serializer.validated_data)
        roles = data.pop("roles", None)
        user = services.user_update(
            actor=request.user, user=instance, expected_version=version, data=data, roles=roles
        )
        return Response(self._read(user))

    def _read(self, user: User) -> dict:
        user = User.objects.select_related("department").prefetch_related("roles").get(pk=user.pk)
        return UserSerializer(user, context=self.get_serializer_context()).data

    def _set_active(self, request, active: bool):
        instance = self.get_object()
        serializer = VersionOnlySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_set_active(
            actor=request.user,
            user=instance,
            active=active,
            expected_version=serializer.validated_data["version"],
        )
        return Response(self._read(user))

    @extend_schema(
        request=VersionOnlySerializer,
        responses={200: UserSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="change")
    def activate(self, request, pk=None):
        return self._set_active(request, True)

    @extend_schema(
        request=VersionOnlySerializer,
        responses={200: UserSerializer, **_errors(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], perm_action="change")
    def deactivate(self, request, pk=None):
        return self._set_active(request, False)

    @extend_schema(request=PasswordSetSerializer, responses={204: None, **_errors(400, 403, 404)})
    @action(detail=True, methods=["post"], url_path="set-password", perm_action="change")
    def set_password(self, request, pk=None):
        instance = self.get_object()
        serializer = PasswordSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_set_password(
            actor=request.user, user=instance, password=serializer.validated_data["password"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- roles ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses={200: RoleSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: RoleSerializer, **_errors(403, 404)}),
    create=extend_schema(responses={201: RoleSerializer, **_errors(400, 403)}),
    update=extend_schema(responses={200: RoleSerializer, **_errors(400, 403, 404, 409)}),
    partial_update=extend_schema(responses={200: RoleSerializer, **_errors(400, 403, 404, 409)}),
    destroy=extend_schema(responses={204: None, **_errors(400, 403, 404)}),
)
class RoleViewSet(viewsets.ModelViewSet):
    """Roles are company-wide configuration, not scoped records: system.view sees them all."""

    module = "system"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    serializer_class = RoleSerializer
    filterset_fields = ["data_scope", "is_system"]
    ordering_fields = ["id", "code", "name"]
    ordering = ["id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Role.objects.none()
        return selectors.role_list(user=self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        serializer.instance = services.role_create(actor=self.request.user, data=data)

    def perform_update(self, serializer):
        version = expected_version(serializer)
        serializer.instance = services.role_update(
            actor=self.request.user,
            role=serializer.instance,
            expected_version=version,
            data=dict(serializer.validated_data),
        )

    def perform_destroy(self, instance):
        services.role_delete(actor=self.request.user, role=instance)


# --- dictionaries ---------------------------------------------------------------------------


def _dictionaries_with_active_items():
    active = DictionaryItem.objects.filter(is_active=True).order_by("sort_order", "id")
    return Dictionary.objects.prefetch_related(
        Prefetch("items", queryset=active, to_attr="active_items")
    )


@extend_schema_view(
    list=extend_schema(responses=DictionarySerializer(many=True)),
    retrieve=extend_schema(responses={200: DictionarySerializer, **_errors(404)}),
)
class DictionaryViewSet(viewsets.ReadOnlyModelViewSet):
    """Option lists every module reads, so any signed-in user may read them (not scoped)."""

    serializer_class = DictionarySerializer
    lookup_field = "code"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    ordering_fields = ["code", "name"]
    ordering = ["code"]

    def get_queryset(self):
        return _dictionaries_with_active_items()


class ReadAnyWriteChange(permissions.BasePermission):
    """Reading items is open to every signed-in user; changing them needs system.change."""

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return has_perm(request.user, "system.change")


class DictionaryItemFilter(django_filters.FilterSet):
    dictionary = django_filters.CharFilter(field_name="dictionary__code")
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = DictionaryItem
        fields = ["dictionary", "is_active"]


@extend_schema_view(
    list=extend_schema(responses=DictionaryItemSerializer(many=True)),
    retrieve=extend_schema(responses={200: DictionaryItemSerializer, **_errors(404)}),
    create=extend_schema(responses={201: DictionaryItemSerializer, **_errors(400, 403)}),
    update=extend_schema(
        request=DictionaryItemUpdateSerializer,
        responses={200: DictionaryItemSerializer, **_errors(400, 403, 404, 409)},
    ),
    partial_update=extend_schema(
        request=DictionaryItemUpdateSerializer,
        responses={200: DictionaryItemSerializer, **_errors(400, 403, 404, 409)},
    ),
)
class DictionaryItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Dictionary items, inactive ones included; retire an item with is_active=false."""

    permission_classes = [permissions.IsAuthenticated, ReadAnyWriteChange]
    queryset = DictionaryItem.objects.select_related("dictionary")
    filterset_class = DictionaryItemFilter
    ordering_fields = ["sort_order", "id", "value"]
    ordering = ["dictionary__code", "sort_order", "id"]

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return DictionaryItemUpdateSerializer
        return DictionaryItemSerializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("version", None)
        dictionary = data.pop("dictionary")
        serializer.instance = services.dictionary_item_create(
            actor=self.request.user, dictionary=dictionary, data=data
        )

    def perform_update(self, serializer):
        version = expected_version(serializer)
        serializer.instance = services.dictionary_item_update(
            actor=self.request.user,
            item=serializer.instance,
            expected_version=version,
            data=dict(serializer.validated_data),
        )


# --- operation log --------------------------------------------------------------------------


class AuditLogFilter(django_filters.FilterSet):
    user = IdFilter(field_name="user_id")
    username = django_filters.CharFilter(field_name="username", lookup_expr="iexact")
    model = django_filters.CharFilter(field_name="model")
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    date_from = django_filters.DateFilter(field_name="at", lookup_expr="date__gte")
    date_to = django_filters.DateFilter(field_name="at", lookup_expr="date__lte")

    class Meta:
        model = AuditLog
        fields = ["user", "username", "model", "action", "date_from", "date_to"]


@extend_schema_view(
    list=extend_schema(responses={200: AuditLogSerializer(many=True), **_errors(403)}),
    retrieve=extend_schema(responses={200: AuditLogSerializer, **_errors(403, 404)}),
)
class AuditLogViewSet(viewsets.ReadOnlyModelViewSet):
    """The operation log, newest first; append-only, so there is nothing to write here."""

    module = "system"
    permission_classes = [permissions.IsAuthenticated, ModulePermission]
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter
    ordering_fields = ["at", "id"]
    ordering = ["-at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuditLog.objects.none()
        user = self.request.user
        # Rows are scoped by who acted: a department-tree administrator sees what the users of
        # his subtree did; anonymous rows (failed logins of unknown names) need the "all" scope.
        return selectors.audit_log_list(user=user).filter(scope_q(User, user, prefix="user__"))


# --- notifications --------------------------------------------------------------------------


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull")

    class Meta:
        model = Notification
        fields = ["unread", "level"]


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The caller's own notifications; nobody reads anyone else's."""

    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return Notification.objects.filter(recipient=self.request.user)

    @extend_schema(
        request=NotificationMarkReadSerializer,
        responses={200: NotificationMarkedSerializer, **_errors(400)},
    )
    @action(detail=False, methods=["post"], url_path="mark-read")
    def mark_read(self, request):
        serializer = NotificationMarkReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = services.notification_mark_read(
            user=request.user, ids=serializer.validated_data.get("ids")
        )
        return Response({"marked": count})
