"""Daily reminders (contracts ending, orders overdue for shipment, quotes expiring) and the
home-page to-dos of the sales module."""

import datetime

import pytest
from django.urls import reverse

from kehu.core.periodic import periodic_jobs
from kehu.core.todos import todos_for
from kehu.sales import tasks
from kehu.sales.models import Contract, ContractStatus, Order, OrderStatus, Quote, QuoteStatus
from kehu.system.models import Notification, SystemSettings
from tests.sales.factories import contract_for, order_for, quote_for

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 6, 15)


def _active(owner, *, ends: datetime.date | None, status=ContractStatus.ACTIVE):
    contract = contract_for(owner)
    Contract.objects.filter(pk=contract.pk).update(
        status=status, start_date=datetime.date(2026, 1, 1), end_date=ends
    )
    contract.refresh_from_db()
    return contract


def _order(owner, *, ship_by, status=OrderStatus.CONFIRMED):
    order = order_for(owner)
    Order.objects.filter(pk=order.pk).update(status=status, ship_by=ship_by)
    order.refresh_from_db()
    return order


def _titles(user) -> list[str]:
    return list(
        Notification.objects.filter(recipient=user).order_by("id").values_list("title", flat=True)
    )


def test_jobs_are_registered_daily():
    jobs = {job.name: job for job in periodic_jobs()}
    for name in (
        "sales.contracts_expiry_remind",
        "sales.orders_overdue_remind",
        "sales.quotes_expire",
    ):
        assert jobs[name].every == datetime.timedelta(days=1)


def test_contract_owners_hear_30_7_and_1_days_before_the_end(org):
    day = datetime.timedelta(days=1)
    in_30 = _active(org.sales1, ends=TODAY + 30 * day)
    in_7 = _active(org.sales2, ends=TODAY + 7 * day)
    in_1 = _active(org.sales3, ends=TODAY + day)
    _active(org.sales1, ends=TODAY + 8 * day)  # not a reminder day
    _active(org.sales1, ends=TODAY)  # ends today: the 1-day notice came yesterday
    _active(org.sales1, ends=None)
    _active(org.sales1, ends=TODAY + 7 * day, status=ContractStatus.COMPLETED)
    _active(org.sales1, ends=TODAY + 7 * day, status=ContractStatus.TERMINATED)

    assert tasks.contracts_expiry_remind(today=TODAY) == 3
    assert _titles(org.sales1) == [f"Contract {in_30.number} ends in 30 days"]
    assert _titles(org.sales2) == [f"Contract {in_7.number} ends in 7 days"]
    assert _titles(org.sales3) == [f"Contract {in_1.number} ends tomorrow"]
    note = Notification.objects.get(recipient=org.sales1)
    assert note.url == in_30.get_absolute_url()
    assert in_30.title in note.body and in_30.customer.name in note.body

    # The next day nothing new is due for these three; the one ending in 8 days is now at 7.
    Notification.objects.all().delete()
    assert tasks.contracts_expiry_remind(today=TODAY + day) == 1
    assert _titles(org.sales1)[0].endswith("ends in 7 days")


def test_the_lead_time_follows_the_settings(org):
    SystemSettings.objects.update_or_create(pk=1, defaults={"contract_expiry_reminder_days": 14})
    in_14 = _active(org.sales1, ends=TODAY + datetime.timedelta(days=14))
    _active(org.sales1, ends=TODAY + datetime.timedelta(days=30))
    assert tasks.contract_expiry_reminder_days() == [14, 7, 1]
    assert tasks.contracts_expiry_remind(today=TODAY) == 1
    assert _titles(org.sales1) == [f"Contract {in_14.number} ends in 14 days"]


def test_a_lead_time_equal_to_a_fixed_one_notifies_once(org):
    SystemSettings.objects.update_or_create(pk=1, defaults={"contract_expiry_reminder_days": 7})
    _active(org.sales1, ends=TODAY + datetime.timedelta(days=7))
    assert tasks.contract_expiry_reminder_days() == [7, 1]
    assert tasks.contracts_expiry_remind(today=TODAY) == 1


def test_orders_that_became_overdue_yesterday_are_announced_once(org):
    yesterday = TODAY - datetime.timedelta(days=1)
    overdue = [
        _order(org.sales1, ship_by=yesterday, status=OrderStatus.PENDING),
        _order(org.sales1, ship_by=yesterday, status=OrderStatus.CONFIRMED),
        _order(org.sales2, ship_by=yesterday, status=OrderStatus.PARTIALLY_SHIPPED),
    ]
    _order(org.sales1, ship_by=yesterday, status=OrderStatus.SHIPPED)
    _order(org.sales1, ship_by=yesterday, status=OrderStatus.CANCELLED)
    _order(org.sales1, ship_by=TODAY - datetime.timedelta(days=2))  # announced a day ago
    due_today = _order(org.sales1, ship_by=TODAY)  # not overdue yet
    _order(org.sales1, ship_by=None)

    assert tasks.orders_overdue_remind(today=TODAY) == 3
    assert _titles(org.sales1) == [
        f"Order {overdue[0].number} is overdue for shipment",
        f"Order {overdue[1].number} is overdue for shipment",
    ]
    assert _titles(org.sales2) == [f"Order {overdue[2].number} is overdue for shipment"]
    assert Notification.objects.filter(level="warning").count() == 3
    # The next day only the order due today is new.
    Notification.objects.all().delete()
    assert tasks.orders_overdue_remind(today=TODAY + datetime.timedelta(days=1)) == 1
    assert _titles(org.sales1) == [f"Order {due_today.number} is overdue for shipment"]


def test_the_quote_job_expires_quotes_past_their_validity(org):
    past = quote_for(org.sales1)
    current = quote_for(org.sales1)
    Quote.objects.filter(pk=past.pk).update(
        quote_date=datetime.date(2020, 1, 1), valid_until=datetime.date(2020, 1, 31)
    )
    assert tasks.sales_quotes_expire.call() == 1
    past.refresh_from_db()
    current.refresh_from_db()
    assert past.status == QuoteStatus.EXPIRED
    assert current.status == QuoteStatus.DRAFT


def test_reminder_tasks_run_from_the_worker(org):
    assert tasks.sales_contracts_expiry_remind.call() == 0
    assert tasks.sales_orders_overdue_remind.call() == 0


# --- to-dos ---------------------------------------------------------------------------------


def _group(user, label: str) -> dict | None:
    return next((g for g in todos_for(user) if str(g["label"]) == label), None)


def test_contracts_ending_soon_todo_is_scoped(org):
    from django.utils import timezone

    today = timezone.localdate()
    mine = _active(org.sales1, ends=today + datetime.timedelta(days=10))
    theirs = _active(org.sales3, ends=today + datetime.timedelta(days=5))
    _active(org.sales1, ends=today + datetime.timedelta(days=31))  # outside the 30 days
    _active(org.sales1, ends=today - datetime.timedelta(days=1))  # already ended

    group = _group(org.sales1, "Contracts ending soon")
    assert [item["url"] for item in group["items"]] == [mine.get_absolute_url()]
    assert mine.number in group["items"][0]["title"]
    assert "in 10 days" in group["items"][0]["when"]
    # The sales manager of 销售一部 sees the department's, not 销售二部's.
    manager = [i["url"] for i in _group(org.salesmgr1, "Contracts ending soon")["items"]]
    assert manager == [mine.get_absolute_url()]
    everyone = [i["url"] for i in _group(org.manager, "Contracts ending soon")["items"]]
    assert everyone == [theirs.get_absolute_url(), mine.get_absolute_url()]
    assert _group(org.hr, "Contracts ending soon") is None  # no sales.view


def test_orders_overdue_todo_is_scoped(org):
    from django.utils import timezone

    today = timezone.localdate()
    mine = _order(org.sales1, ship_by=today - datetime.timedelta(days=3))
    _order(org.sales3, ship_by=today - datetime.timedelta(days=3))
    _order(org.sales1, ship_by=today)
    _order(org.sales1, ship_by=today - datetime.timedelta(days=3), status=OrderStatus.SHIPPED)
    group = _group(org.sales1, "Orders overdue for shipment")
    assert [item["url"] for item in group["items"]] == [mine.get_absolute_url()]


def test_orders_to_ship_todo_is_for_the_warehouse(org):
    from django.utils import timezone

    today = timezone.localdate()
    later = _order(org.sales3, ship_by=today + datetime.timedelta(days=5))
    sooner = _order(org.sales1, ship_by=today + datetime.timedelta(days=1))
    undated = _order(org.sales1, ship_by=None, status=OrderStatus.PARTIALLY_SHIPPED)
    _order(org.sales1, ship_by=today, status=OrderStatus.PENDING)  # not confirmed yet
    group = _group(org.warehouse, "Orders to ship")
    assert [item["url"] for item in group["items"]] == [
        sooner.get_absolute_url(),
        later.get_absolute_url(),
        undated.get_absolute_url(),
    ]
    assert _group(org.sales1, "Orders to ship") is None
    assert _group(org.finance, "Orders to ship") is None


def test_home_page_shows_the_sales_todos(org, client_for):
    from django.utils import timezone

    contract = _active(org.sales1, ends=timezone.localdate() + datetime.timedelta(days=3))
    response = client_for(org.sales1).get(reverse("home"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Contracts ending soon" in content and contract.number in content
