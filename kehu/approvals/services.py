"""The approval engine's writes: submit, approve, reject, withdraw, and rule maintenance.

Every decision locks the request row first, so two approvers clicking at once cannot both
decide one step; the second is told the request has moved on. The document's own status is
changed by the registered callbacks inside the same transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.approvals.models import (
    ApprovalAction,
    ApprovalActionKind,
    ApprovalRequest,
    ApprovalRule,
    ApprovalRuleStep,
    ApprovalStatus,
    ApprovalStep,
    ApproverKind,
    StepStatus,
)
from kehu.approvals.registry import ApprovalDocumentType, approval_document_type_get
from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import visible_to
from kehu.core.services import model_create, versioned_update


def _audit(**kwargs) -> None:
    from kehu.system.services import audit_log_record

    audit_log_record(**kwargs)


def _notify(recipients, *, title: str, body: str = "", url: str = "", level: str = "info"):
    # Levels are kehu.system.models.NotificationLevel values: info, warning, todo.
    from kehu.system.services import notification_send

    notification_send(recipients=recipients, title=title, body=body, url=url, level=level)


# --- routing --------------------------------------------------------------------------------


def _department_chain(department) -> list:
    """The department and its ancestors, nearest first."""
    chain = []
    seen = set()
    while department is not None and department.pk not in seen:
        seen.add(department.pk)
        chain.append(department)
        department = department.parent
    return chain


def approval_rule_for(
    *, document_type: str, amount: Decimal | None, department
) -> ApprovalRule | None:
    """The first active rule, by order, whose amount range and departments match."""
    chain_ids = {d.pk for d in _department_chain(department)}
    rules = (
        ApprovalRule.objects.filter(document_type=document_type, is_active=True)
        .prefetch_related("departments")
        .order_by("sort_order", "id")
    )
    value = amount if amount is not None else Decimal("0")
    for rule in rules:
        if rule.amount_over is not None and not value > rule.amount_over:
            continue
        if rule.amount_up_to is not None and not value <= rule.amount_up_to:
            continue
        rule_departments = {d.pk for d in rule.departments.all()}
        if rule_departments and not rule_departments & chain_ids:
            continue
        return rule
    return None


def _candidates_for(
    *, step: ApprovalRuleStep, doc_type: ApprovalDocumentType, document, submitter, department
):
    """Who may decide ``step`` for this document, never including the submitter.

    Role: active users with the role whose data scope covers the document and who hold the
    module's ``approve`` permission. Named user: that user. Department manager: the manager
    of the document's department, or of the nearest department above with a manager other
    than the submitter (a manager's own document goes to their manager).
    """
    from kehu.system.models import User

    if step.approver_kind == ApproverKind.ROLE:
        users = User.objects.filter(roles=step.role, is_active=True).exclude(pk=submitter.pk)
        visible_qs = doc_type.model._default_manager.filter(pk=document.pk)
        found = []
        for user in users.distinct().order_by("id"):
            if (
                has_perm(user, f"{doc_type.module}.approve")
                and visible_to(visible_qs, user).exists()
            ):
                found.append(user)
        return found, str(step.role)
    if step.approver_kind == ApproverKind.USER:
        named = step.user
        if named is None or not named.is_active or named.pk == submitter.pk:
            return [], str(named) if named else ""
        return [named], str(named)
    for dept in _department_chain(department):
        manager = dept.manager
        if manager is not None and manager.is_active and manager.pk != submitter.pk:
            return [manager], _("%(name)s (manager of %(department)s)") % {
                "name": manager.get_full_name() or manager.get_username(),
                "department": dept.name,
            }
    return [], str(ApproverKind.DEPARTMENT_MANAGER.label)


def _document_of(request: ApprovalRequest):
    doc_type = approval_document_type_get(request.document_type)
    return doc_type, doc_type.model._base_manager.select_for_update().get(pk=request.object_id)


def _record(request, *, kind, actor, step=None, comment: str = "") -> ApprovalAction:
    return ApprovalAction.objects.create(
        request=request, step=step, kind=kind, actor=actor, comment=comment
    )


# --- submit ---------------------------------------------------------------------------------


def approval_submit(*, actor, document_type: str, document, comment: str = "") -> ApprovalRequest:
    """Open an approval request for ``document`` and route it to its first step.

    The caller (the owning module's service) has checked that the document may be submitted
    and runs this inside its transaction. With no applicable rule the request is approved at
    once and ``on_approved`` runs. Refused when a step would have nobody to decide it, so a
    document never waits for an approver who does not exist.
    """
    doc_type = approval_document_type_get(document_type)
    amount = doc_type.amount(document)
    department = doc_type.department(document)
    now = timezone.now()
    with transaction.atomic():
        rule = approval_rule_for(document_type=document_type, amount=amount, department=department)
        resolved = []
        if rule is not None:
            for position, rule_step in enumerate(
                rule.steps.select_related("role", "user").order_by("sort_order", "id")
            ):
                candidates, label = _candidates_for(
                    step=rule_step,
                    doc_type=doc_type,
                    document=document,
                    submitter=actor,
                    department=department,
                )
                if not candidates:
                    raise ServiceError(
                        _(
                            "Nobody can approve step %(step)s (%(approver)s) of the rule "
                            "“%(rule)s”. Ask an administrator to check the approval rules."
                        )
                        % {"step": position + 1, "approver": label or rule_step, "rule": rule.name},
                        code="no_approver",
                    )
                resolved.append((rule_step, candidates, label))
        try:
            with transaction.atomic():
                request = ApprovalRequest.objects.create(
                    document_type=document_type,
                    content_type=ContentType.objects.get_for_model(doc_type.model),
                    object_id=document.pk,
                    title=doc_type.title(document)[:300],
                    amount=amount,
                    currency=doc_type.currency(document),
                    department=department,
                    submitter=actor,
                    rule=rule,
                    rule_name=rule.name if rule else "",
                    submitted_at=now,
                    created_by=actor,
                    updated_by=actor,
                )
        except IntegrityError as exc:
            raise ServiceError(
                _("This document is already waiting for approval."), code="already_pending"
            ) from exc
        _record(request, kind=ApprovalActionKind.SUBMIT, actor=actor, comment=comment)
        steps = []
        for position, (rule_step, candidates, label) in enumerate(resolved):
            step = ApprovalStep.objects.create(
                request=request,
                sort_order=position,
                approver_kind=rule_step.approver_kind,
                approver_label=str(label)[:200],
                status=StepStatus.PENDING if position == 0 else StepStatus.WAITING,
            )
            step.candidates.set(candidates)
            steps.append((step, candidates))
        _audit(user=actor, action="submit", obj=request, note=request.title)
        if not steps:
            _finish(request, status=ApprovalStatus.APPROVED, actor=actor, now=now)
            _record(request, kind=ApprovalActionKind.AUTO_APPROVE, actor=None)
            doc_type.on_approved(document, request, actor)
        else:
            first, candidates = steps[0]
            _notify_step(request, candidates)
    return request


def _notify_step(request: ApprovalRequest, candidates) -> None:
    _notify(
        candidates,
        title=_("Awaiting your approval: %(title)s") % {"title": request.title},
        body=_("Submitted by %(user)s.") % {"user": request.submitter},
        url=request.get_absolute_url(),
        level="todo",
    )


def _finish(request: ApprovalRequest, *, status: str, actor, now) -> None:
    request.status = status
    request.decided_at = now
    request.version += 1
    request.updated_by = actor
    request.save(update_fields=["status", "decided_at", "version", "updated_by", "updated_at"])
    # Steps never reached are closed so they leave every inbox.
    request.steps.filter(status__in=[StepStatus.WAITING, StepStatus.PENDING]).update(
        status=StepStatus.CANCELLED
    )


# --- decisions ------------------------------------------------------------------------------


def _locked_pending(request: ApprovalRequest, expected_version: int | None) -> ApprovalRequest:
    current = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
    if current.status != ApprovalStatus.PENDING:
        raise ConflictError(
            _("This request has already been %(status)s.")
            % {"status": current.get_status_display().lower()}
        )
    if expected_version is not None and current.version != expected_version:
        raise ConflictError()
    return current


def _current_step(request: ApprovalRequest) -> ApprovalStep:
    step = request.steps.filter(status=StepStatus.PENDING).order_by("sort_order").first()
    if step is None:  # a pending request always has a pending step; guard the invariant
        raise ServiceError(_("This request has no step awaiting a decision."))
    return step


def _check_decider(*, actor, request: ApprovalRequest, step: ApprovalStep) -> None:
    if actor.pk == request.submitter_id:
        raise PermissionRefused(_("You cannot approve or reject your own submission."))
    if not step.candidates.filter(pk=actor.pk).exists():
        raise PermissionRefused(
            _("This step is waiting for %(approver)s, not for you.")
            % {"approver": step.approver_label}
        )


def approval_approve(
    *, actor, request: ApprovalRequest, comment: str = "", expected_version: int | None = None
) -> ApprovalRequest:
    """Approve the current step; the last approval approves the document."""
    now = timezone.now()
    with transaction.atomic():
        current = _locked_pending(request, expected_version)
        step = _current_step(current)
        _check_decider(actor=actor, request=current, step=step)
        step.status, step.decided_by, step.decided_at = StepStatus.APPROVED, actor, now
        step.comment = comment.strip()
        step.save(update_fields=["status", "decided_by", "decided_at", "comment"])
        _record(
            current, kind=ApprovalActionKind.APPROVE, actor=actor, step=step, comment=step.comment
        )
        following = current.steps.filter(status=StepStatus.WAITING).order_by("sort_order").first()
        if following is not None:
            following.status = StepStatus.PENDING
            following.save(update_fields=["status"])
            current.version += 1
            current.updated_by = actor
            current.save(update_fields=["version", "updated_by", "updated_at"])
            _notify_step(current, list(following.candidates.all()))
        else:
            doc_type, document = _document_of(current)
            _finish(current, status=ApprovalStatus.APPROVED, actor=actor, now=now)
            doc_type.on_approved(document, current, actor)
            _notify(
                [current.submitter],
                title=_("Approved: %(title)s") % {"title": current.title},
                body=step.comment,
                url=current.get_absolute_url(),
            )
        _audit(user=actor, action="approve", obj=current, note=step.comment)
    return current


def approval_reject(
    *, actor, request: ApprovalRequest, comment: str, expected_version: int | None = None
) -> ApprovalRequest:
    """Reject at the current step; a comment saying why is required (asked for only once
    the actor is known to decide this step, so a refusal reads as one)."""
    comment = (comment or "").strip()
    now = timezone.now()
    with transaction.atomic():
        current = _locked_pending(request, expected_version)
        step = _current_step(current)
        _check_decider(actor=actor, request=current, step=step)
        if not comment:
            raise ServiceError(
                _("Say why you reject it, so the submitter can fix it."), field="comment"
            )
        step.status, step.decided_by, step.decided_at, step.comment = (
            StepStatus.REJECTED,
            actor,
            now,
            comment,
        )
        step.save(update_fields=["status", "decided_by", "decided_at", "comment"])
        _record(current, kind=ApprovalActionKind.REJECT, actor=actor, step=step, comment=comment)
        doc_type, document = _document_of(current)
        _finish(current, status=ApprovalStatus.REJECTED, actor=actor, now=now)
        doc_type.on_rejected(document, current, actor)
        _notify(
            [current.submitter],
            title=_("Rejected: %(title)s") % {"title": current.title},
            body=comment,
            url=current.get_absolute_url(),
            level="warning",
        )
        _audit(user=actor, action="reject", obj=current, note=comment)
    return current


def approval_withdraw(
    *, actor, request: ApprovalRequest, comment: str = "", expected_version: int | None = None
) -> ApprovalRequest:
    """The submitter (or an administrator) takes a pending request back."""
    now = timezone.now()
    with transaction.atomic():
        current = _locked_pending(request, expected_version)
        if actor.pk != current.submitter_id and not actor.is_superuser:
            raise PermissionRefused(_("Only the submitter can withdraw this request."))
        _record(current, kind=ApprovalActionKind.WITHDRAW, actor=actor, comment=comment.strip())
        waiting = list(_current_step(current).candidates.all())
        doc_type, document = _document_of(current)
        _finish(current, status=ApprovalStatus.WITHDRAWN, actor=actor, now=now)
        doc_type.on_withdrawn(document, current, actor)
        # Those it was waiting for had an "awaiting your approval" notice: tell them it is off.
        _notify(
            waiting,
            title=_("Withdrawn: %(title)s") % {"title": current.title},
            body=comment.strip(),
            url=current.get_absolute_url(),
        )
        _audit(user=actor, action="withdraw", obj=current, note=comment)
    return current


def approval_pending_for_document(document) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(type(document)),
        object_id=document.pk,
        status=ApprovalStatus.PENDING,
    ).first()


# --- rules ----------------------------------------------------------------------------------


def _check_steps(steps: list[dict[str, Any]]) -> None:
    if not steps:
        raise ServiceError(_("A rule needs at least one step."), field="steps")
    for position, step in enumerate(steps, start=1):
        kind = step.get("approver_kind")
        if kind == ApproverKind.ROLE and not step.get("role"):
            raise ServiceError(_("Step %(n)s: choose a role.") % {"n": position}, field="steps")
        if kind == ApproverKind.USER and not step.get("user"):
            raise ServiceError(_("Step %(n)s: choose a user.") % {"n": position}, field="steps")
        if kind not in ApproverKind.values:
            raise ServiceError(
                _("Step %(n)s: choose who approves.") % {"n": position}, field="steps"
            )


def _steps_replace(rule: ApprovalRule, steps: list[dict[str, Any]]) -> None:
    rule.steps.all().delete()
    for position, step in enumerate(steps):
        kind = step["approver_kind"]
        ApprovalRuleStep.objects.create(
            rule=rule,
            sort_order=position,
            approver_kind=kind,
            role=step.get("role") if kind == ApproverKind.ROLE else None,
            user=step.get("user") if kind == ApproverKind.USER else None,
        )


def approval_rule_create(
    *, actor, data: dict[str, Any], departments=(), steps: list[dict[str, Any]]
) -> ApprovalRule:
    """``steps``: ordered ``{"approver_kind", "role", "user"}`` dicts."""
    require_perm(actor, "system.change")
    _check_steps(steps)
    with transaction.atomic():
        rule = model_create(
            model=ApprovalRule, user=actor, data=data, m2m={"departments": departments}
        )
        _steps_replace(rule, steps)
    return rule


def approval_rule_update(
    *,
    actor,
    rule: ApprovalRule,
    expected_version: int | None,
    data: dict[str, Any],
    departments=(),
    steps: list[dict[str, Any]],
) -> ApprovalRule:
    """Running requests keep the steps they were given; edits apply to new submissions."""
    require_perm(actor, "system.change")
    _check_steps(steps)
    with transaction.atomic():
        rule = versioned_update(
            instance=rule,
            user=actor,
            expected_version=expected_version,
            data=data,
            m2m={"departments": departments},
        )
        _steps_replace(rule, steps)
    return rule


def approval_rule_delete(*, actor, rule: ApprovalRule) -> None:
    """Delete a rule no request was routed by; a rule with history is deactivated instead."""
    require_perm(actor, "system.delete")
    with transaction.atomic():
        current = ApprovalRule.objects.select_for_update().get(pk=rule.pk)
        if current.requests.exists():
            raise ServiceError(
                _(
                    "Requests were routed by this rule, so it stays for their history. "
                    "Deactivate it instead."
                ),
                code="rule_in_use",
            )
        _audit(user=actor, action="delete", obj=current, note=current.name)
        current.delete()
