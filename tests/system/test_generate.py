"""``manage.py generate``: every table filled, consistent, indexes back after a deferred load."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Max

from kehu.core import bulk
from kehu.customers.models import Customer, FollowUp
from kehu.finance.models import ContractLedger, Invoice, Payment, ReceivableInstalment
from kehu.products.models import Product, StockMovement
from kehu.sales.models import Contract, ContractLine, DocumentEvent, Order, OrderLine, Shipment
from kehu.system import generate
from tests.analytics.test_history import assert_history_consistent
from tests.figures import record

TABLES = [
    model._meta.db_table
    for model in (
        Customer, FollowUp, Contract, ContractLine, Order, OrderLine, Shipment, StockMovement,
        DocumentEvent, ReceivableInstalment, Payment, Invoice,
    )
]  # fmt: skip


@pytest.fixture
def admin_user(org):
    org.admin.is_superuser = True
    org.admin.save(update_fields=["is_superuser"])
    return org.admin


def _run(**options) -> str:
    out = io.StringIO()
    call_command("generate", stdout=out, **options)
    return out.getvalue()


@pytest.mark.parametrize("defer", [False, True], ids=["indexes-kept", "indexes-deferred"])
def test_generate_writes_a_consistent_company(org, admin_user, settings, defer):
    settings.DEBUG = True
    before = {name for name, _sql in bulk.secondary_indexes(TABLES)}
    output = _run(customers=200, batch=70, defer_indexes=defer)
    assert "rows/s" in output
    assert {name for name, _sql in bulk.secondary_indexes(TABLES)} == before
    assert Product.objects.count() >= generate.MIN_GOODS  # the catalogue was added
    assert Customer.objects.count() == 200
    orders = Order.objects.count()
    record("generate: orders per customer (200 customers)", round(orders / 200, 1))
    assert 3.5 <= orders / 200 <= 6.5
    for model in (Contract, ContractLine, OrderLine, Shipment, StockMovement, Payment, Invoice):
        assert model._base_manager.exists(), model
    assert ContractLedger.objects.count() == Contract.objects.count()
    assert_history_consistent()  # totals, ledgers = sums, numbers gap-free, stock, scope
    # Received and invoiced within each contract's amount; some money not invoiced yet.
    assert Invoice.objects.count() > 0
    for ledger in ContractLedger.objects.select_related("contract"):
        assert ledger.received_amount <= ledger.contract.total_amount
        assert ledger.invoiced_amount <= ledger.contract.total_amount
    # Every document belongs to its customer's owner (pool customers: a former owner).
    owners = dict(Customer.objects.values_list("pk", "owner_id"))
    for customer, owner in Order.objects.values_list("customer_id", "owner_id"):
        assert owners[customer] in (owner, None)
    # Customers' last deal and last follow-up as the services leave them.
    last_deal = dict(
        Contract.objects.values("customer_id")
        .annotate(m=Max("approved_at"))
        .values_list("customer_id", "m")
    )
    last_call = dict(
        FollowUp.objects.values("customer_id")
        .annotate(m=Max("happened_at"))
        .values_list("customer_id", "m")
    )
    for customer in Customer.objects.all():
        assert customer.last_followup_at == last_call.get(customer.pk)
        if customer.pk in last_deal:
            assert customer.stage == "won"
            assert customer.last_deal_at >= last_deal[customer.pk]
        elif customer.last_deal_at is not None:  # a won opportunity is a deal too
            assert customer.opportunities.filter(stage__kind="won").exists()
    assert not Contract.objects.values("number").annotate(n=Count("pk")).filter(n__gt=1)


def test_generate_failing_load_rebuilds_the_indexes(org, admin_user, settings, monkeypatch):
    settings.DEBUG = True
    before = {name for name, _sql in bulk.secondary_indexes(TABLES)}
    from kehu.system import company

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(company, "stock_levels_set", fail)
    with pytest.raises(RuntimeError):
        _run(customers=30, defer_indexes=True)
    assert {name for name, _sql in bulk.secondary_indexes(TABLES)} == before
    assert not Contract.objects.exists()  # the history is one transaction


def test_foreign_keys_verify_finds_a_dangling_reference(org, admin_user, settings):
    settings.DEBUG = True
    _run(customers=20, defer_indexes=False)
    first = Order.objects.order_by("pk").first()
    table = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("PRAGMA defer_foreign_keys = ON")
        cursor.execute(f"UPDATE {table} SET contract_id = 999999999 WHERE id = %s", [first.pk])
        with pytest.raises(RuntimeError, match="contract"):
            bulk.foreign_keys_verify({Order: first.pk})
        cursor.execute(
            f"UPDATE {table} SET contract_id = %s WHERE id = %s", [first.contract_id, first.pk]
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    assert bulk.foreign_keys_verify({Order: first.pk}) > 0


def test_generate_refuses_without_debug_or_with_bad_input(org, admin_user, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        _run(customers=5)
    settings.DEBUG = True
    with pytest.raises(CommandError):
        _run(customers=0)
    with pytest.raises(CommandError):
        _run(customers=5, orders_per=0)
    assert not Customer.objects.exists()


def test_company_history_is_deterministic_for_a_seed(org, admin_user):
    import datetime

    from django.db import transaction

    from kehu.finance.models import Payment
    from kehu.system.company import company_history_generate
    from tests.customers.factories import CustomerFactory

    generate._products_ensure()
    customers = [CustomerFactory(owner=org.sales1) for _ in range(30)]
    end = datetime.date(2025, 6, 30)
    kwargs = {
        "customers": Customer.objects.filter(pk__in=[c.pk for c in customers]),
        "products": generate._goods(),
        "start": end - datetime.timedelta(days=365),
        "end": end,
        "seed": 5,
        "batch": 7,  # several batches
    }

    def snapshot():
        return (
            list(
                Order.objects.order_by("number").values_list(
                    "number", "customer_id", "total_amount"
                )
            ),
            list(Payment.objects.order_by("number").values_list("number", "amount", "received_on")),
        )

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        company_history_generate(**kwargs)
        first = snapshot()
        raise Rollback
    company_history_generate(**kwargs)
    assert snapshot() == first and first[0] and first[1]


def test_bulk_helpers():
    import numpy as np

    groups = np.array([0, 0, 1, 1, 1, 3])
    assert bulk.within(np.array([2, 0, 3, 1])).tolist() == [0, 1, 0, 1, 2, 0]
    assert bulk.group_cumsum(np.array([1, 2, 3, 4, 5, 6]), groups).tolist() == [1, 3, 3, 7, 12, 6]
    assert bulk.group_cummax(np.array([5, 1, 2, 9, 3, 0]), groups).tolist() == [5, 5, 2, 9, 9, 0]
    assert bulk.copy_escape("a\tb\\c\nd") == "a\\tb\\\\c\\nd"
    assert bulk.copy_escape("普通") == "普通"
