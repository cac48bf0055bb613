"""Customer, contact and follow-up API: allowed and refused, versions, duplicates, queries."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from kehu.core.models import Attachment, CustomFieldDefinition
from kehu.customers.models import Contact, Customer, FollowUp
from tests.customers.factories import ContactFactory, CustomerFactory, FollowUpFactory

URL = "/api/v1/customers/"


def detail(customer) -> str:
    return f"{URL}{customer.pk}/"


def test_create_and_read(org, api_for):
    api = api_for(org.sales1)
    response = api.post(
        URL,
        {
            "name": "华为技术有限公司",
            "mobile": "13800001111",
            "level": "a",
            "industry": "it",
            "tags": ["VIP"],
            "stage": "intent",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["code"].startswith("KH-")
    assert body["owner"] == org.sales1.pk and body["in_pool"] is False
    assert body["level"] == "a" and body["industry"] == "it" and body["tags"] == ["VIP"]
    assert body["mobile"] == "13800001111"  # salespeople see their customers' numbers
    assert body["version"] == 1
    assert api.get(detail(Customer.objects.get())).json()["name"] == "华为技术有限公司"


def test_create_refused_without_permission(org, api_for):
    response = api_for(org.finance).post(URL, {"name": "某公司"}, format="json")
    assert response.status_code == 403
    assert not Customer.objects.exists()


def test_create_owner_is_not_taken_from_a_salesperson(org, api_for):
    response = api_for(org.sales1).post(
        URL, {"name": "某公司", "owner": org.sales2.pk}, format="json"
    )
    assert response.status_code == 403
    assert not Customer.objects.exists()


def test_manager_creates_for_a_salesperson(org, api_for):
    response = api_for(org.salesmgr1).post(
        URL, {"name": "某公司", "owner": org.sales2.pk}, format="json"
    )
    assert response.status_code == 201
    assert Customer.objects.get().owner == org.sales2


def test_duplicate_is_400_with_hits_unless_allowed(org, api_for):
    CustomerFactory(name="深圳腾讯科技有限公司", owner=org.sales3)
    api = api_for(org.sales1)
    response = api.post(URL, {"name": "深圳腾讯科技"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["duplicates"] == [
        {"matched_on": "name", "visible": False, "id": None, "name": None, "owner": "sales3"}
    ]
    assert "name" in body
    response = api.post(URL, {"name": "深圳腾讯科技", "allow_duplicate": True}, format="json")
    assert response.status_code == 201


def test_update_needs_current_version(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    api = api_for(org.sales1)
    assert api.patch(detail(customer), {"notes": "x"}, format="json").status_code == 400
    ok = api.patch(detail(customer), {"notes": "first", "version": 1}, format="json")
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = api.patch(detail(customer), {"notes": "second", "version": 1}, format="json")
    assert stale.status_code == 409
    assert Customer.objects.get(pk=customer.pk).notes == "first"


def test_update_ignores_server_fields(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    response = api_for(org.sales1).patch(
        detail(customer),
        {"version": 1, "owner": org.sales3.pk, "in_pool": True, "code": "X"},
        format="json",
    )
    assert response.status_code == 200
    fresh = Customer.objects.get(pk=customer.pk)
    assert fresh.owner == org.sales1 and not fresh.in_pool and fresh.code == customer.code


def test_delete_needs_permission(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    assert api_for(org.sales1).delete(detail(customer)).status_code == 403
    assert api_for(org.salesmgr1).delete(detail(customer)).status_code == 204
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_return_claim_transfer_actions(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    url = detail(customer)
    assert api_for(org.sales1).post(url + "return-to-pool/", {}, format="json").status_code == 400
    response = api_for(org.sales1).post(
        url + "return-to-pool/", {"reason": "无意向"}, format="json"
    )
    assert response.status_code == 200 and response.json()["in_pool"] is True
    pool = api_for(org.sales3).get(URL + "pool/").json()
    assert [c["id"] for c in pool["results"]] == [customer.pk]
    response = api_for(org.sales3).post(url + "claim/")
    assert response.status_code == 200 and response.json()["owner"] == org.sales3.pk
    assert api_for(org.sales2).post(url + "claim/").status_code == 404  # no longer in the pool
    response = api_for(org.salesdirector).post(
        url + "transfer/", {"owner": org.sales1.pk, "reason": "调整"}, format="json"
    )
    assert response.status_code == 200 and response.json()["owner"] == org.sales1.pk
    assert (
        api_for(org.sales1)
        .post(url + "transfer/", {"owner": org.sales2.pk, "reason": "x"}, format="json")
        .status_code
        == 403
    )


def test_claim_refusal_is_a_clear_400(org, api_for):
    from kehu.system.models import SystemSettings

    SystemSettings.objects.get_or_create(pk=1)
    SystemSettings.objects.filter(pk=1).update(pool_max_owned_customers=0)
    customer = CustomerFactory(owner=None, in_pool=True)
    response = api_for(org.sales1).post(detail(customer) + "claim/")
    assert response.status_code == 400
    assert "most allowed" in response.json()["non_field_errors"][0]


def test_timeline(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    FollowUpFactory(customer=customer, author=org.sales1, content="打电话")
    api = api_for(org.sales1)
    api.post(detail(customer) + "return-to-pool/", {"reason": "x"}, format="json")
    rows = api.get(detail(customer) + "timeline/").json()
    assert [r["kind"] for r in rows] == ["event.returned", "followup"]


def test_filters_and_ordering(org, api_for):
    a = CustomerFactory(owner=org.sales1, name="甲", stage="won", province="广东")
    b = CustomerFactory(owner=org.sales1, name="乙", stage="potential")
    b.tags.create(name="VIP")
    api = api_for(org.sales1)

    def ids(query):
        return [c["id"] for c in api.get(URL + query).json()["results"]]

    assert ids("?stage=won") == [a.pk]
    assert ids("?tag=VIP") == [b.pk]
    assert ids("?province=广东") == [a.pk]
    assert ids("?ordering=id") == [a.pk, b.pk]
    assert ids(f"?owner={org.sales1.pk}&ordering=-id") == [b.pk, a.pk]


def test_custom_field_filter(org, api_for):
    CustomFieldDefinition.objects.create(
        model="customers.customer",
        key="region",
        label="区域",
        field_type="choice",
        choices=["东", "西"],
    )
    CustomFieldDefinition.objects.create(
        model="customers.customer", key="staff", label="人数", field_type="number"
    )
    east = CustomerFactory(owner=org.sales1, custom_fields={"region": "东", "staff": "12"})
    CustomerFactory(owner=org.sales1, custom_fields={"region": "西", "staff": "5"})
    api = api_for(org.sales1)
    assert [c["id"] for c in api.get(URL + "?cf_region=东").json()["results"]] == [east.pk]
    assert [c["id"] for c in api.get(URL + "?cf_staff=12.0").json()["results"]] == [east.pk]
    assert api.get(URL + "?cf_unknown=1").json()["count"] == 0
    response = api.patch(
        detail(east), {"version": 1, "custom_fields": {"region": "北"}}, format="json"
    )
    assert response.status_code == 400 and "region" in response.json()


def test_finance_sees_numbers_masked(org, api_for):
    customer = CustomerFactory(owner=org.sales1, mobile="13812345678", email="boss@acme.cn")
    body = api_for(org.finance).get(detail(customer)).json()
    assert body["mobile"] == "138****5678" and body["email"] == "b***@acme.cn"


@pytest.mark.parametrize("rows", [2, 12])
def test_list_query_count_does_not_grow(org, api_for, rows, django_assert_max_num_queries):
    for i in range(rows):
        customer = CustomerFactory(owner=org.sales1)
        customer.tags.create(name=f"tag{i}")
    api = api_for(org.salesmgr1)
    api.get(URL)  # warm caches of the user object
    with CaptureQueriesContext(connection) as queries:
        response = api.get(URL)
    assert response.json()["count"] == rows
    assert len(queries) <= 12, [q["sql"] for q in queries]
    _counts.setdefault("list", set()).add(len(queries))


_counts: dict = {}


def test_list_query_counts_equal():
    if len(_counts.get("list", ())) > 1:
        pytest.fail(f"query count depends on rows: {_counts}")


def _query_count(api, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert api.get(url).status_code == 200
    return len(queries)


def test_all_lists_query_count_independent_of_rows(org, api_for):
    api = api_for(org.sales1)
    customer = CustomerFactory(owner=org.sales1)
    ContactFactory(customer=customer)
    FollowUpFactory(customer=customer, author=org.sales1)
    CustomerFactory(owner=None, in_pool=True)
    urls = [URL, URL + "pool/", "/api/v1/contacts/", "/api/v1/followups/"]
    for url in urls:  # warm the per-user caches (permissions, scope, field policy)
        api.get(url)
    before = {url: _query_count(api, url) for url in urls}
    for _ in range(5):
        c = CustomerFactory(owner=org.sales1)
        ContactFactory(customer=c)
        FollowUpFactory(customer=c, author=org.sales1)
        CustomerFactory(owner=None, in_pool=True)
    after = {url: _query_count(api, url) for url in urls}
    assert before == after


# --- contacts -------------------------------------------------------------------------------


def test_contacts_crud(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    api = api_for(org.sales1)
    response = api.post(
        "/api/v1/contacts/",
        {"customer": customer.pk, "name": "张三", "mobile": "139"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    contact_id = response.json()["id"]
    assert response.json()["is_primary"] is True
    url = f"/api/v1/contacts/{contact_id}/"
    assert api.patch(url, {"title": "经理", "version": 1}, format="json").status_code == 200
    assert api.patch(url, {"title": "总监", "version": 1}, format="json").status_code == 409
    assert api.delete(url).status_code == 204
    assert not Contact.objects.filter(pk=contact_id).exists()


def test_contact_on_out_of_scope_customer_is_404(org, api_for):
    customer = CustomerFactory(owner=org.sales3)
    response = api_for(org.sales1).post(
        "/api/v1/contacts/", {"customer": customer.pk, "name": "张三"}, format="json"
    )
    assert response.status_code == 404
    assert not Contact.objects.exists()


# --- follow-ups -----------------------------------------------------------------------------


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG")
    return SimpleUploadedFile("p.png", buffer.getvalue(), content_type="image/png")


def test_followup_multipart_with_attachment(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    api = api_for(org.sales1)
    response = api.post(
        "/api/v1/followups/",
        {
            "customer": customer.pk,
            "content": "上门拜访",
            "method": "visit",
            "next_followup_at": "2099-01-01T10:00:00+08:00",
            "files": [_png()],
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["author"] == org.sales1.pk and len(body["attachments"]) == 1
    customer.refresh_from_db()
    assert customer.last_followup_at is not None
    assert customer.next_followup_at.year == 2099
    listed = api.get("/api/v1/followups/").json()["results"]
    assert listed[0]["attachments"][0]["name"] == "p.png"


def test_followup_with_fake_image_is_refused(org, api_for):
    customer = CustomerFactory(owner=org.sales1)
    fake = SimpleUploadedFile("p.png", b"hello, I am text", content_type="image/png")
    response = api_for(org.sales1).post(
        "/api/v1/followups/",
        {"customer": customer.pk, "content": "x", "files": [fake]},
        format="multipart",
    )
    assert response.status_code == 400 and "attachments" in response.json()
    assert not FollowUp.objects.exists() and not Attachment.objects.exists()


def test_followup_for_out_of_scope_customer_is_404(org, api_for):
    customer = CustomerFactory(owner=org.sales3)
    response = api_for(org.sales1).post(
        "/api/v1/followups/", {"customer": customer.pk, "content": "x"}, format="json"
    )
    assert response.status_code == 404
    assert not FollowUp.objects.exists()


def test_schema_lists_customer_paths(org, api_for):
    response = api_for(org.admin).get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/customers/",
        "/api/v1/customers/{id}/claim/",
        "/api/v1/customers/{id}/return-to-pool/",
        "/api/v1/customers/{id}/transfer/",
        "/api/v1/customers/pool/",
        "/api/v1/contacts/",
        "/api/v1/followups/",
    ):
        assert path in paths
