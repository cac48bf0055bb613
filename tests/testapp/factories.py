import factory

from tests.factories import UserFactory
from tests.testapp.models import Widget


class WidgetFactory(factory.django.DjangoModelFactory):
    """A widget owned by ``owner`` and filed under the owner's department."""

    class Meta:
        model = Widget

    name = factory.Sequence(lambda n: f"widget{n}")
    owner = factory.SubFactory(UserFactory)
    department = factory.LazyAttribute(lambda o: o.owner.department if o.owner else None)
    phone = "13812345678"
