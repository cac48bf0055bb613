"""A second warehouse end to end: set-up, default switching, deactivation, transfers."""

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse

from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.products.models import Product, StockLevel, StockMovement, Warehouse
from kehu.products.services import (
    stock_movement_post,
    stock_transfer,
    warehouse_activate,
    warehouse_create,
    warehouse_deactivate,
    warehouse_delete,
    warehouse_set_default,
    warehouse_update,
)
from kehu.system.services import system_settings_get
from tests.products.factories import ProductFactory
from tests.querycount import warm_page_queries

pytestmark = pytest.mark.django_db

WAREHOUSES = "/api/v1/warehouses/"
TRANSFERS = "/api/v1/stock-transfers/"
MOVEMENTS = "/api/v1/stock-movements/"


@pytest.fixture
def second(org, warehouse):
    return warehouse_create(actor=org.warehouse, data={"name": "深圳仓", "code": "sz"})


def receive(org, product, quantity, warehouse=None):
    return stock_movement_post(
        actor=org.warehouse, product=product, warehouse=warehouse, kind="in", quantity=quantity
    )


def level(product, warehouse) -> Decimal:
    row = StockLevel.objects.filter(product=product, warehouse=warehouse).first()
    return row.quantity if row else Decimal("0")


def total(product) -> Decimal:
    return Product.all_objects.get(pk=product.pk).stock_quantity


def assert_invariant(product):
    for row in StockLevel.objects.filter(product=product):
        moved = StockMovement.objects.filter(product=product, warehouse=row.warehouse).aggregate(
            s=Sum("quantity")
        )["s"] or Decimal("0")
        assert row.quantity == moved
    levels = StockLevel.objects.filter(product=product).aggregate(s=Sum("quantity"))["s"]
    assert total(product) == (levels or 0)


# --- services ---------------------------------------------------------------------------


def test_create_and_edit_with_unique_name_and_code(org, warehouse, second):
    assert second.is_active and not second.is_default and second.version == 1
    with pytest.raises(ServiceError) as info:
        warehouse_create(actor=org.warehouse, data={"name": "深圳仓", "code": "sz2"})
    assert info.value.field == "name"
    with pytest.raises(ServiceError) as info:
        warehouse_create(actor=org.warehouse, data={"name": "广州仓", "code": "SZ"})
    assert info.value.field == "code"  # codes clash regardless of case
    updated = warehouse_update(
        actor=org.warehouse, warehouse=second, expected_version=1, data={"name": "深圳二号仓"}
    )
    assert updated.name == "深圳二号仓" and updated.version == 2
    with pytest.raises(ConflictError):
        warehouse_update(
            actor=org.warehouse, warehouse=second, expected_version=1, data={"name": "x"}
        )
    # An edit cannot sneak in the default flag: that is warehouse_set_default's job.
    warehouse_update(
        actor=org.warehouse, warehouse=second, expected_version=2, data={"is_default": True}
    )
    assert Warehouse.objects.filter(is_default=True).get() == warehouse


def test_sales_may_not_set_up_warehouses(org, warehouse, second):
    for call in (
        lambda: warehouse_create(actor=org.sales1, data={"name": "x", "code": "x"}),
        lambda: warehouse_update(
            actor=org.sales1, warehouse=second, expected_version=1, data={"name": "y"}
        ),
        lambda: warehouse_set_default(actor=org.sales1, warehouse=second),
        lambda: warehouse_deactivate(actor=org.sales1, warehouse=second),
    ):
        with pytest.raises(PermissionRefused):
            call()
    assert Warehouse.objects.count() == 2
    assert Warehouse.objects.get(is_default=True) == warehouse


def test_default_switches_atomically_and_new_movements_follow_it(org, product, warehouse, second):
    warehouse_set_default(actor=org.warehouse, warehouse=second)
    assert list(Warehouse.objects.filter(is_default=True)) == [second]
    # warehouse=None means "the default": now the second one.
    assert receive(org, product, 3).warehouse == second
    warehouse_set_default(actor=org.warehouse, warehouse=warehouse)
    assert list(Warehouse.objects.filter(is_default=True)) == [warehouse]
    assert receive(org, product, 1).warehouse == warehouse


def test_deactivate_refused_with_stock_or_as_default(org, product, warehouse, second):
    receive(org, product, 5, warehouse=second)
    with pytest.raises(ServiceError) as info:
        warehouse_deactivate(actor=org.warehouse, warehouse=second)
    assert info.value.code == "has_stock"
    with pytest.raises(ServiceError) as info:
        warehouse_deactivate(actor=org.warehouse, warehouse=warehouse)
    assert info.value.code == "default"
    assert Warehouse.objects.filter(is_active=True).count() == 2
    # Emptied by a transfer, it may go; then it takes no stock and cannot become default.
    stock_transfer(
        actor=org.warehouse,
        product=product,
        from_warehouse=second,
        to_warehouse=warehouse,
        quantity=5,
    )
    second = warehouse_deactivate(actor=org.warehouse, warehouse=second)
    assert not second.is_active
    with pytest.raises(ServiceError) as info:
        receive(org, product, 1, warehouse=second)
    assert info.value.code == "inactive"
    with pytest.raises(ServiceError):
        warehouse_set_default(actor=org.warehouse, warehouse=second)
    assert warehouse_activate(actor=org.warehouse, warehouse=second).is_active


def test_stale_warehouse_object_cannot_post_into_a_deactivated_warehouse(
    org, product, warehouse, second
):
    stale = Warehouse.objects.get(pk=second.pk)
    warehouse_deactivate(actor=org.warehouse, warehouse=second)
    with pytest.raises(ServiceError):
        receive(org, product, 1, warehouse=stale)  # the copy still says is_active=True
    assert not StockMovement.objects.exists() and total(product) == 0


def test_no_hard_delete_once_used(org, product, warehouse, second):
    receive(org, product, 1, warehouse=second)
    with pytest.raises(ServiceError) as info:
        warehouse_delete(actor=org.admin, warehouse=second)
    assert info.value.code == "has_movements"
    with pytest.raises(ServiceError):
        warehouse_delete(actor=org.admin, warehouse=warehouse)
    unused = warehouse_create(actor=org.warehouse, data={"name": "错建", "code": "oops"})
    warehouse_delete(actor=org.admin, warehouse=unused)
    assert not Warehouse.objects.filter(code="oops").exists()


def test_movement_into_the_second_warehouse_adds_to_the_total(org, product, warehouse, second):
    receive(org, product, 4)
    receive(org, product, "6.5", warehouse=second)
    assert level(product, warehouse) == 4 and level(product, second) == Decimal("6.5")
    assert total(product) == Decimal("10.5")
    assert_invariant(product)


def test_transfer_keeps_the_total(org, product, warehouse, second):
    receive(org, product, 10)
    out, into = stock_transfer(
        actor=org.warehouse,
        product=product,
        from_warehouse=warehouse,
        to_warehouse=second,
        quantity="3.5",
        reason="补货深圳",
    )
    assert (out.kind, out.quantity, out.warehouse) == ("transfer_out", Decimal("-3.5"), warehouse)
    assert (into.kind, into.quantity, into.warehouse) == ("transfer_in", Decimal("3.5"), second)
    assert out.reference == into.reference and out.reference.startswith("DB-")
    assert out.balance_after == Decimal("6.5") and into.balance_after == Decimal("3.5")
    assert total(product) == 10
    assert_invariant(product)


def test_transfer_refuses_a_shortfall_and_writes_nothing(org, product, warehouse, second):
    receive(org, product, 2)
    with pytest.raises(ServiceError) as info:
        stock_transfer(
            actor=org.warehouse,
            product=product,
            from_warehouse=warehouse,
            to_warehouse=second,
            quantity=3,
        )
    assert info.value.code == "insufficient_stock"
    assert StockMovement.objects.count() == 1
    assert level(product, warehouse) == 2 and level(product, second) == 0
    assert total(product) == 2


def test_transfer_may_go_negative_when_allowed(org, product, warehouse, second):
    settings = system_settings_get()
    settings.allow_negative_stock = True
    settings.save()
    stock_transfer(
        actor=org.warehouse, product=product, from_warehouse=warehouse, to_warehouse=second,
        quantity=2,
    )  # fmt: skip
    assert level(product, warehouse) == -2 and level(product, second) == 2
    assert total(product) == 0


@pytest.mark.parametrize(
    "change",
    [{"to": "same"}, {"quantity": 0}, {"quantity": -1}, {"actor": "sales1"}],
)
def test_bad_transfers_are_refused(org, product, warehouse, second, change):
    receive(org, product, 5)
    kwargs = {
        "actor": org.warehouse,
        "product": product,
        "from_warehouse": warehouse,
        "to_warehouse": warehouse if change.get("to") == "same" else second,
        "quantity": change.get("quantity", 1),
    }
    if "actor" in change:
        kwargs["actor"] = org.sales1
    with pytest.raises(ServiceError):
        stock_transfer(**kwargs)
    assert StockMovement.objects.count() == 1


def test_transfer_kinds_cannot_be_posted_alone(org, product, warehouse):
    with pytest.raises(ServiceError):
        stock_movement_post(actor=org.warehouse, product=product, kind="transfer_in", quantity=1)
    assert not StockMovement.objects.exists()


def test_low_stock_stays_on_the_product_total(org, product, warehouse, second):
    # Threshold 5: 3 here and 3 there is 6 on hand, not low.
    receive(org, product, 3)
    receive(org, product, 3, warehouse=second)
    assert not Product.objects.get(pk=product.pk).is_low_stock


# --- pages ------------------------------------------------------------------------------


def test_warehouse_pages_allowed_and_refused(org, client_for, warehouse, second):
    list_url = reverse("products:warehouse_list")
    sales = client_for(org.sales1)
    assert sales.get(list_url).status_code == 200  # viewers see the list
    assert sales.get(reverse("products:warehouse_create")).status_code == 403
    assert sales.get(reverse("products:warehouse_edit", args=[second.pk])).status_code == 403
    assert (
        sales.post(reverse("products:warehouse_create"), {"name": "x", "code": "x"}).status_code
        == 403
    )
    action = reverse("products:warehouse_action", args=[second.pk, "set_default"])
    assert sales.post(action).status_code == 403
    assert sales.get(reverse("products:stock_transfer")).status_code == 403
    assert Warehouse.objects.get(is_default=True) == warehouse
    assert Warehouse.objects.count() == 2
    page = client_for(org.warehouse).get(list_url).content.decode()
    assert "深圳仓" in page and "主仓库" in page and reverse("products:stock_transfer") in page


def test_create_edit_default_and_deactivate_through_the_pages(org, client_for, warehouse, product):
    client = client_for(org.warehouse)
    response = client.post(reverse("products:warehouse_create"), {"name": "北京仓", "code": "bj"})
    assert response.status_code == 302
    bj = Warehouse.objects.get(code="bj")
    duplicate = client.post(reverse("products:warehouse_create"), {"name": "北京仓", "code": "b2"})
    assert duplicate.status_code == 400 and Warehouse.objects.count() == 2
    edit = reverse("products:warehouse_edit", args=[bj.pk])
    assert client.get(edit).status_code == 200
    response = client.post(edit, {"name": "北京一号仓", "code": "bj", "version": 1})
    assert response.status_code == 302
    stale = client.post(edit, {"name": "北京二号仓", "code": "bj", "version": 1})
    assert stale.status_code == 400
    assert Warehouse.objects.get(pk=bj.pk).name == "北京一号仓"

    client.post(reverse("products:warehouse_action", args=[bj.pk, "set_default"]))
    assert Warehouse.objects.get(is_default=True) == bj
    receive(org, product, 2, warehouse=warehouse)
    response = client.post(
        reverse("products:warehouse_action", args=[warehouse.pk, "deactivate"]), follow=True
    )
    assert "still holds stock" in response.content.decode()
    assert Warehouse.objects.get(pk=warehouse.pk).is_active


def test_movement_form_offers_active_warehouses_with_the_default_chosen(
    org, client_for, product, warehouse, second
):
    client = client_for(org.warehouse)
    url = reverse("products:stock_movement_create") + f"?product={product.pk}"
    form = client.get(url).context["form"]
    assert list(form.fields["warehouse"].queryset) == [warehouse, second]
    assert form.fields["warehouse"].initial == warehouse.pk
    assert form.fields["warehouse"].widget.input_type == "select"
    response = client.post(
        url, {"product": product.pk, "warehouse": second.pk, "kind": "in", "quantity": "7"}
    )
    assert response.status_code == 302
    assert level(product, second) == 7 and total(product) == 7
    warehouse_set_default(actor=org.warehouse, warehouse=second)
    warehouse_deactivate(actor=org.warehouse, warehouse=warehouse)
    form = client.get(url).context["form"]
    assert list(form.fields["warehouse"].queryset) == [second]
    assert form.fields["warehouse"].widget.input_type == "hidden"  # one left: no choice


def test_product_detail_lists_stock_per_warehouse(org, client_for, product, warehouse, second):
    receive(org, product, 4)
    receive(org, product, 6, warehouse=second)
    page = client_for(org.warehouse).get(product.get_absolute_url())
    levels = [(lv.warehouse, lv.quantity) for lv in page.context["levels"]]
    assert levels == [(warehouse, 4), (second, 6)]
    html = page.content.decode()
    assert "深圳仓" in html and reverse("products:stock_transfer") in html


def test_transfer_through_the_page(org, client_for, product, warehouse, second):
    receive(org, product, 10)
    client = client_for(org.warehouse)
    url = reverse("products:stock_transfer") + f"?product={product.pk}"
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["form"].fields["from_warehouse"].initial == warehouse.pk
    data = {
        "product": product.pk,
        "from_warehouse": warehouse.pk,
        "to_warehouse": second.pk,
        "quantity": "4",
        "reason": "补货",
    }
    assert client.post(url, data).status_code == 302
    assert level(product, second) == 4 and total(product) == 10
    short = client.post(url, {**data, "quantity": "7"})
    assert short.status_code == 400 and "Not enough stock" in short.content.decode()
    assert StockMovement.objects.count() == 3


def test_movements_list_filters_by_warehouse(org, client_for, product, warehouse, second):
    receive(org, product, 1)
    receive(org, product, 2, warehouse=second)
    client = client_for(org.warehouse)
    page = client.get(reverse("products:stock_list"), {"warehouse": second.pk})
    rows = [row["object"] for row in page.context["rows"]]
    assert [m.warehouse for m in rows] == [second]


def test_warehouse_list_counts_and_values_in_one_query(org, client_for, warehouse, second):
    url = reverse("products:warehouse_list")
    client = client_for(org.warehouse)
    for i in range(3):
        p = ProductFactory(cost_price=Decimal("10.00"))
        receive(org, p, i + 1)
        receive(org, p, 2, warehouse=second)
    ProductFactory(cost_price=Decimal("99.00"), currency="USD")  # no stock: not counted

    def count() -> int:
        queries, response = warm_page_queries(client, url)
        assert response.status_code == 200
        return queries

    first = count()
    for i in range(3):
        warehouse_create(actor=org.warehouse, data={"name": f"仓{i}", "code": f"w{i}"})
    assert count() == first  # warehouses add rows, not queries
    rows = {row["object"].code: row["object"] for row in client.get(url).context["rows"]}
    assert rows["main"].product_count == 3 and rows["main"].stock_value == Decimal("60")
    assert rows["sz"].product_count == 3 and rows["sz"].stock_value == Decimal("60")
    assert rows["w0"].product_count == 0 and rows["w0"].stock_value == 0


def test_menu_lists_warehouses(org, client_for, warehouse):
    html = client_for(org.warehouse).get(reverse("products:stock_list")).content.decode()
    assert reverse("products:warehouse_list") in html


# --- API --------------------------------------------------------------------------------


def test_api_create_update_and_stale_version(org, api_for, warehouse):
    api = api_for(org.warehouse)
    response = api.post(WAREHOUSES, {"name": "上海仓", "code": "sh"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1 and body["is_default"] is False and body["product_count"] == 0
    url = f"{WAREHOUSES}{body['id']}/"
    duplicate = api.post(WAREHOUSES, {"name": "上海仓", "code": "sh2"}, format="json")
    assert duplicate.status_code == 400 and "name" in duplicate.json()
    response = api.patch(url, {"name": "上海一号仓", "version": 1}, format="json")
    assert response.status_code == 200 and response.json()["version"] == 2
    stale = api.patch(url, {"name": "上海二号仓", "version": 1}, format="json")
    assert stale.status_code == 409
    assert api.patch(url, {"name": "x"}, format="json").status_code == 400  # version required
    assert Warehouse.objects.get(code="sh").name == "上海一号仓"
    response = api.post(f"{url}set-default/")
    assert response.status_code == 200 and response.json()["is_default"] is True
    assert Warehouse.objects.get(pk=warehouse.pk).is_default is False
    refused = api.post(f"{url}deactivate/")
    assert refused.status_code == 400  # the default


def test_api_sales_may_read_but_not_write(org, api_for, product, warehouse, second):
    api = api_for(org.sales1)
    assert api.get(WAREHOUSES).status_code == 200
    assert api.post(WAREHOUSES, {"name": "x", "code": "x"}, format="json").status_code == 403
    url = f"{WAREHOUSES}{second.pk}/"
    assert api.patch(url, {"name": "y", "version": 1}, format="json").status_code == 403
    assert api.post(f"{url}set-default/").status_code == 403
    assert api.post(f"{url}deactivate/").status_code == 403
    payload = {
        "product": product.pk,
        "from_warehouse": warehouse.pk,
        "to_warehouse": second.pk,
        "quantity": "1",
    }
    assert api.post(TRANSFERS, payload, format="json").status_code == 403
    assert Warehouse.objects.count() == 2 and not StockMovement.objects.exists()


def test_api_movement_into_a_chosen_warehouse_and_transfer(
    org, api_for, product, warehouse, second
):
    api = api_for(org.warehouse)
    response = api.post(
        MOVEMENTS,
        {"product": product.pk, "warehouse": second.pk, "kind": "in", "quantity": "8"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["warehouse"] == second.pk
    payload = {
        "product": product.pk,
        "from_warehouse": second.pk,
        "to_warehouse": warehouse.pk,
        "quantity": "3",
        "reason": "回调主仓",
    }
    response = api.post(TRANSFERS, payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["stock_quantity"] == "8.000"
    assert [m["kind"] for m in body["movements"]] == ["transfer_out", "transfer_in"]
    short = api.post(TRANSFERS, {**payload, "quantity": "6"}, format="json")
    assert short.status_code == 400 and "quantity" in short.json()
    assert StockMovement.objects.count() == 3
    assert level(product, second) == 5 and level(product, warehouse) == 3
    alone = api.post(
        MOVEMENTS, {"product": product.pk, "kind": "transfer_in", "quantity": "1"}, format="json"
    )
    assert alone.status_code == 400
    listed = api.get(MOVEMENTS, {"warehouse": second.pk}).json()
    assert listed["count"] == 2
