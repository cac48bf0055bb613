"""Two approvers pressing "Approve" at the same moment: exactly one decision is recorded."""

import pytest
from django.db import connection

from kehu.approvals import services
from kehu.approvals.models import ApprovalAction, ApprovalActionKind, ApprovalStatus, StepStatus
from kehu.core.exceptions import ConflictError, PermissionRefused
from kehu.sales.models import ContractStatus, DocumentEvent
from tests.approvals.conftest import submit
from tests.core.conftest import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("threads share the test database on PostgreSQL only")


def _race(deciders, request, **kwargs):
    def work(index):
        return services.approval_approve(
            actor=deciders[index], request=request, comment=f"by {index}", **kwargs
        )

    return run_in_threads(len(deciders), work)


def test_two_candidates_approving_one_step_record_one_decision(org):
    contract, request = submit(org.sales1, amount="5000.00")
    results = _race([org.salesmgr1, org.salesdirector], request, expected_version=request.version)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1, results
    assert len(losers) == 1 and isinstance(losers[0], ConflictError), results
    request.refresh_from_db()
    contract.refresh_from_db()
    assert request.status == ApprovalStatus.APPROVED and request.version == 2
    assert contract.status == ContractStatus.ACTIVE
    step = request.steps.get()
    assert step.status == StepStatus.APPROVED and step.decided_by in (
        org.salesmgr1,
        org.salesdirector,
    )
    approvals = ApprovalAction.objects.filter(request=request, kind=ApprovalActionKind.APPROVE)
    assert approvals.count() == 1 and approvals.get().actor == step.decided_by
    assert DocumentEvent.objects.filter(object_id=contract.pk, to_status="active").count() == 1


def test_without_a_version_the_late_approver_is_not_a_candidate_of_the_next_step(org):
    contract, request = submit(org.sales1, amount="150000.00")
    results = _race([org.salesmgr1, org.salesdirector], request)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert isinstance(losers[0], PermissionRefused), results
    request.refresh_from_db()
    first, second = request.steps.order_by("sort_order")
    assert first.status == StepStatus.APPROVED and second.status == StepStatus.PENDING
    assert (
        ApprovalAction.objects.filter(request=request, kind=ApprovalActionKind.APPROVE).count() == 1
    )
    contract.refresh_from_db()
    assert contract.status == ContractStatus.PENDING


def test_approve_and_withdraw_at_once_leave_one_outcome(org):
    contract, request = submit(org.sales1, amount="5000.00")

    def work(index):
        if index == 0:
            return services.approval_approve(actor=org.salesmgr1, request=request)
        return services.approval_withdraw(actor=org.sales1, request=request)

    results = run_in_threads(2, work)
    assert sum(not isinstance(r, BaseException) for r in results) == 1, results
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))
    request.refresh_from_db()
    contract.refresh_from_db()
    expected = {
        ApprovalStatus.APPROVED: ContractStatus.ACTIVE,
        ApprovalStatus.WITHDRAWN: ContractStatus.DRAFT,
    }
    assert contract.status == expected[request.status]
    assert request.actions.count() == 2
