from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from kehu.core import periodic
from kehu.core.models import PeriodicJobRun

CALLS: list[str] = []

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@task()
def ping(word: str = "ping") -> str:
    CALLS.append(word)
    return word


@pytest.fixture
def registry(monkeypatch):
    """An empty job registry for the test, and a fresh call log."""
    # Import the apps' tasks modules now, so the worker's autodiscover adds nothing later.
    periodic.autodiscover()
    monkeypatch.setattr(periodic, "_registry", {})
    CALLS.clear()
    return periodic


def test_job_is_enqueued_once_per_interval(db, registry):
    registry.register_periodic("test.ping", every=timedelta(hours=1), task=ping)
    start = timezone.now()

    assert registry.enqueue_due_jobs(now=start) == ["test.ping"]
    assert registry.enqueue_due_jobs(now=start) == []
    assert registry.enqueue_due_jobs(now=start + timedelta(minutes=59)) == []
    assert registry.enqueue_due_jobs(now=start + timedelta(hours=1)) == ["test.ping"]

    # The immediate backend of the test settings runs what is enqueued: twice in all.
    assert CALLS == ["ping", "ping"]
    run = PeriodicJobRun.objects.get(name="test.ping")
    assert run.last_run_at == start + timedelta(hours=1)


def test_register_refuses_plain_functions_and_bad_intervals(registry):
    with pytest.raises(TypeError):
        registry.register_periodic("test.plain", every=timedelta(hours=1), task=lambda: None)
    with pytest.raises(ValueError):
        registry.register_periodic("test.zero", every=timedelta(0), task=ping)


def test_foundation_jobs_are_registered():
    periodic.autodiscover()
    names = {job.name for job in periodic.periodic_jobs()}
    assert {"system.notifications_prune_read", "system.task_results_prune"} <= names


# The worker closes stale connections between tasks, as a real process must, so these
# tests run outside the per-test transaction.
@pytest.mark.django_db(transaction=True)
def test_worker_once_runs_queued_tasks(settings, registry):
    settings.TASKS = DB_TASKS
    ping.using(backend="default").enqueue("queued")
    assert DBTaskResult.objects.ready().count() == 1

    call_command("worker", "--once", verbosity=0)

    assert CALLS == ["queued"]
    assert DBTaskResult.objects.ready().count() == 0
    assert DBTaskResult.objects.successful().count() == 1


@pytest.mark.django_db(transaction=True)
def test_worker_once_enqueues_and_runs_due_periodic_jobs(settings, registry):
    settings.TASKS = DB_TASKS
    registry.register_periodic("test.ping", every=timedelta(days=1), task=ping)

    call_command("worker", "--once", verbosity=0)
    call_command("worker", "--once", verbosity=0)  # not due again within the day

    assert CALLS == ["ping"]
    assert DBTaskResult.objects.successful().count() == 1
