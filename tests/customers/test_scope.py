"""The scope matrix: who lists, reads, changes, exports, searches and claims which customers."""

import pytest
from django.http import Http404

from kehu.core.exports import ExportColumn, export_response
from kehu.core.search import search_all
from kehu.customers import selectors
from kehu.customers.models import Customer
from tests.customers.factories import ContactFactory, CustomerFactory, FollowUpFactory

URL = "/api/v1/customers/"


@pytest.fixture
def book(org):
    """One customer per salesperson and one in the pool."""
    return {
        "sales1": CustomerFactory(owner=org.sales1, name="一号客户公司"),
        "sales2": CustomerFactory(owner=org.sales2, name="二号客户公司"),
        "sales3": CustomerFactory(owner=org.sales3, name="三号客户公司"),
        "pool": CustomerFactory(owner=None, in_pool=True, name="公海客户公司"),
    }


def listed(api) -> set[int]:
    return {c["id"] for c in api.get(URL + "?page_size=200").json()["results"]}


@pytest.mark.parametrize(
    "user, expected",
    [
        ("sales1", {"sales1"}),
        ("sales3", {"sales3"}),
        ("salesmgr1", {"sales1", "sales2"}),
        ("salesdirector", {"sales1", "sales2", "sales3"}),
        ("manager", {"sales1", "sales2", "sales3"}),
    ],
)
def test_list_matrix(org, book, api_for, user, expected):
    assert listed(api_for(getattr(org, user))) == {book[k].pk for k in expected}
    assert set(
        selectors.customer_list_visible_to(user=getattr(org, user)).values_list("pk", flat=True)
    ) == {book[k].pk for k in expected}


def test_sales1_cannot_read_change_or_act_on_sales3s_customer(org, book, api_for):
    api = api_for(org.sales1)
    url = f"{URL}{book['sales3'].pk}/"
    assert api.get(url).status_code == 404
    assert api.patch(url, {"notes": "x", "version": 1}, format="json").status_code == 404
    assert api.post(url + "return-to-pool/", {"reason": "x"}, format="json").status_code == 404
    assert api.post(url + "claim/").status_code == 404
    assert api.get(url + "timeline/").status_code == 404
    fresh = Customer.objects.get(pk=book["sales3"].pk)
    assert fresh.owner == org.sales3 and fresh.notes == "" and fresh.version == 1
    with pytest.raises(Http404):
        selectors.customer_get_for(user=org.sales1, pk=book["sales3"].pk)


def test_missing_and_forbidden_look_the_same(org, book, api_for):
    api = api_for(org.sales1)
    forbidden = api.get(f"{URL}{book['sales3'].pk}/")
    missing = api.get(f"{URL}999999/")
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.json() == missing.json()


def test_pool_customer_readable_but_not_listed(org, book, api_for):
    api = api_for(org.sales1)
    assert book["pool"].pk not in listed(api)
    assert api.get(f"{URL}{book['pool'].pk}/").status_code == 200
    # Reading is not changing: the pool customer is not in the salesperson's scope.
    response = api.patch(f"{URL}{book['pool'].pk}/", {"notes": "x", "version": 1}, format="json")
    assert response.status_code == 404


def test_manager_reads_all_salesmgr1_reads_department(org, book, api_for):
    assert api_for(org.manager).get(f"{URL}{book['sales3'].pk}/").status_code == 200
    assert api_for(org.salesmgr1).get(f"{URL}{book['sales2'].pk}/").status_code == 200
    assert api_for(org.salesmgr1).get(f"{URL}{book['sales3'].pk}/").status_code == 404


def test_no_view_permission_is_403(org, book, api_for):
    assert api_for(org.warehouse).get(URL).status_code == 403
    assert api_for(org.warehouse).get(f"{URL}{book['sales1'].pk}/").status_code == 403


def _export_names(user) -> list[str]:
    response = export_response(
        user=user,
        module="customers",
        model=Customer,
        queryset=selectors.customer_list_visible_to(user=user),
        columns=[ExportColumn("name", "name"), ExportColumn("mobile", "mobile")],
        fmt="csv",
        filename="customers",
    )
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return [line.split(",")[0] for line in text.strip().splitlines()[1:]]


def test_export_respects_scope(org, book):
    assert _export_names(org.salesmgr1) == ["二号客户公司", "一号客户公司"]
    assert set(_export_names(org.manager)) == {"一号客户公司", "二号客户公司", "三号客户公司"}


def test_search_respects_scope(org, book, api_for):
    assert api_for(org.sales1).get(URL + "?search=三号").json()["count"] == 0
    assert api_for(org.manager).get(URL + "?search=三号").json()["count"] == 1
    groups = search_all(user=org.sales1, query="客户公司")
    titles = {hit.title for group in groups for hit in group["hits"]}
    assert titles == {"一号客户公司"}


def test_contacts_and_followups_follow_the_customer(org, book, api_for):
    mine = ContactFactory(customer=book["sales1"])
    theirs = ContactFactory(customer=book["sales3"])
    FollowUpFactory(customer=book["sales1"], author=org.sales1)
    their_followup = FollowUpFactory(customer=book["sales3"], author=org.sales3)
    api = api_for(org.sales1)
    assert [c["id"] for c in api.get("/api/v1/contacts/").json()["results"]] == [mine.pk]
    assert api.get(f"/api/v1/contacts/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/v1/followups/{their_followup.pk}/").status_code == 404
    assert api.get("/api/v1/followups/").json()["count"] == 1
