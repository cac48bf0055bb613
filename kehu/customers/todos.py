"""Home-page to-dos: the user's follow-ups due today and overdue ones."""

from __future__ import annotations

from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from kehu.core.todos import TodoProvider, register_todo
from kehu.customers.selectors import followups_due, followups_overdue

LIMIT = 10


def _items(customers) -> list[dict]:
    return [
        {
            "title": c.name,
            "url": c.get_absolute_url(),
            "when": formats.date_format(
                timezone.localtime(c.next_followup_at), "SHORT_DATETIME_FORMAT"
            ),
        }
        for c in customers[:LIMIT]
    ]


def due_today(user) -> list[dict]:
    return _items(followups_due(user=user))


def overdue(user) -> list[dict]:
    return _items(followups_overdue(user=user))


def register() -> None:
    register_todo(
        TodoProvider(
            label=_("Follow-ups due today"),
            permission="customers.view",
            items=due_today,
            empty_text=_("No follow-ups due today."),
        )
    )
    register_todo(
        TodoProvider(
            label=_("Overdue follow-ups"),
            permission="customers.view",
            items=overdue,
            empty_text=_("No overdue follow-ups."),
        )
    )
