"""Finance test helpers: contracts in force and finance documents, built through the services."""

from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from kehu.approvals.models import ApprovalRequest
from kehu.approvals.services import approval_approve
from kehu.finance import services as finance
from kehu.sales import services as sales
from kehu.system.models import DictionaryItem
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
        request = ApprovalRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(type(document)),
            object_id=document.pk,
            status="pending",
        ).first()
        if request is None:
            return
        step = request.steps.get(status="pending")
        approval_approve(actor=step.candidates.order_by("id").first(), request=request)


# --- finance documents through the services -------------------------------------------------

TAX_NUMBER = "91310000123456789X"


def pay(contract, amount, *, actor=None, key=None, received_on=None, confirm_by=None, **extra):
    """Register a payment on ``contract`` (by its owner); confirmed when ``confirm_by``."""
    payment, _created = finance.payment_register(
        actor=actor or contract.owner,
        data={
            "contract": contract,
            "amount": Decimal(str(amount)),
            "received_on": received_on or timezone.localdate(),
            "method": "bank_transfer",
            **extra,
        },
        idempotency_key=key,
    )
    if confirm_by is not None:
        payment = finance.payment_confirm(actor=confirm_by, payment=payment)
    return payment


def plan(contract, *parts, actor=None):
    """``plan(contract, (due_date, "3000.00"), (due_date, "7000.00"))``."""
    return finance.receivable_plan_set(
        actor=actor or contract.owner,
        contract=contract,
        instalments=[{"due_date": due, "amount": Decimal(str(amount))} for due, amount in parts],
    )


def invoice_for(contract, amount, *, actor=None, **data):
    return finance.invoice_request(
        actor=actor or contract.owner,
        data={
            "contract": contract,
            "amount": Decimal(str(amount)),
            "title": "测试客户有限公司",
            "tax_number": TAX_NUMBER,
            **data,
        },
    )


def issued_invoice(org, contract, amount, *, number):
    invoice = invoice_for(contract, amount)
    approve_all(invoice, org)
    invoice.refresh_from_db()
    return finance.invoice_issue(actor=org.finance, invoice=invoice, invoice_number=number)


def approved_refund(org, payment, amount, *, actor=None):
    refund = finance.refund_request(
        actor=actor or payment.owner, payment=payment, amount=Decimal(str(amount)), reason="退货"
    )
    approve_all(refund, org)
    refund.refresh_from_db()
    return refund


def expense_category(value="travel"):
    return DictionaryItem.objects.get(dictionary__code="expense_category", value=value)


def expense_for(owner, amount="100.00", *, category="travel", spent_on=None, **data):
    return finance.expense_create(
        actor=owner,
        data={
            "category": expense_category(category) if isinstance(category, str) else category,
            "amount": Decimal(str(amount)),
            "spent_on": spent_on or timezone.localdate(),
            "description": "客户拜访差旅",
            **data,
        },
    )


def finance_snapshot() -> dict:
    """Everything a finance write could touch, to show that a refused one changed nothing."""
    from kehu.approvals.models import ApprovalRequest
    from kehu.finance.models import (
        ContractLedger,
        ExpenseClaim,
        IdempotencyKey,
        Invoice,
        Payment,
        ReceivableInstalment,
        Refund,
    )
    from kehu.system.models import AuditLog, Notification

    def rows(model, *fields):
        return sorted(model.objects.values_list("pk", *fields))

    return {
        "payments": rows(Payment, "status", "amount", "version"),
        "invoices": rows(Invoice, "status", "amount", "version", "invoice_number"),
        "refunds": rows(Refund, "status", "amount", "version"),
        "expenses": rows(ExpenseClaim, "status", "amount", "version"),
        "instalments": rows(ReceivableInstalment, "due_date", "amount"),
        "ledgers": rows(
            ContractLedger, "confirmed_amount", "refunded_amount", "invoiced_amount", "version"
        ),
        "keys": rows(IdempotencyKey, "key", "object_id"),
        "approvals": rows(ApprovalRequest, "status"),
        "audit": AuditLog.objects.count(),
        "notifications": Notification.objects.count(),
    }


def department_managers(org) -> None:
    """Head 销售一部 by salesmgr1, 销售部 by salesdirector, 总经办 by the general manager,
    财务部 by finance, as the demo company does (the ``org`` fixture sets no managers)."""
    from kehu.hr.models import Department

    for department, manager in (
        (org.sales1_dept, org.salesmgr1),
        (org.sales, org.salesdirector),
        (org.head, org.manager),
        (org.finance_dept, org.finance),
    ):
        Department.objects.filter(pk=department.pk).update(manager=manager)
        department.manager = manager
