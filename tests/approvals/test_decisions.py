"""Approve, reject, withdraw: who may, what it writes, who is told."""

import pytest

from kehu.approvals import services
from kehu.approvals.models import (
    ApprovalAction,
    ApprovalActionKind,
    ApprovalStatus,
    StepStatus,
)
from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.sales.models import ContractStatus
from kehu.system.models import Notification
from tests.approvals.conftest import submit

pytestmark = pytest.mark.django_db


def snapshot(request):
    request.refresh_from_db()
    return (
        request.status,
        request.version,
        list(request.steps.values_list("status", "decided_by", "comment")),
        request.actions.count(),
    )


def test_two_steps_to_active(org):
    contract, request = submit(org.sales1, amount="150000.00")
    services.approval_approve(actor=org.salesmgr1, request=request, comment="价格合理")
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING and request.version == 2
    first, second = request.steps.order_by("sort_order")
    assert (first.status, first.decided_by, first.comment) == (
        StepStatus.APPROVED,
        org.salesmgr1,
        "价格合理",
    )
    assert second.status == StepStatus.PENDING
    services.approval_approve(actor=org.manager, request=request)
    request.refresh_from_db()
    contract.refresh_from_db()
    assert request.status == ApprovalStatus.APPROVED and request.decided_at is not None
    assert contract.status == ContractStatus.ACTIVE
    kinds = list(request.actions.values_list("kind", flat=True))
    assert kinds == ["submit", "approve", "approve"]


def test_approving_your_own_submission_is_refused_and_changes_nothing(org):
    _, request = submit(org.salesmgr1, amount="5000.00")
    before = snapshot(request)
    with pytest.raises(PermissionRefused) as refused:
        services.approval_approve(actor=org.salesmgr1, request=request)
    assert "own submission" in str(refused.value.message)
    with pytest.raises(PermissionRefused):
        services.approval_reject(actor=org.salesmgr1, request=request, comment="no")
    assert snapshot(request) == before


def test_someone_who_is_not_a_candidate_is_refused(org):
    _, request = submit(org.sales1, amount="150000.00")
    before = snapshot(request)
    with pytest.raises(PermissionRefused) as refused:
        services.approval_approve(actor=org.manager, request=request)  # step 2's, not step 1's
    assert "销售经理" in str(refused.value.message)
    with pytest.raises(PermissionRefused):
        services.approval_approve(actor=org.sales2, request=request)
    assert snapshot(request) == before


def test_reject_requires_a_comment(org):
    contract, request = submit(org.sales1)
    before = snapshot(request)
    for empty in ("", "   "):
        with pytest.raises(ServiceError) as refused:
            services.approval_reject(actor=org.salesmgr1, request=request, comment=empty)
        assert refused.value.field == "comment"
    assert snapshot(request) == before
    services.approval_reject(actor=org.salesmgr1, request=request, comment="付款条件不清楚")
    request.refresh_from_db()
    contract.refresh_from_db()
    assert request.status == ApprovalStatus.REJECTED
    assert contract.status == ContractStatus.REJECTED
    step = request.steps.get()
    assert step.status == StepStatus.REJECTED and step.comment == "付款条件不清楚"


def test_a_rejection_closes_the_steps_not_reached(org):
    _, request = submit(org.sales1, amount="150000.00")
    services.approval_reject(actor=org.salesmgr1, request=request, comment="too expensive")
    statuses = list(request.steps.order_by("sort_order").values_list("status", flat=True))
    assert statuses == [StepStatus.REJECTED, StepStatus.CANCELLED]


def test_withdraw_only_by_the_submitter(org):
    contract, request = submit(org.sales1)
    before = snapshot(request)
    for other in (org.salesmgr1, org.sales2, org.manager):
        with pytest.raises(PermissionRefused):
            services.approval_withdraw(actor=other, request=request)
    assert snapshot(request) == before
    services.approval_withdraw(actor=org.sales1, request=request, comment="改一下金额")
    request.refresh_from_db()
    contract.refresh_from_db()
    assert request.status == ApprovalStatus.WITHDRAWN
    assert contract.status == ContractStatus.DRAFT
    assert request.steps.get().status == StepStatus.CANCELLED
    action = request.actions.last()
    assert (action.kind, action.actor, action.comment) == ("withdraw", org.sales1, "改一下金额")


def test_a_decided_request_refuses_further_decisions(org):
    _, request = submit(org.sales1)
    services.approval_approve(actor=org.salesmgr1, request=request)
    before = snapshot(request)
    with pytest.raises(ConflictError) as refused:
        services.approval_approve(actor=org.salesdirector, request=request)
    assert "already been approved" in str(refused.value.message)
    with pytest.raises(ConflictError):
        services.approval_withdraw(actor=org.sales1, request=request)
    assert snapshot(request) == before


def test_a_stale_version_is_refused(org):
    _, request = submit(org.sales1, amount="150000.00")
    read = request.version
    services.approval_approve(actor=org.salesmgr1, request=request, expected_version=read)
    before = snapshot(request)
    with pytest.raises(ConflictError):
        services.approval_approve(actor=org.manager, request=request, expected_version=read)
    assert snapshot(request) == before


def test_notifications_go_to_the_next_approver_and_the_submitter(org):
    Notification.objects.all().delete()
    _, request = submit(org.sales1, amount="150000.00")
    first = Notification.objects.filter(title__contains=request.title)
    assert set(first.values_list("recipient__username", flat=True)) == {
        "salesmgr1",
        "salesdirector",
    }
    assert all(n.url == request.get_absolute_url() for n in first)
    assert {n.level for n in first} == {"todo"}
    Notification.objects.all().delete()
    services.approval_approve(actor=org.salesmgr1, request=request)
    assert list(Notification.objects.values_list("recipient__username", flat=True)) == ["manager"]
    Notification.objects.all().delete()
    services.approval_approve(actor=org.manager, request=request)
    assert "sales1" in set(Notification.objects.values_list("recipient__username", flat=True))
    assert Notification.objects.filter(recipient=org.sales1, title__startswith="Approved").exists()


def test_a_rejection_tells_the_submitter_why(org):
    _, request = submit(org.sales1)
    Notification.objects.all().delete()
    services.approval_reject(actor=org.salesmgr1, request=request, comment="请补充付款计划")
    note = Notification.objects.get(recipient=org.sales1)
    assert note.title.startswith("Rejected") and note.body == "请补充付款计划"


def test_history_rows_are_written_for_each_event(org):
    _, request = submit(org.sales1)
    services.approval_approve(actor=org.salesdirector, request=request, comment="ok")
    rows = list(ApprovalAction.objects.filter(request=request).order_by("id"))
    assert [(r.kind, r.actor) for r in rows] == [
        (ApprovalActionKind.SUBMIT, org.sales1),
        (ApprovalActionKind.APPROVE, org.salesdirector),
    ]
    assert rows[1].step == request.steps.get()
