"""A small company with this month's business in two sales departments, built through the
services, and the analytics jobs run over it: fast enough for every page and API test.

sales1 and sales2 sell in 销售一部 (salesmgr1's department), sales3 in 销售二部.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from kehu.analytics import services
from kehu.customers import services_opportunities as opportunities
from kehu.customers.models import PipelineStage, StageKind
from kehu.finance import services as finance
from kehu.hr.models import Department, SalesTarget
from kehu.sales import services as sales
from kehu.system.models import DictionaryItem
from tests.customers.factories import CustomerFactory, FollowUpFactory
from tests.finance.factories import active_contract, approve_all
from tests.products.factories import ProductFactory
from tests.sales.factories import line

TODAY = timezone.localdate()
YEAR_AGO = TODAY - datetime.timedelta(days=365)


@dataclass
class Company:
    org: object
    customers: dict = field(default_factory=dict)
    contracts: dict = field(default_factory=dict)
    products: list = field(default_factory=list)
    stages: list = field(default_factory=list)


def _pay(actor, contract, amount: str, org, *, on=TODAY):
    payment, _created = finance.payment_register(
        actor=actor,
        data={
            "contract": contract,
            "amount": Decimal(amount),
            "received_on": on,
            "method": "bank_transfer",
        },
    )
    finance.payment_confirm(actor=org.finance, payment=payment)
    return payment


def _expense(actor, org, amount: str, category: str):
    item = DictionaryItem.objects.get(dictionary__code="expense_category", value=category)
    claim = finance.expense_create(
        actor=actor,
        data={
            "category": item,
            "amount": Decimal(amount),
            "spent_on": TODAY,
            "description": "拜访客户",
        },
    )
    finance.expense_submit(actor=actor, claim=claim)
    approve_all(claim, org)
    return claim


def build_company(org, *, refresh: bool = True) -> Company:
    company = Company(org=org)
    # Expense claims go to the submitter's department manager.
    Department.objects.filter(pk=org.sales1_dept.pk).update(manager=org.salesmgr1)
    Department.objects.filter(pk=org.sales2_dept.pk).update(manager=org.salesdirector)
    products = [ProductFactory(cost_price=Decimal("40.00")) for _ in range(3)]
    company.products = products
    for key, owner in (("a", org.sales1), ("b", org.sales2), ("c", org.sales3)):
        company.customers[key] = CustomerFactory(owner=owner)

    def contract(key, owner, amount, signed_on=TODAY):
        return active_contract(
            org, owner, amount=amount, customer=company.customers[key], signed_on=signed_on
        )

    company.contracts["a"] = contract("a", org.sales1, "100000.00")
    company.contracts["b"] = contract("b", org.sales2, "50000.00")
    company.contracts["c"] = contract("c", org.sales3, "80000.00")
    company.contracts["a_last_year"] = contract("a", org.sales1, "40000.00", YEAR_AGO)

    finance.receivable_plan_set(
        actor=org.sales1,
        contract=company.contracts["a"],
        instalments=[
            {"due_date": TODAY - datetime.timedelta(days=40), "amount": Decimal("30000.00")},
            {"due_date": TODAY + datetime.timedelta(days=20), "amount": Decimal("70000.00")},
        ],
    )
    payment = _pay(org.sales1, company.contracts["a"], "30000.00", org)
    refund = finance.refund_request(
        actor=org.sales1, payment=payment, amount=Decimal("5000.00"), reason="质量问题"
    )
    approve_all(refund, org)
    _pay(org.sales3, company.contracts["c"], "20000.00", org)
    _pay(org.sales1, company.contracts["a_last_year"], "40000.00", org, on=YEAR_AGO)

    _expense(org.sales1, org, "800.00", "travel")
    _expense(org.sales2, org, "300.00", "entertainment")
    _expense(org.sales3, org, "500.00", "travel")

    FollowUpFactory(customer=company.customers["a"])
    FollowUpFactory(customer=company.customers["a"])
    FollowUpFactory(customer=company.customers["c"])

    stages = list(PipelineStage.objects.filter(is_active=True))
    company.stages = stages
    first_open = next(s for s in stages if s.kind == StageKind.OPEN)
    won = next(s for s in stages if s.kind == StageKind.WON)
    for owner, key in ((org.sales1, "a"), (org.sales1, "a"), (org.sales3, "c")):
        opportunities.opportunity_create(
            actor=owner,
            data={
                "customer": company.customers[key],
                "title": "ERP 项目",
                "amount": Decimal("60000.00"),
                "stage": first_open,
            },
        )
    closed = opportunities.opportunity_create(
        actor=org.sales2,
        data={"customer": company.customers["b"], "title": "年度维保", "amount": Decimal("9000")},
    )
    opportunities.opportunity_move(
        actor=org.sales2, opportunity=closed, stage=won, position=0, expected_version=1
    )

    for owner, key, product, quantity in (
        (org.sales1, "a", products[0], "3"),
        (org.sales1, "a", products[1], "1"),
        (org.sales2, "b", products[0], "2"),
        (org.sales3, "c", products[2], "5"),
    ):
        sales.order_create(
            actor=owner,
            data={"customer": company.customers[key], "title": "订单"},
            lines=[line(product, quantity, "100.00", tax_rate=Decimal("0"))],
        )

    for user, department, contract_target, payment_target in (
        (org.sales1, org.sales1_dept, "120000.00", "50000.00"),
        (org.sales3, org.sales2_dept, "60000.00", "30000.00"),
    ):
        SalesTarget.objects.create(
            kind="employee",
            user=user,
            department=department,
            year=TODAY.year,
            month=TODAY.month,
            contract_amount_target=Decimal(contract_target),
            payment_target=Decimal(payment_target),
        )
    SalesTarget.objects.create(
        kind="department",
        department=org.sales1_dept,
        year=TODAY.year,
        month=TODAY.month,
        contract_amount_target=Decimal("200000.00"),
        payment_target=Decimal("80000.00"),
    )
    if refresh:
        services.analytics_refresh_all(as_of=TODAY)
    return company
