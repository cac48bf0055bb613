from decimal import Decimal

import pytest

from kehu.products.models import Product, ProductCategory, StockMovement
from tests.products.factories import CategoryFactory, ProductFactory, unit

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
MOVEMENTS = "/api/v1/stock-movements/"


def test_product_list_fields_and_filters(org, api_for, warehouse):
    office = CategoryFactory(name="办公设备")
    printers = CategoryFactory(name="打印机", parent=office)
    ProductFactory(code="A1", category=printers, low_stock_threshold=3)
    ProductFactory(code="B1", status="off_sale")
    api = api_for(org.sales1)
    data = api.get(PRODUCTS).json()
    assert data["count"] == 2
    row = data["results"][0]
    for field in [
        "id",
        "code",
        "name",
        "specification",
        "category",
        "unit",
        "list_price",
        "cost_price",
        "tax_rate",
        "status",
        "stock_quantity",
        "low_stock_threshold",
        "version",
    ]:
        assert field in row
    assert row["list_price"] == "1999.00" and row["stock_quantity"] == "0.000"
    assert [r["code"] for r in api.get(PRODUCTS, {"category": office.pk}).json()["results"]] == [
        "A1"
    ]
    assert [r["code"] for r in api.get(PRODUCTS, {"status": "off_sale"}).json()["results"]] == [
        "B1"
    ]
    assert [r["code"] for r in api.get(PRODUCTS, {"low_stock": "true"}).json()["results"]] == ["A1"]
    assert [r["code"] for r in api.get(PRODUCTS, {"search": "B1"}).json()["results"]] == ["B1"]
    codes = [r["code"] for r in api.get(PRODUCTS, {"ordering": "-code"}).json()["results"]]
    assert codes == ["B1", "A1"]


def test_create_update_and_stale_version(org, api_for):
    api = api_for(org.warehouse)
    response = api.post(
        PRODUCTS,
        {
            "code": "API-1",
            "name": "路由器",
            "unit": unit().pk,
            "list_price": "299.00",
            "cost_price": "200.00",
            "tax_rate": "13.00",
            "stock_quantity": "999",  # read-only: ignored
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["stock_quantity"] == "0.000" and body["version"] == 1
    url = f"{PRODUCTS}{body['id']}/"
    ok = api.patch(url, {"list_price": "319.00", "version": 1}, format="json")
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = api.patch(url, {"list_price": "1.00", "version": 1}, format="json")
    assert stale.status_code == 409
    missing = api.patch(url, {"list_price": "1.00"}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()
    product = Product.objects.get(pk=body["id"])
    assert product.list_price == Decimal("319.00") and product.price_changes.count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "", "name": "x"},
        {"code": "X", "name": "x", "list_price": "-1"},
        {"code": "X", "name": "x", "tax_rate": "101"},
        {"code": "X", "name": "x", "unit": 999999},
        {"code": "HP-1136", "name": "duplicate"},
    ],
)
def test_validation_errors_write_nothing(org, api_for, product, payload):
    before = Product.all_objects.count()
    response = api_for(org.warehouse).post(PRODUCTS, payload, format="json")
    assert response.status_code == 400, response.json()
    assert Product.all_objects.count() == before


def test_sales_may_read_but_not_write(org, api_for, product, warehouse):
    api = api_for(org.sales1)
    assert api.get(f"{PRODUCTS}{product.pk}/").status_code == 200
    assert api.patch(f"{PRODUCTS}{product.pk}/", {"name": "x", "version": 1}).status_code == 403
    assert api.post(PRODUCTS, {"code": "Z", "name": "z"}).status_code == 403
    assert api.delete(f"{PRODUCTS}{product.pk}/").status_code == 403
    response = api.post(MOVEMENTS, {"product": product.pk, "kind": "in", "quantity": "1"})
    assert response.status_code == 403
    assert not StockMovement.objects.exists()
    assert api.get(MOVEMENTS).status_code == 200
    assert api.get("/api/v1/warehouses/").json()["results"][0]["is_default"] is True


def test_post_movements(org, api_for, product, warehouse):
    api = api_for(org.warehouse)
    response = api.post(
        MOVEMENTS,
        {"product": product.pk, "kind": "in", "quantity": "10.5", "reference": "CG-1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["balance_after"] == "10.500"
    response = api.post(
        MOVEMENTS, {"product": product.pk, "kind": "out", "quantity": "11"}, format="json"
    )
    assert response.status_code == 400 and "quantity" in response.json()
    # Order kinds come only from the sales module's services.
    response = api.post(
        MOVEMENTS,
        {"product": product.pk, "kind": "order_shipment", "quantity": "1"},
        format="json",
    )
    assert response.status_code == 400
    assert StockMovement.objects.count() == 1
    assert api.get(f"{PRODUCTS}{product.pk}/").json()["stock_quantity"] == "10.500"
    movement_id = StockMovement.objects.get().pk
    # No update or delete: corrections are new adjustments.
    assert api.patch(f"{MOVEMENTS}{movement_id}/", {"quantity": "1"}).status_code == 405
    assert api.delete(f"{MOVEMENTS}{movement_id}/").status_code == 405
    listed = api.get(MOVEMENTS, {"product": product.pk, "kind": "in"}).json()
    assert listed["count"] == 1 and listed["results"][0]["product_code"] == "HP-1136"


def test_categories_api(org, api_for):
    api = api_for(org.warehouse)
    parent = api.post("/api/v1/product-categories/", {"name": "电脑"}, format="json").json()
    child = api.post(
        "/api/v1/product-categories/", {"name": "笔记本", "parent": parent["id"]}, format="json"
    ).json()
    assert child["depth"] == 1
    cycle = api.patch(
        f"/api/v1/product-categories/{parent['id']}/",
        {"parent": child["id"], "version": 1},
        format="json",
    )
    assert cycle.status_code == 400 and "parent" in cycle.json()
    refused = api.delete(f"/api/v1/product-categories/{parent['id']}/")
    assert refused.status_code == 400
    assert ProductCategory.objects.count() == 2
    assert api_for(org.sales1).post("/api/v1/product-categories/", {"name": "x"}).status_code == 403
