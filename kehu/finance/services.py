"""Every write on receivable plans, payments, invoices, refunds and expense claims.

Money rules live here and nowhere else. Each write that changes what a contract has
received or invoiced locks the contract's ``ContractLedger`` row, re-checks the limits
against the locked figures and updates them in the same transaction, so concurrent requests
queue up and can never together overpay, over-refund or over-invoice a contract.

Lock order, everywhere: the document being decided (payment, invoice, refund) first, then
the ledger. The approval engine locks the document before it calls back, so keeping the
same order here means two requests on one contract wait for each other, never deadlock.

Permissions: ``finance.add`` registers payments, requests invoices and refunds and claims
expenses; ``finance.approve`` confirms, rejects and reverses payments; ``finance.change``
issues and voids invoices and pays expense claims. Approvals of invoices, refunds, expense
claims (and payments, when an administrator adds a rule) go through ``kehu.approvals``.
Every refusal raises before anything is written, or inside the transaction that it rolls
back: a refused request changes nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.analytics.aggregates import aggregates_tracked, collections_count
from kehu.approvals.services import (
    approval_pending_for_document,
    approval_rule_for,
    approval_submit,
    approval_withdraw,
)
from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.core.money import CENT, quantize_money
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
    InvoiceType,
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
MONEY_LIMIT = Decimal("10000000000000000")  # MoneyField holds 16 digits before the point
# Money is received, invoiced and refunded on contracts that are (or were) in force.
BILLABLE_STATUSES = (ContractStatus.ACTIVE, ContractStatus.COMPLETED, ContractStatus.TERMINATED)
IDEMPOTENCY_KEY_MAX = 100
# A taxpayer identification number (统一社会信用代码 or the older 15/20-character ones).
TAX_NUMBER_RE = re.compile(r"^[0-9A-Z]{15,20}$")


# --- shared ---------------------------------------------------------------------------------


def _money(value, *, field: str) -> Decimal:
    """A positive amount in yuan and cents, as a two-place Decimal ("100" → 100.00)."""
    if isinstance(value, bool) or value is None or value == "":
        raise ServiceError(_("Enter an amount."), field=field)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ServiceError(_("Enter an amount."), field=field) from exc
    if not amount.is_finite():
        raise ServiceError(_("Enter an amount."), field=field)
    if amount <= 0:
        raise ServiceError(_("The amount must be more than 0."), field=field)
    if amount >= MONEY_LIMIT:
        raise ServiceError(_("The amount is too large."), field=field)
    if amount != amount.quantize(CENT):
        raise ServiceError(_("Enter an amount in yuan and cents."), field=field)
    return amount.quantize(CENT)


def _fmt(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _date(value, *, field: str, message: str, allow_future: bool = False) -> datetime.date:
    if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
        raise ServiceError(message, field=field)
    if not allow_future and value > timezone.localdate():
        raise ServiceError(_("The date cannot be in the future."), field=field)
    return value


def _check_visible(actor, obj) -> None:
    """Services get documents from scoped selectors; this guards callers that did not."""
    if not visible_to(type(obj)._default_manager.filter(pk=obj.pk), actor).exists():
        raise PermissionRefused()


def _billable_contract(actor, contract: Contract) -> Contract:
    """The contract as stored now, if the actor sees it and money may be recorded on it."""
    current = visible_to(Contract.objects.filter(pk=contract.pk), actor).first()
    if current is None:
        raise ServiceError(_("Choose one of your contracts."), field="contract")
    if current.status not in BILLABLE_STATUSES:
        raise ServiceError(
            _("Money is recorded on contracts in force; this one is “%(status)s”.")
            % {"status": current.get_status_display()},
            field="contract",
            code="contract_not_billable",
        )
    return current


def _contract(contract_id: int) -> Contract:
    return Contract._base_manager.get(pk=contract_id)


def ledger_locked(contract: Contract) -> ContractLedger:
    """The contract's ledger row, created on first use, locked for this transaction."""
    if not ContractLedger.objects.filter(contract_id=contract.pk).exists():
        try:
            with transaction.atomic():
                ContractLedger.objects.create(contract_id=contract.pk)
        except IntegrityError:
            pass  # created concurrently; the locked read waits for it
    return ContractLedger.objects.select_for_update().get(contract_id=contract.pk)


def _ledger_add(ledger: ContractLedger, **deltas: Decimal) -> None:
    """Add ``deltas`` to the locked ledger row.

    The sums are made here in Decimal, not as ``F(name) + delta`` in SQL: SQLite adds
    decimals as floating point (9.56 − 5.93 ≠ 3.63 there), which would store inexact
    figures and trip the ledger's check constraint. The row is locked, so this is safe.
    """
    # Money received changes what the contract still owes (the stored aging aggregates).
    owed = {"contracts": [ledger.pk]} if set(deltas) - {"invoiced_amount"} else {}
    with aggregates_tracked(**owed):
        ContractLedger.objects.filter(pk=ledger.pk).update(
            version=F("version") + 1,
            updated_at=timezone.now(),
            **{name: getattr(ledger, name) + delta for name, delta in deltas.items()},
        )
    ledger.refresh_from_db()


def _locked(model, pk):
    """The row as stored now, locked until the transaction ends (take it before the ledger)."""
    return model._default_manager.select_for_update().get(pk=pk)


def _check_version(current, expected_version: int | None) -> None:
    if expected_version is not None and current.version != expected_version:
        raise ConflictError()


def _invalid_status(obj) -> ServiceError:
    return ServiceError(
        _("This %(document)s is “%(status)s”; that cannot be done now.")
        % {"document": type(obj)._meta.verbose_name, "status": obj.get_status_display()},
        field="status",
        code="invalid_status",
    )


def _transition(obj, *, actor, allowed_from, to_status: str, expected_version=None, **fields):
    """Conditional status change with a version bump and an operation-log row."""
    model = type(obj)
    current = _locked(model, obj.pk)
    _check_version(current, expected_version)
    if current.status not in allowed_from:
        raise _invalid_status(current)
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


def _notify_on_commit(recipients, *, title: str, url: str = "", body: str = "", level="info"):
    transaction.on_commit(lambda: _notify(recipients, title=title, url=url, body=body, level=level))


def finance_staff(*, document=None) -> list:
    """Active users whose roles run finance (confirm money and issue invoices), for notices;
    with ``document``, only those whose data scope covers it."""
    from kehu.system.models import Role, User

    role_ids = [
        role.pk
        for role in Role.objects.all()
        if {"finance.approve", "finance.change"} <= set(role.permissions or [])
    ]
    users = list(User.objects.filter(roles__in=role_ids, is_active=True).distinct().order_by("id"))
    if document is None:
        return users
    rows = type(document)._default_manager.filter(pk=document.pk)
    return [user for user in users if visible_to(rows, user).exists()]


_finance_staff = finance_staff  # the earlier private name


# --- receivable plans -----------------------------------------------------------------------


def receivable_plan_set(
    *, actor, contract: Contract, instalments: list[dict[str, Any]]
) -> list[ReceivableInstalment]:
    """Replace the contract's plan with ``[{"due_date", "amount", "note"}]``.

    The instalments must add up to the contract amount exactly. Received money settles
    instalments in due-date order, so a plan can be rearranged at any time without losing
    what was received; rows are kept by position, so payments keep their instalment.
    """
    require_perm(actor, "finance.add")
    contract = _billable_contract(actor, contract)
    if not instalments:
        raise ServiceError(_("Add at least one instalment."), field="instalments")
    cleaned = []
    for position, item in enumerate(instalments, start=1):
        due = item.get("due_date")
        if isinstance(due, datetime.datetime) or not isinstance(due, datetime.date):
            raise ServiceError(
                _("Instalment %(n)s: enter a due date.") % {"n": position}, field="instalments"
            )
        try:
            amount = _money(item.get("amount"), field="instalments")
        except ServiceError as exc:
            raise ServiceError(
                _("Instalment %(n)s: %(error)s") % {"n": position, "error": exc.message},
                field="instalments",
            ) from exc
        note = (item.get("note") or "").strip()
        if len(note) > 200:
            raise ServiceError(
                _("Instalment %(n)s: the note is longer than 200 characters.") % {"n": position},
                field="instalments",
            )
        cleaned.append((due, amount, note))
    with transaction.atomic():
        ledger_locked(contract)  # one plan edit at a time per contract
        contract = _contract(contract.pk)
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
        existing = {
            i.sequence: i
            for i in ReceivableInstalment.objects.select_for_update().filter(contract=contract)
        }
        before = [
            {"due_date": i.due_date.isoformat(), "amount": str(i.amount)}
            for i in sorted(existing.values(), key=lambda i: i.sequence)
        ]
        leftover = [row for sequence, row in existing.items() if sequence > len(cleaned)]
        if any(row.payments.exists() for row in leftover):
            raise ServiceError(
                _("An instalment with payments recorded against it cannot be removed."),
                field="instalments",
                code="instalment_has_payments",
            )
        rows = []
        with aggregates_tracked(contracts=[contract.pk]):  # what it owes, by due date
            for row in leftover:
                row.delete()
            for sequence, (due, amount, note) in enumerate(
                sorted(cleaned, key=lambda item: item[0]), start=1
            ):
                row = existing.get(sequence) or ReceivableInstalment(
                    contract=contract, sequence=sequence, created_by=actor
                )
                row.due_date, row.amount, row.note, row.updated_by = due, amount, note, actor
                row.save()
                rows.append(row)
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
    the rounding remainder). Percentages must add up to 100 and each give more than 0."""
    total = _money(total, field="total")
    try:
        shares = [Decimal(str(p)) for p in percentages]
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ServiceError(_("Enter percentages as numbers."), field="percentages") from exc
    if not shares or any(not p.is_finite() or p <= 0 for p in shares):
        raise ServiceError(_("Every percentage must be more than 0."), field="percentages")
    if sum(shares, Decimal("0")) != Decimal("100"):
        raise ServiceError(_("The percentages must add up to 100."), field="percentages")
    amounts = [quantize_money(total * p / Decimal("100")) for p in shares[:-1]]
    amounts.append(total - sum(amounts, ZERO))
    if any(a <= 0 for a in amounts):
        raise ServiceError(
            _("Every instalment must be more than 0; use fewer instalments."),
            field="percentages",
        )
    return amounts


# --- payments -------------------------------------------------------------------------------


def _request_hash(data: dict[str, Any]) -> str:
    def plain(value):
        return getattr(value, "pk", value)

    body = json.dumps({k: plain(v) for k, v in sorted(data.items())}, default=str, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _idempotency_key_clean(key: str | None) -> str | None:
    key = (key or "").strip()
    if not key:
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise ServiceError(
            _("The idempotency key is longer than %(max)s characters.")
            % {"max": IDEMPOTENCY_KEY_MAX},
            field="idempotency_key",
            code="idempotency_key_invalid",
        )
    return key


def _idempotent(*, actor, scope: str, key: str | None, data: dict[str, Any], model):
    """(earlier result, None) for a repeated ``key``, or (None, claim) for a new one.

    Runs inside the caller's transaction: if the request fails, the claim rolls back with it.
    A concurrent request with the same key waits on the unique index until the first one
    commits (then finds its result) or rolls back (then claims the key itself).
    """
    if not key:
        return None, None
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
            _(
                "This idempotency key was already used for a different request; "
                "send a new key for a new payment."
            ),
            field="idempotency_key",
            code="idempotency_mismatch",
        )
    found = model._default_manager.filter(pk=earlier.object_id).first()
    if found is None:  # cannot happen: the key and its result commit together
        raise ServiceError(field="idempotency_key", code="idempotency_mismatch")
    return found, None


# A client retries within minutes; a key is kept a month, then a new request may reuse it.
IDEMPOTENCY_KEY_DAYS = 30


def idempotency_keys_prune(
    *, now: datetime.datetime | None = None, days: int = IDEMPOTENCY_KEY_DAYS
) -> int:
    """Forget idempotency keys older than ``days`` (daily job); returns how many."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    deleted, _by_model = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _payment_clean(actor, data: dict[str, Any]) -> dict[str, Any]:
    from kehu.system.models import DictionaryItem

    contract = data.get("contract")
    if not isinstance(contract, Contract):
        raise ServiceError(_("Choose a contract."), field="contract")
    contract = _billable_contract(actor, contract)
    amount = _money(data.get("amount"), field="amount")
    received_on = _date(
        data.get("received_on"),
        field="received_on",
        message=_("Enter the date the money arrived."),
    )
    method = (data.get("method") or "").strip()
    if not DictionaryItem.objects.filter(
        dictionary__code="payment_method", value=method, is_active=True
    ).exists():
        raise ServiceError(_("Choose a payment method."), field="method")
    instalment = data.get("instalment")
    if instalment is not None and (
        not isinstance(instalment, ReceivableInstalment) or instalment.contract_id != contract.pk
    ):
        raise ServiceError(_("This instalment belongs to another contract."), field="instalment")
    texts = {}
    for name, limit in (("account", 100), ("reference", 100), ("note", 500)):
        texts[name] = (data.get(name) or "").strip()
        if len(texts[name]) > limit:
            raise ServiceError(
                _("At most %(max)s characters.") % {"max": limit}, field=name, code="too_long"
            )
    return {
        "contract": contract,
        "instalment": instalment,
        "amount": amount,
        "currency": contract.currency,
        "received_on": received_on,
        "method": method,
        **texts,
    }


def _pending_payments(contract: Contract, *, exclude_pk=None) -> Decimal:
    queryset = Payment.objects.filter(contract_id=contract.pk, status=PaymentStatus.PENDING)
    if exclude_pk:
        queryset = queryset.exclude(pk=exclude_pk)
    return queryset.aggregate(total=Sum("amount"))["total"] or ZERO


def _check_not_overpaid(
    ledger: ContractLedger, contract: Contract, amount: Decimal, *, pending=ZERO
) -> None:
    room = contract.total_amount - ledger.received_amount - pending
    if amount <= room:
        return
    values = {
        "total": _fmt(contract.total_amount),
        "received": _fmt(ledger.received_amount),
        "pending": _fmt(pending),
        "room": _fmt(max(room, ZERO)),
    }
    if pending:
        message = _(
            "This payment would exceed the contract amount: %(total)s, already received "
            "%(received)s and awaiting confirmation %(pending)s, so at most %(room)s can "
            "still be recorded."
        )
    else:
        message = _(
            "This payment would exceed the contract amount: %(total)s, already received "
            "%(received)s, so at most %(room)s can still be recorded."
        )
    raise ServiceError(message % values, field="amount", code="overpayment")


def payment_register(
    *, actor, data: dict[str, Any], idempotency_key: str | None = None
) -> tuple[Payment, bool]:
    """Record money received; returns (payment, created).

    With ``idempotency_key`` (per user), the same request again returns the first payment
    and ``created`` False; the same key with a different request is refused. The payment
    counts once confirmed by finance, or approved when an approval rule for payments
    applies. Refused when it would take the contract's received and pending money above
    its amount.
    """
    require_perm(actor, "finance.add")
    key = _idempotency_key_clean(idempotency_key)
    cleaned = _payment_clean(actor, data)
    with transaction.atomic():
        earlier, claim = _idempotent(
            actor=actor, scope="payment", key=key, data=cleaned, model=Payment
        )
        if earlier is not None:
            return earlier, False
        ledger = ledger_locked(cleaned["contract"])
        contract = cleaned["contract"] = _billable_contract(actor, cleaned["contract"])
        _check_not_overpaid(
            ledger, contract, cleaned["amount"], pending=_pending_payments(contract)
        )
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
            _notify_on_commit(
                finance_staff(document=payment),
                title=_("Payment to confirm: %(number)s, %(amount)s")
                % {"number": payment.number, "amount": _fmt(payment.amount)},
                url=payment.get_absolute_url(),
            )
        payment.refresh_from_db()
    return payment, True


def _check_no_pending_approval(document) -> None:
    if approval_pending_for_document(document) is not None:
        raise ServiceError(
            _("This %(document)s is waiting for approval; it is decided there.")
            % {"document": type(document)._meta.verbose_name},
            field="status",
            code="awaiting_approval",
        )


def _payment_confirm_locked(
    payment: Payment, actor, expected_version: int | None = None
) -> Payment:
    """Confirm ``payment``; its row is locked by the caller, then the ledger here."""
    current = _locked(Payment, payment.pk)
    contract = _contract(current.contract_id)
    ledger = ledger_locked(contract)
    _check_version(current, expected_version)
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
    collections_count(
        amount=current.amount,
        on=current.received_on,
        owner_id=current.owner_id,
        department_id=current.department_id,
    )
    _notify_on_commit(
        [current.owner],
        title=_("Payment confirmed: %(number)s, %(amount)s")
        % {"number": current.number, "amount": _fmt(current.amount)},
        url=current.get_absolute_url(),
        level="success",
    )
    return current


def payment_confirm(*, actor, payment: Payment, expected_version: int | None = None) -> Payment:
    """Finance confirms the money is in the account; only then it counts."""
    require_perm(actor, "finance.approve")
    _check_visible(actor, payment)
    with transaction.atomic():
        current = _locked(Payment, payment.pk)
        _check_no_pending_approval(current)
        return _payment_confirm_locked(current, actor, expected_version)


def payment_reject(*, actor, payment: Payment, reason: str, expected_version=None) -> Payment:
    """Finance found no such money: the registration is closed, never counted."""
    require_perm(actor, "finance.approve")
    _check_visible(actor, payment)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the payment is rejected."), field="reason")
    with transaction.atomic():
        _check_no_pending_approval(_locked(Payment, payment.pk))
        current = _transition(
            payment,
            actor=actor,
            allowed_from=[PaymentStatus.PENDING],
            to_status=PaymentStatus.REJECTED,
            expected_version=expected_version,
            decision_note=reason[:500],
        )
        _notify_on_commit(
            {current.owner, current.created_by} - {None},
            title=_("Payment not confirmed: %(number)s, %(amount)s")
            % {"number": current.number, "amount": _fmt(current.amount)},
            body=reason,
            url=current.get_absolute_url(),
            level="warning",
        )
    return current


def payment_cancel(*, actor, payment: Payment, expected_version=None) -> Payment:
    """The person who registered a payment takes it back before it is confirmed (finance may
    too). A payment waiting for approval is withdrawn from it by the person who submitted."""
    require_perm(actor, "finance.add")
    _check_visible(actor, payment)
    if payment.created_by_id != actor.pk and not has_perm(actor, "finance.approve"):
        raise PermissionRefused(_("Only the person who registered it can cancel it."))
    with transaction.atomic():
        current = _locked(Payment, payment.pk)
        _check_version(current, expected_version)
        request = approval_pending_for_document(current)
        if request is not None:
            approval_withdraw(actor=actor, request=request)  # its callback cancels the payment
            current.refresh_from_db()
            return current
        return _transition(
            current,
            actor=actor,
            allowed_from=[PaymentStatus.PENDING],
            to_status=PaymentStatus.CANCELLED,
        )


def payment_reverse(
    *, actor, payment: Payment, reason: str, expected_version: int | None = None
) -> Payment:
    """Correct a confirmed payment by a reversal entry of the opposite amount; both stay.

    Returns the reversal entry. Refused for a payment with refunds (open or made): the
    refund is the correction there.
    """
    require_perm(actor, "finance.approve")
    _check_visible(actor, payment)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the payment is reversed."), field="reason")
    if len(reason) > 500:
        raise ServiceError(_("At most %(max)s characters.") % {"max": 500}, field="reason")
    with transaction.atomic():
        current = _locked(Payment, payment.pk)
        ledger = ledger_locked(_contract(current.contract_id))
        _check_version(current, expected_version)
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
        if ledger.received_amount - current.amount < 0:  # guarded by the rules above
            raise ServiceError(
                _("The contract would show less than nothing received."),
                field="status",
                code="negative_received",
            )
        reversal = Payment.objects.create(
            number=document_number_next(prefix=PAYMENT_PREFIX),
            contract_id=current.contract_id,
            instalment=current.instalment,
            kind=PaymentKind.REVERSAL,
            reverses=current,
            amount=-current.amount,
            currency=current.currency,
            received_on=timezone.localdate(),
            method=current.method,
            account=current.account,
            reference=current.reference,
            note=reason,
            status=PaymentStatus.CONFIRMED,
            owner=current.owner,
            department=current.department,
            confirmed_by=actor,
            confirmed_at=timezone.now(),
            created_by=actor,
            updated_by=actor,
        )
        Payment.objects.filter(pk=current.pk).update(
            version=F("version") + 1, updated_at=timezone.now(), updated_by=actor
        )
        _ledger_add(ledger, confirmed_amount=reversal.amount)
        collections_count(
            amount=reversal.amount,
            on=reversal.received_on,
            owner_id=reversal.owner_id,
            department_id=reversal.department_id,
        )
        _audit(user=actor, action="create", obj=reversal, note=reason)
        _audit(
            user=actor,
            action="reverse",
            obj=current,
            changes={"reversed_by": [None, reversal.number]},
            note=reason,
        )
        _notify_on_commit(
            [current.owner],
            title=_("Payment reversed: %(number)s, %(amount)s")
            % {"number": current.number, "amount": _fmt(current.amount)},
            body=reason,
            url=reversal.get_absolute_url(),
            level="warning",
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
        contract_id=contract.pk,
        status__in=[InvoiceStatus.PENDING, InvoiceStatus.APPROVED, InvoiceStatus.ISSUED],
    )
    if exclude_pk:
        queryset = queryset.exclude(pk=exclude_pk)
    return queryset.aggregate(total=Sum("amount"))["total"] or ZERO


def _overinvoicing(contract: Contract, committed: Decimal) -> ServiceError:
    return ServiceError(
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


def _check_not_overinvoiced(contract: Contract, amount: Decimal, *, exclude_pk=None) -> None:
    committed = _invoice_committed(contract, exclude_pk=exclude_pk)
    if committed + amount > contract.total_amount:
        raise _overinvoicing(contract, committed)


def _invoice_clean(data: dict[str, Any]) -> dict[str, Any]:
    invoice_type = data.get("invoice_type") or InvoiceType.VAT_ORDINARY
    if invoice_type not in InvoiceType.values:
        raise ServiceError(_("Choose the invoice type."), field="invoice_type")
    amount = _money(data.get("amount"), field="amount")
    tax_number = (data.get("tax_number") or "").strip().upper()
    if not TAX_NUMBER_RE.match(tax_number):
        raise ServiceError(
            _("Enter the buyer's taxpayer identification number (15 to 20 letters and digits)."),
            field="tax_number",
        )
    texts = {}
    for name, limit in (
        ("title", 200),
        ("address_phone", 300),
        ("bank_account", 200),
        ("note", 500),
    ):
        texts[name] = (data.get(name) or "").strip()
        if len(texts[name]) > limit:
            raise ServiceError(
                _("At most %(max)s characters.") % {"max": limit}, field=name, code="too_long"
            )
    if not texts["title"]:
        raise ServiceError(_("Enter the invoice title (the buyer's name)."), field="title")
    if invoice_type == InvoiceType.VAT_SPECIAL and not (
        texts["address_phone"] and texts["bank_account"]
    ):
        field = "bank_account" if texts["address_phone"] else "address_phone"
        raise ServiceError(
            _("A VAT special invoice needs the buyer's address, phone, bank and account."),
            field=field,
        )
    return {"invoice_type": invoice_type, "amount": amount, "tax_number": tax_number, **texts}


def invoice_request(*, actor, data: dict[str, Any]) -> Invoice:
    """Ask finance for an invoice; it goes through the invoice approval rule.

    Refused when the contract's issued and requested invoices would exceed its amount.
    """
    require_perm(actor, "finance.add")
    contract = data.get("contract")
    if not isinstance(contract, Contract):
        raise ServiceError(_("Choose a contract."), field="contract")
    contract = _billable_contract(actor, contract)
    cleaned = _invoice_clean(data)
    with transaction.atomic():
        ledger_locked(contract)
        contract = _billable_contract(actor, contract)
        _check_not_overinvoiced(contract, cleaned["amount"])
        invoice = Invoice.objects.create(
            number=document_number_next(prefix=INVOICE_PREFIX),
            contract=contract,
            currency=contract.currency,
            owner=contract.owner,
            department=contract.department,
            created_by=actor,
            updated_by=actor,
            **cleaned,
        )
        _audit(user=actor, action="create", obj=invoice)
        approval_submit(actor=actor, document_type=INVOICE_DOCUMENT_TYPE, document=invoice)
        invoice.refresh_from_db()  # approved at once when no rule applies (finance is told)
    return invoice


def _notify_invoice_to_issue(invoice: Invoice) -> None:
    _notify_on_commit(
        finance_staff(document=invoice),
        title=_("Invoice to issue: %(number)s, %(amount)s")
        % {"number": invoice.number, "amount": _fmt(invoice.amount)},
        url=invoice.get_absolute_url(),
    )


def _invoice_on(status: str):
    def change(invoice: Invoice, request, actor) -> None:
        current = _transition(
            invoice, actor=actor, allowed_from=[InvoiceStatus.PENDING], to_status=status
        )
        if status == InvoiceStatus.APPROVED:
            _notify_invoice_to_issue(current)

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
    if len(invoice_number) > 50:
        raise ServiceError(_("At most %(max)s characters.") % {"max": 50}, field="invoice_number")
    if issued_on is not None:
        issued_on = _date(issued_on, field="issued_on", message=_("Enter the date of issue."))
    issued_on = issued_on or timezone.localdate()
    with transaction.atomic():
        current = _locked(Invoice, invoice.pk)
        contract = _contract(current.contract_id)
        ledger = ledger_locked(contract)
        _check_version(current, expected_version)
        if current.status != InvoiceStatus.APPROVED:
            raise _invalid_status(current)
        if issued_on < timezone.localtime(current.created_at).date():
            raise ServiceError(
                _("The invoice cannot be issued before it was requested."), field="issued_on"
            )
        if Invoice.objects.filter(invoice_number=invoice_number).exclude(pk=current.pk).exists():
            raise ServiceError(
                _("This invoice number is already recorded."), field="invoice_number"
            )
        if ledger.invoiced_amount + current.amount > contract.total_amount:
            raise _overinvoicing(contract, ledger.invoiced_amount)
        try:
            with transaction.atomic():
                current = _transition(
                    current,
                    actor=actor,
                    allowed_from=[InvoiceStatus.APPROVED],
                    to_status=InvoiceStatus.ISSUED,
                    invoice_number=invoice_number,
                    issued_on=issued_on,
                    issued_by=actor,
                )
        except IntegrityError as exc:  # the same number issued at the same moment elsewhere
            raise ServiceError(
                _("This invoice number is already recorded."), field="invoice_number"
            ) from exc
        _ledger_add(ledger, invoiced_amount=current.amount)
        _notify_on_commit(
            [current.owner],
            title=_("Invoice issued: %(number)s") % {"number": current.invoice_number},
            url=current.get_absolute_url(),
            level="success",
        )
    return current


def invoice_void(*, actor, invoice: Invoice, reason: str, expected_version=None) -> Invoice:
    """Void an issued (or approved, not yet issued) invoice; an issued one stops counting."""
    require_perm(actor, "finance.change")
    _check_visible(actor, invoice)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the invoice is voided."), field="reason")
    if len(reason) > 500:
        raise ServiceError(_("At most %(max)s characters.") % {"max": 500}, field="reason")
    with transaction.atomic():
        current = _locked(Invoice, invoice.pk)
        ledger = ledger_locked(_contract(current.contract_id))
        was_issued = current.status == InvoiceStatus.ISSUED
        current = _transition(
            current,
            actor=actor,
            allowed_from=[InvoiceStatus.APPROVED, InvoiceStatus.ISSUED],
            to_status=InvoiceStatus.VOIDED,
            expected_version=expected_version,
            void_reason=reason,
        )
        if was_issued:
            _ledger_add(ledger, invoiced_amount=-current.amount)
        _notify_on_commit(
            [current.owner],
            title=_("Invoice voided: %(number)s") % {"number": current},
            body=reason,
            url=current.get_absolute_url(),
            level="warning",
        )
    return current


# --- refunds --------------------------------------------------------------------------------


def _refunds_total(queryset, statuses) -> Decimal:
    return queryset.filter(status__in=statuses).aggregate(total=Sum("amount"))["total"] or ZERO


def _check_refundable(
    ledger: ContractLedger, payment: Payment, amount: Decimal, *, exclude_pk=None
) -> None:
    """No refund beyond what the payment brought in, nor beyond what the contract still
    holds, counting refunds already requested and not yet decided."""
    open_statuses = [RefundStatus.PENDING, RefundStatus.APPROVED]
    of_payment = Refund.objects.filter(payment=payment)
    of_contract = Refund.objects.filter(contract_id=payment.contract_id)
    if exclude_pk:
        of_payment = of_payment.exclude(pk=exclude_pk)
        of_contract = of_contract.exclude(pk=exclude_pk)
    room_payment = payment.amount - _refunds_total(of_payment, open_statuses)
    room_contract = ledger.received_amount - _refunds_total(of_contract, [RefundStatus.PENDING])
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
    if len(reason) > 500:
        raise ServiceError(_("At most %(max)s characters.") % {"max": 500}, field="reason")
    with transaction.atomic():
        payment = _locked(Payment, payment.pk)  # as it is now; a reversal waits for us
        contract = _contract(payment.contract_id)
        ledger = ledger_locked(contract)
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
            reason=reason,
            owner=contract.owner,
            department=contract.department,
            created_by=actor,
            updated_by=actor,
        )
        _audit(user=actor, action="create", obj=refund, note=reason)
        approval_submit(actor=actor, document_type=REFUND_DOCUMENT_TYPE, document=refund)
        refund.refresh_from_db()
    return refund


def _refund_on_approved(refund: Refund, request, actor) -> None:
    current = _locked(Refund, refund.pk)  # the engine holds it already; keeps the lock order
    ledger = ledger_locked(_contract(current.contract_id))
    payment = Payment.objects.get(pk=current.payment_id)
    _check_refundable(ledger, payment, current.amount, exclude_pk=current.pk)
    current = _transition(
        current,
        actor=actor,
        allowed_from=[RefundStatus.PENDING],
        to_status=RefundStatus.APPROVED,
        refunded_on=timezone.localdate(),
    )
    _ledger_add(ledger, refunded_amount=current.amount)
    collections_count(
        amount=-current.amount,
        on=current.refunded_on,
        owner_id=current.owner_id,
        department_id=current.department_id,
    )
    _notify_on_commit(
        finance_staff(document=current),
        title=_("Refund to pay: %(number)s, %(amount)s")
        % {"number": current.number, "amount": _fmt(current.amount)},
        url=current.get_absolute_url(),
    )


def _refund_on(status: str):
    def change(refund: Refund, request, actor) -> None:
        _transition(refund, actor=actor, allowed_from=[RefundStatus.PENDING], to_status=status)

    return change


# --- expense claims -------------------------------------------------------------------------


def _expense_clean(actor, data: dict[str, Any]) -> dict[str, Any]:
    from kehu.customers.models import Customer
    from kehu.system.models import DictionaryItem

    category = data.get("category")
    if (
        not isinstance(category, DictionaryItem)
        or category.dictionary.code != "expense_category"
        or not category.is_active
    ):
        raise ServiceError(_("Choose a category."), field="category")
    amount = _money(data.get("amount"), field="amount")
    spent_on = _date(
        data.get("spent_on"), field="spent_on", message=_("Enter the date of the expense.")
    )
    description = (data.get("description") or "").strip()
    if not description:
        raise ServiceError(_("Describe the expense."), field="description")
    if len(description) > 2000:
        raise ServiceError(_("At most %(max)s characters.") % {"max": 2000}, field="description")
    customer, contract = data.get("customer"), data.get("contract")
    if customer is not None and (
        not isinstance(customer, Customer)
        or not visible_to(Customer.objects.filter(pk=customer.pk), actor).exists()
    ):
        raise ServiceError(_("Choose one of your customers."), field="customer")
    if contract is not None:
        if (
            not isinstance(contract, Contract)
            or not visible_to(Contract.objects.filter(pk=contract.pk), actor).exists()
        ):
            raise ServiceError(_("Choose one of your contracts."), field="contract")
        if customer is not None and contract.customer_id != customer.pk:
            raise ServiceError(_("This contract belongs to another customer."), field="contract")
        customer = customer or contract.customer
    return {
        "category": category,
        "amount": amount,
        "spent_on": spent_on,
        "description": description,
        "customer": customer,
        "contract": contract,
    }


def _check_claimant(actor, claim: ExpenseClaim, message: str) -> None:
    if claim.owner_id != actor.pk:
        raise PermissionRefused(message)


def expense_change_allowed_check(*, actor, claim: ExpenseClaim) -> None:
    """Raise unless ``actor`` is the claimant who may edit ``claim``; callers check this
    before reading the input, so a refusal reads as one whatever was sent."""
    require_perm(actor, "finance.add")
    _check_visible(actor, claim)
    _check_claimant(actor, claim, _("Only the employee who claims it can change it."))


def expense_create(*, actor, data: dict[str, Any]) -> ExpenseClaim:
    """A draft claim of the actor's own expenses."""
    require_perm(actor, "finance.add")
    cleaned = _expense_clean(actor, data)
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
    return claim


def expense_update(
    *, actor, claim: ExpenseClaim, expected_version: int | None, data: dict[str, Any]
) -> ExpenseClaim:
    """The claimant edits a draft or rejected claim."""
    expense_change_allowed_check(actor=actor, claim=claim)
    if expected_version is None:
        raise ServiceError(field="version", code="required")
    cleaned = _expense_clean(actor, data)
    with transaction.atomic():
        current = _locked(ExpenseClaim, claim.pk)
        _check_version(current, expected_version)
        if current.status not in (ExpenseStatus.DRAFT, ExpenseStatus.REJECTED):
            raise ServiceError(
                _("A claim awaiting approval, approved or paid cannot be changed."),
                field="status",
                code="invalid_status",
            )
        before = {name: str(getattr(current, name)) for name in cleaned}
        ExpenseClaim.objects.filter(pk=current.pk).update(
            version=F("version") + 1, updated_by=actor, updated_at=timezone.now(), **cleaned
        )
        current.refresh_from_db()
        changes = {
            name: [before[name], str(getattr(current, name))]
            for name in cleaned
            if before[name] != str(getattr(current, name))
        }
        _audit(user=actor, action="change", obj=current, changes=changes)
    return current


def expense_submit(*, actor, claim: ExpenseClaim, expected_version=None) -> ExpenseClaim:
    """Send a claim for approval (department manager, then finance, by default)."""
    require_perm(actor, "finance.add")
    _check_visible(actor, claim)
    _check_claimant(actor, claim, _("Only the employee who claims it can submit it."))
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
        # Approved claims count in the dashboard's expenses (paying one changes nothing
        # there; drafts, pending and rejected claims are not counted).
        with aggregates_tracked(expenses=[claim.pk]):
            current = _transition(
                claim, actor=actor, allowed_from=[ExpenseStatus.PENDING], to_status=status
            )
        if status == ExpenseStatus.APPROVED:
            _notify_on_commit(
                finance_staff(document=current),
                title=_("Expense claim to pay: %(number)s, %(amount)s")
                % {"number": current.number, "amount": _fmt(current.amount)},
                url=current.get_absolute_url(),
            )

    return change


def expense_pay(
    *, actor, claim: ExpenseClaim, paid_on: datetime.date | None = None, expected_version=None
) -> ExpenseClaim:
    """Finance has paid an approved claim out."""
    require_perm(actor, "finance.change")
    _check_visible(actor, claim)
    if paid_on is not None:
        paid_on = _date(paid_on, field="paid_on", message=_("Enter the date it was paid."))
    paid_on = paid_on or timezone.localdate()
    with transaction.atomic():
        if paid_on < _locked(ExpenseClaim, claim.pk).spent_on:
            raise ServiceError(
                _("The claim cannot be paid before the expense was made."), field="paid_on"
            )
        current = _transition(
            claim,
            actor=actor,
            allowed_from=[ExpenseStatus.APPROVED],
            to_status=ExpenseStatus.PAID,
            expected_version=expected_version,
            paid_on=paid_on,
            paid_by=actor,
        )
        _notify_on_commit(
            [current.owner],
            title=_("Expense claim paid: %(number)s, %(amount)s")
            % {"number": current.number, "amount": _fmt(current.amount)},
            url=current.get_absolute_url(),
            level="success",
        )
    return current


# --- reminders ------------------------------------------------------------------------------

# Days before an instalment's due date that its owner and finance are reminded.
RECEIVABLE_REMINDER_DAYS = 7


def _instalment_line(contract: Contract, state) -> str:
    return _("%(contract)s #%(n)s %(customer)s: %(amount)s outstanding, due %(date)s") % {
        "contract": contract.number,
        "n": state.instalment.sequence,
        "customer": contract.customer,
        "amount": _fmt(state.outstanding),
        "date": state.instalment.due_date.isoformat(),
    }


def receivable_reminders_send(
    *, today: datetime.date | None = None, days_before: int = RECEIVABLE_REMINDER_DAYS
) -> int:
    """Remind each contract owner and finance of instalments due in ``days_before`` days and
    of those that fell overdue today (due yesterday, not received in full).

    Stateless: each instalment matches each kind on one exact day, so the daily run tells of
    it once. One notice per recipient and kind. Returns how many instalments were told of.
    """
    from django.urls import reverse

    from kehu.finance.selectors import instalments_due_on

    today = today or timezone.localdate()
    kinds = {
        "due": instalments_due_on(day=today + datetime.timedelta(days=days_before), today=today),
        "overdue": instalments_due_on(day=today - datetime.timedelta(days=1), today=today),
    }
    found = [item for items in kinds.values() for item in items]
    if not found:
        return 0
    contract_ids = {contract.pk for contract, _state in found}
    staff_sees = {
        user: set(
            visible_to(Contract.objects.filter(pk__in=contract_ids), user).values_list(
                "pk", flat=True
            )
        )
        for user in finance_staff()
    }
    with transaction.atomic():
        for kind, items in kinds.items():
            by_recipient: dict[Any, list] = {}
            for contract, state in items:
                recipients = {contract.owner} | {
                    user for user, seen in staff_sees.items() if contract.pk in seen
                }
                for user in recipients:
                    by_recipient.setdefault(user, []).append((contract, state))
            for user, mine in by_recipient.items():
                _notify([user], **_reminder_text(kind, mine, days_before, reverse))
    return len(found)


def _reminder_text(kind: str, items: list, days_before: int, reverse) -> dict[str, str]:
    total = sum((state.outstanding for _contract, state in items), ZERO)
    body = "\n".join(_instalment_line(contract, state) for contract, state in items[:20])
    if len(items) == 1:
        contract, state = items[0]
        url = reverse("finance:plan_detail", args=[contract.pk])
        values = {
            "contract": contract.number,
            "n": state.instalment.sequence,
            "customer": contract.customer,
            "amount": _fmt(state.outstanding),
            "days": days_before,
        }
        if kind == "due":
            title = _(
                "Instalment due in %(days)s days: %(contract)s #%(n)s %(customer)s, %(amount)s"
            )
        else:
            title = _("Instalment overdue: %(contract)s #%(n)s %(customer)s, %(amount)s")
        return {"title": title % values, "body": body, "url": url, "level": _level(kind)}
    values = {"count": len(items), "amount": _fmt(total), "days": days_before}
    if kind == "due":
        title = _("%(count)s instalments due in %(days)s days, %(amount)s outstanding")
    else:
        title = _("%(count)s instalments overdue since today, %(amount)s outstanding")
    return {
        "title": title % values,
        "body": body,
        "url": reverse("finance:aging"),
        "level": _level(kind),
    }


def _level(kind: str) -> str:
    return "warning" if kind == "overdue" else "info"
