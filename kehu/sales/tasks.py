"""Daily jobs of the sales module: contract-expiry and overdue-shipment reminders, and
expiring quotes past their validity.

The reminders keep no state: each looks at one exact day (a contract ending exactly N days
from today, an order whose ship-by date was exactly yesterday), so a daily run announces
each event once. Running twice on one day repeats that day's notices; a day on which the
job does not run at all is not caught up.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task

from kehu.core.periodic import register_periodic
from kehu.sales.models import Contract, ContractStatus, Order
from kehu.sales.selectors import OPEN_ORDER_STATUSES

EVERY = datetime.timedelta(days=1)
# Besides the configured lead time (SystemSettings.contract_expiry_reminder_days).
EXPIRY_REMINDER_DAYS = (7, 1)


def contract_expiry_reminder_days() -> list[int]:
    """The days before the end date on which the owner hears about it, furthest first."""
    from kehu.system.services import system_settings_get

    days = {system_settings_get().contract_expiry_reminder_days, *EXPIRY_REMINDER_DAYS}
    return sorted((d for d in days if d > 0), reverse=True)


def contracts_expiry_remind(*, today: datetime.date | None = None) -> int:
    """Notify the owners of active contracts ending exactly 30 (as set), 7 or 1 days from
    ``today``; returns how many notifications were sent."""
    from kehu.system.services import notification_send

    today = today or timezone.localdate()
    sent = 0
    with translation.override(settings.LANGUAGE_CODE):
        for days in contract_expiry_reminder_days():
            contracts = (
                Contract.objects.filter(
                    status=ContractStatus.ACTIVE, end_date=today + datetime.timedelta(days=days)
                )
                .select_related("owner", "customer")
                .order_by("pk")
            )
            for contract in contracts:
                sent += len(
                    notification_send(
                        recipients=[contract.owner],
                        title=_("Contract %(number)s ends in %(days)d days")
                        % {"number": contract.number, "days": days}
                        if days > 1
                        else _("Contract %(number)s ends tomorrow") % {"number": contract.number},
                        body=_("%(title)s · %(customer)s · ends on %(date)s")
                        % {
                            "title": contract.title,
                            "customer": contract.customer.name,
                            "date": formats.date_format(contract.end_date, "DATE_FORMAT"),
                        },
                        url=contract.get_absolute_url(),
                        level="warning" if days <= 7 else "todo",
                    )
                )
    return sent


def orders_overdue_remind(*, today: datetime.date | None = None) -> int:
    """Notify the owners of open orders that were due to ship yesterday and have not
    (fully) shipped: they became overdue today. Returns how many notifications were sent."""
    from kehu.system.services import notification_send

    today = today or timezone.localdate()
    orders = (
        Order.objects.filter(
            status__in=OPEN_ORDER_STATUSES, ship_by=today - datetime.timedelta(days=1)
        )
        .select_related("owner", "customer")
        .order_by("pk")
    )
    sent = 0
    with translation.override(settings.LANGUAGE_CODE):
        for order in orders:
            sent += len(
                notification_send(
                    recipients=[order.owner],
                    title=_("Order %(number)s is overdue for shipment") % {"number": order.number},
                    body=_("%(customer)s · to ship by %(date)s · %(status)s")
                    % {
                        "customer": order.customer.name,
                        "date": formats.date_format(order.ship_by, "DATE_FORMAT"),
                        "status": order.get_status_display(),
                    },
                    url=order.get_absolute_url(),
                    level="warning",
                )
            )
    return sent


@task()
def sales_contracts_expiry_remind() -> int:
    return contracts_expiry_remind()


@task()
def sales_orders_overdue_remind() -> int:
    return orders_overdue_remind()


@task()
def sales_quotes_expire() -> int:
    from kehu.sales.services import quotes_expire

    return quotes_expire()


register_periodic("sales.contracts_expiry_remind", every=EVERY, task=sales_contracts_expiry_remind)
register_periodic("sales.orders_overdue_remind", every=EVERY, task=sales_orders_overdue_remind)
register_periodic("sales.quotes_expire", every=EVERY, task=sales_quotes_expire)
