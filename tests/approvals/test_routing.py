"""Which rule routes a submission, and to whom each step goes."""

import pytest

from kehu.approvals.models import (
    ApprovalAction,
    ApprovalActionKind,
    ApprovalRequest,
    ApprovalRule,
    ApprovalStatus,
    ApproverKind,
    StepStatus,
)
from kehu.approvals.services import approval_rule_for
from kehu.core.exceptions import ServiceError
from kehu.sales.models import ContractStatus, DocumentEvent
from kehu.sales.services import contract_submit
from kehu.system.models import AuditLog, Role
from tests.approvals.conftest import role_step, rule, submit
from tests.factories import DepartmentFactory, UserFactory
from tests.sales.factories import contract_for

pytestmark = pytest.mark.django_db


def labels(request) -> list[str]:
    return [step.approver_label for step in request.steps.order_by("sort_order")]


def test_the_seeded_defaults_route_by_amount(org):
    assert ApprovalRule.objects.filter(document_type="sales.contract").count() == 2
    _, large = submit(org.sales1, amount="100000.01")
    _, boundary = submit(org.sales1, amount="100000.00")
    _, small = submit(org.sales1, amount="99999.99")
    assert labels(large) == ["销售经理", "总经理"]
    assert labels(boundary) == ["销售经理"]
    assert labels(small) == ["销售经理"]
    assert large.rule_name == "大额合同（10万元以上）"
    assert boundary.rule_name == "合同（10万元及以下）"


@pytest.mark.parametrize(
    ("amount", "steps"),
    [("150000.00", 2), ("100000.01", 2), ("100000.00", 1), ("1.00", 1)],
)
def test_over_100000_takes_two_steps_exactly_100000_one(org, no_rules, amount, steps):
    rule(
        org,
        name="large",
        amount_over="100000",
        steps=[role_step("sales_manager"), role_step("general_manager")],
    )
    rule(org, name="small", amount_up_to="100000", steps=[role_step("sales_manager")], sort_order=1)
    _, request = submit(org.sales1, amount=amount)
    assert request.steps.count() == steps
    first = request.steps.get(sort_order=0)
    assert first.status == StepStatus.PENDING
    assert set(first.candidates.all()) == {org.salesmgr1, org.salesdirector}
    if steps == 2:
        assert request.steps.get(sort_order=1).status == StepStatus.WAITING
        assert list(request.steps.get(sort_order=1).candidates.all()) == [org.manager]


def test_a_department_rule_covers_its_subtree_only(org, no_rules):
    group = DepartmentFactory(name="销售二部一组", parent=org.sales2_dept)
    sales4 = UserFactory(
        username="sales4", department=group, roles=[Role.objects.get(code="salesperson")]
    )
    rule(
        org,
        name="销售二部",
        departments=[org.sales2_dept],
        steps=[role_step("general_manager")],
        sort_order=0,
    )
    rule(org, name="everyone", steps=[role_step("sales_manager")], sort_order=5)
    _, own_department = submit(org.sales3)
    _, below = submit(sales4)
    _, other = submit(org.sales1)
    assert own_department.rule_name == below.rule_name == "销售二部"
    assert labels(own_department) == labels(below) == ["总经理"]
    assert other.rule_name == "everyone"


def test_rules_are_tried_in_order_and_inactive_ones_skipped(org, no_rules):
    second = rule(org, name="second", steps=[role_step("sales_manager")], sort_order=2)
    first = rule(org, name="first", steps=[role_step("general_manager")], sort_order=1)
    contract = contract_for(org.sales1)
    found = approval_rule_for(
        document_type="sales.contract", amount=contract.total_amount, department=contract.department
    )
    assert found == first
    ApprovalRule.objects.filter(pk=first.pk).update(is_active=False)
    found = approval_rule_for(
        document_type="sales.contract", amount=contract.total_amount, department=contract.department
    )
    assert found == second


def test_no_rule_approves_at_once_with_an_auto_approve_action(org, no_rules):
    contract, request = submit(org.sales1, amount="500000.00")
    assert request.status == ApprovalStatus.APPROVED
    assert request.rule is None and not request.steps.exists()
    kinds = list(request.actions.values_list("kind", flat=True))
    assert kinds == [ApprovalActionKind.SUBMIT, ApprovalActionKind.AUTO_APPROVE]
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE


def test_the_submitter_is_never_a_candidate(org):
    _, request = submit(org.salesmgr1, amount="5000.00")
    step = request.steps.get()
    assert org.salesmgr1 not in step.candidates.all()
    assert list(step.candidates.all()) == [org.salesdirector]


def test_a_department_manager_step_goes_up_when_the_submitter_is_the_manager(managed, no_rules):
    org = managed
    rule(org, steps=[{"approver_kind": ApproverKind.DEPARTMENT_MANAGER}])
    _, by_salesperson = submit(org.sales1)
    _, by_manager = submit(org.salesmgr1)
    assert list(by_salesperson.steps.get().candidates.all()) == [org.salesmgr1]
    assert list(by_manager.steps.get().candidates.all()) == [org.salesdirector]
    assert "销售部" in by_manager.steps.get().approver_label


def test_a_named_user_step(org, no_rules):
    rule(org, steps=[{"approver_kind": ApproverKind.USER, "user": org.manager}])
    _, request = submit(org.sales1)
    assert list(request.steps.get().candidates.all()) == [org.manager]


def test_a_step_with_nobody_to_decide_refuses_and_writes_nothing(org, no_rules):
    empty = Role.objects.create(code="auditor", name="审计", permissions=["sales.approve"])
    rule(
        org,
        name="audit",
        steps=[role_step("sales_manager"), {"approver_kind": ApproverKind.ROLE, "role": empty}],
    )
    contract = contract_for(org.sales1)
    before = (
        ApprovalRequest.objects.count(),
        ApprovalAction.objects.count(),
        DocumentEvent.objects.count(),
        AuditLog.objects.count(),
    )
    with pytest.raises(ServiceError) as refused:
        contract_submit(actor=org.sales1, contract=contract)
    assert refused.value.code == "no_approver"
    assert "审计" in str(refused.value.message) and "audit" in str(refused.value.message)
    assert before == (
        ApprovalRequest.objects.count(),
        ApprovalAction.objects.count(),
        DocumentEvent.objects.count(),
        AuditLog.objects.count(),
    )
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT and contract.version == 1


def test_a_role_step_skips_holders_who_cannot_see_or_approve(org, no_rules):
    """The sales manager of 销售一部 cannot see 销售二部's documents: not a candidate there."""
    rule(org, steps=[role_step("sales_manager")])
    _, request = submit(org.sales3)
    assert list(request.steps.get().candidates.all()) == [org.salesdirector]
