"""Demo finance: receivable plans, payments, invoices and a refund on the demo contracts in
force, and expense claims in every status.

Everything goes through the finance services and the approval engine, decided by the demo
users whose role it is (finance confirms payments and reviews invoices, the general manager
approves the refund, department managers then finance approve expense claims), so the
ledger, the approval history and the notices are what real use would leave.

Deterministic: contracts are taken in number order and given one of a few stories, with
dates relative to today. Idempotent: a contract that already has a plan or a payment is
left alone, and the demo expense claims are made once (found by their descriptions).
Contracts come from the sales demo; with none in force, only expense claims are made.
"""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from kehu.approvals.models import ApprovalRequest, StepStatus
from kehu.approvals.services import approval_approve, approval_pending_for_document, approval_reject
from kehu.core.exceptions import ServiceError
from kehu.core.permissions import has_perm
from kehu.finance import services
from kehu.finance.models import ExpenseClaim, Payment, ReceivableInstalment
from kehu.sales.models import Contract, ContractStatus
from kehu.system.models import DictionaryItem

logger = logging.getLogger(__name__)

# The stories of the first contracts, in number order; later ones repeat all but the
# "corrected" one, so the demo has exactly one reversal and one refund.
STORIES = ["paid", "overdue", "to_confirm", "corrected", "not_due"]
REPEATED = ["paid", "overdue", "to_confirm", "not_due"]

# claimant, category, amount, days ago, description, outcome
EXPENSES: list[tuple[str, str, str, int, str, str]] = [
    ("sales1", "travel", "1280.00", 3, "杭州客户拜访往返高铁及住宿", "draft"),
    ("sales1", "entertainment", "860.00", 9, "招待华信机械采购部门工作午餐", "pending"),
    ("sales2", "transport", "146.50", 6, "拜访客户出租车费", "manager_approved"),
    ("sales3", "travel", "2350.00", 15, "深圳展会差旅（机票、住宿）", "approved"),
    ("salesmgr1", "office", "420.00", 20, "部门打印纸及文具采购", "paid"),
    ("sales2", "entertainment", "3200.00", 25, "客户答谢晚宴", "rejected"),
    ("sales3", "transport", "88.00", 2, "客户现场调研打车费", "paid"),
]
REJECTION = "超出招待标准，请附审批单后重新提交"


def demo_load(*, admin, users) -> dict[str, int]:
    created = {
        "receivable_plans": 0,
        "payments": 0,
        "invoices": 0,
        "refunds": 0,
        "expense_claims": 0,
    }
    today = timezone.localdate()
    story = _Story(admin=admin, users=users or {}, today=today, created=created)
    contracts = Contract.objects.filter(
        status__in=[ContractStatus.ACTIVE, ContractStatus.COMPLETED]
    ).order_by("number", "pk")
    done = set(ReceivableInstalment.objects.values_list("contract_id", flat=True)) | set(
        Payment.objects.values_list("contract_id", flat=True)
    )
    for index, contract in enumerate(contracts):
        kind = STORIES[index] if index < len(STORIES) else REPEATED[index % len(REPEATED)]
        if contract.pk in done:
            continue
        counts = dict(created)
        try:
            with transaction.atomic():
                story.tell(contract, kind)
        except ServiceError as exc:  # an odd contract should not stop the demo
            created.update(counts)
            logger.warning("Demo finance skipped %s: %s", contract.number, exc.message)
    if not ExpenseClaim.objects.filter(description__in=[e[4] for e in EXPENSES]).exists():
        story.expenses()
    return created


class _Story:
    def __init__(self, *, admin, users: dict, today: datetime.date, created: dict[str, int]):
        self.admin = admin
        self.users = users
        self.today = today
        self.created = created
        self.finance = users.get("finance", admin)
        self.manager = users.get("manager", admin)

    # --- helpers ---------------------------------------------------------------------------

    def day(self, offset: int, contract: Contract) -> datetime.date:
        """``today + offset`` days, not before the contract was signed."""
        start = contract.signed_on or contract.start_date
        return max(self.today + datetime.timedelta(days=offset), start or datetime.date.min)

    def actor(self, contract: Contract):
        owner = contract.owner
        return owner if owner.is_active and has_perm(owner, "finance.add") else self.admin

    def decide(self, document, *, approve: bool = True, prefer=None) -> None:
        """Decide every pending step of ``document``'s approval, each by a candidate of that
        step (``prefer`` when it is one), approving or rejecting the last step reached."""
        while True:
            request = approval_pending_for_document(document)
            if request is None:
                return
            self._decide_step(request, approve=approve, prefer=prefer)
            if not approve:
                return

    def _decide_step(self, request: ApprovalRequest, *, approve: bool, prefer=None) -> None:
        step = request.steps.get(status=StepStatus.PENDING)
        candidates = list(step.candidates.order_by("id"))
        actor = prefer if prefer in candidates else candidates[0]
        if approve:
            approval_approve(actor=actor, request=request)
        else:
            approval_reject(actor=actor, request=request, comment=REJECTION)

    def plan(self, contract: Contract, parts: list[tuple[int, int]]) -> list:
        """``parts``: (days from today, percentage)."""
        try:
            amounts = services.receivable_plan_split(
                total=contract.total_amount, percentages=[Decimal(p) for _d, p in parts]
            )
        except ServiceError:  # too small to split
            amounts, parts = [contract.total_amount], parts[-1:]
        rows = services.receivable_plan_set(
            actor=self.actor(contract),
            contract=contract,
            instalments=[
                {"due_date": self.day(offset, contract), "amount": amount}
                for (offset, _p), amount in zip(parts, amounts, strict=True)
            ],
        )
        self.created["receivable_plans"] += 1
        return rows

    def pay(self, contract, amount, *, offset: int, instalment=None, confirm=True, n=1):
        payment, _created = services.payment_register(
            actor=self.actor(contract),
            data={
                "contract": contract,
                "instalment": instalment,
                "amount": amount,
                "received_on": min(self.day(offset, contract), self.today),
                "method": "acceptance_bill" if n == 3 else "bank_transfer",
                "account": "招商银行杭州分行 5719 0000 1234",
                "reference": f"{contract.number}-{n}",
            },
            idempotency_key=f"demo-{contract.number}-{n}",
        )
        self.created["payments"] += 1
        if confirm:
            payment = services.payment_confirm(actor=self.finance, payment=payment)
        return payment

    def invoice(self, contract, amount, *, decide=True, issue=True, n=1):
        customer = contract.customer
        invoice = services.invoice_request(
            actor=self.actor(contract),
            data={
                "contract": contract,
                "invoice_type": "vat_special",
                "amount": amount,
                "title": customer.name,
                "tax_number": f"91330100{customer.pk:09d}X",
                "address_phone": " ".join(
                    part
                    for part in (
                        f"{customer.city}{customer.district}{customer.street}" or "杭州市",
                        customer.phone or customer.mobile,
                    )
                    if part
                ),
                "bank_account": "工商银行杭州分行 1202 0000 0000 0000",
            },
        )
        self.created["invoices"] += 1
        if decide:
            self.decide(invoice, prefer=self.finance)
            invoice.refresh_from_db()
        if decide and issue:
            invoice = services.invoice_issue(
                actor=self.finance, invoice=invoice, invoice_number=f"{contract.pk:06d}{n:02d}"
            )
        return invoice

    @staticmethod
    def part(contract: Contract, percentage: int) -> Decimal:
        return max(
            (contract.total_amount * percentage / 100).quantize(Decimal("0.01")),
            Decimal("0.01"),
        )

    # --- the stories -----------------------------------------------------------------------

    def tell(self, contract: Contract, kind: str) -> None:
        getattr(self, f"_{kind}")(contract)

    def _paid(self, contract):
        """Paid in full on time and invoiced in full."""
        rows = self.plan(contract, [(-90, 30), (-45, 40), (-10, 30)])
        for n, row in enumerate(rows, start=1):
            self.pay(contract, row.amount, offset=(row.due_date - self.today).days, n=n)
        self.invoice(contract, contract.total_amount)

    def _overdue(self, contract):
        """The first half is overdue and only partly paid; an invoice request waits."""
        rows = self.plan(contract, [(-60, 50), (30, 50)])
        self.pay(contract, self.part(contract, 30), offset=-55, instalment=rows[0])
        self.invoice(contract, self.part(contract, 30), decide=False)

    def _to_confirm(self, contract):
        """A payment waits for finance; an approved invoice waits to be issued."""
        rows = self.plan(contract, [(-5, 30), (60, 70)])
        self.pay(contract, rows[0].amount, offset=-2, instalment=rows[0], confirm=False)
        self.invoice(contract, rows[0].amount, issue=False)

    def _corrected(self, contract):
        """A wrong entry reversed, part of a payment refunded, an invoice voided and issued
        again."""
        rows = self.plan(contract, [(-20, 100)])
        kept = self.pay(contract, self.part(contract, 40), offset=-18, instalment=rows[0])
        wrong = self.pay(contract, self.part(contract, 10), offset=-15, instalment=rows[0], n=2)
        services.payment_reverse(actor=self.finance, payment=wrong, reason="重复登记，冲销")
        refund = services.refund_request(
            actor=self.actor(contract),
            payment=kept,
            amount=self.part(contract, 5),
            reason="部分货物退回，退还相应货款",
        )
        self.created["refunds"] += 1
        self.decide(refund, prefer=self.manager)
        voided = self.invoice(contract, self.part(contract, 40))
        services.invoice_void(actor=self.finance, invoice=voided, reason="发票抬头有误，作废重开")
        self.invoice(contract, self.part(contract, 40), n=2)

    def _not_due(self, contract):
        self.plan(contract, [(10, 20), (90, 80)])

    # --- expense claims --------------------------------------------------------------------

    def expenses(self) -> None:
        categories = {
            item.value: item
            for item in DictionaryItem.objects.filter(dictionary__code="expense_category")
        }
        for username, category, amount, days_ago, description, outcome in EXPENSES:
            claimant = self.users.get(username)
            if claimant is None or category not in categories:
                continue
            counts = dict(self.created)
            try:
                with transaction.atomic():
                    self._expense(claimant, categories[category], amount, days_ago, description)
                    self._expense_outcome(claimant, description, outcome)
            except ServiceError as exc:
                self.created.update(counts)
                logger.warning("Demo expense claim skipped (%s): %s", description, exc.message)

    def _expense(self, claimant, category, amount, days_ago, description) -> None:
        contract = (
            Contract.objects.filter(owner=claimant, status=ContractStatus.ACTIVE)
            .order_by("number")
            .first()
        )
        services.expense_create(
            actor=claimant,
            data={
                "category": category,
                "amount": Decimal(amount),
                "spent_on": self.today - datetime.timedelta(days=days_ago),
                "description": description,
                "contract": contract if category.value == "entertainment" else None,
            },
        )
        self.created["expense_claims"] += 1

    def _expense_outcome(self, claimant, description, outcome) -> None:
        claim = ExpenseClaim.objects.get(owner=claimant, description=description)
        if outcome == "draft":
            return
        claim = services.expense_submit(actor=claimant, claim=claim)
        if outcome == "pending":
            return
        if outcome == "rejected":
            self.decide(claim, approve=False)
            return
        request = approval_pending_for_document(claim)
        if request is not None:
            self._decide_step(request, approve=True)  # the department manager
        if outcome == "manager_approved":
            return
        self.decide(claim, prefer=self.finance)
        if outcome == "paid":
            claim.refresh_from_db()
            services.expense_pay(actor=self.finance, claim=claim)
