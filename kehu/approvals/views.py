"""Approval pages: the inbox and lists, a request with its decision box, and the rules admin.

Thin over kehu.approvals.selectors (who sees what) and kehu.approvals.services (every
decision and rule change). Any logged-in user may open the request pages: the selectors show
only what concerns them; the rules pages need system.view / system.change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views import View

from kehu.approvals import selectors, services
from kehu.approvals.filters import ApprovalRequestFilter
from kehu.approvals.forms import ApprovalDecisionForm, ApprovalRuleForm, ApprovalRuleStepForm
from kehu.approvals.models import ApprovalRequest, ApprovalStatus, ApproverKind
from kehu.approvals.templatetags.approvals import decision_context
from kehu.core.exceptions import ServiceError
from kehu.core.permissions import has_perm
from kehu.core.views import Column, KehuFormView, KehuListView, ModulePermissionMixin, is_htmx

# --- lists ----------------------------------------------------------------------------------


class ApprovalInboxFilter(ApprovalRequestFilter):
    """The inbox holds pending requests only: no status filter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.filters["status"]


class _ApprovalListView(KehuListView):
    """The three approval lists share columns; ``tab`` picks the selector."""

    module = ""  # every logged-in user: the selectors decide what each one sees
    template_name = "approvals/request_list.html"
    filterset_class = ApprovalRequestFilter
    default_sort = "-submitted_at"
    tab = ""
    empty_text: Any = ""
    columns = [
        Column("title", _("Document"), sort="title", link=True),
        Column("document_type", _("Type"), template="approvals/_type_cell.html"),
        Column("amount", _("Amount"), sort="amount", template="approvals/_amount_cell.html"),
        Column("submitter", _("Submitted by")),
        Column("submitted_at", _("Submitted"), sort="submitted_at"),
        Column("status", _("Status"), sort="status", template="approvals/_status_cell.html"),
    ]

    def get_queryset(self):
        # The current step's approver is shown in the status cell: one query for the page.
        return super().get_queryset().prefetch_related("steps")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["tab"] = self.tab
        context["empty_text"] = self.empty_text
        return context


class ApprovalInboxView(_ApprovalListView):
    title = _("Awaiting my approval")
    tab = "inbox"
    filterset_class = ApprovalInboxFilter
    default_sort = "submitted_at"  # first in, first decided
    empty_text = _("Nothing is waiting for your approval.")

    def selector(self, user):
        return selectors.approval_inbox_for(user=user)


class MyApprovalRequestsView(_ApprovalListView):
    title = _("My submissions")
    tab = "mine"
    empty_text = _("You have not submitted anything for approval.")

    def selector(self, user):
        return selectors.approval_submitted_by(user=user)


class ApprovalRequestListView(_ApprovalListView):
    title = _("Approval requests")
    tab = "all"
    empty_text = _("No approval requests you can see.")

    def selector(self, user):
        return selectors.approval_list_visible_to(user=user)


# --- one request ----------------------------------------------------------------------------


def _safe_next(request, value: str, default: str) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, {request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return default


def _render_detail(request, approval, *, form=None, error: str = "", status: int = 200):
    document = selectors.approval_document_of(approval)
    context = {
        "title": approval.title,
        "approval": approval,
        "document": document,
        "document_url": selectors.approval_document_url(document),
        "type_label": selectors.approval_document_type_label(approval.document_type),
        "steps": list(approval.steps.all()),
        "actions": list(approval.actions.all()),
        "others": selectors.approval_others_of_document(user=request.user, approval=approval),
        **decision_context(
            approval,
            user=request.user,
            next_url=approval.get_absolute_url(),
            form=form,
            error=error,
        ),
    }
    return render(request, "approvals/request_detail.html", context, status=status)


class ApprovalRequestDetailView(LoginRequiredMixin, View):
    def get(self, request, pk):
        return _render_detail(request, selectors.approval_get_for(user=request.user, pk=pk))


class ApprovalRequestActionView(LoginRequiredMixin, View):
    """Approve, reject or withdraw. Refusals change nothing and say why, beside the buttons."""

    http_method_names = ["post"]
    actions: dict[str, Callable[..., ApprovalRequest]] = {
        "approve": services.approval_approve,
        "reject": services.approval_reject,
        "withdraw": services.approval_withdraw,
    }

    def post(self, request, pk, action):
        if action not in self.actions:
            raise Http404
        approval = selectors.approval_get_for(user=request.user, pk=pk)
        form = ApprovalDecisionForm(request.POST)
        next_url = _safe_next(request, request.POST.get("next", ""), approval.get_absolute_url())
        if not form.is_valid():
            return self._refused(request, approval, form, "", next_url, status=400)
        try:
            done = self.actions[action](
                actor=request.user,
                request=approval,
                comment=form.cleaned_data["comment"],
                expected_version=form.cleaned_data["version"],
            )
        except ServiceError as exc:
            if exc.field == "comment":
                form.add_error("comment", str(exc.message))
                return self._refused(request, approval, form, "", next_url, status=400)
            return self._refused(
                request, approval, None, str(exc.message), next_url, status=exc.status_code
            )
        messages.success(request, self._done_message(action, done))
        if is_htmx(request):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = next_url
            return response
        return HttpResponseRedirect(next_url)

    def _refused(self, request, approval, form, error: str, next_url: str, *, status: int):
        # Re-read: the request may have moved on (that is often why it was refused).
        fresh = selectors.approval_get_for(user=request.user, pk=approval.pk)
        if form is None:
            form = ApprovalDecisionForm(
                initial={
                    "version": fresh.version,
                    "next": next_url,
                    "comment": request.POST.get("comment", ""),
                }
            )
        if is_htmx(request):
            # 200 so htmx swaps the box; the message says what happened.
            return render(
                request,
                "approvals/_decision.html",
                decision_context(
                    fresh, user=request.user, next_url=next_url, form=form, error=error
                ),
            )
        return _render_detail(request, fresh, form=form, error=error, status=status)

    @staticmethod
    def _done_message(action: str, approval) -> str:
        if action == "reject":
            return str(_("Rejected. %(user)s has been told why.") % {"user": approval.submitter})
        if action == "withdraw":
            return str(_("The request was withdrawn."))
        if approval.status == ApprovalStatus.APPROVED:
            return str(_("Approved. The request is complete."))
        step = approval.steps.filter(status="pending").first()
        return str(
            _("Approved. It now waits for %(approver)s.")
            % {"approver": step.approver_label if step else "—"}
        )


# --- rules ----------------------------------------------------------------------------------


class ApprovalRuleListView(ModulePermissionMixin, View):
    module = "system"

    def get(self, request):
        return render(
            request,
            "approvals/rule_list.html",
            {
                "title": _("Approval rules"),
                "groups": selectors.approval_rules_grouped(),
                "can_change": has_perm(request.user, "system.change"),
            },
        )


class ApprovalRuleFormView(KehuFormView):
    module = "system"
    form_class = ApprovalRuleForm
    template_name = "approvals/rule_form.html"
    success_url_name = "approvals:rule_list"
    title = _("New approval rule")

    @property
    def creating(self) -> bool:
        return False  # rules are settings: system.change to create one as to edit it

    def get_object(self):
        if "pk" not in self.kwargs:
            return None
        return selectors.approval_rule_get(pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Approval rule %(name)s") % {"name": obj.name} if obj else self.title

    def render_form(self, form, obj, status=200):
        if not is_htmx(self.request):
            return super().render_form(form, obj, status)
        context = {"form": form, "object": obj, "title": self.get_title(obj), "view": self}
        context.update(self.extra_context(obj))
        return render(self.request, "approvals/_rule_form_body.html", context, status=status)

    def extra_context(self, obj) -> dict:
        return {
            "can_delete": obj is not None and has_perm(self.request.user, "system.delete"),
            "kind_role": ApproverKind.ROLE,
            "kind_user": ApproverKind.USER,
        }

    def save(self, form, obj):
        arguments = {
            "actor": self.request.user,
            "data": form.service_data(),
            "departments": form.cleaned_data["departments"],
            "steps": form.steps(),
        }
        try:
            if obj is None:
                return services.approval_rule_create(**arguments)
            return services.approval_rule_update(
                rule=obj, expected_version=form.cleaned_data["version"], **arguments
            )
        except ValidationError as exc:  # model constraints the form could not see
            field, errors = next(iter(getattr(exc, "message_dict", {None: exc.messages}).items()))
            raise ServiceError(errors[0], field=field if field != "__all__" else None) from exc


class ApprovalRuleStepRowView(ModulePermissionMixin, View):
    """A blank step row for the rule form (htmx "Add a step")."""

    module = "system"
    perm_action = "change"

    def get(self, request):
        form = ApprovalRuleStepForm(initial={"approver_kind": ApproverKind.ROLE})
        return render(
            request,
            "approvals/_rule_step_row.html",
            {"step": form, "kind_role": ApproverKind.ROLE, "kind_user": ApproverKind.USER},
        )


class ApprovalRuleDeleteView(ModulePermissionMixin, View):
    module = "system"
    perm_action = "delete"
    http_method_names = ["post"]

    def post(self, request, pk):
        rule = selectors.approval_rule_get(pk=pk)
        try:
            services.approval_rule_delete(actor=request.user, rule=rule)
        except ServiceError as exc:
            messages.error(request, str(exc.message))
            return HttpResponseRedirect(reverse("approvals:rule_edit", args=[pk]))
        messages.success(request, _("The rule was deleted."))
        return HttpResponseRedirect(reverse("approvals:rule_list"))
