"""Home-page to-do of the approval engine: requests awaiting the user's decision."""

from __future__ import annotations

from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from kehu.approvals.selectors import approval_inbox_for
from kehu.core.todos import TodoProvider, register_todo

LIMIT = 10


def approval_items(user) -> list[dict]:
    requests = approval_inbox_for(user=user)[:LIMIT]
    return [
        {
            "title": request.title,
            "url": request.get_absolute_url(),
            "when": _("Submitted by %(user)s, %(when)s")
            % {
                "user": request.submitter,
                "when": formats.date_format(
                    timezone.localtime(request.submitted_at), "SHORT_DATETIME_FORMAT"
                ),
            },
        }
        for request in requests
    ]


def register() -> None:
    # sales.approve: the only module with approval documents so far. When finance registers
    # its documents this becomes "any approve permission" (TodoProvider takes one code).
    register_todo(
        TodoProvider(
            label=_("Awaiting my approval"),
            permission="sales.approve",
            items=approval_items,
            empty_text=_("Nothing is waiting for your approval."),
        )
    )
