from decimal import Decimal

import pytest

from kehu.core.imports import import_run
from kehu.core.models import ImportJob
from kehu.products.imports import ProductImporter
from kehu.products.models import Product
from tests.products.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db

HEADER = "Code,Name,Specification,Category,Unit,List price,Cost price,Tax rate (%),Status,Barcode\n"


def run(user, text, *, policy="skip", mode=ImportJob.Mode.ALL_OR_NOTHING):
    importer = ProductImporter(user=user, duplicate_policy=policy)
    return import_run(importer=importer, data=text.encode("utf-8"), filename="p.csv", mode=mode)


def test_import_creates_with_category_paths_and_units(org):
    office = CategoryFactory(name="办公设备")
    CategoryFactory(name="打印机", parent=office)
    result = run(
        org.warehouse,
        HEADER
        + "P-1,激光打印机,A4,办公设备/打印机,个,1999,1500,13,on_sale,690123\n"
        + "P-2,投影仪,,办公设备,台,,,,,\n",
        mode=ImportJob.Mode.GOOD_ROWS,
    )
    assert result.created == 1, result.errors
    assert result.errors == [
        {"line": 3, "column": "Unit", "message": "“台” is not one of the choices."}
    ]
    product = Product.objects.get(code="P-1")
    assert product.category.name == "打印机" and product.unit.label == "个"
    assert product.list_price == Decimal("1999.00") and product.name_initials == "jgdyj"


def test_all_or_nothing_writes_nothing_on_a_bad_row(org):
    result = run(
        org.warehouse,
        HEADER + "P-1,好的,,,,10,5,13,,\nP-2,坏的,,不存在,,-1,,,,\n",
    )
    assert result.status == "failed"
    assert {e["column"] for e in result.errors} == {"Category"}
    assert not Product.objects.exists()


def test_duplicates_update_through_the_service(org):
    product = ProductFactory(code="P-1", name="旧名称")
    result = run(org.warehouse, HEADER + "P-1,新名称,,,,2500,,,,\n", policy="update")
    assert result.updated == 1, result.errors
    product.refresh_from_db()
    assert product.name == "新名称" and product.list_price == Decimal("2500.00")
    assert product.cost_price == Decimal("1500.00")  # blank cell: unchanged
    assert product.price_changes.get().old_value == Decimal("1999.00")
    skipped = run(org.warehouse, HEADER + "P-1,再改,,,,1,,,,\n")
    assert skipped.skipped == 1 and Product.objects.get(code="P-1").name == "新名称"


def test_negative_price_is_a_row_error(org):
    result = run(org.warehouse, HEADER + "P-9,x,,,,-5,,,,\n")
    assert result.errors and result.errors[0]["line"] == 2
    assert not Product.objects.exists()


def test_sales_cannot_import(org):
    from kehu.core.exceptions import PermissionRefused

    with pytest.raises(PermissionRefused):
        run(org.sales1, HEADER + "P-1,x,,,,,,,,\n")
    assert not Product.objects.exists()


def test_an_exported_file_imports_again(org, client_for):
    category = CategoryFactory(name="耗材")
    ProductFactory(code="EXP-1", name="墨盒", category=category, low_stock_threshold=3)
    response = client_for(org.warehouse).get("/products/", {"export": "csv"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    text = text.replace("墨盒", "黑色墨盒")
    result = run(org.warehouse, text, policy="update")
    assert result.updated == 1, result.errors
    assert Product.objects.get(code="EXP-1").name == "黑色墨盒"


def test_list_links_to_the_import_wizard(org, client_for):
    page = client_for(org.warehouse).get("/products/").content.decode()
    assert 'href="/imports/products/"' in page
    assert client_for(org.warehouse).get("/imports/products/").status_code == 200
    assert (
        'href="/imports/products/"' not in client_for(org.sales1).get("/products/").content.decode()
    )
