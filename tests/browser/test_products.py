"""Warehouse work in a real browser: the low-stock warning, receiving stock, screenshots."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP
from tests.browser.test_shell import log_in, switch_language

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalogue(org):
    from kehu.products.services import (
        category_create,
        product_create,
        product_update,
        stock_movement_post,
        warehouse_default_ensure,
    )
    from kehu.system.models import DictionaryItem

    warehouse_default_ensure()
    piece = DictionaryItem.objects.get(dictionary__code="product_unit", value="piece")
    office = category_create(actor=org.admin, data={"name": "办公设备"})
    printers = category_create(actor=org.admin, data={"name": "打印机", "parent": office})
    category_create(actor=org.admin, data={"name": "投影仪", "parent": office})
    consumables = category_create(actor=org.admin, data={"name": "耗材"})
    category_create(actor=org.admin, data={"name": "墨盒", "parent": consumables})
    low = product_create(
        actor=org.admin,
        data={
            "code": "DY-0001",
            "name": "惠普黑白激光打印机",
            "specification": "A4 单面 22页/分钟",
            "category": printers,
            "unit": piece,
            "list_price": Decimal("1999.00"),
            "cost_price": Decimal("1450.00"),
            "low_stock_threshold": Decimal("5"),
            "description": "适合小型办公室的黑白激光打印机。",
        },
    )
    stock_movement_post(actor=org.warehouse, product=low, kind="in", quantity=3, reason="期初入库")
    product_update(
        actor=org.admin,
        product=low,
        expected_version=low.version,
        data={"list_price": Decimal("1899.00")},
    )
    for index, (name, spec) in enumerate(
        [
            ("佳能彩色激光打印机", "A4 双面"),
            ("爱普生喷墨一体机", "Wi-Fi"),
            ("兄弟标签打印机", "便携"),
        ],
        2,
    ):
        product = product_create(
            actor=org.admin,
            data={
                "code": f"DY-000{index}",
                "name": name,
                "specification": spec,
                "category": printers,
                "unit": piece,
                "list_price": Decimal(999 * index),
                "cost_price": Decimal(700 * index),
                "low_stock_threshold": Decimal("2"),
            },
        )
        stock_movement_post(actor=org.warehouse, product=product, kind="in", quantity=20)
    return low


def test_warehouse_receives_stock_and_the_warning_goes(org, catalogue, new_page, screenshot):
    page = new_page(DESKTOP)
    log_in(page, "warehouse")
    switch_language(page.locator("header"), "en")
    page.goto("/")
    todo = page.get_by_role("link", name="DY-0001 惠普黑白激光打印机")
    expect(todo).to_be_visible()
    screenshot(page, "products-home-low-stock-en")
    todo.click()
    expect(page.locator("#low-stock-alert")).to_be_visible()
    page.get_by_role("link", name="Receive").click()
    page.fill("#id_quantity", "10")
    page.fill("#id_reason", "采购入库")
    page.fill("#id_reference", "CG-2026-0007")
    screenshot(page, "products-receive-en")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#stock-total")).to_contain_text("13")
    expect(page.locator("#low-stock-alert")).to_have_count(0)
    page.goto("/")
    expect(page.get_by_role("link", name="DY-0001 惠普黑白激光打印机")).to_have_count(0)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_product_pages_screenshots(org, catalogue, new_page, screenshot, language):
    page = new_page(DESKTOP)
    log_in(page, "warehouse")
    if language == "en":
        switch_language(page.locator("header"), "en")
    for name, url in [
        ("list", "/products/"),
        ("detail", f"/products/{catalogue.pk}/"),
        ("categories", "/products/categories/"),
        ("movements", "/products/stock/"),
        ("low-stock", "/products/low-stock/"),
        ("form", f"/products/{catalogue.pk}/edit/"),
    ]:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, f"products-{name}-{language}")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_second_warehouse_and_a_transfer(org, catalogue, new_page, screenshot, language):
    from kehu.products.services import stock_movement_post, warehouse_create

    shenzhen = warehouse_create(actor=org.warehouse, data={"name": "深圳仓", "code": "sz"})
    stock_movement_post(
        actor=org.warehouse, product=catalogue, warehouse=shenzhen, kind="in", quantity=4
    )
    warehouse_create(actor=org.warehouse, data={"name": "北京仓", "code": "bj"})
    page = new_page(DESKTOP)
    log_in(page, "warehouse")
    if language == "en":
        switch_language(page.locator("header"), "en")
    page.goto("/products/warehouses/")
    expect(page.get_by_role("cell", name="深圳仓")).to_be_visible()
    screenshot(page, f"products-warehouses-{language}")
    page.goto(f"/products/stock/transfer/?product={catalogue.pk}")
    page.select_option("#id_from_warehouse", str(shenzhen.pk))
    page.select_option("#id_to_warehouse", label="主仓库")
    page.fill("#id_quantity", "3")
    page.fill("#id_reason", "补货")
    screenshot(page, f"products-transfer-{language}")
    page.locator("#form-container button[type=submit]").click()
    expect(page.locator("#stock-total")).to_contain_text("7")  # 3 + 4: the total is unchanged
    expect(page.locator("#stock-levels")).to_contain_text("深圳仓")
    screenshot(page, f"products-detail-two-warehouses-{language}")
