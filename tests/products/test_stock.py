from decimal import Decimal

import pytest
from django.db.models import Sum

from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.products.models import Product, StockLevel, StockMovement, Warehouse
from kehu.products.services import stock_movement_post
from kehu.system.services import system_settings_get

pytestmark = pytest.mark.django_db


def post(org, product, kind, quantity, **kwargs):
    return stock_movement_post(
        actor=org.warehouse, product=product, kind=kind, quantity=quantity, reason="t", **kwargs
    )


def assert_invariant(product):
    for level in StockLevel.objects.filter(product=product):
        moved = StockMovement.objects.filter(product=product, warehouse=level.warehouse).aggregate(
            s=Sum("quantity")
        )["s"] or Decimal("0")
        assert level.quantity == moved
    total = StockLevel.objects.filter(product=product).aggregate(s=Sum("quantity"))["s"]
    assert Product.objects.get(pk=product.pk).stock_quantity == (total or 0)


def test_default_warehouse_is_seeded(db):
    assert Warehouse.objects.get(is_default=True).name == "主仓库"


def test_in_out_adjust_keep_the_invariant(org, product, warehouse):
    m1 = post(org, product, "in", Decimal("10"))
    m2 = post(org, product, "out", "3.5")
    m3 = post(org, product, "adjustment", Decimal("-1.25"))
    assert [m1.quantity, m2.quantity, m3.quantity] == [
        Decimal("10"),
        Decimal("-3.5"),
        Decimal("-1.25"),
    ]
    assert m3.balance_after == Decimal("5.25")
    assert m1.warehouse == warehouse and m1.user == org.warehouse
    assert_invariant(product)
    assert product.stock_quantity == Decimal("5.25")  # the passed instance is refreshed


def test_second_warehouse_adds_to_the_total(org, product, warehouse):
    other = Warehouse.objects.create(name="二号仓", code="w2")
    post(org, product, "in", 4)
    post(org, product, "in", 6, warehouse=other)
    assert Product.objects.get(pk=product.pk).stock_quantity == 10
    assert_invariant(product)


def test_going_negative_is_refused_and_writes_nothing(org, product, warehouse):
    post(org, product, "in", 2)
    with pytest.raises(ServiceError) as info:
        post(org, product, "out", 3)
    assert info.value.field == "quantity"
    assert "2 available" in str(info.value.message) and "3 requested" in str(info.value.message)
    assert StockMovement.objects.count() == 1
    assert Product.objects.get(pk=product.pk).stock_quantity == 2


def test_negative_allowed_by_setting(org, product, warehouse):
    settings_row = system_settings_get()
    settings_row.allow_negative_stock = True
    settings_row.save()
    movement = post(org, product, "order_shipment", 3, reference="DD-2026-000001")
    assert movement.quantity == -3 and movement.balance_after == -3
    assert_invariant(product)


@pytest.mark.parametrize(
    ("kind", "quantity", "field"),
    [
        ("in", 0, "quantity"),
        ("in", -1, "quantity"),
        ("out", "abc", "quantity"),
        ("in", "1.0001", "quantity"),
        ("bogus", 1, "kind"),
        ("adjustment", 1, "reason"),
    ],
)
def test_bad_movements_are_refused(org, product, warehouse, kind, quantity, field):
    with pytest.raises(ServiceError) as info:
        stock_movement_post(
            actor=org.warehouse, product=product, kind=kind, quantity=quantity, reason=""
        )
    assert info.value.field == field
    assert not StockMovement.objects.exists()


def test_sales_cannot_post_but_order_kinds_skip_the_check(org, product, warehouse):
    with pytest.raises(PermissionRefused):
        stock_movement_post(actor=org.sales1, product=product, kind="in", quantity=1)
    assert not StockMovement.objects.exists()
    post(org, product, "in", 5)
    # The sales module checks its own permission and posts shipments on the seller's behalf.
    movement = stock_movement_post(
        actor=org.sales1,
        product=product,
        kind="order_shipment",
        quantity=2,
        reference="DD-1",
        reference_object=org.sales1,
        check_permission=False,
    )
    assert movement.quantity == -2 and movement.reference_id == str(org.sales1.pk)


def test_deleted_product_takes_no_stock(org, product, warehouse):
    from kehu.products.services import product_delete

    product_delete(actor=org.admin, product=product)
    with pytest.raises(ServiceError):
        post(org, product, "in", 1)


def test_daily_notice_names_newly_low_products(org, product, warehouse):
    from datetime import timedelta

    from django.utils import timezone

    from kehu.products.tasks import low_stock_notify
    from kehu.system.models import Notification

    post(org, product, "in", 2)  # 2 on hand, threshold 5: low, and moved today
    assert low_stock_notify(since=timezone.now() - timedelta(days=1)) >= 1
    note = Notification.objects.get(recipient=org.warehouse)
    assert "HP-1136" in note.body
    assert not Notification.objects.filter(recipient=org.sales1).exists()
    # Nothing moved since: no second notice.
    assert low_stock_notify(since=timezone.now()) == 0
