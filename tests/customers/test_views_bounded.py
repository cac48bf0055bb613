"""Pages whose reads must not grow with the data: the new-opportunity form's customer
select, the board's columns, the follow-up calendar's days."""

import datetime
import re
from decimal import Decimal

from django.db.models import Count, F, Sum
from django.urls import reverse
from django.utils import timezone

from kehu.analytics.models import OpportunityFigure
from kehu.core import forms as core_forms
from kehu.customers import selectors, selectors_opportunities, services_opportunities
from kehu.customers.models import StageKind
from tests.customers.factories import CustomerFactory, FollowUpFactory
from tests.customers.test_opportunities import opportunity_for, stage


def url(name, *args):
    return reverse(f"customers:{name}", args=args)


def _options(body: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', body, re.S)
    assert select is not None
    return re.findall(r'<option value="(\d+)"', select.group(0))


def test_opportunity_form_offers_a_few_customers_and_the_chosen_one(org, client_for, monkeypatch):
    monkeypatch.setattr(core_forms, "SEARCH_SELECT_LIMIT", 2)
    oldest, *newer = [CustomerFactory(owner=org.sales1) for _ in range(4)]
    client = client_for(org.sales1)
    body = client.get(url("opportunity_create")).content.decode()
    assert _options(body, "customer") == [str(c.pk) for c in reversed(newer)][:2]
    assert url("customer_options") in body  # the rest is searched for
    # A customer picked elsewhere (?customer=) is offered even when it is not among the newest.
    body = client.get(url("opportunity_create"), {"customer": oldest.pk}).content.decode()
    assert f'<option value="{oldest.pk}" selected>' in body


def test_opportunity_form_refuses_a_customer_outside_the_scope(org, client_for):
    other = CustomerFactory(owner=org.sales3)
    response = client_for(org.sales1).post(
        url("opportunity_create"),
        {"customer": other.pk, "title": "越权", "amount": "1", "currency": "CNY"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Select a valid choice" in body and str(other.pk) not in _options(body, "customer")


def test_customer_options_search_the_scope_only(org, client_for):
    mine = CustomerFactory(owner=org.sales1, name="北京星河科技")
    CustomerFactory(owner=org.sales3, name="北京星河贸易")
    CustomerFactory(owner=None, in_pool=True, name="北京星河物流")
    client = client_for(org.sales1)
    body = client.get(url("customer_options"), {"q": "星河"}).content.decode()
    assert re.findall(r'<option value="(\d+)"', body) == [str(mine.pk)]
    body = client.get(url("customer_options")).content.decode()
    assert re.findall(r'<option value="(\d+)"', body) == [str(mine.pk)]
    assert "Nothing found" in client.get(url("customer_options"), {"q": "无此"}).content.decode()
    assert client_for(org.hr).get(url("customer_options")).status_code == 403


def test_board_column_shows_the_first_cards_with_the_full_count(
    org, client_for, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(selectors_opportunities, "BOARD_COLUMN_LIMIT", 2)
    first = stage()
    cards = [opportunity_for(org.sales1, title=f"项目{i}", amount="100") for i in range(3)]
    client = client_for(org.sales1)
    body = client.get(url("opportunity_board")).content.decode()
    # Board order: position, so the first two opened; the count and total cover all three.
    assert f'data-id="{cards[0].pk}"' in body and f'data-id="{cards[1].pk}"' in body
    assert f'data-id="{cards[2].pk}"' not in body
    column = body.split(f'data-stage="{first.pk}" data-kind')[1].split("</section>")[0]
    assert '<span class="badge text-bg-light border" data-count="3">3</span>' in column
    assert "¥300.00" in column
    assert f"{url('opportunity_list')}?stage={first.pk}" in column and "1 more" in column
    with django_assert_max_num_queries(30) as before:
        client.get(url("opportunity_board"))
    for i in range(5):
        opportunity_for(org.sales1, title=f"更多{i}")
    with django_assert_max_num_queries(len(before)):
        client.get(url("opportunity_board"))


def test_board_totals_are_the_stored_figures_unless_searched(org):
    """Open columns count from the funnel's stored figures (in scope, per owner), won and
    lost columns their last 30 days live; a search counts live. The same numbers as the
    opportunities themselves."""
    first, second, won = stage(), stage(index=1), stage(StageKind.WON)
    for owner, amount in ((org.sales1, "100"), (org.sales1, "250"), (org.sales3, "400")):
        opportunity_for(owner, amount=amount)
    moved = opportunity_for(org.sales1, title="挪动", amount="70")
    services_opportunities.opportunity_move(
        actor=org.sales1, opportunity=moved, stage=second, position=0, expected_version=1
    )
    closed = opportunity_for(org.sales3, title="赢单", amount="900")
    services_opportunities.opportunity_mark_won(
        actor=org.sales3, opportunity=closed, expected_version=1
    )

    def board(user, **filters):
        columns = selectors_opportunities.opportunity_board(user=user, **filters)
        return {c["stage"].pk: (c["count"], c["total"]) for c in columns if c["count"]}

    def live(user, owner=None):
        counted = selectors_opportunities.opportunity_list_visible_to(user=user)
        if owner is not None:
            counted = counted.filter(owner=owner)
        return {
            row["stage"]: (row["n"], row["total"])
            for row in counted.values("stage").annotate(n=Count("id"), total=Sum("amount"))
        }

    for user in (org.finance, org.salesmgr1, org.sales1, org.sales3):
        assert board(user) == live(user), user.username
        assert board(user, owner_id=org.sales1.pk) == live(user, org.sales1), user.username
    assert board(org.finance)[won.pk] == (1, Decimal("900.00"))
    assert board(org.finance)[second.pk] == (1, Decimal("70.00"))

    # Proof of the source: a figure changed by hand shows, except on a searched board.
    OpportunityFigure.objects.filter(stage=first, owner=org.sales1).update(
        opportunities=F("opportunities") + 10
    )
    assert board(org.sales1)[first.pk][0] == 12
    assert board(org.sales1, query="ERP")[first.pk][0] == 2


def test_calendar_day_shows_the_first_plans_and_links_to_the_rest(
    org, client_for, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(selectors, "CALENDAR_DAY_LIMIT", 2)
    day = timezone.localdate()
    at = timezone.make_aware(datetime.datetime.combine(day, datetime.time(9)))
    names = ["甲公司", "乙公司", "丙公司"]
    for i, name in enumerate(names):
        customer = CustomerFactory(owner=org.sales1, name=name)
        FollowUpFactory(customer=customer, next_followup_at=at + datetime.timedelta(hours=i))
    FollowUpFactory(customer=CustomerFactory(owner=org.sales3, name="别人的"), next_followup_at=at)
    client = client_for(org.sales1)
    body = client.get(url("followup_calendar")).content.decode()
    assert "甲公司" in body and "乙公司" in body and "丙公司" not in body
    assert "别人的" not in body
    more = f"{url('followup_list')}?planned={day:%Y-%m-%d}"
    assert more in body
    listed = client.get(url("followup_list"), {"planned": f"{day:%Y-%m-%d}"}).content.decode()
    assert all(name in listed for name in names) and "别人的" not in listed
    with django_assert_max_num_queries(60) as before:
        client.get(url("followup_calendar"))
    for _ in range(5):
        FollowUpFactory(customer=CustomerFactory(owner=org.sales1), next_followup_at=at)
    with django_assert_max_num_queries(len(before)):
        client.get(url("followup_calendar"))
