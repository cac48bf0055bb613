"""``{% load approvals %}``: the approval panel of a document page and small display helpers."""

from __future__ import annotations

from django import template
from django.utils.http import url_has_allowed_host_and_scheme

from kehu.approvals import selectors
from kehu.approvals.forms import ApprovalDecisionForm

register = template.Library()

STATUS_BADGE = {
    "pending": "text-bg-warning",
    "approved": "text-bg-success",
    "rejected": "text-bg-danger",
    "withdrawn": "text-bg-secondary",
    "waiting": "text-bg-light border",
    "cancelled": "text-bg-light border text-body-secondary",
}

STEP_ICON = {
    "waiting": "circle",
    "pending": "hourglass-split",
    "approved": "check-circle-fill",
    "rejected": "x-circle-fill",
    "cancelled": "dash-circle",
}

STEP_COLOR = {
    "waiting": "secondary",
    "pending": "warning",
    "approved": "success",
    "rejected": "danger",
    "cancelled": "secondary",
}

ACTION_ICON = {
    "submit": "send",
    "approve": "check-circle",
    "reject": "x-circle",
    "withdraw": "arrow-counterclockwise",
    "auto_approve": "lightning-charge",
}


@register.filter
def approval_type_label(code: str) -> str:
    return selectors.approval_document_type_label(code)


@register.filter
def approval_badge(status: str) -> str:
    return STATUS_BADGE.get(status, "text-bg-light border")


@register.filter
def approval_step_icon(status: str) -> str:
    return STEP_ICON.get(status, "circle")


@register.filter
def approval_step_color(status: str) -> str:
    return STEP_COLOR.get(status, "secondary")


@register.filter
def approval_action_icon(kind: str) -> str:
    return ACTION_ICON.get(kind, "dot")


def decision_context(approval, *, user, next_url: str, form=None, error: str = "") -> dict:
    """What the decision box (``_decision.html``) needs: shared by the panel and the pages."""
    return {
        "approval": approval,
        "current_step": selectors.pending_step(approval),
        "can_decide": selectors.can_decide(approval, user),
        "can_withdraw": selectors.can_withdraw(approval, user),
        "decision_form": form
        or ApprovalDecisionForm(initial={"version": approval.version, "next": next_url}),
        "decision_error": error,
        "next_url": next_url,
    }


@register.inclusion_tag("approvals/_panel.html", takes_context=True)
def approval_panel(context, document):
    """The document's approval history and, while pending, the current step with the buttons
    the viewing user may press. Four queries whatever the number of requests and steps."""
    request = context["request"]
    history = selectors.approval_history_for(document)
    current = history[0] if history and history[0].is_pending else None
    next_url = request.get_full_path()
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = ""
    data = {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "history": history,
        "current": current,
        "document": document,
    }
    if current is not None:
        data.update(decision_context(current, user=request.user, next_url=next_url))
    return data
