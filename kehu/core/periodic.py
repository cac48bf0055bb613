"""Periodic jobs: modules register a task and an interval; the worker enqueues it when due.

Registration lives in each app's ``tasks.py`` (imported by :func:`autodiscover`), e.g.::

    @task()
    def reminders_send() -> int: ...

    register_periodic("customers.reminders_send", every=timedelta(minutes=5), task=reminders_send)

The last enqueue time of every job is a ``PeriodicJobRun`` row, locked while it is checked,
so several workers (or several hosts) never enqueue the same run twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from kehu.core.models import PeriodicJobRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: timedelta
    task: Any  # a django_tasks Task


_registry: dict[str, PeriodicJob] = {}


def register_periodic(name: str, every: timedelta, task: Any) -> PeriodicJob:
    """Run ``task`` (a ``django_tasks`` task taking no arguments) every ``every``.

    Registering the same name again replaces the job (module reloads in development).
    """
    if every <= timedelta(0):
        raise ValueError("A periodic job needs a positive interval.")
    if not hasattr(task, "enqueue"):
        raise TypeError(f"{name}: register a django_tasks task (decorate it with @task()).")
    job = PeriodicJob(name=name, every=every, task=task)
    _registry[name] = job
    return job


def periodic_jobs() -> list[PeriodicJob]:
    return sorted(_registry.values(), key=lambda job: job.name)


def autodiscover() -> None:
    """Import every installed app's ``tasks`` module so its jobs are registered."""
    autodiscover_modules("tasks")


def _claim(job: PeriodicJob, now: datetime) -> bool:
    """Record ``now`` as the job's last run if it is due; True when this caller won."""
    with transaction.atomic():
        run = PeriodicJobRun.objects.select_for_update().filter(name=job.name).first()
        if run is None:
            try:
                # A nested savepoint: a concurrent worker may insert the same name first.
                with transaction.atomic():
                    PeriodicJobRun.objects.create(name=job.name, last_run_at=now)
            except IntegrityError:
                return False
            return True
        if run.last_run_at + job.every > now:
            return False
        run.last_run_at = now
        run.save(update_fields=["last_run_at"])
        return True


def enqueue_due_jobs(now: datetime | None = None) -> list[str]:
    """Enqueue every registered job whose interval has elapsed; returns their names.

    A job never run before is due at once. The claim commits before the task is enqueued,
    so a crash in between skips one run rather than running twice.
    """
    now = now or timezone.now()
    enqueued = []
    for job in periodic_jobs():
        if not _claim(job, now):
            continue
        try:
            job.task.enqueue()
        except Exception:
            logger.exception("Could not enqueue periodic job %s", job.name)
            continue
        enqueued.append(job.name)
    return enqueued
