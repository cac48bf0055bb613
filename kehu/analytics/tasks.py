"""The daily analytics refresh, run by the worker (``kehu.core.periodic``)."""

from __future__ import annotations

from datetime import timedelta

from django_tasks import task

from kehu.core.periodic import register_periodic


@task()
def analytics_refresh() -> dict[str, str]:
    """Every analytics job as of today; returns each job's status (failures are recorded
    on their ``AnalyticsRun``, they do not stop the others)."""
    from kehu.analytics.services import analytics_refresh_all

    return {run.kind: run.status for run in analytics_refresh_all()}


register_periodic("analytics.refresh", every=timedelta(days=1), task=analytics_refresh)
