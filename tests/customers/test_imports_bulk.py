"""Customer imports in batches (issue 8): the same outcomes as row by row, in queries per batch;
exports in constant queries."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kehu.core import exports as core_exports
from kehu.core import imports as core_imports
from kehu.core.imports import import_run
from kehu.core.models import DocumentSequence
from kehu.customers.imports import CustomerImporter
from kehu.customers.models import Customer, CustomerEvent
from kehu.customers.selectors import customer_list_visible_to, customer_search_q
from kehu.system.models import AuditLog, Notification
from tests.customers.factories import CustomerFactory
from tests.figures import record

HEADER = "Name,Phone,Mobile,E-mail,Industry,Tags,Owner\n"


def run(user, text, *, mode="good_rows", policy="skip"):
    return import_run(
        importer=CustomerImporter(user=user, duplicate_policy=policy),
        data=text.encode("utf-8"),
        filename="customers.csv",
        mode=mode,
    )


def rows(count, *, start=0, owner=""):
    return "".join(
        f"批量测试{n:05d}科技有限公司,,1380000{n:04d},c{n}@example.cn,信息技术,"
        f'"重点, 华南",{owner}\n'
        for n in range(start, start + count)
    )


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(core_imports, "BATCH_SIZE", 3)


def test_bad_rows_reported_by_line_and_the_rest_written(org, small_batches):
    bad = "坏邮箱公司,,,bad-mail,,,\n"
    text = HEADER + rows(2) + bad + rows(2, start=2) + ",,,,,,\n乙,,12,,,,\n"
    result = run(org.sales1, text)
    assert result.created == 4
    assert [(e["line"], e["column"]) for e in result.errors] == [(4, "E-mail"), (8, "Mobile")]
    customer = Customer.objects.get(name="批量测试00003科技有限公司")
    assert customer.owner == org.sales1 and customer.department == org.sales1_dept
    assert customer.code.startswith("KH-") and customer.mobile_digits == "13800000003"
    assert sorted(t.name for t in customer.tags.all()) == ["华南", "重点"]
    assert customer.name_initials.startswith("pl") and customer.name_pinyin.startswith("piliang")
    # One "created" event and one operation-log row per customer, as the form writes.
    assert CustomerEvent.objects.filter(kind="created").count() == 4
    assert AuditLog.objects.filter(action="create", model="customers.customer").count() == 4
    codes = sorted(Customer.objects.values_list("code", flat=True))
    assert len(set(codes)) == 4 and codes[-1].endswith("000004")


def test_all_or_nothing_writes_nothing_at_all(org, small_batches):
    text = HEADER + rows(7) + "坏公司,,,bad-mail,,,\n"
    result = run(org.sales1, text, mode="all_or_nothing")
    assert result.status == "failed" and [e["line"] for e in result.errors] == [9]
    assert not Customer.all_objects.exists()
    assert not CustomerEvent.objects.exists()
    assert not AuditLog.objects.filter(model="customers.customer").exists()
    assert not Customer.tags.through.objects.exists()
    # The numbers taken inside the rolled-back transaction were given back.
    assert not DocumentSequence.objects.filter(prefix="KH", last_value__gt=0).exists()
    assert run(org.sales1, HEADER + rows(7), mode="all_or_nothing").created == 7


def test_duplicates_within_the_file_across_batches_and_against_the_database(org, small_batches):
    CustomerFactory(name="已有客户有限公司", owner=org.sales1, mobile="13912345678")
    CustomerFactory(name="别人的客户", owner=org.sales3, mobile="", email="")
    text = HEADER + (
        "甲公司,,,,,,\n"
        "甲公司,,,,,,\n"  # same batch as line 2
        "乙公司,,13900000001,,,,\n"
        "甲 公司,,,,,,\n"  # next batch: the name normalises the same
        "丙公司,,139-0000-0001,,,,\n"  # the mobile of line 4
        "已有客户,,,,,,\n"  # the stored customer (suffix dropped)
        "丁公司,,+86 139 1234 5678,,,,\n"  # the stored customer's mobile
        "别人的客户,,,,,,\n"  # out of scope: an error naming the owner only
    )
    result = run(org.sales1, text)
    assert (result.created, result.skipped) == (2, 5)
    assert [e["line"] for e in result.errors] == [9]
    assert "owned by" in result.errors[0]["message"]
    assert Customer.objects.filter(name__in=["甲公司", "乙公司"]).count() == 2


@pytest.mark.parametrize("batch", [1, 2, 500])
def test_update_policy_gives_the_same_outcome_in_any_batch_size(org, monkeypatch, batch):
    monkeypatch.setattr(core_imports, "BATCH_SIZE", batch)
    existing = CustomerFactory(name="华为技术有限公司", owner=org.sales1, mobile="13900000009")
    text = HEADER + (
        "新公司,,13700000001,,,,\n"
        "新公司,,,new@example.cn,,VIP,\n"  # updates the customer line 2 created
        "华为技术,0755-1234567,,,,,\n"  # updates the stored customer
        "别名公司,,13900000009,,,,\n"  # matches the stored customer's mobile: update
    )
    result = run(org.sales1, text, policy="update")
    assert result.errors == []
    assert (result.created, result.updated, result.skipped) == (1, 3, 0)
    created = Customer.objects.get(name="新公司")
    assert (created.email, [t.name for t in created.tags.all()]) == ("new@example.cn", ["VIP"])
    existing.refresh_from_db()
    assert existing.phone == "0755-1234567" and existing.version == 3


def test_create_policy_and_pool_duplicates(org, small_batches):
    CustomerFactory(name="公海客户", owner=None, in_pool=True)
    assert run(org.sales1, HEADER + "公海客户,,,,,,\n").skipped == 1
    refused = run(org.sales1, HEADER + "公海客户,,,,,,\n", policy="update")
    assert "public pool" in refused.errors[0]["message"]
    both = run(org.sales1, HEADER + "公海客户,,,,,,\n公海客户,,,,,,\n", policy="create")
    assert both.created == 2


def test_scope_a_salesperson_cannot_import_for_others(org, small_batches):
    result = run(org.sales1, HEADER + rows(2, owner="sales3") + rows(1, start=5))
    assert result.created == 1
    assert {e["line"] for e in result.errors} == {2, 3}
    assert all(e["column"] == "Owner" for e in result.errors)
    assert not Customer.objects.filter(owner=org.sales3).exists()


def test_a_manager_assigns_in_scope_and_each_owner_is_told_once(org, small_batches):
    result = run(org.salesmgr1, HEADER + rows(5, owner="sales1") + rows(1, start=9, owner="sales3"))
    assert result.created == 5
    assert "scope" in result.errors[0]["message"] and result.errors[0]["line"] == 7
    assert Customer.objects.filter(owner=org.sales1).count() == 5
    # One notice per batch written for the owner, not one per customer.
    notices = Notification.objects.filter(recipient=org.sales1, title__contains="assigned")
    assert notices.count() == 2 and "3 customers" in notices.order_by("id").first().title


def test_imported_customers_are_found_by_substring_and_pinyin_initials(org, small_batches):
    run(org.sales1, HEADER + "深圳鼎盛智能装备有限公司,,,,,,\n" + rows(4))
    for query in ("鼎盛智能", "dszn", "dingsheng"):
        found = customer_list_visible_to(user=org.sales1).filter(
            customer_search_q(user=org.sales1, query=query)
        )
        assert [c.name for c in found] == ["深圳鼎盛智能装备有限公司"], query


def _import_queries(user, count, start):
    with CaptureQueriesContext(connection) as captured:
        result = run(user, HEADER + rows(count, start=start))
    assert result.created == count and not result.errors
    return len(captured.captured_queries)


def test_import_queries_grow_per_batch_not_per_row(org, monkeypatch):
    monkeypatch.setattr(core_imports, "BATCH_SIZE", 50)
    run(org.sales1, HEADER + rows(1, start=9000))  # tags exist, caches warm
    one_batch = _import_queries(org.sales1, 50, 0)
    four_batches = _import_queries(org.sales1, 200, 100)
    eight_batches = _import_queries(org.sales1, 400, 400)
    record("import queries, 400 rows in 8 batches", eight_batches)
    # The same queries for each batch of 50 rows, whatever the rows: growth is per batch.
    per_batch = (eight_batches - four_batches) / 4
    assert per_batch == (four_batches - one_batch) / 3
    assert per_batch <= 25 and eight_batches < 400 / 2


def _export(client, fmt="csv"):
    response = client.get("/customers/", {"export": fmt})
    assert response.status_code == 200
    # Reading a streamed body to its end closes the response (the test client's wrapper).
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_export_queries_are_constant_and_tags_are_exported(org, client_for, monkeypatch):
    monkeypatch.setattr(core_exports, "EXPORT_CHUNK", 10)
    client = client_for(org.manager)
    run(org.sales1, HEADER + rows(5))
    _export(client)
    with CaptureQueriesContext(connection) as few:
        small = _export(client)
    run(org.sales2, HEADER + rows(60, start=100))
    with CaptureQueriesContext(connection) as many:
        big = _export(client)
    record("export queries, 65 customers", len(many.captured_queries))
    assert len(many.captured_queries) == len(few.captured_queries)
    lines = list(csv.reader(io.StringIO(big.decode("utf-8-sig"))))
    assert len(lines) == 66 and len(small.decode("utf-8-sig").splitlines()) == 6
    header = lines[0]
    row = dict(zip(header, lines[-1], strict=True))
    assert row["Tags"] == "华南, 重点" and row["Owner"] == "sales1"


def test_export_is_scoped_and_logged(org, client_for):
    run(org.sales1, HEADER + rows(3))
    run(org.sales3, HEADER + rows(2, start=50))
    assert client_for(org.sales1).get("/customers/", {"export": "csv"}).status_code == 403
    # A sales manager exports their department's customers, not another department's.
    text = _export(client_for(org.salesmgr1)).decode("utf-8-sig")
    assert text.count("批量测试") == 3 and "批量测试00050" not in text
    assert AuditLog.objects.filter(action="export", user=org.salesmgr1).count() == 1


def test_large_xlsx_is_streamed_from_a_file(org, client_for, monkeypatch):
    import openpyxl

    monkeypatch.setattr(core_exports, "XLSX_IN_MEMORY_BYTES", 10)
    run(org.sales1, HEADER + rows(3))
    response = client_for(org.manager).get("/customers/", {"export": "xlsx"})
    assert response.streaming
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert len(values) == 4 and values[1][values[0].index("Tags")] == "华南, 重点"


def _stored(customer):
    """What is stored about a customer, less what differs between any two (ids, code, times)."""
    from kehu.core.audit import snapshot

    data = snapshot(customer)
    for key in ("id", "code", "created_at", "assigned_at"):
        data.pop(key)
    return data, sorted(t.name for t in customer.tags.all())


def test_a_bulk_created_customer_is_stored_and_logged_as_customer_create_stores_it(org):
    from kehu.core.audit import diff, snapshot
    from kehu.customers.services import customer_create
    from kehu.system.models import DictionaryItem

    line = (
        "导入客户有限公司,0755-1234567,+86 138 0000 1111,Info@Example.cn,信息技术,"
        '"重点, 华南",sales1\n'
    )
    result = run(org.salesmgr1, HEADER + line)
    assert result.created == 1 and not result.errors
    imported = Customer.objects.get(name="导入客户有限公司")
    created = customer_create(
        actor=org.salesmgr1,
        data={
            "name": "导入客户有限公司",
            "phone": "0755-1234567",
            "mobile": "+86 138 0000 1111",
            "email": "Info@Example.cn",
            "industry": DictionaryItem.objects.get(dictionary__code="industry", label="信息技术"),
        },
        tags=["重点", "华南"],
        owner=org.sales1,
        allow_duplicate=True,
    )
    created.refresh_from_db()
    assert _stored(imported) == _stored(created)
    assert imported.code != created.code and imported.assigned_at is not None
    # The operation log holds the same snapshot for both, the tags included.
    logs = {
        log.object_id: log.changes
        for log in AuditLog.objects.filter(action="create", model="customers.customer")
    }
    assert set(logs) == {str(imported.pk), str(created.pk)}
    expected = diff({}, snapshot(imported))
    tag_ids = sorted(str(t.pk) for t in imported.tags.all())
    assert logs[str(imported.pk)] == {**expected, "tags": [[], tag_ids]}
    assert set(logs[str(created.pk)]) == set(logs[str(imported.pk)])
    event = CustomerEvent.objects.get(customer=imported)
    assert (event.kind, event.to_owner, event.actor) == ("created", org.sales1, org.salesmgr1)


def test_bad_values_are_refused_with_the_model_fields_own_messages(org):
    from kehu.customers.services import CustomerDraftChecks, customer_draft

    checks = CustomerDraftChecks()
    cases = [
        ({"name": "x" * 201}, "name"),
        ({"name": "甲", "short_name": "y" * 101}, "short_name"),
        ({"name": "甲", "website": "not a url"}, "website"),
        ({"name": "甲", "email": "bad@"}, "email"),
        ({"name": "甲", "kind": "robot"}, "kind"),
        ({"name": "甲", "stage": "done"}, "stage"),
        ({"name": "y" * 300, "kind": "robot", "city": "z" * 51}, "kind"),  # the first field
    ]
    from django.core.exceptions import ValidationError

    for data, field in cases:
        with pytest.raises(ValidationError) as refused:
            customer_draft(actor=org.sales1, data=data, checks=checks)
        assert list(refused.value.message_dict)[0] == field
        # The same errors, in the same order, as Django's own check of the whole instance.
        with pytest.raises(ValidationError) as django:
            Customer(**data, owner=org.sales1).clean_fields(exclude=["code", "owner"])
        assert django.value.message_dict == refused.value.message_dict
    draft = customer_draft(
        actor=org.sales1, data={"name": "  好公司 ", "email": "A@B.CN"}, checks=checks
    )
    assert draft.values["name"] == "好公司" and draft.values["email"] == "a@b.cn"
    assert draft.values["owner_id"] == org.sales1.pk and draft.values["name_initials"] == "hgs"


@pytest.mark.parametrize(
    "name",
    [
        "华为技术有限公司",
        "重庆长安汽车股份有限公司",  # heteronyms decided by phrase: chong qing, chang an
        "中国建设银行长沙分行",  # yin hang, chang sha, fen hang
        "ABC科技 123 有限公司",
        "深圳市〇〇七贸易",
        "Ｋｅｈｕ（中国）Co., Ltd.",
        "𠀀𠀁混合",
        "",
    ],
)
def test_pinyin_forms_are_pypinyins_own(name):
    """The import's faster pinyin gives exactly what pypinyin's lazy_pinyin gives."""
    import re
    import unicodedata

    from pypinyin import Style, lazy_pinyin

    from kehu.customers.normalize import name_pinyin_forms

    text = unicodedata.normalize("NFKC", name).lower()
    syllables = [
        s for part in lazy_pinyin(text, style=Style.NORMAL) for s in re.split(r"[\W_]+", part) if s
    ]
    assert name_pinyin_forms(name) == ("".join(s[0] for s in syllables), "".join(syllables))


def test_a_batch_the_database_refuses_is_replayed_row_by_row(org, small_batches):
    """A failure the checks did not foresee (here the next customer code is taken already)
    rolls the batch back and names each row, on either database."""
    from django.utils import timezone

    CustomerFactory(code=f"KH-{timezone.localdate().year}-000001", owner=org.sales1)
    DocumentSequence.objects.filter(prefix="KH").update(last_value=0)
    result = run(org.sales1, HEADER + rows(2))
    assert result.created == 0 and [e["line"] for e in result.errors] == [2, 3]
    assert Customer.objects.count() == 1 and not CustomerEvent.objects.exists()
