import pytest
from django.db.models import Sum

from kehu.products.models import Product, ProductCategory, StockLevel, StockMovement
from kehu.products.selectors import LOW_STOCK_Q
from kehu.system.demo import demo_data_load

pytestmark = pytest.mark.django_db


def test_demo_catalogue_loads_once(settings):
    settings.DEMO_MODE = True
    created = demo_data_load()
    assert 180 <= created["products"] <= 220
    assert Product.objects.count() == created["products"]
    assert ProductCategory.objects.filter(parent__isnull=True).count() == 5
    low = Product.objects.filter(LOW_STOCK_Q).count()
    assert 1 <= low <= 30
    assert not Product.objects.filter(cost_price__gt=models_list_price()).exists()
    services = Product.objects.filter(category__parent__name="软件服务")
    assert {str(t) for t in services.values_list("tax_rate", flat=True)} == {"6.00"}
    total = StockMovement.objects.aggregate(s=Sum("quantity"))["s"]
    assert total == StockLevel.objects.aggregate(s=Sum("quantity"))["s"]
    assert total == Product.objects.aggregate(s=Sum("stock_quantity"))["s"]
    again = demo_data_load()
    assert again.get("products", 0) == 0 and again.get("stock_movements", 0) == 0


def models_list_price():
    from django.db.models import F

    return F("list_price")
