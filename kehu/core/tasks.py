"""Background work of the core app: large imports run here, out of the web request."""

from __future__ import annotations

from django_tasks import task


@task()
def import_job_run_task(job_id: int) -> int:
    """Run one queued ImportJob; returns the job's id. Progress is saved on the job."""
    from kehu.core.imports import import_job_execute

    return import_job_execute(job_id=job_id).pk
