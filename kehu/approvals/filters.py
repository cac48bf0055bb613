from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from kehu.approvals.models import ApprovalRequest, ApprovalStatus
from kehu.approvals.selectors import approval_document_type_choices, approval_inbox_for
from kehu.core.forms import KehuForm
from kehu.customers.linked_search import linked_search_q


class ApprovalRequestFilter(django_filters.FilterSet):
    """Filters of the approval list pages."""

    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_q",
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

    def filter_q(self, queryset, name, value):
        # The title holds the document's number, title and customer (indexed, approvals 0003).
        return queryset.filter(
            linked_search_q(ApprovalRequest, value.strip()[:100], fields=("title",), customer=None)
        )


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
