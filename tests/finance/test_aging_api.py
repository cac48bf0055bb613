"""The aging report's API pages: read from the stored aggregates a page at a time, the same
rows in the same order as the live list, in the caller's scope, a fixed number of queries."""

import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kehu.finance import selectors
from kehu.finance.serializers import AgingRowSerializer, AgingTotalsSerializer
from tests.customers.factories import CustomerFactory
from tests.finance.factories import active_contract, pay, plan

pytestmark = pytest.mark.django_db

AGING = "/api/v1/reports/receivables-aging/"


def _owe(org, owner, amount, *, customer=None):
    """A contract of ``owner`` owing ``amount``: a third 45 days overdue, the rest due later."""
    today = timezone.localdate()
    contract = active_contract(org, owner, amount=str(amount), customer=customer)
    overdue = (Decimal(amount) / 3).quantize(Decimal("0.01"))
    plan(
        contract,
        (today - datetime.timedelta(days=45), str(overdue)),
        (today + datetime.timedelta(days=10), str(Decimal(amount) - overdue)),
    )
    return contract


@pytest.fixture
def debtors(org):
    """sales1's customers, three tied at 200; sales3's; one customer of sales1 who also owes
    on a contract of the sales manager (two stored rows: "split")."""
    mine = [_owe(org, org.sales1, a).customer_id for a in (300, 200, 200, 100, 50)]
    # Tied at 200 too, newest, and first by name: ties go by id, as the stored index has it.
    first_by_name = CustomerFactory(owner=org.sales1, name="A 公司")
    mine.append(_owe(org, org.sales1, 200, customer=first_by_name).customer_id)
    theirs = [_owe(org, org.sales3, a).customer_id for a in (500, 200, 120)]
    shared = CustomerFactory(owner=org.sales1)
    _owe(org, org.sales1, 150, customer=shared)
    _owe(org, org.salesmgr1, 250, customer=shared)
    paid = _owe(org, org.sales3, 90)
    pay(paid, "90.00", confirm_by=org.finance)  # owes nothing: no row
    return {"sales1": [*mine, shared.pk], "sales3": theirs}


def _walk(api, **params) -> tuple[list[dict], list[dict]]:
    """Every page, following ``next`` from the first; (the pages' bodies, all their rows)."""
    bodies = [api.get(AGING, params).json()]
    while bodies[-1]["next"]:
        response = api.get(bodies[-1]["next"])
        assert response.status_code == 200, response.content
        bodies.append(response.json())
    return bodies, [row for body in bodies for row in body["rows"]]


def _live(user, group_by="customer") -> list[dict]:
    rows = selectors.receivables_aging(user=user, group_by=group_by, live=True)
    return list(AgingRowSerializer(rows, many=True).data)


@pytest.mark.parametrize("page_size", [1, 2, 3, 100])
def test_pages_are_the_live_list_in_order_for_finance(org, api_for, debtors, page_size):
    live = _live(org.finance)
    assert len(live) == 10  # sales1's 6, sales3's 3, the shared customer (400 in all)
    assert {r["key"] for r in live} >= {*debtors["sales1"], *debtors["sales3"]}
    bodies, rows = _walk(api_for(org.finance), page_size=page_size)
    assert rows == live
    assert len(bodies) == -(-len(live) // page_size)
    totals = dict(
        AgingTotalsSerializer(selectors.receivables_aging_totals(user=org.finance, live=True)).data
    )
    assert totals["total"] == str(sum((Decimal(r["total"]) for r in live), Decimal("0.00")))
    for number, body in enumerate(bodies, start=1):
        assert body["group_by"] == "customer"
        assert body["as_of"] == timezone.localdate().isoformat()
        assert (body["count"], body["page"], body["page_size"]) == (len(live), number, page_size)
        assert len(body["rows"]) == min(page_size, len(live) - (number - 1) * page_size)
        assert body["totals"] == totals  # the whole scope's, on every page
        assert (body["previous"] is None) == (number == 1)
        assert (body["next"] is None) == (number == len(bodies))
    if len(bodies) > 1:
        assert bodies[0]["next"].startswith("http://testserver" + AGING)
        assert f"page_size={page_size}" in bodies[0]["next"]
        assert "page=2" in bodies[0]["next"]


def test_a_salesperson_pages_through_their_own_customers_only(org, api_for, debtors):
    for user, own, other in (
        (org.sales1, "sales1", "sales3"),
        (org.sales3, "sales3", "sales1"),
    ):
        live = _live(user)
        bodies, rows = _walk(api_for(user), page_size=2)
        assert rows == live
        assert {r["key"] for r in rows} == set(debtors[own])
        assert not {r["key"] for r in rows} & set(debtors[other])
        assert all(body["count"] == len(debtors[own]) for body in bodies)
    # sales1 sees only their own contract of the shared customer.
    shared = {r["key"]: r["total"] for r in _walk(api_for(org.sales1), page_size=3)[1]}
    assert shared[debtors["sales1"][-1]] == "150.00"
    everyone = {r["key"]: r["total"] for r in _walk(api_for(org.finance), page_size=3)[1]}
    assert everyone[debtors["sales1"][-1]] == "400.00"
    totals = api_for(org.sales1).get(AGING).json()["totals"]
    assert totals["total"] == "1200.00"  # 300 + 3 x 200 + 100 + 50 + 150


def test_owners_and_departments_come_in_the_same_shape(org, api_for, debtors):
    api = api_for(org.finance)
    for group_by in ("owner", "department"):
        live = _live(org.finance, group_by)
        bodies, rows = _walk(api, group_by=group_by, page_size=1)
        assert rows == live and len(bodies) == len(live) >= 2
        assert {body["count"] for body in bodies} == {len(live)}
        assert all(body["group_by"] == group_by for body in bodies)
        assert "group_by=" + group_by in bodies[0]["next"]
        whole = api.get(AGING, {"group_by": group_by}).json()
        assert whole["rows"] == live and whole["next"] is None


@pytest.mark.parametrize(
    ("params", "field", "english", "chinese"),
    [
        ({"page": "0"}, "page", "Ensure this value is greater than or equal to 1.", None),
        ({"page": "-3"}, "page", "Ensure this value is greater than or equal to 1.", None),
        ({"page": "last"}, "page", "A valid integer is required.", None),
        ({"page_size": "0"}, "page_size", "Ensure this value is greater than or equal to 1.", None),
        (
            {"page_size": "501"},
            "page_size",
            "Ensure this value is less than or equal to 500.",
            None,
        ),
        ({"page_size": "1.5"}, "page_size", "A valid integer is required.", None),
    ],
)
def test_bad_page_or_page_size_is_refused(org, api_for, debtors, params, field, english, chinese):
    api = api_for(org.finance)
    response = api.get(AGING, params, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert response.json() == {field: [english]}
    translated = api.get(AGING, params, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert translated.status_code == 400
    [message] = translated.json()[field]
    assert message != english and any("\u4e00" <= ch <= "\u9fff" for ch in message)


def test_pages_past_the_last_or_the_cap_are_not_found(org, api_for, debtors, settings):
    api = api_for(org.sales1)
    assert api.get(AGING, {"page_size": 3, "page": 3}).status_code == 200  # rows 7
    past = api.get(AGING, {"page_size": 3, "page": 4}, HTTP_ACCEPT_LANGUAGE="en")
    assert past.status_code == 404 and past.json() == {"detail": "Invalid page."}
    settings.KEHU_LIST_COUNT_CAP = 4
    last = api.get(AGING, {"page_size": 3, "page": 2}).json()
    assert last["count"] == 7  # still every debtor in scope
    assert len(last["rows"]) == 1 and last["next"] is None  # row 4, the cap's
    assert last["rows"] == _live(org.sales1)[3:4]
    capped = api.get(AGING, {"page_size": 3, "page": 3}, HTTP_ACCEPT_LANGUAGE="en")
    assert capped.status_code == 404
    assert capped.json() == {
        "detail": "Pages stop at the first 4 rows: download the report (format=xlsx or csv) "
        "for all of them."
    }
    # The download still has every row, whatever the page parameters.
    csv = api_for(org.finance).get(AGING, {"format": "csv", "page_size": 1, "page": 99})
    assert csv.status_code == 200
    lines = b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()
    assert len(lines) == 1 + len(_live(org.finance)) + 1  # heading, rows, total


def _page_queries(api, **params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(AGING, params)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


def test_a_page_costs_the_same_queries_at_5_and_50_debtors(org, api_for):
    api = api_for(org.finance)
    for _ in range(5):
        _owe(org, org.sales1, 100)
    api.get(AGING)  # the user's roles and permissions are read once
    few = [_page_queries(api, page_size=2, page=page) for page in (1, 2, 3)]
    assert len(set(few)) == 1
    for n in range(45):
        _owe(org, org.sales3 if n % 2 else org.sales1, 100 + n)
    many = [_page_queries(api, page_size=2, page=page) for page in (1, 2, 20, 25)]
    assert many == [few[0]] * 4
    # The stored totals and count (four), the page's customers (two index reads), their
    # instalments (one) and names (one).
    assert few[0] == 8, few
    with CaptureQueriesContext(connection) as captured:
        api.get(AGING, {"page_size": 2, "page": 3})
    [ranked] = [
        q["sql"]
        for q in captured.captured_queries
        if "analytics_customerreceivable" in q["sql"] and "ORDER BY" in q["sql"]
    ]
    assert ranked.endswith("LIMIT 6")  # the index read stops at the page's last row
    body = api.get(AGING, {"page_size": 2, "page": 25}).json()
    assert body["count"] == 50 and body["next"] is None and len(body["rows"]) == 2


def test_export_is_every_row_with_the_live_totals(org, api_for, debtors):
    from openpyxl import load_workbook

    response = api_for(org.finance).get(AGING, {"format": "xlsx", "page_size": 2})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    live = _live(org.finance)
    assert [r[0] for r in rows[1:-1]] == [r["label"] for r in live]
    assert rows[-1][0] == "Total"
    assert Decimal(str(rows[-1][-1])) == sum((Decimal(r["total"]) for r in live), Decimal(0))


def test_schema_describes_the_pages(org, api_for):
    response = api_for(org.finance).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"][AGING]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["page"]["schema"]["minimum"] == 1
    assert params["page_size"]["schema"]["maximum"] == 500
    assert params["page_size"]["schema"]["default"] == 100
    assert {"200", "400", "403", "404"} <= set(operation["responses"])
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"count", "page", "page_size", "next", "previous", "rows", "totals"} <= set(
        body["properties"]
    )
    assert body["properties"]["next"]["nullable"] is True


def _csv_rows(response) -> list[list[str]]:
    import csv

    assert response.status_code == 200
    assert response.streaming  # written as it is read, not built whole first
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_downloads_stream_every_row_a_batch_at_a_time_in_scope(
    org, api_for, client_for, debtors, monkeypatch
):
    """The API and the page's download read customers a batch of names at a time (three
    here) from one cursor: the same rows in the same order as the live list, and the
    caller's customers only."""
    monkeypatch.setattr(selectors, "NAME_BATCH", 3)
    for user in (org.finance, org.salesmgr1):
        live = selectors.receivables_aging(user=user, group_by="customer", live=True)
        assert list(selectors.receivables_aging_stream(user=user)) == live
        labels = [r["label"] for r in live]
        api = _csv_rows(api_for(user).get(AGING, {"format": "csv"}))
        assert [line[0] for line in api[1:-1]] == labels
        assert api[-1][0] == "Total"
        assert Decimal(api[-1][-1]) == sum((r["total"] for r in live), Decimal(0))
        page = _csv_rows(client_for(user).get("/finance/aging/", {"export": "csv"}))
        assert [line[0] for line in page[1:]] == labels
        assert [Decimal(line[-1]) for line in page[1:]] == [r["total"] for r in live]
    # The sales manager's department: sales1's customers, not sales3's.
    keys = {r["key"] for r in selectors.receivables_aging_stream(user=org.salesmgr1)}
    assert keys == set(debtors["sales1"])
    assert len(list(selectors.receivables_aging_stream(user=org.finance))) == 10


def test_a_salesperson_may_not_download_the_report(org, api_for, client_for, debtors):
    from kehu.system.models import AuditLog

    exports = AuditLog.objects.filter(action="export").count()
    assert api_for(org.sales1).get(AGING, {"format": "csv"}).status_code == 403
    assert client_for(org.sales1).get("/finance/aging/", {"export": "csv"}).status_code == 403
    assert AuditLog.objects.filter(action="export").count() == exports


def test_a_download_reads_names_per_batch_not_per_row(org, api_for, debtors, monkeypatch):
    monkeypatch.setattr(selectors, "NAME_BATCH", 3)
    api = api_for(org.finance)
    api.get(AGING, {"format": "csv"})  # the user's roles and permissions are read once

    def names(captured) -> int:
        return sum(
            '"name"' in q["sql"] and "customers_customer" in q["sql"].split("FROM")[1]
            for q in captured.captured_queries
        )

    def names_read() -> int:
        with CaptureQueriesContext(connection) as captured:
            _csv_rows(api.get(AGING, {"format": "csv"}))
        return names(captured)

    assert names_read() == 4  # ten debtors, three names a query
    for _ in range(5):
        _owe(org, org.sales3, 70)
    assert names_read() == 5
    # Rows come as they are read: the first is out before the rest are named.
    stream = selectors.receivables_aging_stream(user=org.finance)
    with CaptureQueriesContext(connection) as captured:
        next(stream)
    assert names(captured) == 1
    stream.close()
