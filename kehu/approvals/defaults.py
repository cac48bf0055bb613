"""The approval rules a fresh install starts with; seeded after migrate where none exist."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from kehu.approvals.models import ApprovalRule, ApprovalRuleStep, ApproverKind

LARGE_CONTRACT = Decimal("100000.00")

# document type, rule name, amount over, amount up to, [role codes in order]
DEFAULT_RULES = [
    (
        "sales.contract",
        "大额合同（10万元以上）",
        LARGE_CONTRACT,
        None,
        ["sales_manager", "general_manager"],
    ),
    ("sales.contract", "合同（10万元及以下）", None, LARGE_CONTRACT, ["sales_manager"]),
]


def approval_rules_seed() -> None:
    from kehu.system.models import Role

    roles = {role.code: role for role in Role.objects.all()}
    with transaction.atomic():
        for position, (doc_type, name, over, up_to, role_codes) in enumerate(DEFAULT_RULES):
            if ApprovalRule.objects.filter(document_type=doc_type).exists() and position == 0:
                return  # the administrators' rules, not ours, from here on
            if not all(code in roles for code in role_codes):
                return
            rule = ApprovalRule.objects.create(
                document_type=doc_type,
                name=name,
                amount_over=over,
                amount_up_to=up_to,
                sort_order=position,
            )
            for step_position, code in enumerate(role_codes):
                ApprovalRuleStep.objects.create(
                    rule=rule,
                    sort_order=step_position,
                    approver_kind=ApproverKind.ROLE,
                    role=roles[code],
                )
