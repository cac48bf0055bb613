"""List filters of the sales pages: status, customer, owner, dates and amount range."""

from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from kehu.core.filters import is_id
from kehu.core.forms import KehuForm
from kehu.core.scope import DataScope, user_data_scope
from kehu.customers.forms import assignable_users
from kehu.customers.linked_search import linked_search_q
from kehu.products.models import Warehouse
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
from kehu.system.models import User

DATE = forms.DateInput(attrs={"type": "date"})


def shipment_search_q(value: str):
    """Shipments by number, tracking number, their order's number or customer."""
    return linked_search_q(
        Shipment, value, codes=("number", "tracking_number"), customer="order__customer"
    ) | linked_search_q(Order, value, codes=("number",), customer=None, through="order")


def _amount_widget(placeholder) -> forms.NumberInput:
    return forms.NumberInput(attrs={"min": "0", "step": "0.01", "placeholder": placeholder})


class SalesDocumentFilter(django_filters.FilterSet):
    """What every sales document list filters by; subclasses name the date field."""

    date_field = "created_at__date"

    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_q",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Number, title or customer")}
        ),
    )
    status = django_filters.ChoiceFilter(label=_("Status"), empty_label=_("All"))
    customer = django_filters.CharFilter(
        label=_("Customer"),
        method="filter_customer",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name or code")}),
    )
    owner = django_filters.ModelChoiceFilter(
        label=_("Owner"), queryset=User.objects.none(), empty_label=_("All")
    )
    date_from = django_filters.DateFilter(label=_("From"), method="filter_date_from", widget=DATE)
    date_to = django_filters.DateFilter(label=_("To"), method="filter_date_to", widget=DATE)
    amount_min = django_filters.NumberFilter(
        label=_("Amount from"),
        field_name="total_amount",
        lookup_expr="gte",
        widget=_amount_widget("0.00"),
    )
    amount_max = django_filters.NumberFilter(
        label=_("Amount up to"),
        field_name="total_amount",
        lookup_expr="lte",
        widget=_amount_widget(""),
    )

    class Meta:
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.request.user
        self.filters["status"].extra["choices"] = self.status_choices()
        if user_data_scope(user) == DataScope.OWN and not user.is_superuser:
            del self.filters["owner"]  # a salesperson sees only their own documents
        else:
            self.filters["owner"].queryset = assignable_users(user)

    def status_choices(self):
        return []

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            linked_search_q(queryset.model, value, fields=("title",), codes=("number",))
        )

    def filter_customer(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        if is_id(value):  # the customer's 360° page links here with its id
            return queryset.filter(customer_id=int(value))
        return queryset.filter(linked_search_q(queryset.model, value, initials=True))

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(**{f"{self.date_field}__gte": value})

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(**{f"{self.date_field}__lte": value})


class QuoteFilter(SalesDocumentFilter):
    date_field = "quote_date"

    class Meta(SalesDocumentFilter.Meta):
        model = Quote

    def status_choices(self):
        return QuoteStatus.choices


class ContractFilter(SalesDocumentFilter):
    date_field = "signed_on"

    class Meta(SalesDocumentFilter.Meta):
        model = Contract

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["date_from"].label = _("Signed from")
        self.filters["date_to"].label = _("Signed up to")

    def status_choices(self):
        return ContractStatus.choices


class OrderFilter(SalesDocumentFilter):
    date_field = "order_date"

    class Meta(SalesDocumentFilter.Meta):
        model = Order

    def status_choices(self):
        return OrderStatus.choices


class ShipmentFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_q",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Number, order, customer or tracking no.")}
        ),
    )
    kind = django_filters.ChoiceFilter(
        label=_("Type"), choices=ShipmentKind.choices, empty_label=_("All")
    )
    warehouse = django_filters.ModelChoiceFilter(
        label=_("Warehouse"),
        queryset=Warehouse.objects.order_by("-is_default", "-is_active", "code"),
        empty_label=_("All"),
    )
    date_from = django_filters.DateFilter(
        label=_("From"), field_name="shipped_on", lookup_expr="gte", widget=DATE
    )
    date_to = django_filters.DateFilter(
        label=_("To"), field_name="shipped_on", lookup_expr="lte", widget=DATE
    )

    class Meta:
        model = Shipment
        fields: list[str] = []
        form = KehuForm

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(shipment_search_q(value))
