"""List filters for the system pages (django-filter, rendered with Kehu's Bootstrap form)."""

from __future__ import annotations

import datetime

import django_filters
from django import forms
from django.apps import apps
from django.db.models import Q
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from kehu.core.fields import FieldAccess, field_policy_for
from kehu.core.forms import KehuForm
from kehu.hr.models import Department
from kehu.system.models import AuditAction, AuditLog, Role, User

ACTIVE_CHOICES = (("true", _("Active")), ("false", _("Inactive")))


class UserFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name, phone, e-mail")}),
    )
    department = django_filters.ModelChoiceFilter(
        label=_("Department"), queryset=Department.objects.order_by("path")
    )
    role = django_filters.ModelChoiceFilter(
        label=_("Role"), field_name="roles", queryset=Role.objects.all()
    )
    is_active = django_filters.ChoiceFilter(
        label=_("Status"), choices=ACTIVE_CHOICES, method="filter_active", empty_label=_("All")
    )

    class Meta:
        model = User
        fields: list[str] = []
        form = KehuForm

    def search(self, queryset, name, value):
        condition = Q(username__icontains=value) | Q(display_name__icontains=value)
        # Searching a field the viewer may not read would let them guess it digit by digit.
        policy = field_policy_for(getattr(self.request, "user", None), User)
        readable = (FieldAccess.READ, FieldAccess.EDIT)
        if policy.get("phone", FieldAccess.EDIT) in readable:
            condition |= Q(phone__icontains=value)
        if policy.get("email", FieldAccess.EDIT) in readable:
            condition |= Q(email__icontains=value)
        return queryset.filter(condition)

    def filter_active(self, queryset, name, value):
        return queryset.filter(is_active=value == "true")


def _model_choices() -> list[tuple[str, str]]:
    return sorted(
        # Kehu's own records only; library tables (sessions, tokens, axes) are noise here.
        (
            (m._meta.label_lower, capfirst(str(m._meta.verbose_name)))
            for m in apps.get_models()
            if m.__module__.startswith("kehu.")
        ),
        key=lambda c: c[1],
    )


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class AuditLogFilter(django_filters.FilterSet):
    user = django_filters.ModelChoiceFilter(
        label=_("User"), queryset=User.objects.only("id", "username", "display_name")
    )
    model = django_filters.ChoiceFilter(label=_("Record type"), choices=_model_choices)
    action = django_filters.ChoiceFilter(label=_("Action"), choices=AuditAction.choices)
    date_from = django_filters.DateFilter(
        label=_("From"), method="filter_from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        label=_("To"), method="filter_to", widget=forms.DateInput(attrs={"type": "date"})
    )

    class Meta:
        model = AuditLog
        fields: list[str] = []
        form = KehuForm

    # Whole local days as datetime ranges, so the index on ``at`` is used.
    def filter_from(self, queryset, name, value):
        return queryset.filter(at__gte=_day_start(value))

    def filter_to(self, queryset, name, value):
        return queryset.filter(at__lt=_day_start(value + datetime.timedelta(days=1)))
