"""Finance benchmark cases: recording a payment (API, a new Idempotency-Key each run) and
the receivables aging report and the receivables by contract (pages and API)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.bench import BenchContext, Case, register
from kehu.finance.models import Payment, PaymentStatus
from kehu.sales.models import Contract, ContractStatus
from kehu.system.models import DictionaryItem

AMOUNT = Decimal("1.00")  # per run: a 30-run benchmark takes 33 yuan off one balance


def _contract_with_balance() -> Contract | None:
    """The first active contract (a demo one, the same at every size) with room for 1,000
    yuan more, counting the payments awaiting confirmation."""
    candidates = (
        Contract.objects.filter(status=ContractStatus.ACTIVE)
        .filter(Q(ledger__isnull=True) | Q(total_amount__gt=F("ledger__confirmed_amount") + 1000))
        .order_by("pk")[:50]
    )
    for contract in candidates:
        pending = (
            Payment.objects.filter(contract=contract, status=PaymentStatus.PENDING).aggregate(
                total=Sum("amount")
            )["total"]
            or 0
        )
        ledger = getattr(contract, "ledger", None)
        received = ledger.confirmed_amount - ledger.refunded_amount if ledger else 0
        if contract.total_amount - received - pending >= 1000:
            return contract
    return None


@register
def finance_cases(ctx: BenchContext) -> list[Case]:
    finance = ctx.finance
    if finance is None:
        return []
    cases = [
        Case(
            "aging_page",
            _("Receivables aging page"),
            group="finance",
            user=finance,
            url="/finance/aging/",
        ),
        Case(
            "aging_api",
            _("Receivables aging (API)"),
            group="finance",
            user=finance,
            url="/api/v1/reports/receivables-aging/",
            api=True,
        ),
        Case(
            "aging_page_sales",
            _("Receivables aging page, salesperson"),
            group="finance",
            user=ctx.user,
            url="/finance/aging/",
        ),
        Case(
            "reconciliation_page",
            _("Receivables by contract page"),
            group="finance",
            user=finance,
            url="/finance/reconciliation/",
        ),
        Case(
            "reconciliation_overdue",
            _("Receivables by contract, overdue only, salesperson"),
            group="finance",
            user=ctx.user,
            url="/finance/reconciliation/?state=overdue",
        ),
        Case(
            "reconciliation_api",
            _("Receivables by contract (API)"),
            group="finance",
            user=finance,
            url="/api/v1/reports/reconciliation/",
            api=True,
        ),
    ]
    contract = _contract_with_balance()
    method = (
        DictionaryItem.objects.filter(dictionary__code="payment_method", is_active=True)
        .order_by("sort_order", "pk")
        .values_list("value", flat=True)
        .first()
    )
    if contract is not None and method:
        today = timezone.localdate().isoformat()
        cases.append(
            Case(
                "record_payment",
                _("Record a payment (API, Idempotency-Key)"),
                group="finance",
                user=finance,
                url="/api/v1/payments/",
                method="post",
                api=True,
                data=lambda n: {
                    "contract": contract.pk,
                    "amount": str(AMOUNT),
                    "received_on": today,
                    "method": method,
                    "reference": f"bench-{n}",
                },
                headers=lambda n: {"Idempotency-Key": f"bench-{uuid.uuid4()}"},
            )
        )
    return cases
