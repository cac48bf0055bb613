"""Background housekeeping of the system app, run by the worker as periodic jobs."""

from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, task, task_backends

from kehu.core.periodic import register_periodic
from kehu.system.models import Notification

# Read notifications older than this are deleted; unread ones are kept however old.
NOTIFICATION_RETENTION = timedelta(days=90)
# Finished task results older than this many days are deleted.
TASK_RESULT_RETENTION_DAYS = 14


@task()
def notifications_prune_read() -> int:
    cutoff = timezone.now() - NOTIFICATION_RETENTION
    deleted, _ = Notification.objects.filter(read_at__isnull=False, read_at__lt=cutoff).delete()
    return deleted


@task()
def task_results_prune() -> bool:
    from django_tasks_db.backend import DatabaseBackend

    # Only the database backend keeps results; other backends have nothing to prune.
    if not isinstance(task_backends[DEFAULT_TASK_BACKEND_ALIAS], DatabaseBackend):
        return False
    call_command(
        "prune_db_task_results",
        queue_name="*",
        min_age_days=TASK_RESULT_RETENTION_DAYS,
        verbosity=0,
    )
    return True


register_periodic(
    "system.notifications_prune_read", every=timedelta(days=1), task=notifications_prune_read
)
register_periodic("system.task_results_prune", every=timedelta(days=1), task=task_results_prune)
