"""Factories for customers, contacts and follow-ups; derived fields set as the services do."""

import factory
from django.utils import timezone

from kehu.customers.models import Contact, Customer, CustomerEvent, FollowUp
from kehu.customers.normalize import name_initials, name_normalize, name_pinyin, phone_normalize


class CustomerFactory(factory.django.DjangoModelFactory):
    """An owned customer (``owner=None, in_pool=True`` for a pool one)."""

    class Meta:
        model = Customer
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"KH-T-{n:06d}")
    name = factory.Sequence(lambda n: f"测试客户{n}有限公司")
    phone = ""
    mobile = factory.Sequence(lambda n: f"139{n:08d}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    owner = None
    department = factory.LazyAttribute(lambda o: o.owner.department if o.owner else None)
    in_pool = False
    assigned_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        name = kwargs.get("name", "")
        kwargs.setdefault("name_normalized", name_normalize(name))
        kwargs.setdefault("name_initials", name_initials(name))
        kwargs.setdefault("name_pinyin", name_pinyin(name))
        kwargs.setdefault("phone_digits", phone_normalize(kwargs.get("phone", "")))
        kwargs.setdefault("mobile_digits", phone_normalize(kwargs.get("mobile", "")))
        if kwargs.get("in_pool"):
            kwargs.setdefault("pool_entered_at", timezone.now())
            kwargs["assigned_at"] = None
        return super()._create(model_class, *args, **kwargs)


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"联系人{n}")
    mobile = factory.Sequence(lambda n: f"137{n:08d}")


class FollowUpFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FollowUp

    customer = factory.SubFactory(CustomerFactory)
    content = "电话沟通需求"
    happened_at = factory.LazyFunction(timezone.now)
    author = factory.LazyAttribute(lambda o: o.customer.owner)


class CustomerEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerEvent

    customer = factory.SubFactory(CustomerFactory)
    kind = "created"
