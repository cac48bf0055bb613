"""Receivables reports with a frozen clock (``today=``): instalment statuses, aging buckets at
their boundary days, reconciliation, collections by month, expenses by category."""

import datetime
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone

from kehu.analytics.models import SalesFigure
from kehu.finance import selectors, services
from kehu.finance.models import InstalmentStatus
from tests.finance.factories import (
    active_contract,
    approve_all,
    approved_refund,
    department_managers,
    expense_for,
    issued_invoice,
    pay,
    plan,
)

pytestmark = pytest.mark.django_db

ZERO = Decimal("0.00")
DAY = datetime.date(2025, 12, 31)  # "today" of every report below


def ago(days: int) -> datetime.date:
    return DAY - datetime.timedelta(days=days)


@pytest.mark.parametrize(
    ("days_past_due", "bucket"),
    [
        (-30, "not_due"),
        (-1, "not_due"),
        (0, "d0_30"),  # due today
        (1, "d0_30"),
        (30, "d0_30"),
        (31, "d31_60"),
        (60, "d31_60"),
        (61, "d61_90"),
        (90, "d61_90"),
        (91, "d90_plus"),
        (400, "d90_plus"),
    ],
)
def test_aging_bucket_boundaries(days_past_due, bucket):
    assert selectors.aging_bucket(days_past_due) == bucket


def test_aging_report_puts_each_instalment_in_its_bucket(org):
    ages = [-1, 0, 30, 31, 60, 61, 90, 91]  # days past due on DAY
    contract = active_contract(org, amount=str(100 * sum(range(1, len(ages) + 1))))
    plan(contract, *[(ago(age), str(100 * n)) for n, age in enumerate(ages, start=1)])
    [row] = selectors.receivables_aging(user=org.finance, today=DAY)
    assert row["key"] == contract.customer_id and row["label"] == str(contract.customer)
    assert row["not_due"] == Decimal("100.00")
    assert row["d0_30"] == Decimal("200.00") + Decimal("300.00")  # 0 and 30 days
    assert row["d31_60"] == Decimal("400.00") + Decimal("500.00")  # 31 and 60
    assert row["d61_90"] == Decimal("600.00") + Decimal("700.00")  # 61 and 90
    assert row["d90_plus"] == Decimal("800.00")  # 91
    assert row["total"] == contract.total_amount
    # A day later everything moves on by one day: 30 → 31, 60 → 61, 90 → 91.
    [later] = selectors.receivables_aging(user=org.finance, today=DAY + datetime.timedelta(1))
    assert later["not_due"] == 0
    assert later["d0_30"] == Decimal("100.00") + Decimal("200.00")
    assert later["d31_60"] == Decimal("300.00") + Decimal("400.00")
    assert later["d61_90"] == Decimal("500.00") + Decimal("600.00")
    assert later["d90_plus"] == Decimal("700.00") + Decimal("800.00")


def test_received_money_settles_the_oldest_instalments_first(org):
    contract = active_contract(org, amount="3000.00")
    plan(contract, (ago(100), "1000.00"), (ago(45), "1000.00"), (ago(-5), "1000.00"))
    pay(contract, "1500.00", received_on=ago(10), confirm_by=org.finance)
    [row] = selectors.receivables_aging(user=org.finance, today=DAY)
    assert row["d90_plus"] == 0
    assert row["d31_60"] == Decimal("500.00")
    assert row["not_due"] == Decimal("1000.00")
    assert row["total"] == Decimal("1500.00")


def test_instalment_statuses_by_due_date_settlement(org):
    contract = active_contract(org, amount="3000.00")
    plan(contract, (ago(10), "1000.00"), (DAY, "1000.00"), (ago(-10), "1000.00"))

    def statuses(today):
        return [
            (s.status, s.received, s.outstanding, s.days_overdue)
            for s in selectors.contract_money(contract=contract, today=today).instalments
        ]

    p, r, o, pe = (
        InstalmentStatus.PARTLY_RECEIVED,
        InstalmentStatus.RECEIVED,
        InstalmentStatus.OVERDUE,
        InstalmentStatus.PENDING,
    )
    assert statuses(DAY) == [
        (o, 0, Decimal("1000.00"), 10),
        (pe, 0, Decimal("1000.00"), 0),  # due today is not overdue yet
        (pe, 0, Decimal("1000.00"), 0),
    ]
    pay(contract, "1500.00", received_on=ago(1), confirm_by=org.finance)
    assert statuses(DAY) == [
        (r, Decimal("1000.00"), 0, 10),
        (p, Decimal("500.00"), Decimal("500.00"), 0),
        (pe, 0, Decimal("1000.00"), 0),
    ]
    tomorrow = DAY + datetime.timedelta(days=1)
    assert [s[0] for s in statuses(tomorrow)] == [r, o, pe]
    money = selectors.contract_money(contract=contract, today=tomorrow)
    assert money.overdue == Decimal("500.00") and money.outstanding == Decimal("1500.00")
    # A refund takes money back out: the settlement follows.
    payment = selectors.payment_list_visible_to(user=org.finance).get(contract=contract)
    approved_refund(org, payment, "600.00")
    assert statuses(DAY)[:2] == [
        (o, Decimal("900.00"), Decimal("100.00"), 10),
        (pe, 0, Decimal("1000.00"), 0),
    ]
    pay(contract, "2100.00", confirm_by=org.finance)
    assert {s[0] for s in statuses(DAY)} == {r}


def test_report_and_detail_settle_alike(org):
    """The report's window-function settlement equals the detail's Python one."""
    contract = active_contract(org, amount="10000.00")
    plan(
        contract,
        (ago(70), "2500.00"),
        (ago(70), "1500.00"),  # same due date: sequence breaks the tie
        (ago(20), "3000.00"),
        (ago(-20), "3000.00"),
    )
    pay(contract, "4200.00", confirm_by=org.finance)
    detail = selectors.contract_money(contract=contract, today=DAY).instalments
    report = [
        state
        for _c, state in selectors._instalment_states(
            contracts=selectors.contracts_visible_to(user=org.finance), today=DAY
        )
    ]
    assert [(s.instalment.pk, s.received, s.status) for s in detail] == [
        (s.instalment.pk, s.received, s.status) for s in report
    ]


def test_aging_groups_by_owner_and_department(org):
    first = active_contract(org, org.sales1, amount="1000.00")
    second = active_contract(org, org.sales2, amount="2000.00")
    third = active_contract(org, org.sales3, amount="4000.00")
    for contract in (first, second, third):
        plan(contract, (ago(45), str(contract.total_amount)))
    by_owner = selectors.receivables_aging(user=org.finance, group_by="owner", today=DAY)
    assert [(r["label"], r["d31_60"]) for r in by_owner] == [
        (str(org.sales3), Decimal("4000.00")),
        (str(org.sales2), Decimal("2000.00")),
        (str(org.sales1), Decimal("1000.00")),
    ]
    by_department = selectors.receivables_aging(user=org.finance, group_by="department", today=DAY)
    assert [(r["key"], r["total"]) for r in by_department] == [
        (org.sales2_dept.pk, Decimal("4000.00")),
        (org.sales1_dept.pk, Decimal("3000.00")),
    ]
    with pytest.raises(ValueError):
        selectors.receivables_aging(user=org.finance, group_by="product")


def test_paid_up_contracts_leave_the_aging_report(org):
    contract = active_contract(org, amount="1000.00")
    plan(contract, (ago(45), "1000.00"))
    pay(contract, "1000.00", confirm_by=org.finance)
    assert selectors.receivables_aging(user=org.finance, today=DAY) == []
    assert selectors.instalments_overdue(user=org.finance, today=DAY) == []


def test_aging_report_query_count_does_not_grow(org, django_assert_max_num_queries):
    for n in range(4):
        contract = active_contract(org, amount="1000.00")
        plan(contract, (ago(10 * n), "400.00"), (ago(-10), "600.00"))
    with django_assert_max_num_queries(4):
        rows = selectors.receivables_aging(user=org.finance, today=DAY)
    assert len(rows) == 4
    with django_assert_max_num_queries(1):  # the money of each contract is in its row
        contracts = selectors.contract_reconciliation(user=org.finance, today=DAY)
        rows = [selectors.reconciliation_row(c) for c in contracts]
        assert len(rows) == 4 and all(str(r["contract"].customer) for r in rows)


def test_reconciliation(org):
    contract = active_contract(org, amount="10000.00")
    plan(contract, (ago(40), "4000.00"), (ago(-20), "6000.00"))
    pay(contract, "3000.00", received_on=ago(50), confirm_by=org.finance)
    pay(contract, "500.00")  # pending: not received
    issued_invoice(org, contract, "3000.00", number="FP-1")
    unplanned = active_contract(org, org.sales3, amount="800.00")
    rows = {
        c.pk: selectors.reconciliation_row(c)
        for c in selectors.contract_reconciliation(user=org.finance, today=DAY)
    }
    row = rows[contract.pk]
    assert (row["total"], row["received"], row["invoiced"], row["outstanding"], row["overdue"]) == (
        Decimal("10000.00"),
        Decimal("3000.00"),
        Decimal("3000.00"),
        Decimal("7000.00"),
        Decimal("1000.00"),
    )
    assert rows[unplanned.pk]["received"] == 0 and rows[unplanned.pk]["overdue"] == 0
    assert list(selectors.contracts_without_plan(user=org.finance)) == [unplanned]


def test_reconciliation_overdue_is_the_settled_instalments_sum(org):
    """The report's overdue (what fell due less what was received, in one query) equals the
    detail's instalment by instalment settlement, whatever the plan and the money."""
    cases = [
        ((ago(70), "2500.00"), (ago(70), "1500.00"), (ago(20), "3000.00"), (ago(-20), "3000.00")),
        ((ago(10), "5000.00"), (ago(0), "5000.00")),  # due today is not overdue yet
        ((ago(-5), "10000.00"),),
        ((ago(40), "1000.00"), (ago(30), "9000.00")),
    ]
    contracts = []
    for index, instalments in enumerate(cases):
        for received in ("0", "999.99", "4000.00", "10000.00"):
            contract = active_contract(org, amount="10000.00")
            plan(contract, *instalments)
            if received != "0":
                payment = pay(contract, received, confirm_by=org.finance)
                if index == 3 and received == "4000.00":
                    approved_refund(org, payment, "1500.00")
            contracts.append(contract)
    contracts.append(active_contract(org, amount="800.00"))  # no plan: nothing overdue
    report = {
        c.pk: selectors.reconciliation_row(c)
        for c in selectors.contract_reconciliation(user=org.finance, today=DAY)
    }
    for contract in contracts:
        money = selectors.contract_money(contract=contract, today=DAY)
        row = report[contract.pk]
        assert (row["received"], row["outstanding"], row["overdue"]) == (
            money.received,
            money.outstanding,
            money.overdue,
        ), contract.pk
    assert any(r["overdue"] for r in report.values())
    totals = selectors.reconciliation_totals(
        selectors.contract_reconciliation(user=org.finance, today=DAY)
    )
    for key in ("total", "received", "invoiced", "outstanding", "overdue"):
        assert totals[key] == sum((r[key] for r in report.values()), Decimal("0.00"))


def test_collections_by_month_net_reversals_and_refunds(org):
    today = timezone.localdate()
    this_month = today.replace(day=1)
    last_month = (this_month - datetime.timedelta(days=1)).replace(day=1)
    contract = active_contract(org, amount="10000.00")
    kept = pay(contract, "3000.00", received_on=last_month, confirm_by=org.finance)
    wrong = pay(contract, "800.00", received_on=last_month, confirm_by=org.finance)
    pay(contract, "1000.00", received_on=this_month, confirm_by=org.finance)
    pay(contract, "999.00", received_on=this_month)  # pending: not collected
    services.payment_reverse(actor=org.finance, payment=wrong, reason="录错")  # dated today
    approved_refund(org, kept, "200.00")  # refunded today
    rows = selectors.collections_by_month(
        user=org.finance, start=last_month, end=today + datetime.timedelta(days=31)
    )
    assert rows == [
        {
            "month": last_month,
            "received": Decimal("3800.00"),
            "refunded": Decimal("0.00"),
            "net": Decimal("3800.00"),
        },
        {
            "month": this_month,
            "received": Decimal("200.00"),  # 1,000 less the 800 reversed
            "refunded": Decimal("200.00"),
            "net": Decimal("0.00"),
        },
    ]
    total_net = sum((row["net"] for row in rows), Decimal("0"))
    assert total_net == selectors.contract_money(contract=contract).received
    only_last = selectors.collections_by_month(user=org.finance, start=last_month, end=last_month)
    assert [row["month"] for row in only_last] == [last_month]


def _collections_live(user, start, end):
    """The collections report summed from the payments and refunds themselves."""
    months: dict = {}
    for queryset, field, key in (
        (selectors.payment_list_visible_to(user=user).filter(status="confirmed"), "received_on", 0),
        (selectors.refund_list_visible_to(user=user).filter(status="approved"), "refunded_on", 1),
    ):
        for document in queryset.filter(**{f"{field}__range": (start, end)}):
            sums = months.setdefault(getattr(document, field).replace(day=1), [ZERO, ZERO])
            sums[key] += document.amount
    return [
        {"month": month, "received": r, "refunded": f, "net": r - f}
        for month, (r, f) in sorted(months.items())
        if r or f
    ]


def test_collections_whole_months_from_the_figures_cut_months_live(org):
    """Months the period covers whole are read from the stored sales figures, the months it
    cuts from the payments: the same rows as summing every document, in every scope."""
    today = timezone.localdate()

    def month_before(day):
        return (day.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)

    m0 = today.replace(day=1)
    m1 = month_before(m0)
    m2 = month_before(m1)
    m3 = month_before(m2)
    mine = active_contract(org, amount="100000.00")
    theirs = active_contract(org, org.sales3, amount="100000.00")
    days = [(m3, 2, "100.00"), (m3, 20, "200.00"), (m2, 0, "300.00"), (m2, 27, "400.00")]
    days += [(m1, 5, "500.00"), (today, 0, "600.00")]
    for contract in (mine, theirs):
        for month, plus, amount in days:
            received_on = month + datetime.timedelta(days=plus)
            pay(contract, amount, received_on=received_on, confirm_by=org.finance)
    kept = pay(mine, "700.00", received_on=m2 + datetime.timedelta(days=3), confirm_by=org.finance)
    wrong = pay(mine, "50.00", received_on=m2 + datetime.timedelta(days=3), confirm_by=org.finance)
    services.payment_reverse(actor=org.finance, payment=wrong, reason="录错")  # dated today
    approved_refund(org, kept, "30.00")  # refunded today
    start = m3 + datetime.timedelta(days=10)  # cuts m3: its 100 before, its 200 inside
    # Cut months summed by their days outside (m3 from 10) and inside (m2 from 20).
    for since in (start, m2 + datetime.timedelta(days=20)):
        for user in (org.finance, org.salesmgr1, org.sales1, org.sales3):
            for end in (
                today,
                m0 - datetime.timedelta(days=1),
                today + datetime.timedelta(days=40),
            ):
                rows = selectors.collections_by_month(user=user, start=since, end=end)
                assert rows == _collections_live(user, since, end), (user.username, since, end)
    mine_rows = selectors.collections_by_month(user=org.sales1, start=start, end=today)
    assert [r["received"] for r in mine_rows] == [
        Decimal("200.00"),
        Decimal("1450.00"),  # 300 + 400 + 700 + 50, reversed in m0
        Decimal("500.00"),
        Decimal("550.00"),  # 600 less the 50 reversed
    ]

    # The whole months are the figures': a cent added to one shows in that month only.
    SalesFigure.objects.filter(owner=org.sales1, month=m2).update(
        collected_cents=F("collected_cents") + 1
    )
    changed = selectors.collections_by_month(user=org.sales1, start=start, end=today)
    assert [r["received"] - b["received"] for r, b in zip(changed, mine_rows, strict=True)] == [
        ZERO,
        Decimal("0.01"),
        ZERO,
        ZERO,
    ]


def test_expenses_by_category_and_department(org):
    department_managers(org)
    today = timezone.localdate()

    def approved(owner, amount, category, *, paid=False, spent_on=today):
        claim = expense_for(owner, amount, category=category, spent_on=spent_on)
        services.expense_submit(actor=owner, claim=claim)
        approve_all(claim, org)
        claim.refresh_from_db()
        if paid:
            services.expense_pay(actor=org.finance, claim=claim)
        return claim

    approved(org.sales1, "100.00", "travel")
    approved(org.sales2, "50.00", "travel", paid=True)
    approved(org.sales3, "70.00", "travel")
    approved(org.sales1, "30.00", "entertainment")
    approved(org.sales1, "999.00", "travel", spent_on=today - datetime.timedelta(days=400))
    expense_for(org.sales1, "888.00")  # a draft does not count
    pending = expense_for(org.sales1, "777.00")
    services.expense_submit(actor=org.sales1, claim=pending)
    rows = selectors.expenses_by_category(
        user=org.finance, start=today - datetime.timedelta(days=30), end=today
    )
    assert [(r["category"], r["department"], str(r["amount"]), r["count"]) for r in rows] == [
        ("Travel", "销售一部", "150.00", 2),
        ("Travel", "销售二部", "70.00", 1),
        ("Entertainment", "销售一部", "30.00", 1),
    ]


def test_first_overdue_instalments_equal_the_whole_list_cut(org, django_assert_max_num_queries):
    # The home page's to-do reads the oldest days that owe money from the stored figures and
    # settles only those days' contracts: the same instalments, in the same order, as
    # settling every open instalment and cutting the list.
    owners = [org.sales1, org.sales2, org.sales1, org.sales3, org.sales1, org.sales2]
    for n, owner in enumerate(owners):
        contract = active_contract(org, owner, amount="3000.00")
        plan(contract, (ago(90 - n), "1000.00"), (ago(30), "1000.00"), (ago(-10), "1000.00"))
        if n % 3 == 1:  # pays the first instalment and part of the second
            pay(contract, "1400.00", received_on=ago(20), confirm_by=org.finance)
        if n == 5:  # paid up: owes nothing
            pay(contract, "3000.00", received_on=ago(5), confirm_by=org.finance)
    for user in (org.finance, org.sales1, org.sales2):
        whole = selectors.instalments_overdue(user=user, today=DAY)
        assert whole, user.username
        for limit in range(1, len(whole) + 2):
            first = selectors.instalments_overdue(user=user, today=DAY, limit=limit)
            assert [(s.instalment.pk, s.outstanding) for s in first] == [
                (s.instalment.pk, s.outstanding) for s in whole[:limit]
            ], (user.username, limit)
    assert {s.instalment.contract.owner_id for s in whole} == {org.sales2.pk}  # scope
    with django_assert_max_num_queries(6):  # two days' contracts and the stored days
        selectors.instalments_overdue(user=org.finance, today=DAY, limit=2)
