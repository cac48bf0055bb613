"""Data scope on every finance document and report, and finance-only actions.

sales1 and sales2 are in 销售一部, sales3 in 销售二部; salesmgr1 manages 销售一部 (its tree),
salesdirector 销售部 (both), finance and the general manager see everything.
"""

import datetime
from decimal import Decimal

import pytest
from django.http import Http404
from django.utils import timezone

from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.finance import selectors, services
from tests.finance.factories import (
    active_contract,
    approve_all,
    department_managers,
    expense_for,
    finance_snapshot,
    invoice_for,
    pay,
    plan,
)

pytestmark = pytest.mark.django_db

SALES = ("sales1", "sales2", "sales3")


@pytest.fixture
def world(org):
    """One contract per salesperson with every finance document on it."""
    department_managers(org)
    today = timezone.localdate()
    docs = {}
    for name in SALES:
        owner = getattr(org, name)
        contract = active_contract(org, owner, amount="10000.00")
        plan(contract, (today - datetime.timedelta(days=40), "4000.00"), (today, "6000.00"))
        confirmed = pay(contract, "1000.00", confirm_by=org.finance)
        clean = pay(contract, "200.00", confirm_by=org.finance)  # no refunds: reversible
        pending = pay(contract, "500.00")
        invoice = invoice_for(contract, "1000.00")
        approve_all(invoice, org)
        invoice.refresh_from_db()
        refund = services.refund_request(
            actor=owner, payment=confirmed, amount="100.00", reason="退货"
        )
        claim = expense_for(owner, "66.00")
        services.expense_submit(actor=owner, claim=claim)
        approve_all(claim, org)
        claim.refresh_from_db()
        docs[name] = {
            "contract": contract,
            "payment": confirmed,
            "pending": pending,
            "clean": clean,
            "invoice": invoice,
            "refund": refund,
            "expense": claim,
        }
    return docs


VISIBLE = {
    "sales1": {"sales1"},
    "sales2": {"sales2"},
    "sales3": {"sales3"},
    "salesmgr1": {"sales1", "sales2"},
    "salesdirector": {"sales1", "sales2", "sales3"},
    "finance": {"sales1", "sales2", "sales3"},
    "manager": {"sales1", "sales2", "sales3"},
}

LISTS = {
    "payment": selectors.payment_list_visible_to,
    "invoice": selectors.invoice_list_visible_to,
    "refund": selectors.refund_list_visible_to,
    "expense": selectors.expense_list_visible_to,
    "contract": selectors.contracts_visible_to,
}
GETS = {
    "payment": selectors.payment_get_for,
    "invoice": selectors.invoice_get_for,
    "refund": selectors.refund_get_for,
    "expense": selectors.expense_get_for,
}


def owners_of(documents, world, kind):
    by_pk = {world[name][kind].pk: name for name in SALES}
    return {by_pk[d.pk] for d in documents if d.pk in by_pk}


@pytest.mark.parametrize("username", sorted(VISIBLE))
def test_lists_and_details_follow_the_scope(org, world, username):
    user = getattr(org, username)
    expected = VISIBLE[username]
    for kind, listing in LISTS.items():
        assert owners_of(listing(user=user), world, kind) == expected, kind
    for kind, get in GETS.items():
        for name in SALES:
            if name in expected:
                assert get(user=user, pk=world[name][kind].pk).pk == world[name][kind].pk
            else:
                with pytest.raises(Http404):
                    get(user=user, pk=world[name][kind].pk)


@pytest.mark.parametrize("username", sorted(VISIBLE))
def test_reports_follow_the_scope(org, world, username):
    user = getattr(org, username)
    expected = VISIBLE[username]
    today = timezone.localdate()
    contracts = {world[name]["contract"].pk: name for name in SALES}
    customers = {world[name]["contract"].customer_id: name for name in SALES}

    aging = selectors.receivables_aging(user=user)
    assert {customers[row["key"]] for row in aging} == expected
    reconciliation = selectors.contract_reconciliation(user=user)
    assert {contracts[contract.pk] for contract in reconciliation} == expected
    overdue = selectors.instalments_overdue(user=user)
    assert {contracts[s.instalment.contract_id] for s in overdue} == expected
    month = selectors.collections_by_month(user=user, start=today, end=today)
    assert month[0]["received"] == Decimal("1200.00") * len(expected)
    expenses = selectors.expenses_by_category(user=user, start=today, end=today)
    assert sum(row["count"] for row in expenses) == len(expected)
    to_confirm = selectors.payments_to_confirm(user=user)
    assert owners_of(to_confirm, {n: {"p": world[n]["pending"]} for n in SALES}, "p") == expected
    to_issue = selectors.invoices_to_issue(user=user)
    assert owners_of(to_issue, world, "invoice") == expected


@pytest.mark.parametrize("username", ["hr", "warehouse"])
def test_roles_without_finance_see_nothing(org, world, username):
    user = getattr(org, username)
    today = timezone.localdate()
    for listing in LISTS.values():
        with pytest.raises(PermissionRefused):
            listing(user=user)
    with pytest.raises(PermissionRefused):
        selectors.receivables_aging(user=user)
    with pytest.raises(PermissionRefused):
        selectors.contract_reconciliation(user=user)
    with pytest.raises(PermissionRefused):
        selectors.collections_by_month(user=user, start=today, end=today)
    with pytest.raises(PermissionRefused):
        selectors.expenses_by_category(user=user, start=today, end=today)


def refused(call, error=ServiceError):
    before = finance_snapshot()
    with pytest.raises(error) as info:
        call()
    assert finance_snapshot() == before
    return info.value


FINANCE_ONLY = {
    "confirm": lambda user, w: services.payment_confirm(actor=user, payment=w["pending"]),
    "reject": lambda user, w: services.payment_reject(actor=user, payment=w["pending"], reason="x"),
    "reverse": lambda user, w: services.payment_reverse(actor=user, payment=w["clean"], reason="x"),
    "issue": lambda user, w: services.invoice_issue(
        actor=user, invoice=w["invoice"], invoice_number="FP-X"
    ),
    "void": lambda user, w: services.invoice_void(actor=user, invoice=w["invoice"], reason="x"),
    "pay": lambda user, w: services.expense_pay(actor=user, claim=w["expense"]),
}


@pytest.mark.parametrize("action", sorted(FINANCE_ONLY))
@pytest.mark.parametrize("username", ["sales1", "salesmgr1", "salesdirector"])
def test_finance_only_actions_are_refused_for_sales_roles(org, world, username, action):
    user = getattr(org, username)
    refused(lambda: FINANCE_ONLY[action](user, world["sales1"]), PermissionRefused)


@pytest.mark.parametrize("action", ["issue", "void", "pay"])
def test_general_manager_confirms_but_does_not_issue_or_pay(org, world, action):
    refused(lambda: FINANCE_ONLY[action](org.manager, world["sales1"]), PermissionRefused)


@pytest.mark.parametrize("action", sorted(FINANCE_ONLY))
def test_finance_may_do_them(org, world, action):
    FINANCE_ONLY[action](org.finance, world["sales1"])


def test_out_of_scope_documents_are_refused_in_services(org, world):
    theirs = world["sales3"]
    refused(lambda: pay(theirs["contract"], "1", actor=org.sales1))
    refused(lambda: invoice_for(theirs["contract"], "1", actor=org.sales1))
    refused(lambda: plan(theirs["contract"], (timezone.localdate(), "10000"), actor=org.sales1))
    refused(
        lambda: services.refund_request(
            actor=org.sales1, payment=theirs["payment"], amount="1", reason="x"
        ),
        PermissionRefused,
    )
    refused(
        lambda: services.payment_cancel(actor=org.sales1, payment=theirs["pending"]),
        PermissionRefused,
    )
    refused(
        lambda: services.payment_confirm(actor=org.salesmgr1, payment=theirs["pending"]),
        PermissionRefused,
    )
    refused(
        lambda: services.expense_submit(actor=org.sales1, claim=theirs["expense"]),
        PermissionRefused,
    )
    # Within the scope but not theirs to decide.
    refused(
        lambda: services.payment_cancel(actor=org.sales2, payment=world["sales1"]["pending"]),
        PermissionRefused,
    )
