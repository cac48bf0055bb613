from __future__ import annotations

from django.db.models import QuerySet

from kehu.core.permissions import require_perm
from kehu.core.scope import get_visible_or_404, visible_to
from kehu.system.models import AuditLog, Dictionary, DictionaryItem, Notification, Role, User


def user_list_visible_to(*, user) -> QuerySet[User]:
    require_perm(user, "system.view")
    return visible_to(User.objects.select_related("department"), user).prefetch_related("roles")


def user_get_for(*, user, pk) -> User:
    require_perm(user, "system.view")
    return get_visible_or_404(User.objects.select_related("department"), user, pk=pk)


def role_list(*, user) -> QuerySet[Role]:
    require_perm(user, "system.view")
    return Role.objects.all()


def audit_log_list(*, user) -> QuerySet[AuditLog]:
    require_perm(user, "system.view")
    return AuditLog.objects.select_related("user")


def dictionary_list(*, user) -> QuerySet[Dictionary]:
    require_perm(user, "system.view")
    return Dictionary.objects.all()


def dictionary_items(code: str, *, include_inactive: bool = False) -> QuerySet[DictionaryItem]:
    """The options of one dictionary, for modules to offer in forms and filters."""
    queryset = DictionaryItem.objects.filter(dictionary__code=code)
    if not include_inactive:
        queryset = queryset.filter(is_active=True)
    return queryset.order_by("sort_order", "id")


def notification_unread_count(*, user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def role_list_with_counts(*, user) -> QuerySet[Role]:
    from django.db.models import Count

    return role_list(user=user).annotate(user_count=Count("users"))


def role_get_for(*, user, pk) -> Role:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(role_list(user=user), pk=pk)


def dictionary_list_with_counts(*, user) -> QuerySet[Dictionary]:
    from django.db.models import Count

    return dictionary_list(user=user).annotate(item_count=Count("items"))


def notification_list_for(*, user) -> QuerySet[Notification]:
    """The user's own notifications, unread first, newest first."""
    from django.db.models import Case, IntegerField, Value, When

    return Notification.objects.filter(recipient=user).order_by(
        Case(
            When(read_at__isnull=True, then=Value(0)), default=Value(1), output_field=IntegerField()
        ),
        "-created_at",
        "-id",
    )


def audit_changes_display(entry: AuditLog) -> list[tuple[str, object, object]]:
    """The entry's changes as (field label, before, after), with verbose names where known."""
    import contextlib

    from django.apps import apps
    from django.core.exceptions import FieldDoesNotExist

    try:
        model = apps.get_model(entry.model) if entry.model else None
    except (LookupError, ValueError):
        model = None
    rows = []
    for name, pair in (entry.changes or {}).items():
        before, after = (list(pair) + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        label = name
        if model is not None:
            with contextlib.suppress(FieldDoesNotExist):
                label = str(model._meta.get_field(name).verbose_name)
        rows.append((label, before, after))
    return rows
