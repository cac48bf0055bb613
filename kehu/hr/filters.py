from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from kehu.core.forms import KehuForm
from kehu.hr.models import Department


class DepartmentFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(
        label=_("Search"),
        lookup_expr="icontains",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Department name")}),
    )
    is_active = django_filters.ChoiceFilter(
        label=_("Status"),
        choices=(("true", _("Active")), ("false", _("Inactive"))),
        method="filter_active",
        empty_label=_("All"),
    )

    class Meta:
        model = Department
        fields: list[str] = []
        form = KehuForm

    def filter_active(self, queryset, name, value):
        return queryset.filter(is_active=value == "true")
