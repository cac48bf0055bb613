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
    is_active = django_filters.BooleanFilter(label=_("Active"))

    class Meta:
        model = Department
        fields: list[str] = []
        form = KehuForm
