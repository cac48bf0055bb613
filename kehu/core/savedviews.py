"""Saved views: a user's named filters for one list page (any module's list can use them)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError
from kehu.core.models import SavedView

MAX_PER_LIST = 50


def saved_views_for(*, user, view: str) -> list[SavedView]:
    return list(SavedView.objects.filter(user=user, view=view).order_by("name"))


def saved_view_save(*, user, view: str, name: str, querystring: str) -> SavedView:
    """Create or overwrite the user's view called ``name``; the page and export keys drop."""
    from django.http import QueryDict

    name = (name or "").strip()[:100]
    if not name:
        raise ServiceError(_("Give the view a name."), field="name")
    query = QueryDict(querystring or "", mutable=True)
    for key in ("page", "export", "csrfmiddlewaretoken"):
        query.pop(key, None)
    with transaction.atomic():
        existing = SavedView.objects.filter(user=user, view=view, name=name).first()
        if existing is None and SavedView.objects.filter(user=user, view=view).count() >= (
            MAX_PER_LIST
        ):
            raise ServiceError(_("You have too many saved views; delete one first."))
        saved, _created = SavedView.objects.update_or_create(
            user=user, view=view, name=name, defaults={"querystring": query.urlencode()[:2000]}
        )
    return saved


def saved_view_delete(*, user, pk: int) -> bool:
    """Delete one of the user's own saved views; another user's id deletes nothing."""
    deleted, _rows = SavedView.objects.filter(user=user, pk=pk).delete()
    return bool(deleted)
