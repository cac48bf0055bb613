"""Shared writes: create, versioned update (optimistic locking), soft delete and restore."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from kehu.core.exceptions import ConflictError, ServiceError
from kehu.core.services import model_create, soft_delete, soft_restore, versioned_update
from kehu.system.models import AuditLog
from tests.core.conftest import run_in_threads
from tests.testapp.factories import WidgetFactory
from tests.testapp.models import Widget


def log_for(obj, action):
    return AuditLog.objects.filter(
        model="testapp.widget", object_id=str(obj.pk), action=action
    ).order_by("id")


def test_model_create_sets_authors_and_logs(org):
    widget = model_create(
        model=Widget,
        user=org.sales1,
        data={"name": "new", "owner": org.sales1, "amount": Decimal("12.50")},
    )
    assert widget.created_by == org.sales1 and widget.updated_by == org.sales1
    row = log_for(widget, "create").get()
    assert row.user == org.sales1
    assert row.changes["name"] == [None, "new"]
    assert row.changes["amount"] == [None, "12.50"]


def test_model_create_refuses_invalid_data_and_writes_nothing(org):
    with pytest.raises(ValidationError):
        model_create(model=Widget, user=org.sales1, data={"name": "", "owner": org.sales1})
    assert not Widget.all_objects.exists()
    assert not AuditLog.objects.filter(model="testapp.widget").exists()


def test_stale_version_is_refused_and_nothing_changes(org):
    widget = WidgetFactory(name="before", owner=org.sales1)
    versioned_update(instance=widget, user=org.sales1, expected_version=1, data={"name": "v2"})
    # Someone still holding version 1 tries to save.
    with pytest.raises(ConflictError) as refused:
        versioned_update(
            instance=widget, user=org.sales2, expected_version=1, data={"name": "overwrite"}
        )
    assert refused.value.status_code == 409
    fresh = Widget.objects.get(pk=widget.pk)
    assert (fresh.name, fresh.version, fresh.updated_by) == ("v2", 2, org.sales1)
    assert log_for(widget, "change").count() == 1


def test_missing_version_is_a_field_error(org):
    widget = WidgetFactory(owner=org.sales1)
    with pytest.raises(ServiceError) as refused:
        versioned_update(instance=widget, user=org.sales1, expected_version=None, data={})
    assert refused.value.field == "version"


def test_update_of_a_deleted_row_is_a_conflict(org):
    widget = WidgetFactory(owner=org.sales1)
    Widget.all_objects.filter(pk=widget.pk).delete()
    with pytest.raises(ConflictError):
        versioned_update(instance=widget, user=org.sales1, expected_version=1, data={"name": "x"})


def test_right_version_increments_and_logs_before_after(org):
    widget = WidgetFactory(name="old name", owner=org.sales1, amount=Decimal("1.00"))
    updated = versioned_update(
        instance=widget,
        user=org.salesmgr1,
        expected_version=1,
        data={"name": "new name", "amount": Decimal("2.50")},
    )
    assert updated.version == 2
    assert updated.updated_by == org.salesmgr1
    row = log_for(widget, "change").get()
    assert row.user == org.salesmgr1
    # Only what changed, as before → after; bookkeeping fields stay out.
    assert row.changes == {"name": ["old name", "new name"], "amount": ["1.00", "2.50"]}
    # And the next editor must now name version 2.
    versioned_update(instance=updated, user=org.sales1, expected_version=2, data={"name": "3"})
    assert Widget.objects.get(pk=widget.pk).version == 3


def test_invalid_update_changes_nothing(org):
    widget = WidgetFactory(name="keep", owner=org.sales1)
    with pytest.raises(ValidationError):
        versioned_update(instance=widget, user=org.sales1, expected_version=1, data={"name": ""})
    fresh = Widget.objects.get(pk=widget.pk)
    assert (fresh.name, fresh.version) == ("keep", 1)
    assert not log_for(widget, "change").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_have_exactly_one_winner(org):
    if connection.vendor != "postgresql":
        pytest.skip("threads share the test database on PostgreSQL only; see SQLite file test")
    widget = WidgetFactory(name="start", owner=org.sales1)
    editors = 6

    def edit(index):
        return versioned_update(
            instance=widget, user=org.sales1, expected_version=1, data={"name": f"edit {index}"}
        )

    results = run_in_threads(editors, edit)
    winners = [r for r in results if isinstance(r, Widget)]
    losers = [r for r in results if isinstance(r, ConflictError)]
    assert len(winners) == 1 and len(losers) == editors - 1, results
    fresh = Widget.objects.get(pk=widget.pk)
    assert fresh.version == 2 and fresh.name == winners[0].name
    assert log_for(widget, "change").count() == 1


def test_soft_delete_hides_and_restore_brings_back(org):
    widget = WidgetFactory(owner=org.sales1)
    soft_delete(instance=widget, user=org.salesmgr1)

    assert not Widget.objects.filter(pk=widget.pk).exists()
    deleted = Widget.all_objects.get(pk=widget.pk)
    assert deleted.is_deleted and deleted.deleted_by == org.salesmgr1
    assert list(Widget.all_objects.deleted()) == [deleted]
    assert log_for(widget, "delete").get().user == org.salesmgr1

    soft_restore(instance=widget, user=org.admin)
    restored = Widget.objects.get(pk=widget.pk)
    assert not restored.is_deleted and restored.deleted_by is None
    assert log_for(widget, "restore").get().user == org.admin


def test_soft_delete_twice_logs_once(org):
    widget = WidgetFactory(owner=org.sales1)
    soft_delete(instance=widget, user=org.sales1)
    soft_delete(instance=widget, user=org.sales1)
    soft_restore(instance=widget, user=org.sales1)
    soft_restore(instance=widget, user=org.sales1)
    assert log_for(widget, "delete").count() == 1
    assert log_for(widget, "restore").count() == 1


def test_related_lookup_still_reaches_a_deleted_record(org):
    # base_manager_name = all_objects: a row pointing at a deleted record can still show it.
    widget = WidgetFactory(owner=org.sales1)
    soft_delete(instance=widget, user=org.sales1)
    assert Widget._base_manager.filter(pk=widget.pk).exists()


def test_concurrent_updates_on_sqlite_file_have_exactly_one_winner(sqlite_file_db):
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    from kehu.hr.models import Department
    from kehu.system.models import Role, User

    database = sqlite_file_db(
        [ContentType, Permission, Group, Role, Department, User, AuditLog, Widget]
    )
    with database.connect():
        owner = User.objects.create(username="owner")
        widget = Widget.objects.create(name="start", owner=owner)
    editors = 6

    def edit(index):
        with database.connect():
            return versioned_update(
                instance=widget, user=owner, expected_version=1, data={"name": f"edit {index}"}
            )

    results = run_in_threads(editors, edit)
    winners = [r for r in results if isinstance(r, Widget)]
    losers = [r for r in results if isinstance(r, ConflictError)]
    assert len(winners) == 1 and len(losers) == editors - 1, results
    with database.connect():
        fresh = Widget.objects.get(pk=widget.pk)
        assert fresh.version == 2 and fresh.name == winners[0].name
        assert log_for(widget, "change").count() == 1
