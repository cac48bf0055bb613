"""Selectors: due and overdue follow-ups (home page to-dos), timeline and key figures."""

import datetime
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kehu.core.todos import todos_for
from kehu.customers import selectors, services
from kehu.customers.models import Opportunity, PipelineStage
from tests.customers.factories import ContactFactory, CustomerFactory, FollowUpFactory

DAY = datetime.timedelta(days=1)


def noon(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))


def test_due_and_overdue(org):
    today = timezone.localdate()
    due = CustomerFactory(owner=org.sales1, name="今天", next_followup_at=noon(today))
    late = CustomerFactory(owner=org.sales1, name="逾期", next_followup_at=noon(today - DAY))
    CustomerFactory(
        owner=org.sales1,
        name="已跟进",
        next_followup_at=noon(today - 3 * DAY),
        last_followup_at=noon(today - DAY),
    )
    CustomerFactory(owner=org.sales2, name="别人的", next_followup_at=noon(today))
    assert list(selectors.followups_due(user=org.sales1)) == [due]
    assert list(selectors.followups_overdue(user=org.sales1)) == [late]
    groups = {str(g["label"]): g["items"] for g in todos_for(org.sales1)}
    assert [i["title"] for i in groups["Follow-ups due today"]] == ["今天"]
    assert [i["title"] for i in groups["Overdue follow-ups"]] == ["逾期"]
    assert "Follow-ups due today" not in {str(g["label"]) for g in todos_for(org.warehouse)}


def _timeline_queries(customer) -> tuple[int, list]:
    with CaptureQueriesContext(connection) as queries:
        entries = selectors.customer_timeline(customer=customer)
        for entry in entries:  # what a template touches
            str(entry.obj)
            getattr(entry.obj, "author", None)
            getattr(entry.obj, "actor", None)
            getattr(entry.obj, "stage", None)
    return len(queries), entries


def test_timeline_merges_in_order_with_fixed_queries(org):
    customer = services.customer_create(actor=org.sales1, data={"name": "时间线公司"})
    stage = PipelineStage.objects.filter(kind="open").first()
    now = timezone.now()
    FollowUpFactory(customer=customer, author=org.sales1, happened_at=now - 2 * DAY)
    Opportunity.objects.create(customer=customer, title="单1", stage=stage, owner=org.sales1)
    _timeline_queries(customer)  # warm the content-type cache
    few, entries = _timeline_queries(customer)
    kinds = [e.kind for e in entries]
    assert sorted(kinds) == ["event", "followup", "opportunity"]
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    for i in range(6):
        FollowUpFactory(customer=customer, author=org.sales1, happened_at=now - i * DAY)
        Opportunity.objects.create(customer=customer, title=f"单{i}", stage=stage, owner=org.sales1)
    many, entries = _timeline_queries(customer)
    assert len(entries) == 15
    assert few == many


def test_key_figures(org):
    customer = CustomerFactory(owner=org.sales1, last_followup_at=timezone.now() - 3 * DAY)
    ContactFactory(customer=customer)
    FollowUpFactory(customer=customer, author=org.sales1)
    open_stage = PipelineStage.objects.filter(kind="open").first()
    won_stage = PipelineStage.objects.filter(kind="won").first()
    Opportunity.objects.create(
        customer=customer, title="a", stage=open_stage, owner=org.sales1, amount=Decimal("100.50")
    )
    Opportunity.objects.create(
        customer=customer, title="b", stage=won_stage, owner=org.sales1, amount=Decimal("200")
    )
    figures = selectors.customer_key_figures(customer=customer)
    assert figures["contacts"] == 1 and figures["followups"] == 1
    assert figures["open_opportunities"] == 1 and figures["open_amount"] == Decimal("100.50")
    assert figures["won_amount"] == Decimal("200.00")
    assert figures["days_since_followup"] == 3
