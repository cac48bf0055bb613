from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from kehu.approvals.models import ApprovalRequest, ApprovalStatus
from kehu.approvals.selectors import approval_document_type_choices, approval_inbox_for
from kehu.core.forms import KehuForm


class ApprovalRequestFilter(django_filters.FilterSet):
    """Filters of the approval list pages."""

    q = django_filters.CharFilter(
        label=_("Search"),
        field_name="title",
        lookup_expr="icontains",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Document")}),
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=ApprovalStatus.choices, empty_label=_("All")
    )
    document_type = django_filters.ChoiceFilter(
        label=_("Document type"), choices=[], empty_label=_("All")
    )

    class Meta:
        model = ApprovalRequest
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["document_type"].extra["choices"] = approval_document_type_choices()


class ApprovalRequestApiFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)
    document_type = django_filters.CharFilter(help_text="A registered type, e.g. sales.contract.")
    inbox = django_filters.BooleanFilter(
        method="filter_inbox", label=_("Only requests awaiting my decision")
    )

    class Meta:
        model = ApprovalRequest
        fields = ["status", "document_type", "inbox"]

    def filter_inbox(self, queryset, name, value):
        if not value:
            return queryset
        user = getattr(self.request, "user", None)
        return queryset.filter(pk__in=approval_inbox_for(user=user).values("pk"))
