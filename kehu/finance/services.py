"""Every write on receivable plans, payments, invoices, refunds and expense claims.

Money rules live here and nowhere else. Each write that changes what a contract has
received or invoiced locks the contract's ``ContractLedger`` row first, re-checks the limits
against the locked figures and updates them in the same transaction, so concurrent requests
queue up and can never together overpay, over-refund or over-invoice a contract.

Permissions: ``finance.add`` registers payments, requests invoices and refunds and claims
expenses; ``finance.approve`` confirms, rejects and reverses payments; ``finance.change``
issues and voids invoices and pays expense claims. Approvals of invoices, refunds, expense
claims (and payments, when an administrator adds a rule) go through ``kehu.approvals``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.approvals.services import approval_rule_for, approval_submit
from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.core.money import quantize_money
from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import visible_to
from kehu.core.services import _audit, document_number_next
from kehu.finance.models import (
    ContractLedger,
    ExpenseClaim,
    ExpenseStatus,
    IdempotencyKey,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReceivableInstalment,
    Refund,
    RefundStatus,
)
from kehu.sales.models import Contract, ContractStatus

PAYMENT_PREFIX, INVOICE_PREFIX, REFUND_PREFIX, EXPENSE_PREFIX = "HK", "KP", "TK", "BX"
PAYMENT_DOCUMENT_TYPE = "finance.payment"
INVOICE_DOCUMENT_TYPE = "finance.invoice"
REFUND_DOCUMENT_TYPE = "finance.refund"
EXPENSE_DOCUMENT_TYPE = "finance.expense"
ZERO = Decimal("0.00")
# Money is received, invoiced and refunded on contracts that are (or were) in force.
BILLABLE_STATUSES = (ContractStatus.ACTIVE, ContractStatus.COMPLETED, ContractStatus.TERMINATED)


# --- shared ---------------------------------------------------------------------------------


def _money(value, *, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ServiceError(_("Enter an amount."), field=field) from exc
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise ServiceError(_("Enter an amount in yuan and cents."), field=field)
    if amount <= 0:
        raise ServiceError(_("The amount must be more than 0."), field=field)
    if amount >= Decimal("10000000000000000"):
        raise ServiceError(_("The amount is too large."), field=field)
    return amount


def _fmt(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _check_visible(actor, obj) -> None:
    if not visible_to(type(obj)._default_manager.filter(pk=obj.pk), actor).exists():
        raise PermissionRefused()


def _billable_contract(actor, contract: Contract) -> Contract:
    if not visible_to(Contract.objects.filter(pk=contract.pk), actor).exists():
        raise ServiceError(_("Choose one of your contracts."), field="contract")
    if contract.status not in BILLABLE_STATUSES:
        raise ServiceError(
            _("Money is recorded on contracts in force; this one is “%(status)s”.")
            % {"status": contract.get_status_display()},
            field="contract",
            code="contract_not_billable",
        )
    return contract


def ledger_locked(contract: Contract) -> ContractLedger:
    """The contract's ledger row, created on first use, locked for this transaction."""
    if not ContractLedger.objects.filter(contract=contract).exists():
        try:
            with transaction.atomic():
                ContractLedger.objects.create(contract=contract)
        except IntegrityError:
            pass  # created concurrently; the locked read waits for it
    return ContractLedger.objects.select_for_update().get(contract=contract)


def _ledger_add(ledger: ContractLedger, **deltas: Decimal) -> None:
    ContractLedger.objects.filter(pk=ledger.pk).update(
        version=F("version") + 1,
        updated_at=timezone.now(),
        **{name: F(name) + delta for name, delta in deltas.items()},
    )
    ledger.refresh_from_db()


def _transition(obj, *, actor, allowed_from, to_status: str, expected_version=None, **fields):
    """Conditional status change with a version bump and an operation-log row."""
    model = type(obj)
    current = model._default_manager.select_for_update().get(pk=obj.pk)
    if expected_version is not None and current.version != expected_version:
        raise ConflictError()
    if current.status not in allowed_from:
        raise ServiceError(
            _("This %(document)s is “%(status)s”; that cannot be done now.")
            % {"document": model._meta.verbose_name, "status": current.get_status_display()},
            field="status",
            code="invalid_status",
        )
    model._default_manager.filter(pk=current.pk).update(
        status=to_status,
        version=F("version") + 1,
        updated_at=timezone.now(),
        updated_by=actor if actor is not None and actor.is_authenticated else None,
        **fields,
    )
    _audit(
        user=actor, action="status", obj=current, changes={"status": [current.status, to_status]}
    )
    current.refresh_from_db()
    return current


def _notify(recipients, *, title: str, url: str = "", body: str = "", level: str = "info"):
    from kehu.system.services import notification_send

    notification_send(recipients=recipients, title=title, body=body, url=url, level=level)


def _finance_staff():
    """Active users whose roles confirm money (``finance.approve``), for notices."""
    from django.db.models import Q

    from kehu.system.models import Role, User

    role_ids = [r.pk for r in Role.objects.all() if "finance.approve" in (r.permissions or [])]
    return list(
        User.objects.filter(Q(roles__in=role_ids) | Q(is_superuser=True), is_active=True).distinct()
    )


# --- receivable plans -----------------------------------------------------------------------


def receivable_plan_set(
    *, actor, contract: Contract, instalments: list[dict[str, Any]]
) -> list[ReceivableInstalment]:
    """Replace the contract's plan with ``[{"due_date", "amount", "note"}]``.

    The instalments must add up to the contract amount exactly. Received money settles
    instalments in due-date order, so a plan can be rearranged at any time without losing
    what was received.
    """
    require_perm(actor, "finance.add")
    _billable_contract(actor, contract)
    if not instalments:
        raise ServiceError(_("Add at least one instalment."), field="instalments")
    cleaned = []
    for position, item in enumerate(instalments, start=1):
        due = item.get("due_date")
        if not isinstance(due, datetime.date):
            raise ServiceError(
                _("Instalment %(n)s: enter a due date.") % {"n": position}, field="instalments"
            )
        amount = _money(item.get("amount"), field="instalments")
        cleaned.append((due, amount, (item.get("note") or "").strip()[:200]))
    total = sum((amount for _due, amount, _note in cleaned), ZERO)
    if total != contract.total_amount:
        raise ServiceError(
            _(
                "The instalments add up to %(total)s but the contract amount is %(amount)s "
                "(difference %(difference)s)."
            )
            % {
                "total": _fmt(total),
                "amount": _fmt(contract.total_amount),
                "difference": _fmt(contract.total_amount - total),
            },
            field="instalments",
            code="plan_total",
        )
    with transaction.atomic():
        ledger_locked(contract)  # one plan edit at a time per contract
        before = [
            {"due_date": i.due_date.isoformat(), "amount": str(i.amount)}
            for i in contract.instalments.all()
        ]
        # Payments keep pointing at instalment rows, so rows are updated in place by sequence.
        existing = {i.sequence: i for i in ReceivableInstalment.objects.filter(contract=contract)}
        rows = []
        for sequence, (due, amount, note) in enumerate(
            sorted(cleaned, key=lambda item: item[0]), start=1
        ):
            row = existing.pop(sequence, None) or ReceivableInstalment(
                contract=contract, sequence=sequence, created_by=actor
            )
            row.due_date, row.amount, row.note, row.updated_by = due, amount, note, actor
            row.save()
            rows.append(row)
        leftover = list(existing.values())
        if any(row.payments.exists() for row in leftover):
            raise ServiceError(
                _("An instalment with payments recorded against it cannot be removed."),
                field="instalments",
            )
        for row in leftover:
            row.delete()
        _audit(
            user=actor,
            action="change",
            obj=contract,
            changes={
                "receivable_plan": [
                    before,
                    [{"due_date": r.due_date.isoformat(), "amount": str(r.amount)} for r in rows],
                ]
            },
            note=_("receivable plan"),
        )
    return rows


def receivable_plan_split(*, total: Decimal, percentages: list[Decimal]) -> list[Decimal]:
    """Amounts for ``percentages`` of ``total`` that add up to it exactly (the last takes
    the rounding remainder). Percentages must add up to 100."""
    if sum(percentages, Decimal("0")) != Decimal("100"):
        raise ServiceError(_("The percentages must add up to 100."), field="percentages")
    amounts = [quantize_money(total * p / Decimal("100")) for p in percentages[:-1]]
    amounts.append(total - sum(amounts, ZERO))
    if any(a <= 0 for a in amounts):
        raise ServiceError(_("Every instalment must be more than 0."), field="percentages")
    return amounts


# --- payments -------------------------------------------------------------------------------


def _request_hash(data: dict[str, Any]) -> str:
    def plain(value):
        return getattr(value, "pk", value)

    body = json.dumps({k: plain(v) for k, v in sorted(data.items())}, default=str, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _idempotent(*, actor, scope: str, key: str | None, data: dict[str, Any], model):
    """Return the earlier result for ``key`` or None; claims the key for this request.

    Runs inside the caller's transaction: if the request fails, the claim rolls back with it.
    A concurrent request with the same key waits on the unique index, then finds the result.
    """
    if not key:
        return None, None
    key = key.strip()[:100]
    digest = _request_hash(data)
    try:
        with transaction.atomic():
            claim = IdempotencyKey.objects.create(
                user=actor, scope=scope, key=key, request_hash=digest
            )
            return None, claim
    except IntegrityError:
        pass
    earlier = IdempotencyKey.objects.get(user=actor, scope=scope, key=key)
    if earlier.request_hash != digest:
        raise ServiceError(
            _("This idempotency key was already used for a different request."),
            field="idempotency_key",
            code="idempotency_mismatch",
        )
    return model.objects.get(pk=earlier.object_id), None


def _payment_clean(actor, data: dict[str, Any]) -> dict[str, Any]:
    from kehu.system.models import DictionaryItem

    contract = data.get("contract")
    if not isinstance(contract, Contract):
        raise ServiceError(_("Choose a contract."), field="contract")
    _billable_contract(actor, contract)
    amount = _money(data.get("amount"), field="amount")
    received_on = data.get("received_on")
    if not isinstance(received_on, datetime.date):
        raise ServiceError(_("Enter the date the money arrived."), field="received_on")
    if received_on > timezone.localdate():
        raise ServiceError(_("The date cannot be in the future."), field="received_on")
    method = (data.get("method") or "").strip()
    if not DictionaryItem.objects.filter(
        dictionary__code="payment_method", value=method, is_active=True
    ).exists():
        raise ServiceError(_("Choose a payment method."), field="method")
    instalment = data.get("instalment")
    if instalment is not None and instalment.contract_id != contract.pk:
        raise ServiceError(_("This instalment belongs to another contract."), field="instalment")
    return {
        "contract": contract,
        "instalment": instalment,
        "amount": amount,
        "currency": contract.currency,
        "received_on": received_on,
        "method": method,
        "account": (data.get("account") or "").strip()[:100],
        "reference": (data.get("reference") or "").strip()[:100],
        "note": (data.get("note") or "").strip()[:500],
    }


def _check_not_overpaid(
    ledger: ContractLedger, contract: Contract, amount: Decimal, *, pending=ZERO
):
    room = contract.total_amount - ledger.received_amount - pending
    if amount > room:
        raise ServiceError(
            _(
                "This payment would exceed the contract amount: %(total)s, already received "
                "%(received)s%(pending)s, so at most %(room)s can still be recorded."
            )
            % {
                "total": _fmt(contract.total_amount),
                "received": _fmt(ledger.received_amount),
                "pending": (_(", awaiting confirmation %(amount)s") % {"amount": _fmt(pending)})
                if pending
                else "",
                "room": _fmt(max(room, ZERO)),
            },
            field="amount",
            code="overpayment",
        )


def payment_register(
    *, actor, data: dict[str, Any], idempotency_key: str | None = None
) -> tuple[Payment, bool]:
    """Record money received; returns (payment, created).

    With ``idempotency_key``, the same request again returns the first payment and
    ``created`` False; the same key with a different request is refused. The payment counts
    once confirmed by finance, or approved when an approval rule for payments applies.
    Refused when it would take the contract's received and pending money above its amount.
    """
    require_perm(actor, "finance.add")
    cleaned = _payment_clean(actor, data)
    with transaction.atomic():
        earlier, claim = _idempotent(
            actor=actor, scope="payment", key=idempotency_key, data=cleaned, model=Payment
        )
        if earlier is not None:
            return earlier, False
        contract = cleaned["contract"]
        ledger = ledger_locked(contract)
        pending = (
            Payment.objects.filter(contract=contract, status=PaymentStatus.PENDING).aggregate(
                total=Sum("amount")
            )["total"]
            or ZERO
        )
        _check_not_overpaid(ledger, contract, cleaned["amount"], pending=pending)
        payment = Payment.objects.create(
            number=document_number_next(prefix=PAYMENT_PREFIX),
            owner=contract.owner,
            department=contract.department,
            created_by=actor,
            updated_by=actor,
            **cleaned,
        )
        if claim is not None:
            IdempotencyKey.objects.filter(pk=claim.pk).update(object_id=payment.pk)
        _audit(
            user=actor,
            action="create",
            obj=payment,
            changes={"amount": [None, str(payment.amount)]},
        )
        rule = approval_rule_for(
            document_type=PAYMENT_DOCUMENT_TYPE,
            amount=payment.amount,
            department=payment.department,
        )
        if rule is not None:
            approval_submit(actor=actor, document_type=PAYMENT_DOCUMENT_TYPE, document=payment)
        else:
            transaction.on_commit(
                lambda: _notify(
                    _finance_staff(),
                    title=_("Payment to confirm: %(number)s, %(amount)s")
                    % {"number": payment.number, "amount": _fmt(payment.amount)},
                    url=payment.get_absolute_url(),
                )
            )
        payment.refresh_from_db()
    return payment, True


def _payment_confirm_locked(
    payment: Payment, actor, expected_version: int | None = None
) -> Payment:
    contract = Contract.objects.get(pk=payment.contract_id)
    ledger = ledger_locked(contract)
    current = Payment.objects.select_for_update().get(pk=payment.pk)
    if expected_version is not None and current.version != expected_version:
        raise ConflictError()
    if current.status != PaymentStatus.PENDING:
        raise ServiceError(
            _("This payment is “%(status)s”; only one awaiting confirmation can be confirmed.")
            % {"status": current.get_status_display()},
            field="status",
            code="invalid_status",
        )
    _check_not_overpaid(ledger, contract, current.amount)
    current = _transition(
        current,
        actor=actor,
        allowed_from=[PaymentStatus.PENDING],
        to_status=PaymentStatus.CONFIRMED,
        confirmed_by=actor,
        confirmed_at=timezone.now(),
    )
    _ledger_add(ledger, confirmed_amount=current.amount)
    transaction.on_commit(
        lambda: _notify(
            [current.owner],
            title=_("Payment confirmed: %(number)s, %(amount)s")
            % {"number": current.number, "amount": _fmt(current.amount)},
            url=current.get_absolute_url(),
            level="success",
        )
    )
    return current


def payment_confirm(*, actor, payment: Payment, expected_version: int | None = None) -> Payment:
    """Finance confirms the money is in the account; only then it counts."""
    require_perm(actor, "finance.approve")
    _check_visible(actor, payment)
    with transaction.atomic():
        return _payment_confirm_locked(payment, actor, expected_version)


def payment_reject(*, actor, payment: Payment, reason: str, expected_version=None) -> Payment:
    """Finance found no such money: the registration is closed, never counted."""
    require_perm(actor, "finance.approve")
    _check_visible(actor, payment)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the payment is rejected."), field="reason")
    with transaction.atomic():
        return _transition(
            payment,
            actor=actor,
            allowed_from=[PaymentStatus.PENDING],
            to_status=PaymentStatus.REJECTED,
            expected_version=expected_version,
            decision_note=reason[:500],
        )


def payment_cancel(*, actor, payment: Payment, expected_version=None) -> Payment:
    """The person who registered a payment takes it back before finance confirms it."""
    require_perm(actor, "finance.add")
    _check_visible(actor, payment)
    if payment.created_by_id != actor.pk and not has_perm(actor, "finance.approve"):
        raise PermissionRefused(_("Only the person who registered it can cancel it."))
    with transaction.atomic():
        return _transition(
            payment,
            actor=actor,
            allowed_from=[PaymentStatus.PENDING],
            to_status=PaymentStatus.CANCELLED,
            expected_version=expected_version,
        )


def payment_reverse(*, actor, payment: Payment, reason: str) -> Payment:
    """Correct a confirmed payment by a reversal entry of the opposite amount; both stay."""
    require_perm(actor, "finance.approve")
    _check_visible(actor, payment)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the payment is reversed."), field="reason")
    with transaction.atomic():
        contract = Contract.objects.get(pk=payment.contract_id)
        ledger = ledger_locked(contract)
        current = Payment.objects.select_for_update().get(pk=payment.pk)
        if current.kind != PaymentKind.PAYMENT or current.status != PaymentStatus.CONFIRMED:
            raise ServiceError(
                _("Only a confirmed payment can be reversed."),
                field="status",
                code="invalid_status",
            )
        if Payment.objects.filter(reverses=current).exists():
            raise ServiceError(
                _("This payment has already been reversed."),
                field="status",
                code="already_reversed",
            )
        if current.refunds.exclude(
            status__in=[RefundStatus.REJECTED, RefundStatus.WITHDRAWN]
        ).exists():
            raise ServiceError(
                _("Money was refunded against this payment; it cannot be reversed."),
                field="status",
                code="has_refunds",
            )
        if ledger.received_amount - current.amount < 0:
            raise ServiceError(_("The contract would show less than nothing received."))
        reversal = Payment.objects.create(
            number=document_number_next(prefix=PAYMENT_PREFIX),
            contract=contract,
            instalment=current.instalment,
            kind=PaymentKind.REVERSAL,
            reverses=current,
            amount=-current.amount,
            currency=current.currency,
            received_on=timezone.localdate(),
            method=current.method,
            account=current.account,
            reference=current.reference,
            note=reason[:500],
            status=PaymentStatus.CONFIRMED,
            owner=current.owner,
            department=current.department,
            confirmed_by=actor,
            confirmed_at=timezone.now(),
            created_by=actor,
            updated_by=actor,
        )
        _ledger_add(ledger, confirmed_amount=reversal.amount)
        _audit(
            user=actor,
            action="reverse",
            obj=current,
            changes={"reversed_by": [None, reversal.number]},
            note=reason[:500],
        )
    return reversal


def _payment_on_approved(payment: Payment, request, actor) -> None:
    _payment_confirm_locked(payment, actor)


def _payment_on_closed(status: str):
    def close(payment: Payment, request, actor) -> None:
        _transition(payment, actor=actor, allowed_from=[PaymentStatus.PENDING], to_status=status)

    return close


# --- invoices -------------------------------------------------------------------------------


def _invoice_committed(contract: Contract, *, exclude_pk=None) -> Decimal:
    """Issued plus requested-and-not-yet-issued invoice amounts of the contract."""
    queryset = Invoice.objects.filter(
        contract=contract,
        status__in=[InvoiceStatus.PENDING, InvoiceStatus.APPROVED, InvoiceStatus.ISSUED],
    )
    if exclude_pk:
        queryset = queryset.exclude(pk=exclude_pk)
    return queryset.aggregate(total=Sum("amount"))["total"] or ZERO


def _check_not_overinvoiced(contract: Contract, amount: Decimal, *, exclude_pk=None) -> None:
    committed = _invoice_committed(contract, exclude_pk=exclude_pk)
    if committed + amount > contract.total_amount:
        raise ServiceError(
            _(
                "Invoices would exceed the contract amount: %(total)s, already invoiced or "
                "requested %(committed)s, so at most %(room)s can still be invoiced."
            )
            % {
                "total": _fmt(contract.total_amount),
                "committed": _fmt(committed),
                "room": _fmt(max(contract.total_amount - committed, ZERO)),
            },
            field="amount",
            code="overinvoicing",
        )


def invoice_request(*, actor, data: dict[str, Any]) -> Invoice:
    """Ask finance for an invoice; it goes through the invoice approval rule."""
    require_perm(actor, "finance.add")
    contract = data.get("contract")
    if not isinstance(contract, Contract):
        raise ServiceError(_("Choose a contract."), field="contract")
    _billable_contract(actor, contract)
    amount = _money(data.get("amount"), field="amount")
    title = (data.get("title") or "").strip()
    tax_number = (data.get("tax_number") or "").strip().upper()
    if not title:
        raise ServiceError(_("Enter the invoice title (the buyer's name)."), field="title")
    if not 15 <= len(tax_number) <= 20 or not tax_number.isalnum():
        raise ServiceError(
            _("Enter the buyer's taxpayer identification number (15 to 20 letters and digits)."),
            field="tax_number",
        )
    invoice_type = data.get("invoice_type") or "vat_ordinary"
    if invoice_type == "vat_special" and not (data.get("bank_account") or "").strip():
        raise ServiceError(
            _("A VAT special invoice needs the buyer's bank and account."), field="bank_account"
        )
    with transaction.atomic():
        ledger_locked(contract)
        _check_not_overinvoiced(contract, amount)
        invoice = Invoice.objects.create(
            number=document_number_next(prefix=INVOICE_PREFIX),
            contract=contract,
            invoice_type=invoice_type,
            title=title[:200],
            tax_number=tax_number,
            address_phone=(data.get("address_phone") or "").strip()[:300],
            bank_account=(data.get("bank_account") or "").strip()[:200],
            amount=amount,
            currency=contract.currency,
            note=(data.get("note") or "").strip()[:500],
            owner=contract.owner,
            department=contract.department,
            created_by=actor,
            updated_by=actor,
        )
        invoice.full_clean()
        _audit(user=actor, action="create", obj=invoice)
        approval_submit(actor=actor, document_type=INVOICE_DOCUMENT_TYPE, document=invoice)
        invoice.refresh_from_db()
    return invoice


def _invoice_on(status: str):
    def change(invoice: Invoice, request, actor) -> None:
        _transition(invoice, actor=actor, allowed_from=[InvoiceStatus.PENDING], to_status=status)

    return change


def invoice_issue(
    *,
    actor,
    invoice: Invoice,
    invoice_number: str,
    issued_on: datetime.date | None = None,
    expected_version: int | None = None,
) -> Invoice:
    """Finance has issued the approved invoice: record its number and date."""
    require_perm(actor, "finance.change")
    _check_visible(actor, invoice)
    invoice_number = (invoice_number or "").strip()
    if not invoice_number:
        raise ServiceError(_("Enter the invoice number."), field="invoice_number")
    issued_on = issued_on or timezone.localdate()
    if issued_on > timezone.localdate():
        raise ServiceError(_("The date cannot be in the future."), field="issued_on")
    with transaction.atomic():
        contract = Contract.objects.get(pk=invoice.contract_id)
        ledger = ledger_locked(contract)
        if Invoice.objects.filter(invoice_number=invoice_number).exclude(pk=invoice.pk).exists():
            raise ServiceError(
                _("This invoice number is already recorded."), field="invoice_number"
            )
        if ledger.invoiced_amount + invoice.amount > contract.total_amount:
            raise ServiceError(
                _("Issuing it would invoice more than the contract amount."),
                field="amount",
                code="overinvoicing",
            )
        current = _transition(
            invoice,
            actor=actor,
            allowed_from=[InvoiceStatus.APPROVED],
            to_status=InvoiceStatus.ISSUED,
            expected_version=expected_version,
            invoice_number=invoice_number[:50],
            issued_on=issued_on,
            issued_by=actor,
        )
        _ledger_add(ledger, invoiced_amount=current.amount)
        transaction.on_commit(
            lambda: _notify(
                [current.owner],
                title=_("Invoice issued: %(number)s") % {"number": current.invoice_number},
                url=current.get_absolute_url(),
                level="success",
            )
        )
    return current


def invoice_void(*, actor, invoice: Invoice, reason: str, expected_version=None) -> Invoice:
    """Void an issued (or approved, not yet issued) invoice; an issued one stops counting."""
    require_perm(actor, "finance.change")
    _check_visible(actor, invoice)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the invoice is voided."), field="reason")
    with transaction.atomic():
        contract = Contract.objects.get(pk=invoice.contract_id)
        ledger = ledger_locked(contract)
        was_issued = Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.ISSUED
        current = _transition(
            invoice,
            actor=actor,
            allowed_from=[InvoiceStatus.APPROVED, InvoiceStatus.ISSUED],
            to_status=InvoiceStatus.VOIDED,
            expected_version=expected_version,
            void_reason=reason[:500],
        )
        if was_issued:
            _ledger_add(ledger, invoiced_amount=-current.amount)
    return current


# --- refunds --------------------------------------------------------------------------------


def _refunds_open(queryset) -> Decimal:
    return (
        queryset.filter(status__in=[RefundStatus.PENDING, RefundStatus.APPROVED]).aggregate(
            total=Sum("amount")
        )["total"]
        or ZERO
    )


def _check_refundable(
    ledger: ContractLedger, payment: Payment, amount: Decimal, *, exclude_pk=None
):
    others = Refund.objects.filter(payment=payment)
    contract_refunds = Refund.objects.filter(
        contract_id=payment.contract_id, status=RefundStatus.PENDING
    )
    if exclude_pk:
        others = others.exclude(pk=exclude_pk)
        contract_refunds = contract_refunds.exclude(pk=exclude_pk)
    room_payment = payment.amount - _refunds_open(others)
    room_contract = ledger.received_amount - (
        contract_refunds.aggregate(total=Sum("amount"))["total"] or ZERO
    )
    room = min(room_payment, room_contract)
    if amount > room:
        raise ServiceError(
            _("At most %(room)s can be refunded: no refund is more than was received.")
            % {"room": _fmt(max(room, ZERO))},
            field="amount",
            code="overrefund",
        )


def refund_request(*, actor, payment: Payment, amount, reason: str) -> Refund:
    """Pay money back against a confirmed payment; counts when approved."""
    require_perm(actor, "finance.add")
    _check_visible(actor, payment)
    amount = _money(amount, field="amount")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the money is refunded."), field="reason")
    with transaction.atomic():
        contract = Contract.objects.get(pk=payment.contract_id)
        ledger = ledger_locked(contract)
        payment = Payment.objects.get(pk=payment.pk)  # as it is now, under the ledger lock
        if payment.kind != PaymentKind.PAYMENT or payment.status != PaymentStatus.CONFIRMED:
            raise ServiceError(_("Refunds are made against a confirmed payment."), field="payment")
        if Payment.objects.filter(reverses=payment).exists():
            raise ServiceError(_("This payment has been reversed."), field="payment")
        _check_refundable(ledger, payment, amount)
        refund = Refund.objects.create(
            number=document_number_next(prefix=REFUND_PREFIX),
            contract=contract,
            payment=payment,
            amount=amount,
            currency=payment.currency,
            reason=reason[:500],
            owner=contract.owner,
            department=contract.department,
            created_by=actor,
            updated_by=actor,
        )
        _audit(user=actor, action="create", obj=refund, note=reason[:500])
        approval_submit(actor=actor, document_type=REFUND_DOCUMENT_TYPE, document=refund)
        refund.refresh_from_db()
    return refund


def _refund_on_approved(refund: Refund, request, actor) -> None:
    contract = Contract.objects.get(pk=refund.contract_id)
    ledger = ledger_locked(contract)
    payment = Payment.objects.get(pk=refund.payment_id)
    _check_refundable(ledger, payment, refund.amount, exclude_pk=refund.pk)
    current = _transition(
        refund,
        actor=actor,
        allowed_from=[RefundStatus.PENDING],
        to_status=RefundStatus.APPROVED,
        refunded_on=timezone.localdate(),
    )
    _ledger_add(ledger, refunded_amount=current.amount)


def _refund_on(status: str):
    def change(refund: Refund, request, actor) -> None:
        _transition(refund, actor=actor, allowed_from=[RefundStatus.PENDING], to_status=status)

    return change


# --- expense claims -------------------------------------------------------------------------


def _expense_clean(actor, data: dict[str, Any]) -> dict[str, Any]:
    from kehu.customers.models import Customer

    category = data.get("category")
    if category is None or category.dictionary.code != "expense_category" or not category.is_active:
        raise ServiceError(_("Choose a category."), field="category")
    spent_on = data.get("spent_on")
    if not isinstance(spent_on, datetime.date):
        raise ServiceError(_("Enter the date of the expense."), field="spent_on")
    if spent_on > timezone.localdate():
        raise ServiceError(_("The date cannot be in the future."), field="spent_on")
    description = (data.get("description") or "").strip()
    if not description:
        raise ServiceError(_("Describe the expense."), field="description")
    customer, contract = data.get("customer"), data.get("contract")
    if (
        customer is not None
        and not visible_to(Customer.objects.filter(pk=customer.pk), actor).exists()
    ):
        raise ServiceError(_("Choose one of your customers."), field="customer")
    if contract is not None:
        if not visible_to(Contract.objects.filter(pk=contract.pk), actor).exists():
            raise ServiceError(_("Choose one of your contracts."), field="contract")
        if customer is not None and contract.customer_id != customer.pk:
            raise ServiceError(_("This contract belongs to another customer."), field="contract")
        customer = customer or contract.customer
    return {
        "category": category,
        "amount": _money(data.get("amount"), field="amount"),
        "spent_on": spent_on,
        "description": description,
        "customer": customer,
        "contract": contract,
    }


def expense_create(*, actor, data: dict[str, Any], files: Iterable = ()) -> ExpenseClaim:
    """A draft claim of the actor's own expenses; ``files`` are receipts (attachments)."""
    from kehu.core.attachments import attachment_add, attachment_validate

    require_perm(actor, "finance.add")
    cleaned = _expense_clean(actor, data)
    files = list(files)
    for file in files:  # all checked before anything is written
        attachment_validate(file)
    with transaction.atomic():
        claim = ExpenseClaim.objects.create(
            number=document_number_next(prefix=EXPENSE_PREFIX),
            owner=actor,
            department=actor.department,
            created_by=actor,
            updated_by=actor,
            **cleaned,
        )
        _audit(user=actor, action="create", obj=claim)
        for file in files:
            attachment_add(actor=actor, obj=claim, file=file)
    return claim


def expense_update(
    *,
    actor,
    claim: ExpenseClaim,
    expected_version: int | None,
    data: dict[str, Any],
    files: Iterable = (),
) -> ExpenseClaim:
    """Change a draft or rejected claim; ``files`` are more receipts to attach."""
    from kehu.core.attachments import attachment_add, attachment_validate

    require_perm(actor, "finance.add")
    _check_visible(actor, claim)
    if claim.owner_id != actor.pk:
        raise PermissionRefused(_("Only the employee who claims it can change it."))
    cleaned = _expense_clean(actor, data)
    files = list(files)
    for file in files:
        attachment_validate(file)
    with transaction.atomic():
        current = ExpenseClaim.objects.select_for_update().get(pk=claim.pk)
        if expected_version is None or current.version != expected_version:
            raise ConflictError()
        if current.status not in (ExpenseStatus.DRAFT, ExpenseStatus.REJECTED):
            raise ServiceError(
                _("A claim awaiting approval or approved cannot be changed."),
                field="status",
                code="invalid_status",
            )
        ExpenseClaim.objects.filter(pk=current.pk).update(
            version=F("version") + 1, updated_by=actor, updated_at=timezone.now(), **cleaned
        )
        _audit(user=actor, action="change", obj=current)
        for file in files:
            attachment_add(actor=actor, obj=current, file=file)
        current.refresh_from_db()
    return current


def expense_submit(*, actor, claim: ExpenseClaim, expected_version=None) -> ExpenseClaim:
    """Send a claim for approval (department manager, then finance, by default)."""
    require_perm(actor, "finance.add")
    _check_visible(actor, claim)
    if claim.owner_id != actor.pk:
        raise PermissionRefused(_("Only the employee who claims it can submit it."))
    with transaction.atomic():
        current = _transition(
            claim,
            actor=actor,
            allowed_from=[ExpenseStatus.DRAFT, ExpenseStatus.REJECTED],
            to_status=ExpenseStatus.PENDING,
            expected_version=expected_version,
        )
        approval_submit(actor=actor, document_type=EXPENSE_DOCUMENT_TYPE, document=current)
        current.refresh_from_db()
    return current


def _expense_on(status: str):
    def change(claim: ExpenseClaim, request, actor) -> None:
        _transition(claim, actor=actor, allowed_from=[ExpenseStatus.PENDING], to_status=status)

    return change


def expense_pay(
    *, actor, claim: ExpenseClaim, paid_on: datetime.date | None = None, expected_version=None
) -> ExpenseClaim:
    require_perm(actor, "finance.change")
    _check_visible(actor, claim)
    with transaction.atomic():
        current = _transition(
            claim,
            actor=actor,
            allowed_from=[ExpenseStatus.APPROVED],
            to_status=ExpenseStatus.PAID,
            expected_version=expected_version,
            paid_on=paid_on or timezone.localdate(),
            paid_by=actor,
        )
        transaction.on_commit(
            lambda: _notify(
                [current.owner],
                title=_("Expense claim paid: %(number)s, %(amount)s")
                % {"number": current.number, "amount": _fmt(current.amount)},
                url=current.get_absolute_url(),
                level="success",
            )
        )
    return current
