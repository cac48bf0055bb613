"""The public pool: return, claim and its limits, transfer, automatic return and the warning."""

import datetime

import pytest
from django.db import connection
from django.http import Http404
from django.utils import timezone

from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.customers import services
from kehu.customers.models import Customer, CustomerEvent, CustomerEventKind, PoolRule
from kehu.system.models import AuditLog, DictionaryItem, Notification, SystemSettings
from tests.core.conftest import run_in_threads
from tests.customers.factories import CustomerFactory

DAY = datetime.timedelta(days=1)


def pool_settings(**values) -> None:
    SystemSettings.objects.get_or_create(pk=1)
    SystemSettings.objects.filter(pk=1).update(**values)


def test_return_to_pool_needs_a_reason_and_logs(org):
    customer = CustomerFactory(owner=org.sales1)
    with pytest.raises(ServiceError) as info:
        services.customer_return_to_pool(actor=org.sales1, customer=customer, reason=" ")
    assert info.value.field == "reason"
    customer = services.customer_return_to_pool(
        actor=org.sales1, customer=customer, reason="无意向"
    )
    assert customer.in_pool and customer.owner is None and customer.department is None
    assert customer.pool_entered_at is not None
    event = CustomerEvent.objects.get(customer=customer, kind=CustomerEventKind.RETURNED)
    assert event.from_owner == org.sales1 and event.reason == "无意向"
    assert AuditLog.objects.filter(object_id=str(customer.pk), action="status").exists()


def test_only_owner_or_assigner_returns(org):
    customer = CustomerFactory(owner=org.sales1)
    with pytest.raises((PermissionRefused, Http404)):
        services.customer_return_to_pool(actor=org.sales2, customer=customer, reason="x")
    with pytest.raises(Http404):  # a manager of another department: out of scope
        services.customer_return_to_pool(
            actor=_manager_of(org, org.sales2_dept), customer=customer, reason="x"
        )
    services.customer_return_to_pool(actor=org.salesmgr1, customer=customer, reason="x")
    assert Customer.objects.get(pk=customer.pk).in_pool


def _manager_of(org, department):
    from kehu.system.models import Role
    from tests.factories import UserFactory

    return UserFactory(
        username="salesmgr2", department=department, roles=[Role.objects.get(code="sales_manager")]
    )


def test_claim_takes_a_pool_customer(org):
    customer = CustomerFactory(owner=None, in_pool=True)
    claimed = services.customer_claim(actor=org.sales3, customer=customer)
    assert claimed.owner == org.sales3 and claimed.department == org.sales2_dept
    assert not claimed.in_pool and claimed.version == customer.version + 1
    assert CustomerEvent.objects.filter(customer=customer, kind="claimed", to_owner=org.sales3)
    with pytest.raises(ServiceError) as info:
        services.customer_claim(actor=org.sales1, customer=customer)
    assert info.value.code == "not_in_pool"


def test_claim_needs_change_permission(org):
    customer = CustomerFactory(owner=None, in_pool=True)
    with pytest.raises(PermissionRefused):
        services.customer_claim(actor=org.finance, customer=customer)
    assert Customer.objects.get(pk=customer.pk).in_pool


def test_claim_refused_at_max_owned(org):
    pool_settings(pool_max_owned_customers=2)
    CustomerFactory(owner=org.sales1)
    CustomerFactory(owner=org.sales1)
    customer = CustomerFactory(owner=None, in_pool=True)
    with pytest.raises(ServiceError) as info:
        services.customer_claim(actor=org.sales1, customer=customer)
    assert info.value.code == "max_owned"
    assert Customer.objects.get(pk=customer.pk).in_pool


def test_claim_refused_over_the_daily_cap(org):
    pool_settings(pool_daily_claim_limit=2)
    pool = [CustomerFactory(owner=None, in_pool=True) for _ in range(3)]
    services.customer_claim(actor=org.sales1, customer=pool[0])
    services.customer_claim(actor=org.sales1, customer=pool[1])
    with pytest.raises(ServiceError) as info:
        services.customer_claim(actor=org.sales1, customer=pool[2])
    assert info.value.code == "daily_limit"
    # Tomorrow the cap starts again.
    claimed = services.customer_claim(actor=org.sales1, customer=pool[2], now=timezone.now() + DAY)
    assert claimed.owner == org.sales1


def test_previous_owner_cannot_reclaim_within_the_block(org):
    pool_settings(pool_reclaim_block_days=15)
    customer = CustomerFactory(owner=org.sales1)
    services.customer_return_to_pool(actor=org.sales1, customer=customer, reason="x")
    with pytest.raises(ServiceError) as info:
        services.customer_claim(actor=org.sales1, customer=customer)
    assert info.value.code == "reclaim_blocked"
    later = timezone.now() + 16 * DAY
    assert (
        services.customer_claim(actor=org.sales1, customer=customer, now=later).owner == org.sales1
    )


def test_someone_else_may_claim_at_once(org):
    customer = CustomerFactory(owner=org.sales1)
    services.customer_return_to_pool(actor=org.sales1, customer=customer, reason="x")
    assert services.customer_claim(actor=org.sales2, customer=customer).owner == org.sales2


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_have_one_winner(org):
    if connection.vendor != "postgresql":
        pytest.skip("threads share the test database on PostgreSQL only")
    customer = CustomerFactory(owner=None, in_pool=True)
    claimers = [org.sales1, org.sales2, org.sales3, org.salesmgr1]

    def claim(index):
        return services.customer_claim(actor=claimers[index], customer=customer)

    results = run_in_threads(len(claimers), claim)
    winners = [r for r in results if isinstance(r, Customer)]
    losers = [r for r in results if isinstance(r, ServiceError)]
    assert len(winners) == 1 and len(losers) == len(claimers) - 1, results
    assert all(r.code == "not_in_pool" for r in losers)
    fresh = Customer.objects.get(pk=customer.pk)
    assert fresh.owner_id == winners[0].owner_id
    assert CustomerEvent.objects.filter(customer=customer, kind="claimed").count() == 1


# --- assign and transfer --------------------------------------------------------------------


def test_transfer_needs_assign_and_reason(org):
    customer = CustomerFactory(owner=org.sales1)
    with pytest.raises(PermissionRefused):
        services.customer_transfer(
            actor=org.sales1, customer=customer, owner=org.sales2, reason="x"
        )
    with pytest.raises(ServiceError) as info:
        services.customer_transfer(
            actor=org.salesmgr1, customer=customer, owner=org.sales2, reason=""
        )
    assert info.value.field == "reason"
    moved = services.customer_transfer(
        actor=org.salesmgr1, customer=customer, owner=org.sales2, reason="调整"
    )
    assert moved.owner == org.sales2
    event = CustomerEvent.objects.get(customer=customer, kind="transferred")
    assert (event.from_owner, event.to_owner, event.actor) == (
        org.sales1,
        org.sales2,
        org.salesmgr1,
    )
    assert Notification.objects.filter(recipient=org.sales2).exists()


def test_transfer_to_a_user_outside_scope_is_refused(org):
    customer = CustomerFactory(owner=org.sales1)
    with pytest.raises(ServiceError) as info:
        services.customer_transfer(
            actor=org.salesmgr1, customer=customer, owner=org.sales3, reason="x"
        )
    assert info.value.field == "owner"
    assert Customer.objects.get(pk=customer.pk).owner == org.sales1


def test_assign_from_the_pool(org):
    customer = CustomerFactory(owner=None, in_pool=True)
    assigned = services.customer_assign(actor=org.manager, customer=customer, owner=org.sales3)
    assert assigned.owner == org.sales3 and not assigned.in_pool
    assert CustomerEvent.objects.filter(customer=customer, kind="assigned").exists()


# --- automatic return -----------------------------------------------------------------------


@pytest.fixture
def frozen_now():
    return timezone.make_aware(datetime.datetime(2026, 6, 15, 2, 0))


def aged(owner, now, *, followup_days_ago=None, assigned_days_ago=100, **kwargs):
    customer = CustomerFactory(
        owner=owner,
        assigned_at=now - assigned_days_ago * DAY,
        last_followup_at=(now - followup_days_ago * DAY) if followup_days_ago is not None else None,
        **kwargs,
    )
    Customer.objects.filter(pk=customer.pk).update(created_at=now - 200 * DAY)
    return customer


def test_recycle_returns_unattended_customers(org, frozen_now):
    pool_settings(pool_no_followup_days=30, pool_no_deal_days=0)
    stale = aged(org.sales1, frozen_now, followup_days_ago=31)
    fresh = aged(org.sales1, frozen_now, followup_days_ago=5)
    new_owner = aged(org.sales1, frozen_now, followup_days_ago=60, assigned_days_ago=3)
    assert services.customers_recycle_to_pool(now=frozen_now) == 1
    stale.refresh_from_db()
    assert stale.in_pool and stale.owner is None and stale.pool_entered_at == frozen_now
    assert not Customer.objects.get(pk=fresh.pk).in_pool
    assert not Customer.objects.get(pk=new_owner.pk).in_pool
    event = CustomerEvent.objects.get(customer=stale)
    assert event.kind == CustomerEventKind.AUTO_RETURNED and event.from_owner == org.sales1
    assert Notification.objects.filter(recipient=org.sales1, level="warning").exists()
    # Running again the same day changes nothing.
    assert services.customers_recycle_to_pool(now=frozen_now) == 0


def test_recycle_no_deal_rule(org, frozen_now):
    pool_settings(pool_no_followup_days=0, pool_no_deal_days=90)
    no_deal = aged(org.sales1, frozen_now, followup_days_ago=1)
    recent_deal = aged(
        org.sales1, frozen_now, followup_days_ago=1, last_deal_at=frozen_now - 10 * DAY
    )
    assert services.customers_recycle_to_pool(now=frozen_now) == 1
    assert Customer.objects.get(pk=no_deal.pk).in_pool
    assert not Customer.objects.get(pk=recent_deal.pk).in_pool


def test_recycle_per_level_rule(org, frozen_now):
    pool_settings(pool_no_followup_days=30, pool_no_deal_days=0)
    level_a = DictionaryItem.objects.get(dictionary__code="customer_level", value="a")
    PoolRule.objects.create(level=level_a, no_followup_days=60)
    key_account = aged(org.sales1, frozen_now, followup_days_ago=45, level=level_a)
    regular = aged(org.sales1, frozen_now, followup_days_ago=45)
    assert services.customers_recycle_to_pool(now=frozen_now) == 1
    assert not Customer.objects.get(pk=key_account.pk).in_pool
    assert Customer.objects.get(pk=regular.pk).in_pool


def test_recycle_skips_customers_with_an_active_contract(org, frozen_now, monkeypatch):
    pool_settings(pool_no_followup_days=30, pool_no_deal_days=0)
    protected = aged(org.sales1, frozen_now, followup_days_ago=40)
    monkeypatch.setattr(services, "has_active_contract", lambda ids: {protected.pk})
    assert services.customers_recycle_to_pool(now=frozen_now) == 0


def test_warning_comes_once_before_the_return(org, frozen_now):
    pool_settings(pool_no_followup_days=30, pool_no_deal_days=0)
    aged(org.sales1, frozen_now, followup_days_ago=27.5, name="快到期公司")
    aged(org.sales2, frozen_now, followup_days_ago=10)
    assert services.customers_warn_before_recycle(now=frozen_now, days_before=3) == 1
    note = Notification.objects.get(recipient=org.sales1)
    assert "快到期公司" in note.body
    assert not Notification.objects.filter(recipient=org.sales2).exists()
    # The next day it is not warned again; three days later it is returned.
    assert services.customers_warn_before_recycle(now=frozen_now + DAY, days_before=3) == 0
    assert services.customers_recycle_to_pool(now=frozen_now + 2 * DAY) == 0
    assert services.customers_recycle_to_pool(now=frozen_now + 3 * DAY) == 1


def test_pool_jobs_are_registered():
    from kehu.core.periodic import autodiscover, periodic_jobs

    autodiscover()
    names = {job.name for job in periodic_jobs()}
    assert {"customers.pool_recycle", "customers.pool_warn"} <= names


def test_default_pool_rule_and_pipeline_are_seeded(db):
    from kehu.customers.models import PipelineStage

    assert PoolRule.objects.filter(level__isnull=True).count() == 1
    assert PipelineStage.objects.filter(kind="won").exists()
