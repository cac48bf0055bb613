"""Reference data (kehu.core.reference) is read once per process and never served stale."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kehu.core.models import ReferenceStamp
from kehu.core.reference import forget_reference_rows, reference_rows
from kehu.hr.models import Department
from kehu.hr.selectors import department_subtree_ids
from kehu.hr.services import department_update
from kehu.system.models import DictionaryItem
from kehu.system.services import (
    dictionary_item_create,
    dictionary_item_update,
    system_settings_get,
)

pytestmark = pytest.mark.django_db

LIST = reverse("customers:customer_list")


def tables_read(client, url) -> str:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return " ".join(q["sql"] for q in queries.captured_queries)


def level_item(value="a") -> DictionaryItem:
    return DictionaryItem.objects.get(dictionary__code="customer_level", value=value)


def test_a_second_page_reads_no_reference_table(org, client_for):
    client = client_for(org.sales1)
    first = tables_read(client, LIST)
    assert "system_dictionaryitem" in first and "core_customfielddefinition" in first
    again = tables_read(client, LIST)
    for table in (
        "system_dictionaryitem",
        "core_customfielddefinition",
        "customers_customertag",
        "system_systemsettings",
        "hr_department",
    ):
        assert f'FROM "{table}"' not in again, table
    assert again.count('FROM "core_referencestamp"') == 1  # every stamp in one query


def test_every_kind_of_write_shows_on_the_next_page(org, client_for):
    client = client_for(org.sales1)
    assert "A key account" in client.get(LIST).content.decode()

    item = level_item()
    dictionary_item_update(  # an UPDATE, no post_save
        actor=org.admin, item=item, expected_version=item.version, data={"label_en": "A top"}
    )
    page = client.get(LIST).content.decode()
    assert "A top" in page and "A key account" not in page

    dictionary_item_create(  # a save
        actor=org.admin,
        dictionary=item.dictionary,
        data={"value": "d", "label": "D 潜在客户", "label_en": "D prospect", "sort_order": 90},
    )
    assert "D prospect" in client.get(LIST).content.decode()

    DictionaryItem.objects.filter(value="d").update(label_en="D lead")  # a queryset update
    assert "D lead" in client.get(LIST).content.decode()

    DictionaryItem.objects.filter(value="d").delete()
    assert "D lead" not in client.get(LIST).content.decode()


def test_another_process_change_is_seen_through_the_stamp(org, client_for):
    client = client_for(org.sales1)
    client.get(LIST)
    # Another process's write, seen only through the database: the row without the stamp
    # is not read again (this process serves its copy) ...
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE system_dictionaryitem SET label_en = 'A changed' WHERE id = %s",
            [level_item().pk],
        )
    assert "A changed" not in client.get(LIST).content.decode()
    # ... and once its new stamp is committed, every process reads the rows afresh.
    ReferenceStamp.objects.filter(kind="dictionaries").update(stamp="from-elsewhere")
    assert "A changed" in client.get(LIST).content.decode()


def test_a_rolled_back_change_is_not_served(org, client_for):
    client = client_for(org.sales1)
    client.get(LIST)
    item = level_item()
    with pytest.raises(RuntimeError), transaction.atomic():
        dictionary_item_update(
            actor=org.admin, item=item, expected_version=item.version, data={"label_en": "Gone"}
        )
        labels = [i.display_label for i in reference_rows(DictionaryItem.objects.all())]
        assert "Gone" in labels  # this transaction sees its own change
        raise RuntimeError
    page = client.get(LIST).content.decode()
    assert "A key account" in page and "Gone" not in page


def read_twice(queryset) -> str:
    reference_rows(queryset.all())
    with CaptureQueriesContext(connection) as queries:
        rows = reference_rows(queryset.all())
    assert rows == list(queryset.all())
    (query,) = queries.captured_queries
    return query["sql"]


def test_queries_reading_other_tables_are_not_cached(org):
    # Outside a request the stamps are read on every lookup; the rows of a query that reads
    # another table (a join, select_related) are read every time instead.
    assert 'FROM "hr_department"' in read_twice(Department.objects.select_related("manager"))
    managed = Department.objects.filter(manager__username="salesmgr1")
    assert 'FROM "hr_department"' in read_twice(managed)
    own = Department.objects.filter(name="销售一部")
    assert 'FROM "core_referencestamp"' in read_twice(own)


def test_settings_are_a_copy(org):
    settings_row = system_settings_get()
    settings_row.company_name = "Changed in memory"
    assert system_settings_get().company_name != "Changed in memory"


def test_moved_department_scope_follows_at_once(org):
    forget_reference_rows()
    head, sales, finance = org.sales, org.sales1_dept, org.finance_dept
    assert sales.pk in set(department_subtree_ids(head.pk).values_list("id", flat=True))
    department_update(
        actor=org.admin, department=sales, expected_version=sales.version, data={"parent": finance}
    )
    assert sales.pk in set(department_subtree_ids(finance.pk).values_list("id", flat=True))
    assert sales.pk not in set(department_subtree_ids(head.pk).values_list("id", flat=True))
