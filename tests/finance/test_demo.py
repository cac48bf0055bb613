"""Demo finance data: consistent with the contracts in force, decided by the right users,
deterministic and loaded once."""

import datetime
from collections import Counter
from decimal import Decimal

import pytest

from kehu.approvals.models import ApprovalRequest, ApprovalStep, StepStatus
from kehu.finance import demo, selectors
from kehu.finance.models import (
    ContractLedger,
    ExpenseClaim,
    Invoice,
    Payment,
    PaymentKind,
    ReceivableInstalment,
    Refund,
)
from tests.finance.factories import active_contract, department_managers

pytestmark = pytest.mark.django_db

OWNERS = ["sales1", "sales2", "sales3", "sales1", "salesmgr1", "sales2"]


def users_of(org) -> dict:
    names = ["admin", "manager", "salesmgr1", "sales1", "sales2", "sales3", "finance", "hr"]
    return {name: getattr(org, name) for name in names}


@pytest.fixture
def contracts(org):
    department_managers(org)
    amounts = ["12000.00", "8000.00", "30000.00", "10000.00", "5000.00", "2000.00"]
    return [
        # Signed half a year ago, so the demo can date instalments in the past.
        active_contract(
            org,
            getattr(org, owner),
            amount=amount,
            signed_on=datetime.date.today() - datetime.timedelta(days=200),
        )
        for owner, amount in zip(OWNERS, amounts, strict=True)
    ]


def deciders(document) -> list[str]:
    steps = ApprovalStep.objects.filter(
        request__object_id=document.pk,
        request__content_type__model=type(document)._meta.model_name,
        status__in=[StepStatus.APPROVED, StepStatus.REJECTED],
    ).order_by("request_id", "sort_order")
    return [step.decided_by.username for step in steps]


def test_demo_finance_on_the_contracts_in_force(org, contracts):
    created = demo.demo_load(admin=org.admin, users=users_of(org))
    assert created == {
        "receivable_plans": 6,
        "payments": 8,
        "invoices": 6,
        "refunds": 1,
        "expense_claims": 7,
    }
    # Every plan adds up, and every ledger equals its rows and stays within the contract.
    for contract in contracts:
        contract.refresh_from_db()
        planned = sum(i.amount for i in ReceivableInstalment.objects.filter(contract=contract))
        assert planned == contract.total_amount
        ledger = ContractLedger.objects.get(contract=contract)
        figures = selectors.ledger_from_rows(contract=contract)
        assert ledger.received_amount == figures["received_amount"]
        assert ledger.invoiced_amount == figures["invoiced_amount"]
        assert 0 <= ledger.received_amount <= contract.total_amount
        assert ledger.invoiced_amount <= contract.total_amount
    # The stories: paid in full, overdue, waiting for finance, corrected, not yet due.
    paid, overdue, to_confirm, corrected, not_due, overdue_again = contracts
    money = {c.pk: selectors.contract_money(contract=c) for c in contracts}
    assert money[paid.pk].outstanding == 0 and money[paid.pk].invoiced == paid.total_amount
    assert money[overdue.pk].overdue > 0 and money[overdue_again.pk].overdue > 0
    assert money[to_confirm.pk].pending_payments > 0
    assert money[not_due.pk].received == 0 and money[not_due.pk].overdue == 0
    assert money[corrected.pk].received == Decimal("3500.00")  # 4,000 − 500 refunded
    assert Payment.objects.filter(kind=PaymentKind.REVERSAL).count() == 1
    assert Counter(Invoice.objects.values_list("status", flat=True)) == {
        "issued": 2,
        "voided": 1,
        "approved": 1,
        "pending": 2,
    }
    [refund] = Refund.objects.all()
    assert refund.status == "approved" and deciders(refund) == ["manager"]
    for invoice in Invoice.objects.exclude(status="pending"):
        assert deciders(invoice) == ["finance"]
    assert (
        Payment.objects.filter(status="confirmed", kind="payment")
        .exclude(confirmed_by=org.finance)
        .count()
        == 0
    )
    assert selectors.instalments_overdue(user=org.finance)
    # Expense claims in every status, approved by the department manager, then finance.
    claims = {c.description: c for c in ExpenseClaim.objects.select_related("owner")}
    statuses = Counter(c.status for c in claims.values())
    assert statuses == {"draft": 1, "pending": 2, "approved": 1, "paid": 2, "rejected": 1}
    assert deciders(claims["拜访客户出租车费"]) == ["salesmgr1"]  # finance still to decide
    assert deciders(claims["深圳展会差旅（机票、住宿）"]) == ["salesdirector", "finance"]
    assert deciders(claims["部门打印纸及文具采购"]) == ["salesdirector", "finance"]
    assert deciders(claims["客户答谢晚宴"]) == ["salesmgr1"]
    assert claims["部门打印纸及文具采购"].paid_by == org.finance
    entertainment = claims["招待华信机械采购部门工作午餐"]
    assert entertainment.contract is not None and entertainment.contract.owner == org.sales1


def test_demo_finance_loads_once(org, contracts):
    demo.demo_load(admin=org.admin, users=users_of(org))
    counts = [
        model.objects.count()
        for model in (ReceivableInstalment, Payment, Invoice, Refund, ExpenseClaim)
    ]
    approvals = ApprovalRequest.objects.count()
    again = demo.demo_load(admin=org.admin, users=users_of(org))
    assert set(again.values()) == {0}
    assert [
        model.objects.count()
        for model in (ReceivableInstalment, Payment, Invoice, Refund, ExpenseClaim)
    ] == counts
    assert ApprovalRequest.objects.count() == approvals
    # A contract signed later gets its story on the next run; the others are left alone.
    later = active_contract(org, org.sales3, amount="900.00")
    third = demo.demo_load(admin=org.admin, users=users_of(org))
    assert third["receivable_plans"] == 1 and third["expense_claims"] == 0
    assert ReceivableInstalment.objects.filter(contract=later).exists()


def test_demo_without_contracts_makes_only_expense_claims(org):
    department_managers(org)
    created = demo.demo_load(admin=org.admin, users=users_of(org))
    assert created["expense_claims"] == 7 and created["payments"] == 0
    assert not ReceivableInstalment.objects.exists()


def test_demo_company_load_includes_finance(settings):
    """The whole demo (``KEHU_DEMO=1``): finance claims with the demo company's users."""
    from kehu.system.demo import DEMO_MODULES, demo_data_load

    # After the sales demo, whose contracts it pays; before the analytics jobs that read it.
    assert DEMO_MODULES.index("kehu.finance.demo") > DEMO_MODULES.index("kehu.sales.demo")
    settings.DEMO_MODE = True
    created = demo_data_load()
    assert created["expense_claims"] == 7
    assert ExpenseClaim.objects.filter(status="paid", paid_by__username="finance").count() == 2
    assert demo_data_load().get("expense_claims", 0) == 0
