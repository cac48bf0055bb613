import pytest

from kehu.products.services import warehouse_default_ensure
from tests.core.conftest import sqlite_file_db  # noqa: F401  (re-exported fixture)
from tests.products.factories import ProductFactory


@pytest.fixture
def warehouse(db):
    return warehouse_default_ensure()


@pytest.fixture
def product(db):
    return ProductFactory(code="HP-1136", name="惠普激光打印机", low_stock_threshold=5)
