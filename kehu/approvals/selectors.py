"""Reads of the approval engine: inbox, scoped lists, one request, a document's history.

Who sees a request: its submitter, everyone who may decide or decided one of its steps, and
whoever's data scope covers it (``ApprovalRequest`` is scoped by submitter and department)
for the document types of modules they may view. So a salesperson sees their own
submissions, a sales manager their department's, and HR (scope "all", no sales.view) does
not read contract amounts through the approvals pages.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from kehu.approvals.models import (
    ApprovalAction,
    ApprovalRequest,
    ApprovalRule,
    ApprovalRuleStep,
    ApprovalStatus,
    ApprovalStep,
    StepStatus,
)
from kehu.approvals.registry import (
    ApprovalDocumentType,
    approval_document_type_get,
    approval_document_types,
)
from kehu.core.permissions import has_perm
from kehu.core.scope import scope_q


def _steps_prefetch() -> Prefetch:
    from kehu.system.models import User

    return Prefetch(
        "steps",
        queryset=ApprovalStep.objects.select_related("decided_by")
        .prefetch_related(
            Prefetch("candidates", queryset=User.objects.order_by("first_name", "username"))
        )
        .order_by("sort_order"),
    )


def _actions_prefetch() -> Prefetch:
    return Prefetch(
        "actions",
        queryset=ApprovalAction.objects.select_related("actor", "step").order_by("at", "id"),
    )


def approval_document_type_label(code: str) -> str:
    try:
        return str(approval_document_type_get(code).label)
    except KeyError:
        return code


def approval_document_type_choices() -> list[tuple[str, str]]:
    return [(t.code, str(t.label)) for t in approval_document_types()]


def approval_viewable_types(user) -> list[str]:
    """Document types whose module ``user`` may view (the wider-scope part of visibility)."""
    return [t.code for t in approval_document_types() if has_perm(user, f"{t.module}.view")]


def approval_approvable_types(user) -> list[ApprovalDocumentType]:
    return [t for t in approval_document_types() if has_perm(user, f"{t.module}.approve")]


def _involved_ids(user) -> QuerySet:
    return ApprovalStep.objects.filter(Q(candidates=user) | Q(decided_by=user)).values("request_id")


def approval_list_visible_to(*, user) -> QuerySet[ApprovalRequest]:
    """Every request ``user`` may read, newest first, ready for a list page."""
    if not user or not user.is_authenticated or not user.is_active:
        return ApprovalRequest.objects.none()
    condition = Q(submitter=user) | Q(pk__in=_involved_ids(user))
    types = approval_viewable_types(user)
    if types:
        condition |= scope_q(ApprovalRequest, user) & Q(document_type__in=types)
    return (
        ApprovalRequest.objects.filter(condition)
        .select_related("submitter", "department")
        .order_by("-submitted_at", "-id")
    )


def approval_submitted_by(*, user) -> QuerySet[ApprovalRequest]:
    return approval_list_visible_to(user=user).filter(submitter=user)


def approval_inbox_for(*, user) -> QuerySet[ApprovalRequest]:
    """Pending requests whose current step ``user`` may decide, oldest first (first in, first
    decided)."""
    if not user or not user.is_authenticated or not user.is_active:
        return ApprovalRequest.objects.none()
    steps = ApprovalStep.objects.filter(status=StepStatus.PENDING, candidates=user)
    return (
        ApprovalRequest.objects.filter(
            status=ApprovalStatus.PENDING, pk__in=steps.values("request_id")
        )
        .select_related("submitter", "department")
        .order_by("submitted_at", "id")
    )


def approval_pending_count(*, user) -> int:
    """How many requests wait for ``user``: one query (a pending step implies a pending
    request, the engine closes the steps of every request it finishes)."""
    if not user or not user.is_authenticated or not user.is_active:
        return 0
    return ApprovalStep.candidates.through.objects.filter(
        user_id=user.pk, approvalstep__status=StepStatus.PENDING
    ).count()


def approval_get_for(*, user, pk) -> ApprovalRequest:
    """One request with its steps, candidates and history; 404 when missing or not visible."""
    try:
        return (
            approval_list_visible_to(user=user)
            .select_related("rule")
            .prefetch_related(_steps_prefetch(), _actions_prefetch())
            .get(pk=pk)
        )
    except (ApprovalRequest.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(str(_("Not found."))) from exc


def approval_others_of_document(*, user, approval: ApprovalRequest) -> list[ApprovalRequest]:
    """The other requests ``user`` may see for the same document, newest first."""
    return list(
        approval_list_visible_to(user=user)
        .filter(content_type_id=approval.content_type_id, object_id=approval.object_id)
        .exclude(pk=approval.pk)
        .select_related(None)
    )


def approval_history_for(document) -> list[ApprovalRequest]:
    """All requests of ``document``, newest first, with steps, candidates and actions."""
    return list(
        ApprovalRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(type(document)),
            object_id=document.pk,
        )
        .select_related("submitter")
        .prefetch_related(_steps_prefetch(), _actions_prefetch())
        .order_by("-submitted_at", "-id")
    )


def approval_document_of(request: ApprovalRequest):
    """The document a request is about (soft-deleted ones too), or None when its type is
    no longer registered or the row is gone."""
    try:
        model = approval_document_type_get(request.document_type).model
    except KeyError:
        return None
    return model._base_manager.filter(pk=request.object_id).first()


def approval_document_url(document) -> str:
    if document is None or not hasattr(document, "get_absolute_url"):
        return ""
    return document.get_absolute_url()


def pending_step(request: ApprovalRequest) -> ApprovalStep | None:
    """The step awaiting a decision, from the prefetched steps (no query)."""
    for step in request.steps.all():
        if step.status == StepStatus.PENDING:
            return step
    return None


def can_decide(request: ApprovalRequest, user) -> bool:
    """Whether ``user`` is a candidate of the pending step (prefetched; no query)."""
    if request.status != ApprovalStatus.PENDING or user.pk == request.submitter_id:
        return False
    step = pending_step(request)
    return step is not None and any(c.pk == user.pk for c in step.candidates.all())


def can_withdraw(request: ApprovalRequest, user) -> bool:
    return request.status == ApprovalStatus.PENDING and (
        user.pk == request.submitter_id or user.is_superuser
    )


# --- rules ----------------------------------------------------------------------------------


def approval_rule_list() -> QuerySet[ApprovalRule]:
    """Rules in routing order per document type, with their steps and departments."""
    return ApprovalRule.objects.prefetch_related(
        "departments",
        Prefetch(
            "steps",
            queryset=ApprovalRuleStep.objects.select_related("role", "user").order_by(
                "sort_order", "id"
            ),
        ),
    ).order_by("document_type", "sort_order", "id")


def approval_rule_get(*, pk) -> ApprovalRule:
    try:
        return approval_rule_list().get(pk=pk)
    except (ApprovalRule.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(str(_("Not found."))) from exc


def approval_rules_grouped() -> list[dict]:
    """Rules grouped by document type, registered types first in registry order."""
    rules = list(approval_rule_list())
    groups: dict[str, dict] = {
        t.code: {"code": t.code, "label": t.label, "rules": []} for t in approval_document_types()
    }
    for rule in rules:
        group = groups.setdefault(
            rule.document_type,
            {"code": rule.document_type, "label": rule.document_type, "rules": []},
        )
        group["rules"].append(rule)
    return list(groups.values())
