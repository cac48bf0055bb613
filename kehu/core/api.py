"""API building blocks: pagination, error handling, permission and data-scope mixins."""

from __future__ import annotations

from functools import partial

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from kehu.core.exceptions import ServiceError
from kehu.core.fields import FieldAccess, apply_field_policy, field_policy_for
from kehu.core.pagination import BoundedPaginator, list_count_budget_ms
from kehu.core.permissions import has_perm
from kehu.core.scope import visible_to


class StandardPagination(PageNumberPagination):
    """Page numbers with a bounded count (kehu/core/pagination.py): ``count`` stops at the
    cap and ``count_capped`` says there are more; pages stop there too. A filtered or
    searched list counts within a time budget, as the web lists do; past it, ``count`` is
    the rows up to this page and ``count_capped`` says whether more follow."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 200
    django_paginator_class = BoundedPaginator
    # Query parameters that do not narrow the rows.
    unfiltered_params = frozenset({"page", "page_size", "ordering", "format"})

    def paginate_queryset(self, queryset, request, view=None):
        if any(v for k, v in request.query_params.items() if k not in self.unfiltered_params):
            self.django_paginator_class = partial(
                BoundedPaginator, budget_ms=list_count_budget_ms()
            )
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_capped"] = self.page.paginator.capped
        return response

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["count_capped"] = {
            "type": "boolean",
            "description": str(
                _(
                    "True when there are more rows than the count says: it stops at a cap, "
                    "and a filtered list that takes too long to count gives the rows up to "
                    "this page."
                )
            ),
        }
        schema["required"] = [*schema.get("required", []), "count_capped"]
        return schema


def exception_handler(exc, context):
    """Service errors become 400/403/409 with field messages; out of scope is 404."""
    if isinstance(exc, ServiceError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    return drf_exception_handler(exc, context)


ACTION_FOR_VIEW = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


class ModulePermission(permissions.BasePermission):
    """Maps a viewset action onto ``<module>.<action>``; custom actions set ``perm_action``."""

    def has_permission(self, request, view) -> bool:
        module = getattr(view, "module", None)
        if module is None:
            return True
        action = getattr(view, "perm_action", None) or ACTION_FOR_VIEW.get(
            view.action or "", "view"
        )
        return has_perm(request.user, f"{module}.{action}")


class ScopedQuerysetMixin:
    """Every list and detail goes through the data-scope filter."""

    module: str | None = None
    permission_classes = [permissions.IsAuthenticated, ModulePermission]

    def get_queryset(self):
        queryset = super().get_queryset()  # type: ignore[misc]
        return visible_to(queryset, self.request.user)  # type: ignore[attr-defined]


class FieldPolicySerializerMixin:
    """Hide, mask or freeze fields the way the requesting user's roles say."""

    def _policy(self):
        request = self.context.get("request")  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        return field_policy_for(user, self.Meta.model)  # type: ignore[attr-defined]

    def to_representation(self, instance):
        data = super().to_representation(instance)  # type: ignore[misc]
        policy = self._policy()
        model = self.Meta.model  # type: ignore[attr-defined]
        for name in list(data):
            access = policy.get(name)
            if access == FieldAccess.HIDDEN:
                data.pop(name)
            elif access == FieldAccess.MASKED:
                data[name] = apply_field_policy(model, policy, name, data[name])
        return data

    def validate(self, attrs):
        attrs = super().validate(attrs)  # type: ignore[misc]
        policy = self._policy()
        frozen = [name for name in attrs if policy.get(name, FieldAccess.EDIT) != FieldAccess.EDIT]
        if frozen:
            raise serializers.ValidationError(
                {name: [_("You may not change this field.")] for name in frozen}
            )
        return attrs


class VersionField(serializers.IntegerField):
    """The version the client read; required on update, ignored on create."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault(
            "help_text",
            _("The version you read. An update with an older version is refused with 409."),
        )
        super().__init__(**kwargs)


def expected_version(serializer) -> int:
    version = serializer.validated_data.pop("version", None)
    if version is None:
        raise serializers.ValidationError({"version": [_("This field is required.")]})
    return version
