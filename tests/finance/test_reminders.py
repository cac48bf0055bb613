"""Receivable reminders (daily job, fixed dates) and the finance to-dos on the home page."""

import datetime
from collections import Counter

import pytest
from django.utils import timezone

from kehu.core.todos import todos_for
from kehu.finance import services
from kehu.finance.tasks import finance_receivable_reminders
from kehu.system.models import Notification
from tests.finance.factories import active_contract, approve_all, invoice_for, pay, plan

pytestmark = pytest.mark.django_db

DAY = datetime.date(2025, 12, 31)
N = services.RECEIVABLE_REMINDER_DAYS


def on(days: int) -> datetime.date:
    return DAY + datetime.timedelta(days=days)


def notices(user):
    return list(Notification.objects.filter(recipient=user).order_by("id"))


@pytest.fixture
def plans(org):
    mine = active_contract(org, org.sales1, amount="10000.00")
    plan(
        mine,
        (on(-2), "1000.00"),  # overdue since yesterday: told yesterday, not today
        (on(-1), "2000.00"),  # due yesterday: overdue from today
        (on(N - 1), "3000.00"),
        (on(N), "4000.00"),  # due in N days
    )
    theirs = active_contract(org, org.sales3, amount="500.00")
    plan(theirs, (on(N), "500.00"))
    paid = active_contract(org, org.sales2, amount="800.00")
    plan(paid, (on(N), "800.00"))
    pay(paid, "800.00", received_on=timezone.localdate(), confirm_by=org.finance)
    Notification.objects.all().delete()
    return mine, theirs, paid


def test_owner_and_finance_are_told_of_due_and_overdue_instalments(org, plans):
    mine, theirs, _paid = plans
    assert services.receivable_reminders_send(today=DAY) == 3
    titles = [n.title for n in notices(org.sales1)]
    assert titles == [
        f"Instalment due in {N} days: {mine.number} #4 {mine.customer}, 4,000.00",
        f"Instalment overdue: {mine.number} #2 {mine.customer}, 2,000.00",
    ]
    assert [n.level for n in notices(org.sales1)] == ["info", "warning"]
    assert notices(org.sales1)[0].url == f"/finance/plans/{mine.pk}/"
    assert [n.title for n in notices(org.sales3)] == [
        f"Instalment due in {N} days: {theirs.number} #1 {theirs.customer}, 500.00"
    ]
    finance = notices(org.finance)
    assert [n.title for n in finance] == [
        f"2 instalments due in {N} days, 4,500.00 outstanding",
        f"Instalment overdue: {mine.number} #2 {mine.customer}, 2,000.00",
    ]
    assert mine.number in finance[0].body and theirs.number in finance[0].body
    assert finance[0].url == "/finance/aging/"
    # Paid up, or not theirs: no notice.
    for user in (org.sales2, org.salesmgr1, org.manager, org.hr):
        assert notices(user) == []


def test_each_instalment_is_told_of_once_over_the_days(org, plans):
    mine, theirs, _paid = plans
    for offset in range(-20, 30):
        services.receivable_reminders_send(today=on(offset))
    told = Counter(n.title.split(":")[0] for n in notices(org.sales1))
    # Four instalments, each told of once as due soon and once as overdue.
    assert told[f"Instalment due in {N} days"] == 4
    assert told["Instalment overdue"] == 4
    assert len(notices(org.sales3)) == 2


def test_money_received_before_the_day_stops_the_reminder(org, plans):
    mine, _theirs, _paid = plans
    pay(mine, "10000.00", received_on=timezone.localdate(), confirm_by=org.finance)
    Notification.objects.all().delete()
    assert services.receivable_reminders_send(today=DAY) == 1  # sales3's only
    assert notices(org.sales1) == []


def test_nothing_to_tell(org):
    assert services.receivable_reminders_send(today=DAY) == 0
    assert not Notification.objects.exists()


def test_daily_job_is_registered_and_runs(org):
    from kehu.core.periodic import autodiscover, periodic_jobs

    autodiscover()
    job = next(j for j in periodic_jobs() if j.name == "finance.receivable_reminders")
    assert job.every == datetime.timedelta(days=1)
    assert finance_receivable_reminders.enqueue().return_value == 0


# --- to-dos ---------------------------------------------------------------------------------


def groups(user) -> dict:
    return {str(group["label"]): group["items"] for group in todos_for(user)}


def test_finance_todos(org):
    today = timezone.localdate()
    contract = active_contract(org, org.sales1, amount="10000.00")
    plan(contract, (today - datetime.timedelta(days=12), "4000.00"), (today, "6000.00"))
    payment = pay(contract, "1000.00")
    invoice = invoice_for(contract, "500.00")
    approve_all(invoice, org)
    other = active_contract(org, org.sales3, amount="300.00")
    plan(other, (today - datetime.timedelta(days=3), "300.00"))

    finance = groups(org.finance)
    [to_confirm] = finance["Payments to confirm"]
    assert to_confirm["url"] == payment.get_absolute_url()
    assert payment.number in to_confirm["title"] and "1,000.00" in to_confirm["title"]
    [to_issue] = finance["Invoices to issue"]
    assert to_issue["url"] == invoice.get_absolute_url()
    overdue = finance["Overdue receivables"]
    assert [item["when"] for item in overdue] == ["12 days overdue", "3 days overdue"]
    assert overdue[0]["url"] == f"/finance/plans/{contract.pk}/"

    sales1 = groups(org.sales1)
    assert "Payments to confirm" not in sales1 and "Invoices to issue" not in sales1
    assert [item["url"] for item in sales1["Overdue receivables"]] == [
        f"/finance/plans/{contract.pk}/"
    ]
    assert [item["url"] for item in groups(org.sales3)["Overdue receivables"]] == [
        f"/finance/plans/{other.pk}/"
    ]
    assert "Overdue receivables" not in groups(org.hr)
    # Confirmed and issued, they leave the lists.
    services.payment_confirm(actor=org.finance, payment=payment)
    invoice.refresh_from_db()
    services.invoice_issue(actor=org.finance, invoice=invoice, invoice_number="FP-9")
    finance = groups(org.finance)
    assert finance["Payments to confirm"] == [] and finance["Invoices to issue"] == []
    # The confirmed 1,000 settled part of the oldest instalment.
    assert "3,000.00" in finance["Overdue receivables"][0]["title"]


def test_todos_query_count(org, django_assert_max_num_queries):
    today = timezone.localdate()
    for _n in range(3):
        contract = active_contract(org, org.sales1, amount="1000.00")
        plan(contract, (today - datetime.timedelta(days=5), "1000.00"))
        pay(contract, "100.00")
        approve_all(invoice_for(contract, "100.00"), org)
    finance = org.finance
    with django_assert_max_num_queries(12):
        result = groups(finance)
    assert len(result["Payments to confirm"]) == 3
    assert len(result["Invoices to issue"]) == 3
    assert len(result["Overdue receivables"]) == 3
