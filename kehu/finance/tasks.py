"""Daily jobs of the finance module: receivable reminders, forgetting old idempotency keys."""

from __future__ import annotations

from datetime import timedelta

from django_tasks import task

from kehu.core.periodic import register_periodic


@task()
def finance_receivable_reminders() -> int:
    from kehu.finance.services import receivable_reminders_send

    return receivable_reminders_send()


@task()
def finance_idempotency_keys_prune() -> int:
    from kehu.finance.services import idempotency_keys_prune

    return idempotency_keys_prune()


register_periodic(
    "finance.idempotency_keys_prune", every=timedelta(days=1), task=finance_idempotency_keys_prune
)
register_periodic(
    "finance.receivable_reminders", every=timedelta(days=1), task=finance_receivable_reminders
)
