"""List filters for customers, contacts and follow-ups (API; pages may reuse them)."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from kehu.core.customfields import FORM_PREFIX, custom_filter_q
from kehu.core.filters import IdFilter
from kehu.customers.models import Contact, Customer, CustomerStage, FollowUp


class CustomerFilter(django_filters.FilterSet):
    """Filters on every field; ``cf_<key>=value`` filters on a custom field."""

    owner = IdFilter(field_name="owner_id", label=_("owner"))
    department = IdFilter(field_name="department_id", label=_("department"))
    stage = django_filters.ChoiceFilter(choices=CustomerStage.choices, label=_("stage"))
    kind = django_filters.CharFilter(field_name="kind", label=_("type"))
    level = django_filters.CharFilter(field_name="level__value", label=_("level"))
    source = django_filters.CharFilter(field_name="source__value", label=_("source"))
    industry = django_filters.CharFilter(field_name="industry__value", label=_("industry"))
    in_pool = django_filters.BooleanFilter(label=_("in the public pool"))
    tag = django_filters.CharFilter(method="filter_tag", label=_("tag"))
    province = django_filters.CharFilter(label=_("province"))
    city = django_filters.CharFilter(label=_("city"))
    created_after = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", label=_("created from")
    )
    created_before = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", label=_("created until")
    )
    next_followup_before = django_filters.DateFilter(
        field_name="next_followup_at", lookup_expr="date__lte", label=_("next follow-up until")
    )

    class Meta:
        model = Customer
        fields = [
            "owner",
            "department",
            "stage",
            "kind",
            "level",
            "source",
            "industry",
            "in_pool",
            "tag",
            "province",
            "city",
        ]

    def filter_tag(self, queryset, name, value):
        # Exists rather than a join: no duplicate rows, no DISTINCT over the whole list.
        through = Customer.tags.through
        return queryset.filter(
            Exists(through.objects.filter(customer_id=OuterRef("pk"), customertag__name=value))
        )

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        for key, value in self.data.items():
            if key.startswith(FORM_PREFIX) and value not in (None, ""):
                queryset = queryset.filter(
                    custom_filter_q(Customer, key[len(FORM_PREFIX) :], value)
                )
        return queryset


class ContactFilter(django_filters.FilterSet):
    customer = IdFilter(field_name="customer_id", label=_("customer"))
    is_primary = django_filters.BooleanFilter(label=_("primary contact"))

    class Meta:
        model = Contact
        fields = ["customer", "is_primary"]


class FollowUpFilter(django_filters.FilterSet):
    customer = IdFilter(field_name="customer_id", label=_("customer"))
    author = IdFilter(field_name="author_id", label=_("by"))
    method = django_filters.CharFilter(field_name="method__value", label=_("method"))
    happened_after = django_filters.DateFilter(
        field_name="happened_at", lookup_expr="date__gte", label=_("from")
    )
    happened_before = django_filters.DateFilter(
        field_name="happened_at", lookup_expr="date__lte", label=_("until")
    )

    class Meta:
        model = FollowUp
        fields = ["customer", "author", "method"]
