"""An amendment never takes a contract below the money already received or invoiced."""

import pytest

from kehu.core.exceptions import ServiceError
from kehu.sales import services as sales
from kehu.sales.models import Contract, ContractAmendment
from tests.finance.factories import active_contract, invoice_for, pay
from tests.sales.helpers import db_state

pytestmark = pytest.mark.django_db


def one_line(contract, quantity, price):
    line = contract.lines.get()
    return [
        {
            "id": line.pk,
            "product": line.product,
            "quantity": quantity,
            "unit_price": price,
            "tax_rate": line.tax_rate,
        }
    ]


def amend(org, contract, price):
    contract = Contract.objects.get(pk=contract.pk)
    return sales.contract_amend(
        actor=org.sales1,
        contract=contract,
        expected_version=contract.version,
        reason="客户缩减采购",
        data={},
        lines=one_line(contract, "1", price),
    )


def test_amendment_below_received_is_refused_and_changes_nothing(org):
    contract = active_contract(org, amount="10000.00")
    pay(contract, "6000.00", confirm_by=org.finance)
    before = db_state()
    with pytest.raises(ServiceError) as info:
        amend(org, contract, "5999.99")
    assert info.value.code == "below_money"
    assert "6,000.00" in str(info.value.message)
    assert db_state() == before


def test_amendment_below_invoiced_is_refused(org):
    contract = active_contract(org, amount="10000.00")
    invoice_for(contract, "8000.00")
    with pytest.raises(ServiceError) as info:
        amend(org, contract, "7000.00")
    assert info.value.code == "below_money"


def test_amendment_down_to_what_was_received_applies(org):
    contract = active_contract(org, amount="10000.00")
    pay(contract, "6000.00", confirm_by=org.finance)
    amendment = amend(org, contract, "6000.00")
    assert isinstance(amendment, ContractAmendment)
    contract.refresh_from_db()
    assert str(contract.total_amount) == "6000.00"


def test_money_arriving_while_the_amendment_waits_stops_its_approval(org):
    from kehu.approvals.models import ApprovalRequest, ApprovalRule
    from kehu.approvals.services import approval_approve
    from kehu.system.models import Role

    rule = ApprovalRule.objects.create(document_type="sales.contract_amendment", name="合同变更")
    rule.steps.create(approver_kind="role", role=Role.objects.get(code="sales_manager"))
    contract = active_contract(org, amount="10000.00")
    amendment = amend(org, contract, "5000.00")
    pay(contract, "7000.00", confirm_by=org.finance)
    request = ApprovalRequest.objects.get(object_id=amendment.pk, status="pending")
    with pytest.raises(ServiceError) as info:
        approval_approve(actor=org.salesmgr1, request=request)
    assert info.value.code == "below_money"
    contract.refresh_from_db()
    assert str(contract.total_amount) == "10000.00"
