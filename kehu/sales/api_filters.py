"""Query filters of the sales API lists (applied to the scoped selector querysets)."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from kehu.core.filters import IdFilter
from kehu.sales.models import (
    Contract,
    ContractStatus,
    Order,
    OrderStatus,
    Quote,
    QuoteStatus,
    Shipment,
    ShipmentKind,
)


def _date_range(field: str) -> tuple[django_filters.DateFilter, django_filters.DateFilter]:
    return (
        django_filters.DateFilter(field_name=field, lookup_expr="gte", label=_("from")),
        django_filters.DateFilter(field_name=field, lookup_expr="lte", label=_("until")),
    )


class _DocumentFilter(django_filters.FilterSet):
    customer = IdFilter(field_name="customer_id", label=_("customer"))
    owner = IdFilter(field_name="owner_id", label=_("owner"))
    department = IdFilter(field_name="department_id", label=_("department"))


class QuoteFilter(_DocumentFilter):
    status = django_filters.ChoiceFilter(choices=QuoteStatus.choices, label=_("status"))
    opportunity = IdFilter(field_name="opportunity_id", label=_("opportunity"))
    date_from, date_to = _date_range("quote_date")

    class Meta:
        model = Quote
        fields = ["status", "customer", "owner", "department", "opportunity"]


class ContractFilter(_DocumentFilter):
    status = django_filters.ChoiceFilter(choices=ContractStatus.choices, label=_("status"))
    opportunity = IdFilter(field_name="opportunity_id", label=_("opportunity"))
    date_from, date_to = _date_range("signed_on")
    end_from, end_to = _date_range("end_date")

    class Meta:
        model = Contract
        fields = ["status", "customer", "owner", "department", "opportunity"]


class OrderFilter(_DocumentFilter):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices, label=_("status"))
    contract = IdFilter(field_name="contract_id", label=_("contract"))
    date_from, date_to = _date_range("order_date")
    ship_by_to = django_filters.DateFilter(
        field_name="ship_by", lookup_expr="lte", label=_("ship by until")
    )

    class Meta:
        model = Order
        fields = ["status", "customer", "owner", "department", "contract"]


class ShipmentFilter(django_filters.FilterSet):
    order = IdFilter(field_name="order_id", label=_("order"))
    kind = django_filters.ChoiceFilter(choices=ShipmentKind.choices, label=_("type"))
    warehouse = IdFilter(field_name="warehouse_id", label=_("warehouse"))
    customer = IdFilter(field_name="order__customer_id", label=_("customer"))
    date_from, date_to = _date_range("shipped_on")

    class Meta:
        model = Shipment
        fields = ["order", "kind", "warehouse", "customer"]
