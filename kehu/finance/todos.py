"""Home-page to-dos: payments to confirm, invoices to issue, overdue receivables."""

from __future__ import annotations

from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kehu.core.todos import TodoProvider, register_todo
from kehu.finance import selectors

LIMIT = 10


def _money(amount) -> str:
    return f"{amount:,.2f}"


def payments_to_confirm(user) -> list[dict]:
    return [
        {
            "title": f"{p.number} · {p.contract.customer} · {_money(p.amount)}",
            "url": p.get_absolute_url(),
            "when": formats.date_format(p.received_on, "SHORT_DATE_FORMAT"),
        }
        for p in selectors.payments_to_confirm(user=user)[:LIMIT]
    ]


def invoices_to_issue(user) -> list[dict]:
    return [
        {
            "title": f"{i.number} · {i.title} · {_money(i.amount)}",
            "url": i.get_absolute_url(),
            "when": formats.date_format(i.updated_at.date(), "SHORT_DATE_FORMAT"),
        }
        for i in selectors.invoices_to_issue(user=user)[:LIMIT]
    ]


def overdue_receivables(user) -> list[dict]:
    return [
        {
            "title": f"{s.instalment.contract.number} #{s.instalment.sequence} · "
            f"{s.instalment.contract.customer} · {_money(s.outstanding)}",
            "url": reverse("finance:plan_detail", args=[s.instalment.contract_id]),
            "when": _("%(days)s days overdue") % {"days": s.days_overdue},
        }
        for s in selectors.instalments_overdue(user=user, limit=LIMIT)
    ]


def register() -> None:
    register_todo(
        TodoProvider(
            label=gettext_lazy("Payments to confirm"),
            permission="finance.approve",
            items=payments_to_confirm,
            empty_text=gettext_lazy("No payments waiting for confirmation."),
        )
    )
    register_todo(
        TodoProvider(
            label=gettext_lazy("Invoices to issue"),
            permission="finance.change",
            items=invoices_to_issue,
            empty_text=gettext_lazy("No approved invoices waiting to be issued."),
        )
    )
    register_todo(
        TodoProvider(
            label=gettext_lazy("Overdue receivables"),
            permission="finance.view",
            items=overdue_receivables,
            empty_text=gettext_lazy("No overdue receivables."),
        )
    )
