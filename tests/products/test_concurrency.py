"""The stock invariant under concurrent posts: exact totals, never below zero."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from kehu.core.exceptions import ServiceError
from kehu.products.models import Product, StockLevel, StockMovement
from kehu.products.services import stock_movement_post
from tests.core.conftest import run_in_threads

THREADS = 8
ROUNDS = 5


def _work(actor, product):
    """Even threads receive 1 per round; odd threads try to issue 2 per round."""

    def work(index):
        done = refused = 0
        for _ in range(ROUNDS):
            try:
                stock_movement_post(
                    actor=actor,
                    product=product,
                    kind="in" if index % 2 == 0 else "out",
                    quantity=1 if index % 2 == 0 else 2,
                    reason="race",
                )
                done += 1
            except ServiceError as exc:
                assert exc.code == "insufficient_stock", exc
                refused += 1
        return done, refused

    return work


def _check(results, product):
    assert not any(isinstance(r, BaseException) for r in results), results
    ins = sum(results[i][0] for i in range(0, THREADS, 2))
    outs = sum(results[i][0] for i in range(1, THREADS, 2))
    assert ins == THREADS // 2 * ROUNDS
    expected = Decimal(ins) - 2 * Decimal(outs)
    level = StockLevel.objects.get(product=product)
    moved = StockMovement.objects.filter(product=product).aggregate(s=Sum("quantity"))["s"]
    assert level.quantity == moved == expected
    assert Product.objects.get(pk=product.pk).stock_quantity == expected
    assert expected >= 0
    # Every balance written is exact and non-negative: replay them in order.
    running = Decimal("0")
    for movement in StockMovement.objects.filter(product=product).order_by("id"):
        running += movement.quantity
        assert movement.balance_after == running >= 0
    assert StockMovement.objects.filter(product=product).count() == ins + outs


@pytest.mark.django_db(transaction=True)
def test_concurrent_movements_on_postgresql(org):
    if connection.vendor != "postgresql":
        pytest.skip("threads share the test database on PostgreSQL only; see SQLite file test")
    from kehu.products.services import warehouse_default_ensure
    from tests.products.factories import ProductFactory

    warehouse_default_ensure()
    product = ProductFactory()
    results = run_in_threads(THREADS, _work(org.warehouse, product))
    _check(results, product)


def test_concurrent_movements_on_sqlite_file(sqlite_file_db):
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    from kehu.core.models import ReferenceStamp
    from kehu.hr.models import Department
    from kehu.products.models import ProductCategory, Warehouse
    from kehu.system.models import (
        AuditLog,
        Dictionary,
        DictionaryItem,
        Role,
        SystemSettings,
        User,
    )

    database = sqlite_file_db(
        [
            ContentType,
            Permission,
            Group,
            ReferenceStamp,
            Role,
            Department,
            User,
            AuditLog,
            Dictionary,
            DictionaryItem,
            SystemSettings,
            ProductCategory,
            Product,
            Warehouse,
            StockLevel,
            StockMovement,
        ]
    )
    with database.connect():
        actor = User.objects.create(username="keeper", is_superuser=True)
        Warehouse.objects.create(name="主仓库", code="main", is_default=True)
        SystemSettings.objects.create(pk=1)
        product = Product.objects.create(code="P-1", name="墨盒")
    results = run_in_threads(THREADS, lambda i: _in_db(database, _work(actor, product), i))
    with database.connect():
        _check(results, product)


def _in_db(database, work, index):
    with database.connect():
        return work(index)
