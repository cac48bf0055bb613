from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kehu.core.forms import KehuForm
from kehu.hr.models import Department, Employee, EmployeeStatus, Position


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


class EmployeeFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_q",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name, number or phone")}),
    )
    department = django_filters.ModelChoiceFilter(
        label=_("Department"),
        queryset=Department.objects.order_by("path"),
        method="filter_department",
        empty_label=_("All"),
    )
    position = django_filters.ModelChoiceFilter(
        label=_("Position"), queryset=Position.objects.order_by("name"), empty_label=_("All")
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=EmployeeStatus.choices, empty_label=_("All")
    )

    class Meta:
        model = Employee
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.form.fields["department"]
        field.label_from_instance = lambda d: f"{'— ' * d.depth}{d.name}"

    def filter_q(self, queryset, name, value):
        value = value.strip()
        # The ID number is not searched: a masked value must not be found by guessing it.
        return queryset.filter(
            Q(name__icontains=value) | Q(employee_no__icontains=value) | Q(phone__icontains=value)
        )

    def filter_department(self, queryset, name, value):
        # The department and every department below it.
        return queryset.filter(department__path__startswith=value.path)


class PositionFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(
        label=_("Search"),
        lookup_expr="icontains",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Position name")}),
    )
    department = django_filters.ModelChoiceFilter(
        label=_("Department"), queryset=Department.objects.order_by("path"), empty_label=_("All")
    )

    class Meta:
        model = Position
        fields: list[str] = []
        form = KehuForm
