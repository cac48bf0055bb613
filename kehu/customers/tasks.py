"""Daily jobs of the customers module: pool recycling and the warning before it."""

from __future__ import annotations

from datetime import timedelta

from django_tasks import task

from kehu.core.periodic import register_periodic


@task()
def customers_pool_recycle() -> int:
    from kehu.customers.services import customers_recycle_to_pool

    return customers_recycle_to_pool()


@task()
def customers_pool_warn() -> int:
    from kehu.customers.services import customers_warn_before_recycle

    return customers_warn_before_recycle()


register_periodic("customers.pool_warn", every=timedelta(days=1), task=customers_pool_warn)
register_periodic("customers.pool_recycle", every=timedelta(days=1), task=customers_pool_recycle)
