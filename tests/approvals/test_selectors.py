"""Who sees which requests: inbox, count, scoped lists, one request, a document's history."""

import pytest
from django.http import Http404

from kehu.approvals import selectors, services
from tests.approvals.conftest import submit

pytestmark = pytest.mark.django_db


def ids(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def test_the_inbox_holds_the_current_steps_of_its_candidates(org):
    _, large = submit(org.sales1, amount="150000.00")
    _, small = submit(org.sales2, amount="500.00")
    assert ids(selectors.approval_inbox_for(user=org.salesmgr1)) == {large.pk, small.pk}
    assert selectors.approval_pending_count(user=org.salesmgr1) == 2
    assert ids(selectors.approval_inbox_for(user=org.manager)) == set()  # step 2 not reached
    services.approval_approve(actor=org.salesmgr1, request=large)
    assert ids(selectors.approval_inbox_for(user=org.salesmgr1)) == {small.pk}
    # The other candidate of the decided step no longer has it either.
    assert ids(selectors.approval_inbox_for(user=org.salesdirector)) == {small.pk}
    assert ids(selectors.approval_inbox_for(user=org.manager)) == {large.pk}
    assert selectors.approval_pending_count(user=org.manager) == 1
    services.approval_withdraw(actor=org.sales2, request=small)
    assert selectors.approval_pending_count(user=org.salesmgr1) == 0
    assert ids(selectors.approval_inbox_for(user=org.sales1)) == set()


def test_the_count_is_one_query(org, django_assert_num_queries):
    for _ in range(3):
        submit(org.sales1)
    with django_assert_num_queries(1):
        assert selectors.approval_pending_count(user=org.salesmgr1) == 3


def test_visibility(org):
    _, of_sales1 = submit(org.sales1, amount="150000.00")
    _, of_sales3 = submit(org.sales3)
    services.approval_approve(actor=org.salesmgr1, request=of_sales1)
    visible = {
        name: ids(selectors.approval_list_visible_to(user=getattr(org, name)))
        for name in (
            "sales1",
            "sales2",
            "sales3",
            "salesmgr1",
            "salesdirector",
            "manager",
            "finance",
            "hr",
            "admin",
        )
    }
    assert visible["sales1"] == {of_sales1.pk}  # submitted
    assert visible["sales2"] == set()  # same department, own scope
    assert visible["sales3"] == {of_sales3.pk}
    assert visible["salesmgr1"] == {of_sales1.pk}  # decided it; 销售二部 is not his
    assert visible["salesdirector"] == {of_sales1.pk, of_sales3.pk}  # department tree
    assert visible["manager"] == {of_sales1.pk, of_sales3.pk}  # candidate, scope all
    assert visible["finance"] == {of_sales1.pk, of_sales3.pk}  # scope all, sales.view
    assert visible["hr"] == set()  # scope all but no sales.view: not the contracts' amounts
    assert visible["admin"] == {of_sales1.pk, of_sales3.pk}
    assert ids(selectors.approval_submitted_by(user=org.sales1)) == {of_sales1.pk}
    assert ids(selectors.approval_submitted_by(user=org.salesmgr1)) == set()


def test_a_candidate_sees_the_request_whatever_their_scope(org):
    from kehu.approvals.models import ApprovalRule, ApproverKind
    from tests.approvals.conftest import rule

    ApprovalRule.objects.filter(document_type="sales.contract").delete()
    rule(org, steps=[{"approver_kind": ApproverKind.USER, "user": org.hr}])
    _, request = submit(org.sales1)
    assert ids(selectors.approval_list_visible_to(user=org.hr)) == {request.pk}
    assert ids(selectors.approval_inbox_for(user=org.hr)) == {request.pk}


def test_get_for_is_404_outside(org):
    _, request = submit(org.sales1)
    assert selectors.approval_get_for(user=org.salesmgr1, pk=request.pk) == request
    for outsider in (org.sales2, org.sales3, org.hr):
        with pytest.raises(Http404):
            selectors.approval_get_for(user=outsider, pk=request.pk)
    with pytest.raises(Http404):
        selectors.approval_get_for(user=org.admin, pk=999999)
    with pytest.raises(Http404):
        selectors.approval_get_for(user=org.admin, pk="x")


def test_history_of_a_document_newest_first_without_n_plus_1(org, django_assert_num_queries):
    contract, first = submit(org.sales1, amount="150000.00")
    services.approval_reject(actor=org.salesmgr1, request=first, comment="改")
    from kehu.sales.services import contract_submit

    contract.refresh_from_db()
    contract_submit(actor=org.sales1, contract=contract)
    contract.refresh_from_db()
    with django_assert_num_queries(4):  # requests, steps (+decided_by), candidates, actions
        history = selectors.approval_history_for(contract)
        for request in history:
            for step in request.steps.all():
                list(step.candidates.all())
                str(step.decided_by or "")
            for action in request.actions.all():
                str(action.actor or "")
            str(request.submitter)
    assert [r.status for r in history] == ["pending", "rejected"]
