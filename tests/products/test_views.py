from decimal import Decimal

import pytest
from django.urls import reverse

from kehu.products.models import Product, ProductCategory, StockMovement
from kehu.products.services import stock_movement_post
from tests.products.factories import CategoryFactory, ProductFactory
from tests.querycount import warm_page_queries

pytestmark = pytest.mark.django_db


def receive(org, product, quantity):
    return stock_movement_post(actor=org.warehouse, product=product, kind="in", quantity=quantity)


def count_queries(client, url) -> int:
    count, response = warm_page_queries(client, url)
    assert response.status_code == 200, response.content[:500]
    return count


PAGES = [
    "products:product_list",
    "products:category_list",
    "products:stock_list",
    "products:low_stock_list",
]


@pytest.mark.parametrize("name", PAGES)
def test_pages_allowed_for_viewers_refused_for_others(org, client_for, warehouse, name):
    assert client_for(org.sales1).get(reverse(name)).status_code == 200
    assert client_for(org.warehouse).get(reverse(name)).status_code == 200


def test_pages_refused_without_products_view(org, client_for, product):
    from kehu.system.models import Role

    nobody = Role.objects.create(code="nobody", name="Nobody", permissions=[])
    org.hr.roles.set([nobody])
    client = client_for(org.hr)
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 403
    assert client.get(reverse("products:product_detail", args=[product.pk])).status_code == 403


def test_sales_may_view_but_not_post_or_edit(org, client_for, product, warehouse):
    client = client_for(org.sales1)
    assert client.get(product.get_absolute_url()).status_code == 200
    assert client.get(reverse("products:product_edit", args=[product.pk])).status_code == 403
    assert client.get(reverse("products:stock_movement_create")).status_code == 403
    response = client.post(
        reverse("products:stock_movement_create"),
        {"product": product.pk, "warehouse": warehouse.pk, "kind": "in", "quantity": "5"},
    )
    assert response.status_code == 403
    assert not StockMovement.objects.exists()
    response = client.post(
        reverse("products:product_list"), {"bulk_action": "off_sale", "selected": [product.pk]}
    )
    assert Product.objects.get(pk=product.pk).status == "on_sale"


def test_warehouse_receives_stock_through_the_page(org, client_for, product, warehouse):
    client = client_for(org.warehouse)
    url = reverse("products:stock_movement_create") + f"?product={product.pk}&kind=in"
    page = client.get(url)
    assert page.status_code == 200 and "惠普激光打印机" in page.content.decode()
    response = client.post(
        url,
        {
            "product": product.pk,
            "warehouse": warehouse.pk,
            "kind": "in",
            "quantity": "12",
            "reason": "采购入库",
            "reference": "CG-001",
        },
    )
    assert response.status_code == 302 and response["Location"] == product.get_absolute_url()
    assert Product.objects.get(pk=product.pk).stock_quantity == 12
    # Issuing more than there is comes back as an error on the quantity field.
    response = client.post(
        url, {"product": product.pk, "warehouse": warehouse.pk, "kind": "out", "quantity": "13"}
    )
    assert response.status_code == 400
    assert "12 available" in response.content.decode()
    assert StockMovement.objects.count() == 1


def test_product_create_and_edit_through_the_page(org, client_for):
    client = client_for(org.warehouse)
    category = CategoryFactory(name="打印机")
    response = client.post(
        reverse("products:product_create"),
        {
            "code": "NEW-1",
            "name": "新打印机",
            "category": category.pk,
            "status": "on_sale",
            "list_price": "100.00",
            "cost_price": "80.00",
            "currency": "CNY",
            "tax_rate": "13",
            "low_stock_threshold": "2",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    product = Product.objects.get(code="NEW-1")
    edit = reverse("products:product_edit", args=[product.pk])
    data = {
        "code": "NEW-1",
        "name": "新打印机",
        "status": "on_sale",
        "list_price": "120.00",
        "cost_price": "80.00",
        "currency": "CNY",
        "tax_rate": "13",
        "low_stock_threshold": "2",
        "version": 1,
    }
    assert client.post(edit, data).status_code == 302
    assert product.price_changes.count() == 1
    stale = client.post(edit, {**data, "list_price": "1"})  # version 1 again
    assert stale.status_code == 400 and "changed by someone else" in stale.content.decode()
    bad = client.post(edit, {**data, "version": 2, "list_price": "-5"})
    assert bad.status_code == 400
    assert Product.objects.get(pk=product.pk).list_price == Decimal("120.00")


def test_text_file_named_png_is_refused_on_the_page(org, client_for, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    response = client_for(org.warehouse).post(
        reverse("products:product_create"),
        {
            "code": "IMG",
            "name": "x",
            "status": "on_sale",
            "list_price": "1",
            "cost_price": "1",
            "currency": "CNY",
            "tax_rate": "13",
            "low_stock_threshold": "0",
            "image": SimpleUploadedFile("fake.png", b"not an image at all"),
        },
    )
    assert response.status_code == 400
    assert not Product.all_objects.exists()


def test_filters_category_subtree_search_and_low_stock(org, client_for, warehouse):
    office = CategoryFactory(name="办公设备")
    printers = CategoryFactory(name="打印机", parent=office)
    other = CategoryFactory(name="电脑")
    low = ProductFactory(code="A1", name="激光打印机", category=printers, low_stock_threshold=5)
    ok = ProductFactory(code="A2", name="投影仪", category=office, low_stock_threshold=1)
    ProductFactory(code="B1", name="笔记本电脑", category=other)
    receive(org, ok, 3)
    client = client_for(org.sales1)
    url = reverse("products:product_list")

    def codes(**params):
        response = client.get(url, params)
        return sorted(row["object"].code for row in response.context["rows"])

    assert codes(category=office.pk) == ["A1", "A2"]
    assert codes(q="jgdyj") == ["A1"]  # pinyin initials of 激光打印机
    assert codes(q="B1") == ["B1"]
    assert codes(low_stock="on") == ["A1"]
    assert low.pk


def test_bulk_status_change(org, client_for):
    products = ProductFactory.create_batch(3)
    response = client_for(org.warehouse).post(
        reverse("products:product_list"),
        {"bulk_action": "off_sale", "selected": [p.pk for p in products[:2]]},
    )
    assert response.status_code == 302
    assert Product.objects.filter(status="off_sale").count() == 2


def test_export_csv_and_xlsx(org, client_for):
    ProductFactory(code="EXP-1", name="=HYPERLINK(1)")
    client = client_for(org.warehouse)
    response = client.get(reverse("products:product_list"), {"export": "csv"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "EXP-1" in body and "'=HYPERLINK(1)" in body
    response = client.get(reverse("products:product_list"), {"export": "xlsx"})
    assert response.status_code == 200 and response.content[:2] == b"PK"
    # sales may view but not export
    refused = client_for(org.sales1).get(reverse("products:product_list"), {"export": "csv"})
    assert refused.status_code == 403


def test_list_query_counts_do_not_grow_with_rows(org, client_for, warehouse):
    client = client_for(org.warehouse)
    category = CategoryFactory(name="耗材")
    ProductFactory.create_batch(2, category=category, low_stock_threshold=10)
    for product in Product.objects.all():
        receive(org, product, 1)
    urls = [reverse(name) for name in PAGES]
    few = [count_queries(client, u) for u in urls]
    more = ProductFactory.create_batch(8, category=CategoryFactory(name="墨盒"))
    for product in more:
        receive(org, product, 2)
    Product.objects.update(low_stock_threshold=10)
    assert [count_queries(client, u) for u in urls] == few


def test_detail_query_count_does_not_grow_with_history(org, client_for, product, warehouse):
    from kehu.products.services import product_update

    client = client_for(org.warehouse)
    receive(org, product, 1)
    few = count_queries(client, product.get_absolute_url())
    for index in range(5):
        receive(org, product, 1)
        product = product_update(
            actor=org.warehouse,
            product=Product.objects.get(pk=product.pk),
            expected_version=index + 1,
            data={"list_price": Decimal(100 + index)},
        )
    assert count_queries(client, product.get_absolute_url()) == few


def test_low_stock_todo_appears_and_disappears(org, client_for, product, warehouse):
    client = client_for(org.warehouse)
    home = client.get("/").content.decode()
    assert "Low stock" in home and "HP-1136" in home  # 0 on hand, threshold 5
    # Sales people have no low-stock to-do.
    assert "HP-1136" not in client_for(org.sales1).get("/").content.decode()
    receive(org, product, 6)
    assert "HP-1136" not in client.get("/").content.decode()


def test_category_pages(org, client_for):
    client = client_for(org.warehouse)
    response = client.post(reverse("products:category_create"), {"name": "网络设备"})
    assert response.status_code == 302
    parent = ProductCategory.objects.get(name="网络设备")
    client.post(reverse("products:category_create"), {"name": "路由器", "parent": parent.pk})
    child = ProductCategory.objects.get(name="路由器")
    response = client.post(
        reverse("products:category_edit", args=[parent.pk]),
        {"name": "网络设备", "parent": child.pk, "version": 1},
    )
    assert response.status_code == 400  # the subtree is not even offered; the service agrees
    response = client.post(reverse("products:category_move", args=[child.pk]), {"direction": "up"})
    assert response.status_code == 302
    page = client.get(reverse("products:category_list")).content.decode()
    assert page.index("网络设备") < page.index("路由器")
    assert (
        client_for(org.sales1)
        .post(reverse("products:category_move", args=[child.pk]), {"direction": "up"})
        .status_code
        == 403
    )


def test_settings_page_offers_negative_stock(org, client_for):
    page = client_for(org.admin).get(reverse("system:settings")).content.decode()
    assert 'name="allow_negative_stock"' in page


def test_threshold_shows_without_padding_zeros(org, client_for, product):
    page = client_for(org.warehouse).get(reverse("products:product_edit", args=[product.pk]))
    assert 'name="low_stock_threshold" value="5"' in page.content.decode()


def test_global_search_finds_products_by_pinyin_initials(org, client_for, product):
    page = client_for(org.sales1).get("/search/", {"q": "hpjg"}).content.decode()
    assert "惠普激光打印机" in page and product.get_absolute_url() in page


def test_admin_restores_a_deleted_product(org, client_for, product):
    admin = client_for(org.admin)
    assert admin.post(reverse("products:product_delete", args=[product.pk])).status_code == 302
    assert not Product.objects.filter(pk=product.pk).exists()
    # Viewers no longer see it; the deleter's side can open it and restore it.
    assert client_for(org.sales1).get(product.get_absolute_url()).status_code == 404
    deleted = admin.get(reverse("products:deleted_list")).content.decode()
    assert "HP-1136" in deleted
    assert client_for(org.sales1).get(reverse("products:deleted_list")).status_code == 403
    detail = admin.get(product.get_absolute_url()).content.decode()
    assert "was deleted" in detail
    restore = reverse("products:product_restore", args=[product.pk])
    assert client_for(org.sales1).post(restore).status_code == 403
    response = admin.post(
        reverse("products:deleted_list"), {"bulk_action": "restore", "selected": [product.pk]}
    )
    assert response.status_code == 302 and Product.objects.filter(pk=product.pk).exists()
