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
