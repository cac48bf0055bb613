"""What a fresh install ships with: the default roles and dictionaries.

Seeded after every migrate and only where missing, so administrators' edits survive.
"""

from __future__ import annotations

from django.db import transaction

from kehu.core.permissions import all_permission_codes
from kehu.core.scope import DataScope


def _codes(module: str, *actions: str) -> list[str]:
    return [f"{module}.{action}" for action in actions]


ALL_ACTIONS = ("view", "add", "change", "delete", "export", "approve", "assign")

# Sales roles see and edit the numbers of the customers in their scope (they call them);
# roles without a rule (finance …) see them masked.
CUSTOMER_FIELD_RULES = {
    "customers.customer": {"phone": "edit", "mobile": "edit", "email": "edit"},
    "customers.contact": {"phone": "edit", "mobile": "edit", "email": "edit", "wechat": "edit"},
}

DEFAULT_ROLES: list[dict] = [
    {
        "code": "admin",
        "name": "系统管理员",
        "description": "Administrator: every module and setting.",
        "data_scope": DataScope.ALL,
        "permissions": "__all__",
        "field_rules": {
            "system.user": {"phone": "edit", "email": "edit"},
            "hr.employee": {"id_number": "edit", "base_salary": "edit"},
            **CUSTOMER_FIELD_RULES,
        },
    },
    {
        "code": "general_manager",
        "name": "总经理",
        "description": "General manager: sees everything, approves large contracts.",
        "data_scope": DataScope.ALL,
        "permissions": [
            *_codes("customers", "view", "export", "assign", "approve"),
            *_codes("sales", "view", "export", "approve", "assign"),
            *_codes("finance", "view", "export", "approve"),
            *_codes("products", "view", "export"),
            *_codes("hr", "view", "export", "approve"),
            *_codes("analytics", "view", "export"),
        ],
        "field_rules": CUSTOMER_FIELD_RULES,
    },
    {
        "code": "sales_manager",
        "name": "销售经理",
        "description": "Sales manager: the department and below.",
        "data_scope": DataScope.DEPARTMENT_TREE,
        "permissions": [
            *_codes("customers", *ALL_ACTIONS),
            *_codes("sales", "view", "add", "change", "export", "approve", "assign"),
            *_codes("finance", "view", "add", "export"),
            *_codes("products", "view"),
            *_codes("hr", "view"),
            *_codes("analytics", "view", "export"),
        ],
        "field_rules": CUSTOMER_FIELD_RULES,
    },
    {
        "code": "salesperson",
        "name": "销售员",
        "description": "Salesperson: own customers and the public pool.",
        "data_scope": DataScope.OWN,
        "permissions": [
            *_codes("customers", "view", "add", "change"),
            *_codes("sales", "view", "add", "change"),
            *_codes("finance", "view", "add"),
            *_codes("products", "view"),
        ],
        "field_rules": CUSTOMER_FIELD_RULES,
    },
    {
        "code": "finance",
        "name": "财务",
        "description": "Finance: payments, invoices, refunds, expenses, receivables.",
        "data_scope": DataScope.ALL,
        "permissions": [
            *_codes("finance", *ALL_ACTIONS),
            *_codes("sales", "view", "export"),
            *_codes("customers", "view"),
            *_codes("products", "view"),
            *_codes("analytics", "view", "export"),
        ],
    },
    {
        "code": "hr",
        "name": "人事",
        "description": "HR: departments, positions, employees.",
        "data_scope": DataScope.ALL,
        "permissions": [*_codes("hr", *ALL_ACTIONS)],
        "field_rules": {
            "system.user": {"phone": "read", "email": "read"},
            "hr.employee": {"id_number": "edit", "base_salary": "edit"},
        },
    },
    {
        "code": "warehouse",
        "name": "仓管",
        "description": "Warehouse: catalogue and stock.",
        "data_scope": DataScope.ALL,
        "permissions": [*_codes("products", *ALL_ACTIONS), *_codes("sales", "view")],
    },
]

# code, Chinese name, English name, [(value, label, English label), ...]
DEFAULT_DICTIONARIES: list[tuple[str, str, str, list[tuple[str, str, str]]]] = [
    (
        "customer_source",
        "客户来源",
        "Customer source",
        [
            ("website", "官网", "Website"),
            ("referral", "转介绍", "Referral"),
            ("exhibition", "展会", "Trade fair"),
            ("cold_call", "电话开发", "Cold call"),
            ("advertising", "广告", "Advertising"),
            ("other", "其他", "Other"),
        ],
    ),
    (
        "industry",
        "行业",
        "Industry",
        [
            ("manufacturing", "制造业", "Manufacturing"),
            ("it", "信息技术", "Information technology"),
            ("retail", "零售", "Retail"),
            ("finance", "金融", "Finance"),
            ("education", "教育", "Education"),
            ("healthcare", "医疗", "Healthcare"),
            ("construction", "建筑", "Construction"),
            ("other", "其他", "Other"),
        ],
    ),
    (
        "customer_level",
        "客户等级",
        "Customer level",
        [
            ("a", "A 重点客户", "A key account"),
            ("b", "B 普通客户", "B regular"),
            ("c", "C 一般客户", "C occasional"),
        ],
    ),
    (
        "followup_method",
        "跟进方式",
        "Follow-up method",
        [
            ("phone", "电话", "Phone"),
            ("visit", "拜访", "Visit"),
            ("wechat", "微信", "WeChat"),
            ("email", "邮件", "E-mail"),
            ("meeting", "会议", "Meeting"),
        ],
    ),
    (
        "expense_category",
        "费用类别",
        "Expense category",
        [
            ("travel", "差旅费", "Travel"),
            ("entertainment", "招待费", "Entertainment"),
            ("office", "办公费", "Office"),
            ("transport", "交通费", "Transport"),
            ("other", "其他", "Other"),
        ],
    ),
    (
        "product_unit",
        "计量单位",
        "Unit",
        [
            ("piece", "个", "piece"),
            ("set", "套", "set"),
            ("box", "箱", "box"),
            ("kg", "千克", "kg"),
            ("hour", "小时", "hour"),
        ],
    ),
    (
        "payment_method",
        "付款方式",
        "Payment method",
        [
            ("bank_transfer", "银行转账", "Bank transfer"),
            ("cash", "现金", "Cash"),
            ("alipay", "支付宝", "Alipay"),
            ("wechat_pay", "微信支付", "WeChat Pay"),
            ("acceptance_bill", "承兑汇票", "Acceptance bill"),
        ],
    ),
]


def seed_defaults() -> None:
    """Create the default roles, dictionaries and settings row where they are missing."""
    from kehu.system.models import (
        Dictionary,
        DictionaryItem,
        FieldPermission,
        Role,
        SystemSettings,
    )

    with transaction.atomic():
        existing_roles = set(Role.objects.values_list("code", flat=True))
        for spec in DEFAULT_ROLES:
            if spec["code"] in existing_roles:
                continue
            permissions = spec["permissions"]
            if permissions == "__all__":
                permissions = all_permission_codes()
            role = Role.objects.create(
                code=spec["code"],
                name=spec["name"],
                description=spec["description"],
                data_scope=spec["data_scope"],
                permissions=sorted(permissions),
                is_system=True,
            )
            # Sensitive fields are masked unless a role says otherwise; seeded once, with
            # the role, so an administrator's later changes are never overwritten.
            FieldPermission.objects.bulk_create(
                FieldPermission(role=role, model=model, field=field, access=access)
                for model, rules in spec.get("field_rules", {}).items()
                for field, access in rules.items()
            )
        for code, name, name_en, items in DEFAULT_DICTIONARIES:
            dictionary, created = Dictionary.objects.get_or_create(
                code=code, defaults={"name": name, "name_en": name_en, "is_system": True}
            )
            if created:
                DictionaryItem.objects.bulk_create(
                    DictionaryItem(
                        dictionary=dictionary,
                        value=value,
                        label=label,
                        label_en=label_en,
                        sort_order=index * 10,
                    )
                    for index, (value, label, label_en) in enumerate(items, start=1)
                )
        SystemSettings.objects.get_or_create(pk=1)
