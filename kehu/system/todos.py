"""Home-page to-dos of the system module: the user's unread notifications."""

from __future__ import annotations

from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from kehu.core.todos import TodoProvider, register_todo
from kehu.system.models import Notification

LIMIT = 10


def unread_notifications(user) -> list[dict]:
    notes = Notification.objects.filter(recipient=user, read_at__isnull=True).order_by(
        "-created_at", "-id"
    )[:LIMIT]
    return [
        {
            "title": note.title,
            "url": reverse("system:notification_open", args=[note.pk]),
            "when": formats.date_format(
                timezone.localtime(note.created_at), "SHORT_DATETIME_FORMAT"
            ),
        }
        for note in notes
    ]


def register() -> None:
    register_todo(
        TodoProvider(
            label=_("Unread notifications"),
            permission=None,
            items=unread_notifications,
            empty_text=_("No unread notifications."),
        )
    )
