from decimal import Decimal

import factory

from kehu.products.models import Product, ProductCategory
from kehu.products.services import name_initials
from kehu.system.models import DictionaryItem


class CategoryFactory(factory.django.DjangoModelFactory):
    """Builds categories with the materialised path the services would give them."""

    class Meta:
        model = ProductCategory

    name = factory.Sequence(lambda n: f"类别{n}")
    parent = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from kehu.core.tree import PATH_WIDTH

        category = model_class.objects.create(*args, **kwargs)
        parent_path = category.parent.path if category.parent_id else "/"
        category.path = f"{parent_path}{category.pk:0{PATH_WIDTH}d}/"
        category.save(update_fields=["path"])
        return category


def unit(value: str = "piece") -> DictionaryItem:
    return DictionaryItem.objects.get(dictionary__code="product_unit", value=value)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"P{n:05d}")
    name = factory.Sequence(lambda n: f"激光打印机{n}")
    # Derived by the services in real life; the factory derives it the same way.
    name_initials = factory.LazyAttribute(lambda o: name_initials(o.name))
    specification = "A4 黑白"
    category = None
    unit = factory.LazyFunction(unit)
    list_price = Decimal("1999.00")
    cost_price = Decimal("1500.00")
    tax_rate = Decimal("13.00")
    low_stock_threshold = Decimal("0")
