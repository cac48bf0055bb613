"""Query forms of the analytics pages: the dashboard's date range, the customer-value filters."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import django_filters
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kehu.analytics.models import CustomerScore, Segment
from kehu.core.dates import month_end, month_start
from kehu.core.forms import KehuForm
from kehu.system.models import User

# Monthly figures are kept for 36 months (services.FIGURE_MONTHS); with the comparison
# year a range may span 24 of them.
MAX_RANGE_MONTHS = 24


@dataclass(frozen=True)
class Period:
    """Whole months from ``start`` (a first day) to ``end`` (a last day)."""

    start: datetime.date
    end: datetime.date
    preset: str

    @property
    def months(self) -> list[datetime.date]:
        result = []
        month = self.start
        while month <= self.end:
            result.append(month)
            month = month_start(month, -1)
        return result

    def last_year(self) -> Period:
        return Period(month_start(self.start, 12), month_end(month_start(self.end, 12)), "")


PRESETS = (
    ("this_month", _("This month")),
    ("this_quarter", _("This quarter")),
    ("this_year", _("This year")),
    ("last_12_months", _("Last 12 months")),
    ("custom", _("Custom")),
)
DEFAULT_PRESET = "this_year"


def preset_period(preset: str, today: datetime.date) -> Period:
    if preset == "this_month":
        start = month_start(today)
    elif preset == "this_quarter":
        start = datetime.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    elif preset == "last_12_months":
        start = month_start(today, 11)
    else:
        preset, start = "this_year", datetime.date(today.year, 1, 1)
    # Up to the end of the current month: the comparison with last year stays like for like.
    return Period(start, month_end(today), preset)


DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class PeriodForm(KehuForm):
    """A preset or a custom range; custom ranges cover whole months, because the stored
    figures are monthly and the lists they drill into must show the same rows."""

    preset = forms.ChoiceField(label=_("Period"), choices=PRESETS, required=False)
    start = forms.DateField(label=_("From"), required=False, widget=DATE)
    end = forms.DateField(label=_("To"), required=False, widget=DATE)

    def __init__(self, *args, today: datetime.date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today or timezone.localdate()

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        preset = data.get("preset") or ("custom" if start or end else DEFAULT_PRESET)
        data["preset"] = preset
        if preset != "custom":
            return data
        if not start:
            self.add_error("start", _("Choose the first day of the period."))
        if not end:
            self.add_error("end", _("Choose the last day of the period."))
        if start and end:
            if end < start:
                self.add_error("end", _("The end is before the start."))
            elif len(Period(month_start(start), month_end(end), "custom").months) > (
                MAX_RANGE_MONTHS
            ):
                self.add_error(
                    "end",
                    _("A period may span at most %(months)d months.")
                    % {"months": MAX_RANGE_MONTHS},
                )
        return data

    def period(self) -> Period:
        """The chosen period; the default one when the input is invalid (errors are shown)."""
        if not self.is_bound or not self.is_valid():
            return preset_period(DEFAULT_PRESET, self.today)
        data = self.cleaned_data
        if data["preset"] == "custom":
            return Period(month_start(data["start"]), month_end(data["end"]), "custom")
        return preset_period(data["preset"], self.today)


class CustomerScoreFilter(django_filters.FilterSet):
    segment = django_filters.ChoiceFilter(
        label=_("Segment"), choices=Segment.choices, empty_label=_("All")
    )
    owner = django_filters.ModelChoiceFilter(
        label=_("Owner"),
        field_name="customer__owner",
        queryset=User.objects.none(),
        empty_label=_("All"),
    )
    churn_risk_min = django_filters.NumberFilter(
        label=_("Churn risk at least (%)"),
        method="filter_churn_risk",
        widget=forms.NumberInput(attrs={"min": "0", "max": "100", "step": "5"}),
    )

    class Meta:
        model = CustomerScore
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from kehu.customers.forms import assignable_users

        self.filters["owner"].queryset = assignable_users(self.request.user)

    def filter_churn_risk(self, queryset, name, value):
        return queryset.filter(churn_risk__gte=float(value) / 100)
