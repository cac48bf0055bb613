"""The sales module's hooks into customers (handover, pool, merge) and HR targets."""

import datetime
from decimal import Decimal

import pytest

from kehu.customers import services as customer_services
from kehu.hr.selectors import achievement_for
from kehu.sales import services
from kehu.sales.models import Contract, ContractStatus, Quote
from tests.sales.factories import contract_for, quote_for

pytestmark = pytest.mark.django_db


def _activate(contract, org):
    # 1,000 is below the two-step threshold: the sales manager's approval activates it.
    from kehu.approvals.models import ApprovalRequest
    from kehu.approvals.services import approval_approve

    services.contract_submit(actor=org.sales1, contract=contract)
    approval_approve(
        actor=org.salesmgr1,
        request=ApprovalRequest.objects.get(object_id=contract.pk, status="pending"),
    )
    contract.refresh_from_db()
    return contract


def test_handover_moves_open_documents_and_keeps_finished_ones(org):
    open_contract = contract_for(org.sales1)
    done = _activate(contract_for(org.sales1), org)
    services.contract_complete(actor=org.sales1, contract=done)
    quote = quote_for(org.sales1)
    customer_services.customer_handover(
        actor=org.salesmgr1, from_user=org.sales1, to_user=org.sales2, reason="离职交接"
    )
    assert Contract.objects.get(pk=open_contract.pk).owner == org.sales2
    assert Quote.objects.get(pk=quote.pk).owner == org.sales2
    assert Contract.objects.get(pk=done.pk).owner == org.sales1


def test_active_contract_keeps_customer_out_of_the_pool(org):
    contract = _activate(contract_for(org.sales1), org)
    assert contract.status == ContractStatus.ACTIVE
    assert customer_services.has_active_contract([contract.customer_id]) == {contract.customer_id}
    services.contract_complete(actor=org.sales1, contract=contract)
    assert customer_services.has_active_contract([contract.customer_id]) == set()


def test_target_achievement_counts_signed_contracts(org):
    today = datetime.date.today()
    _activate(contract_for(org.sales1, amount="1200.00", signed_on=today), org)
    contract_for(org.sales1, amount="999.00", signed_on=today)  # a draft does not count
    result = achievement_for(
        year=today.year, month=today.month, user_ids=[org.sales1.pk], department_ids=[org.sales.pk]
    )
    assert result["users"][org.sales1.pk]["contract_amount"] == Decimal("1200.00")
    assert result["departments"][org.sales.pk]["contract_amount"] == Decimal("1200.00")
