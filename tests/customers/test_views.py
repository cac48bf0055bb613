"""Customer pages: allowed and refused, scope 404s, query counts, forms and actions."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from kehu.core.models import SavedView
from kehu.customers.models import Contact, Customer, CustomerEvent, FollowUp
from kehu.customers.services import customer_tags_resolve
from tests.customers.factories import ContactFactory, CustomerFactory, FollowUpFactory
from tests.customers.test_opportunities import opportunity_for
from tests.querycount import warm_page_queries


def url(name, *args):
    return reverse(f"customers:{name}", args=args)


@pytest.fixture
def mine(org):
    return CustomerFactory(owner=org.sales1, name="华为技术有限公司")


@pytest.fixture
def theirs(org):
    return CustomerFactory(owner=org.sales3, name="腾讯科技有限公司")


LIST_PAGES = [
    "customer_list",
    "pool_list",
    "contact_list",
    "followup_list",
    "followup_calendar",
    "opportunity_board",
    "opportunity_list",
    "customer_create",
    "opportunity_create",
]


@pytest.mark.parametrize("name", LIST_PAGES)
def test_pages_open_for_sales_and_refuse_hr(org, client_for, name):
    assert client_for(org.sales1).get(url(name)).status_code == 200
    assert client_for(org.hr).get(url(name)).status_code == 403


def test_finance_views_but_cannot_add(org, client_for, mine):
    client = client_for(org.finance)
    assert client.get(url("customer_list")).status_code == 200
    assert client.get(url("customer_detail", mine.pk)).status_code == 200
    assert client.get(url("customer_create")).status_code == 403
    assert client.get(url("customer_edit", mine.pk)).status_code == 403
    response = client.post(url("followup_create", mine.pk), {"followup-content": "x"})
    assert response.status_code == 403
    assert client.get(url("opportunity_create")).status_code == 403


def test_scope_404s(org, client_for, theirs):
    client = client_for(org.sales1)
    assert client.get(url("customer_detail", theirs.pk)).status_code == 404
    assert client.get(url("customer_edit", theirs.pk)).status_code == 404
    contact = ContactFactory(customer=theirs)
    assert client.get(url("contact_edit", contact.pk)).status_code == 404
    response = client.post(url("customer_return", theirs.pk), {"return-reason": "x"})
    assert response.status_code == 404
    response = client.post(url("customer_claim", theirs.pk))
    assert response.status_code == 404
    opp = opportunity_for(org.sales3, customer=theirs)
    assert client.get(url("opportunity_edit", opp.pk)).status_code == 404
    response = client.post(url("opportunity_move", opp.pk), {"stage": opp.stage_id, "version": 1})
    assert response.status_code == 404
    # The list does not show it either.
    assert theirs.name not in client.get(url("customer_list")).content.decode()


def test_manager_sees_department(org, client_for, mine, theirs):
    body = client_for(org.salesmgr1).get(url("customer_list")).content.decode()
    assert mine.name in body and theirs.name not in body
    body = client_for(org.manager).get(url("customer_list")).content.decode()
    assert mine.name in body and theirs.name in body


def _count_queries(client, path):
    count, response = warm_page_queries(client, path)
    assert response.status_code == 200
    return count


def test_customer_list_query_count_does_not_grow(org, client_for):
    client = client_for(org.sales1)
    CustomerFactory(owner=org.sales1)
    client.get(url("customer_list"))  # warm caches (content types, settings)
    one = _count_queries(client, url("customer_list"))
    for _ in range(25):
        customer = CustomerFactory(owner=org.sales1)
        customer.tags.add(*customer_tags_resolve(["VIP", "华东"]))
    many = _count_queries(client, url("customer_list"))
    assert many == one


def test_detail_query_count_does_not_grow(org, client_for):
    client = client_for(org.sales1)
    customer = CustomerFactory(owner=org.sales1)
    ContactFactory(customer=customer)
    FollowUpFactory(customer=customer)
    opportunity_for(org.sales1, customer=customer)
    client.get(url("customer_detail", customer.pk))
    one = _count_queries(client, url("customer_detail", customer.pk))
    for _ in range(29):
        ContactFactory(customer=customer)
        FollowUpFactory(customer=customer, next_followup_at=timezone.now())
        opportunity_for(org.sales1, customer=customer)
    many = _count_queries(client, url("customer_detail", customer.pk))
    assert many == one


def test_board_and_other_lists_query_counts(org, client_for):
    client = client_for(org.sales1)
    opp = opportunity_for(org.sales1)
    ContactFactory(customer=opp.customer)
    FollowUpFactory(customer=opp.customer, next_followup_at=timezone.now())
    CustomerFactory(owner=None, in_pool=True)
    paths = [
        url("opportunity_board"),
        url("opportunity_list"),
        url("contact_list"),
        url("followup_list"),
        url("followup_calendar"),
        url("pool_list"),
    ]
    for path in paths:
        client.get(path)
    before = [_count_queries(client, p) for p in paths]
    for _ in range(20):
        opp = opportunity_for(org.sales1)
        ContactFactory(customer=opp.customer)
        FollowUpFactory(customer=opp.customer, next_followup_at=timezone.now())
        CustomerFactory(owner=None, in_pool=True)
    after = [_count_queries(client, p) for p in paths]
    assert after == before


def test_detail_shows_profile_with_field_policy_and_placeholder(org, client_for):
    customer = CustomerFactory(owner=org.sales1, phone="010-88886666", mobile="13912345678")
    body = client_for(org.finance).get(url("customer_detail", customer.pk)).content.decode()
    assert "139****5678" in body and "13912345678" not in body


def test_create_customer_through_the_page(org, client_for):
    client = client_for(org.sales1)
    response = client.post(
        url("customer_create"),
        {
            "kind": "company",
            "name": "小米科技有限责任公司",
            "stage": "potential",
            "mobile": "13800138000",
            "tags_text": "VIP，华北, VIP",
        },
    )
    customer = Customer.objects.get(name="小米科技有限责任公司")
    assert response.status_code == 302 and response["Location"] == url(
        "customer_detail", customer.pk
    )
    assert customer.owner == org.sales1
    assert sorted(t.name for t in customer.tags.all()) == ["VIP", "华北"]


def test_create_with_invalid_input_shows_field_error(org, client_for):
    response = client_for(org.sales1).post(
        url("customer_create"),
        {"kind": "company", "name": "", "stage": "potential", "email": "nope"},
    )
    assert response.status_code == 400
    assert "is-invalid" in response.content.decode()
    assert not Customer.objects.exists()


def test_duplicate_warning_flow(org, client_for, theirs):
    client = client_for(org.sales1)
    # The live check as the user leaves the name box: out of scope shows only the owner.
    response = client.get(url("customer_duplicates"), {"name": "腾讯科技 有限公司"})
    body = response.content.decode()
    assert "data-duplicates" in body and "sales3" in body and theirs.name not in body
    data = {"kind": "company", "name": "腾讯科技（有限公司）", "stage": "potential"}
    response = client.post(url("customer_create"), data, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "data-duplicates" in body
    assert 'name="allow_duplicate"' in body and 'type="checkbox"' in body
    assert Customer.objects.count() == 1
    response = client.post(url("customer_create"), {**data, "allow_duplicate": "on"})
    assert response.status_code == 302
    assert Customer.objects.count() == 2


def test_edit_with_stale_version_shows_conflict(org, client_for, mine):
    client = client_for(org.sales1)
    data = {"kind": "company", "name": mine.name, "stage": "intent", "version": mine.version}
    assert client.post(url("customer_edit", mine.pk), data).status_code == 302
    response = client.post(url("customer_edit", mine.pk), {**data, "stage": "won"})
    assert response.status_code == 400
    assert "changed by someone else" in response.content.decode()
    assert Customer.objects.get(pk=mine.pk).stage == "intent"


def test_contact_and_followup_from_the_360_page(org, client_for, mine):
    client = client_for(org.sales1)
    response = client.post(
        url("contact_create", mine.pk), {"contact-name": "王经理", "contact-mobile": "13700001111"}
    )
    assert response.status_code == 302
    assert Contact.objects.get(customer=mine).name == "王经理"
    response = client.post(url("contact_create", mine.pk), {"contact-name": ""})
    assert response.status_code == 400
    soon = (timezone.localtime() + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        url("followup_create", mine.pk),
        {
            "followup-content": "电话沟通报价",
            "followup-happened_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "followup-next_followup_at": soon,
            "followup-next_action": "上门拜访",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 204 and response["HX-Redirect"].startswith(
        url("customer_detail", mine.pk)
    )
    mine.refresh_from_db()
    assert mine.next_followup_at is not None and FollowUp.objects.filter(customer=mine).count() == 1
    response = client.post(
        url("followup_create", mine.pk), {"followup-content": ""}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "is-invalid" in response.content.decode()
    body = client.get(url("customer_detail", mine.pk)).content.decode()
    assert "电话沟通报价" in body and "王经理" in body


def test_return_to_pool_and_claim(org, client_for, mine):
    client = client_for(org.sales1)
    response = client.post(url("customer_return", mine.pk), {"return-reason": ""})
    assert response.status_code == 302 and not Customer.objects.get(pk=mine.pk).in_pool
    client.post(url("customer_return", mine.pk), {"return-reason": "暂无需求"})
    assert Customer.objects.get(pk=mine.pk).in_pool
    body = client_for(org.sales3).get(url("pool_list")).content.decode()
    assert mine.name in body and url("customer_claim", mine.pk) in body
    client_for(org.sales3).post(url("customer_claim", mine.pk))
    customer = Customer.objects.get(pk=mine.pk)
    assert customer.owner == org.sales3 and not customer.in_pool
    assert CustomerEvent.objects.filter(customer=mine, kind="claimed").exists()


def test_claim_refusal_shows_the_reason(org, client_for, mine):
    client = client_for(org.sales1)
    client.post(url("customer_return", mine.pk), {"return-reason": "暂无需求"})
    response = client.post(url("customer_claim", mine.pk), follow=True)
    assert Customer.objects.get(pk=mine.pk).in_pool
    assert "alert-danger" in response.content.decode()


def test_transfer_needs_assign(org, client_for, mine):
    data = {"transfer-owner": org.sales2.pk, "transfer-reason": "调岗"}
    client_for(org.sales1).post(url("customer_transfer", mine.pk), data)
    assert Customer.objects.get(pk=mine.pk).owner == org.sales1
    client_for(org.salesmgr1).post(url("customer_transfer", mine.pk), data)
    assert Customer.objects.get(pk=mine.pk).owner == org.sales2


def test_bulk_return_to_pool(org, client_for):
    a, b = CustomerFactory(owner=org.sales1), CustomerFactory(owner=org.sales1)
    response = client_for(org.sales1).post(
        url("customer_list"),
        {"bulk_action": "return", "selected": [a.pk, b.pk], "bulk_reason": "清理"},
    )
    assert response.status_code == 302
    assert Customer.objects.filter(in_pool=True).count() == 2


def test_list_filters_search_and_export(org, client_for, mine):
    other = CustomerFactory(
        owner=org.sales1,
        name="阿里巴巴网络有限公司",
        next_followup_at=timezone.now() - datetime.timedelta(days=2),
    )
    client = client_for(org.salesmgr1)
    body = client.get(url("customer_list"), {"q": "hwjs"}).content.decode()
    assert mine.name in body and other.name not in body
    body = client.get(url("customer_list"), {"followup": "overdue"}).content.decode()
    assert other.name in body and mine.name not in body
    response = client.get(url("customer_list"), {"export": "csv"})
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    assert mine.name in content
    assert client_for(org.sales1).get(url("customer_list"), {"export": "csv"}).status_code == 403


def test_saved_views(org, client_for):
    client = client_for(org.sales1)
    response = client.post(
        url("saved_view_save"), {"name": "逾期", "querystring": "followup=overdue&page=3"}
    )
    saved = SavedView.objects.get(user=org.sales1)
    assert saved.querystring == "followup=overdue"
    assert response["Location"].endswith("?followup=overdue")
    assert "逾期" in client.get(url("customer_list")).content.decode()
    assert client_for(org.sales2).post(url("saved_view_delete", saved.pk)).status_code == 404
    client.post(url("saved_view_delete", saved.pk))
    assert not SavedView.objects.exists()


def test_calendar_shows_planned_followups(org, client_for, mine):
    FollowUpFactory(customer=mine, next_followup_at=timezone.now(), next_action="送样品")
    body = client_for(org.sales1).get(url("followup_calendar")).content.decode()
    assert "送样品" in body and mine.name in body
    assert client_for(org.sales1).get(url("followup_calendar"), {"year": "x"}).status_code == 200
    body = client_for(org.sales3).get(url("followup_calendar")).content.decode()
    assert "送样品" not in body


def test_contact_inline_edit(org, client_for, mine):
    contact = ContactFactory(customer=mine, name="旧名字")
    client = client_for(org.sales1)
    response = client.get(url("contact_edit", contact.pk), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f'id="contact-{contact.pk}"' in response.content.decode()
    data = {"contact-name": "x", "name": "新名字", "version": contact.version}
    response = client.post(url("contact_edit", contact.pk), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"] == url("customer_detail", mine.pk)
    assert Contact.objects.get(pk=contact.pk).name == "新名字"
    response = client.post(url("contact_edit", contact.pk), data, HTTP_HX_REQUEST="true")
    assert "changed by someone else" in response.content.decode()


def test_customer_list_page_queries_and_columns(org, client_for):
    """The page reads its rows in one query joining only the owner and level, their tags in
    one query of names for the page (no prefetch of tag objects, no subquery per row), and
    after the first request no role or grant tables: at most 18 queries, whatever the
    rows."""
    client = client_for(org.sales1)
    for _ in range(3):
        customer = CustomerFactory(owner=org.sales1)
        customer.tags.add(*customer_tags_resolve(["VIP", "华东"]))
    client.get(url("customer_list"))
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url("customer_list"))
    assert response.status_code == 200
    sql = [q["sql"] for q in captured.captured_queries]
    rows = [
        s
        for s in sql
        if s.startswith('SELECT "customers_customer"."id", "customers_customer"."name"')
    ]
    assert len(rows) == 1
    assert "system_dictionaryitem" in rows[0] and "system_user" in rows[0]  # level, owner
    assert '"customers_customer"."industry_id"' not in rows[0]
    assert "customers_customer_tags" not in rows[0]  # no subquery per row
    tags = [s for s in sql if s.startswith('SELECT "customers_customer_tags"."customer_id"')]
    assert len(tags) == 1 and '"customers_customertag"."name"' in tags[0]
    assert not any('"system_role"' in s or '"system_fieldpermission"' in s for s in sql)
    assert len([s for s in sql if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]) <= 18
    assert response.content.decode().count("VIP, 华东") == 3


@pytest.mark.parametrize(
    "sort", ["name", "level", "get_stage_display", "owner", "last_followup_at", "next_followup_at"]
)
def test_every_sort_answers_in_both_directions(org, client_for, sort):
    CustomerFactory(owner=org.sales1)
    CustomerFactory(owner=org.sales2)
    for user in (org.sales1, org.manager):
        client = client_for(user)
        for value in (sort, f"-{sort}"):
            assert client.get(url("customer_list"), {"sort": value}).status_code == 200


def test_sort_ties_are_broken_by_id_in_the_sort_direction(org, client_for):
    """(column, id) ascending and (-column, -id) descending: one index per column serves
    both directions, read backwards."""
    made = [CustomerFactory(owner=org.sales1, next_followup_at=None).pk for _ in range(3)]
    client = client_for(org.sales1)

    def order(sort):
        response = client.get(url("customer_list"), {"sort": sort})
        return [row["object"].pk for row in response.context["rows"]]

    assert order("next_followup_at") == sorted(made)
    assert order("-next_followup_at") == sorted(made, reverse=True)


def test_sort_by_owner_groups_each_owners_customers(org, client_for):
    for owner in (org.sales2, org.sales1, org.sales2, org.sales1):
        CustomerFactory(owner=owner)
    response = client_for(org.manager).get(url("customer_list"), {"sort": "owner"})
    owners = [row["object"].owner_id for row in response.context["rows"]]
    assert owners == sorted(owners)
