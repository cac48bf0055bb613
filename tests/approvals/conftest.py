"""Approval tests run on real contracts: built and submitted through the sales services."""

from decimal import Decimal

import pytest

from kehu.approvals.models import ApprovalRequest, ApprovalRule, ApproverKind
from kehu.approvals.services import approval_rule_create
from kehu.sales.services import contract_submit
from kehu.system.models import Role
from tests.sales.factories import contract_for


def submit(owner, amount="1000.00", **data):
    """A contract of ``owner`` worth ``amount``, submitted; returns (contract, request)."""
    contract = contract_for(owner, amount=amount, **data)
    contract = contract_submit(actor=owner, contract=contract)
    request = ApprovalRequest.objects.filter(object_id=contract.pk).order_by("-id").first()
    return contract, request


def role_step(code: str) -> dict:
    return {"approver_kind": ApproverKind.ROLE, "role": Role.objects.get(code=code)}


def rule(org, *, name="rule", steps, amount_over=None, amount_up_to=None, departments=(), **data):
    return approval_rule_create(
        actor=org.admin,
        data={
            "document_type": "sales.contract",
            "name": name,
            "amount_over": Decimal(amount_over) if amount_over is not None else None,
            "amount_up_to": Decimal(amount_up_to) if amount_up_to is not None else None,
            **data,
        },
        departments=departments,
        steps=steps,
    )


@pytest.fixture
def no_rules(db):
    """Start from no contract rules (the seeded defaults are removed)."""
    ApprovalRule.objects.filter(document_type="sales.contract").delete()


@pytest.fixture
def managed(org):
    """Departments with managers: 销售一部 → salesmgr1, 销售部 → salesdirector."""
    from kehu.hr.models import Department

    Department.objects.filter(pk=org.sales1_dept.pk).update(manager=org.salesmgr1)
    Department.objects.filter(pk=org.sales.pk).update(manager=org.salesdirector)
    org.sales1_dept.refresh_from_db()
    org.sales.refresh_from_db()
    return org
