"""Approval rules for finance documents a fresh install starts with (where none exist).

Invoices: finance reviews the request; refunds: the general manager; expense claims: the
claimant's department manager, then finance. Payments have no rule: finance confirms them.
"""

from __future__ import annotations

from django.db import transaction

from kehu.approvals.models import ApprovalRule, ApprovalRuleStep, ApproverKind

# document type, rule name, [("role", code) | ("department_manager", None)]
DEFAULT_RULES: list[tuple[str, str, list[tuple[str, str | None]]]] = [
    ("finance.invoice", "开票审批", [("role", "finance")]),
    ("finance.refund", "退款审批", [("role", "general_manager")]),
    ("finance.expense", "费用报销审批", [("department_manager", None), ("role", "finance")]),
]


def finance_approval_rules_seed() -> None:
    from kehu.system.models import Role

    roles = {role.code: role for role in Role.objects.all()}
    with transaction.atomic():
        for doc_type, name, steps in DEFAULT_RULES:
            if ApprovalRule.objects.filter(document_type=doc_type).exists():
                continue
            if any(kind == "role" and code not in roles for kind, code in steps):
                continue
            rule = ApprovalRule.objects.create(document_type=doc_type, name=name)
            for position, (kind, code) in enumerate(steps):
                ApprovalRuleStep.objects.create(
                    rule=rule,
                    sort_order=position,
                    approver_kind=(
                        ApproverKind.ROLE if kind == "role" else ApproverKind.DEPARTMENT_MANAGER
                    ),
                    role=roles[code] if kind == "role" and code else None,
                )
