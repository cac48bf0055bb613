"""Finance test helpers: contracts in force, built through the services."""

from kehu.approvals.models import ApprovalRequest
from kehu.approvals.services import approval_approve
from kehu.sales import services as sales
from tests.sales.factories import contract_for


def active_contract(org, owner=None, *, amount="10000.00", **data):
    """A contract of ``owner`` (default sales1) approved by the sales manager."""
    owner = owner or org.sales1
    contract = contract_for(owner, amount=amount, **data)
    sales.contract_submit(actor=owner, contract=contract)
    approve_all(contract, org)
    contract.refresh_from_db()
    return contract


def approve_all(document, org) -> None:
    """Approve every pending step of ``document``'s request by whoever may decide it."""
    while True:
        request = ApprovalRequest.objects.filter(object_id=document.pk, status="pending").first()
        if request is None:
            return
        step = request.steps.get(status="pending")
        approval_approve(actor=step.candidates.order_by("id").first(), request=request)
