from django.conf import settings
from django.db import models

from kehu.core.models import BusinessModel
from kehu.core.money import CurrencyField, MoneyField


class Widget(BusinessModel):
    """The smallest scoped business record: an owner, a department, money, a phone."""

    scope_owner_field = "owner"
    scope_department_field = "department"
    sensitive_fields = {"phone": "phone"}

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    department = models.ForeignKey(
        "hr.Department", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    amount = MoneyField(default=0)
    currency = CurrencyField()
    phone = models.CharField(max_length=30, blank=True)

    class Meta(BusinessModel.Meta):
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name
