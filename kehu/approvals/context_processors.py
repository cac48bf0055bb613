"""The top bar's "awaiting my approval" count: lazy, so pages that do not show it (htmx
fragments) run no query, and one COUNT for those that do."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def approvals(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from kehu.approvals.selectors import approval_approvable_types, approval_pending_count

    return {
        "approval_pending_count": SimpleLazyObject(lambda: approval_pending_count(user=user)),
        # Approvers see the inbox icon even when it is empty; permissions are cached on the user.
        "approval_can_approve": SimpleLazyObject(lambda: bool(approval_approvable_types(user))),
    }
