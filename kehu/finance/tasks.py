"""Daily job of the finance module: receivable reminders (due soon and fallen overdue)."""

from __future__ import annotations

from datetime import timedelta

from django_tasks import task

from kehu.core.periodic import register_periodic


@task()
def finance_receivable_reminders() -> int:
    from kehu.finance.services import receivable_reminders_send

    return receivable_reminders_send()


register_periodic(
    "finance.receivable_reminders", every=timedelta(days=1), task=finance_receivable_reminders
)
