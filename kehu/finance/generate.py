"""Bulk finance history for generated contracts: receivable plans, payments, ledgers.

Plugs into ``kehu.sales.generate.sales_history_generate`` as a ``ContractSink``: for each
contract it is shown, it writes what the finance services would have left behind:

- a receivable plan following the contract's payment terms (advance and balance, payment on
  delivery, three stages with a retention, monthly account), instalments adding up to the
  contract total exactly (``receivable_plan_split``), in due-date order;
- confirmed payments against the instalments, numbered HK-<year of receipt>-…: most on time,
  some late, a few in two parts; customers with a high ``risk`` pay later and sometimes stop
  paying, so some instalments are still overdue when the history ends;
- issued VAT invoices (KP-<year of request>-…) for most of the money: after each payment
  for most terms, at delivery before payment for monthly accounts ("pay against the
  invoice"); never more than the contract amount in total;
- the contract's ``ContractLedger`` row: confirmed amount the sum of those payments,
  invoiced amount the sum of those invoices, nothing refunded (the history has no refunds).

Like the payments, the history's invoices carry no approval request (imported history).

Rows are buffered and written with the sales rows (COPY on PostgreSQL, ``executemany`` on
SQLite). Every decision comes from a random stream derived from the seed and the contract
id, so ``plan`` (the dating pass) and ``add`` (the writing pass) agree.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from kehu.core.bulk import Cells, IdBlocks, RowWriter, sequences_reset
from kehu.core.exceptions import ServiceError
from kehu.finance.models import (
    ContractLedger,
    Invoice,
    InvoiceStatus,
    InvoiceType,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReceivableInstalment,
)
from kehu.finance.services import INVOICE_PREFIX, PAYMENT_PREFIX, receivable_plan_split
from kehu.sales.generate import ContractFact

SEED = 20260702
# terms key → (percentage, due from "signed" or "delivered", days after, note)
PLANS: dict[str, list[tuple[int, str, int, str]]] = {
    "advance_30": [(30, "signed", 7, "预付款"), (70, "delivered", 30, "尾款")],
    "on_delivery": [(100, "delivered", 30, "全款")],
    "three_stage": [
        (40, "signed", 7, "预付款"),
        (50, "delivered", 15, "到货款"),
        (10, "signed", 365, "质保金"),
    ],
    "monthly": [(100, "delivered", 60, "月结")],
}
METHODS = [("bank_transfer", 80), ("acceptance_bill", 12), ("wechat_pay", 4), ("alipay", 4)]
INVOICED_SHARE = 0.85  # of payments followed by an invoice (the rest: customers who never ask)
BANKS = ["中国工商银行", "中国建设银行", "招商银行", "中国银行", "交通银行", "浦发银行"]


@dataclass(frozen=True)
class _Instalment:
    sequence: int
    due: datetime.date
    amount: Decimal
    note: str


@dataclass(frozen=True)
class _Payment:
    instalment: int  # sequence
    received_on: datetime.date
    amount: Decimal
    method: str
    reference: str
    registered: datetime.datetime
    confirmed: datetime.datetime


@dataclass(frozen=True)
class _Invoice:
    requested: datetime.datetime
    issued_on: datetime.date
    amount: Decimal
    special: bool  # VAT special invoice (needs the buyer's address and bank account)


class FinanceHistory:
    """The finance rows of generated contracts (a ``ContractSink``).

    ``confirmer`` is the finance user recorded as confirming the payments (None: nobody
    named). Payments never happen after the contract's ``fact.end``.
    """

    def __init__(self, *, seed: int = SEED, confirmer=None, ids: IdBlocks | None = None) -> None:
        self.seed = seed
        self.confirmer_id = getattr(confirmer, "pk", None)
        self.tz = timezone.get_current_timezone()
        self.cells = Cells()
        self.ids = ids or IdBlocks()  # shared with the sales generator
        columns = {
            "receivable instalments": (ReceivableInstalment, [
                "id", "created_at", "updated_at", "created_by_id", "updated_by_id",
                "contract_id", "sequence", "due_date", "amount", "note",
            ]),
            "payments": (Payment, [
                "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
                "number", "contract_id", "instalment_id", "kind", "reverses_id", "amount",
                "currency", "received_on", "method", "account", "reference", "note", "status",
                "owner_id", "department_id", "confirmed_by_id", "confirmed_at",
                "decision_note",
            ]),
            "invoices": (Invoice, [
                "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
                "number", "contract_id", "invoice_type", "title", "tax_number",
                "address_phone", "bank_account", "amount", "currency", "note", "status",
                "invoice_number", "issued_on", "issued_by_id", "void_reason", "owner_id",
                "department_id",
            ]),
            "contract ledgers": (ContractLedger, [
                "version", "contract_id", "confirmed_amount", "refunded_amount",
                "invoiced_amount", "updated_at",
            ]),
        }  # fmt: skip
        self.writers = {key: RowWriter(model, cols) for key, (model, cols) in columns.items()}
        self.rows: dict[str, list[tuple]] = {key: [] for key in self.writers}

    # --- simulation -----------------------------------------------------------------------

    def _moment(self, day: datetime.date, hour: int, rng: random.Random) -> datetime.datetime:
        return datetime.datetime(
            day.year, day.month, day.day, hour, rng.randint(0, 59), tzinfo=self.tz
        )

    def _simulate(
        self, fact: ContractFact
    ) -> tuple[list[_Instalment], list[_Payment], list[_Invoice]]:
        rng = random.Random(self.seed * 1_000_033 + fact.key)
        stages = PLANS.get(fact.terms, PLANS["on_delivery"])
        try:
            amounts = receivable_plan_split(
                total=fact.total, percentages=[Decimal(share) for share, *_rest in stages]
            )
        except ServiceError:  # too small to split: one instalment
            stages, amounts = PLANS["on_delivery"], [fact.total]
        delivered = fact.delivered_on or fact.signed_on + datetime.timedelta(days=30)
        planned = []
        for (_share, base, days, note), amount in zip(stages, amounts, strict=True):
            start = fact.signed_on if base == "signed" else delivered
            planned.append((start + datetime.timedelta(days=days), amount, note))
        planned.sort(key=lambda entry: entry[0])
        instalments = [
            _Instalment(sequence, due, amount, note)
            for sequence, (due, amount, note) in enumerate(planned, start=1)
        ]

        payments: list[_Payment] = []
        stopped = False
        latest = fact.signed_on
        for instalment in instalments:
            roll = rng.random()
            if stopped or roll < 0.01 + 0.3 * fact.risk**1.5:
                stopped = True  # a customer who stops paying pays nothing more
                continue
            if roll < 0.13 + 0.45 * fact.risk:
                # Risky customers are late by longer: weeks, then months.
                longer = rng.random() < 0.3 + 0.5 * fact.risk
                delay = rng.randint(31, 150) if longer else rng.randint(8, 30)
            else:
                delay = rng.randint(-7, 3)
            received = max(instalment.due + datetime.timedelta(days=delay), latest)
            parts = [instalment.amount]
            if rng.random() < 0.08 and instalment.amount >= Decimal("2.00"):
                first = (instalment.amount * Decimal(rng.randint(50, 70)) / 100).quantize(
                    Decimal("0.01")
                )
                parts = [first, instalment.amount - first]
            for index, amount in enumerate(parts):
                if index:
                    received += datetime.timedelta(days=rng.randint(10, 40))
                while received.weekday() >= 5:  # banks credit on working days
                    received += datetime.timedelta(days=1)
                if received > fact.end:
                    stopped = True  # not received yet when the history ends
                    break
                latest = received
                registered = self._moment(received, rng.randint(9, 11), rng)
                confirmed = registered + datetime.timedelta(hours=rng.randint(2, 26))
                confirmed = min(
                    confirmed, datetime.datetime.combine(fact.end, datetime.time(23), self.tz)
                )
                method = rng.choices([m for m, _w in METHODS], [w for _m, w in METHODS])[0]
                payments.append(
                    _Payment(
                        instalment=instalment.sequence,
                        received_on=received,
                        amount=amount,
                        method=method,
                        reference=f"{received:%Y%m%d}{rng.randint(10**7, 10**8 - 1)}",
                        registered=registered,
                        confirmed=confirmed,
                    )
                )
            if stopped:
                break
        return instalments, payments, self._invoices(fact, instalments, payments, rng)

    def _invoices(
        self,
        fact: ContractFact,
        instalments: list[_Instalment],
        payments: list[_Payment],
        rng: random.Random,
    ) -> list[_Invoice]:
        """Invoices for most of the money: monthly accounts are invoiced on delivery (they
        pay against the invoice), other terms after each payment. Never over the amount."""
        special = rng.random() < 0.7
        wanted: list[tuple[datetime.date, Decimal]] = []
        if fact.terms == "monthly" and fact.delivered_on is not None:
            if rng.random() < 0.95:
                wanted = [
                    (fact.delivered_on + datetime.timedelta(days=rng.randint(1, 5)), i.amount)
                    for i in instalments
                ]
        else:
            wanted = [
                (p.received_on + datetime.timedelta(days=rng.randint(0, 10)), p.amount)
                for p in payments
                if rng.random() < INVOICED_SHARE
            ]
        invoices = []
        total = Decimal("0.00")
        for day, amount in wanted:
            issued_on = day + datetime.timedelta(days=rng.randint(0, 3))
            if issued_on > fact.end or total + amount > fact.total:
                continue
            total += amount
            invoices.append(
                _Invoice(self._moment(day, rng.randint(9, 16), rng), issued_on, amount, special)
            )
        return invoices

    # --- the sink -------------------------------------------------------------------------

    def plan(self, fact: ContractFact) -> list[tuple[str, datetime.date]]:
        _instalments, payments, invoices = self._simulate(fact)
        return [(PAYMENT_PREFIX, payment.received_on) for payment in payments] + [
            (INVOICE_PREFIX, invoice.requested.date()) for invoice in invoices
        ]

    def _next(self, model) -> int:
        return self.ids.take(model)

    def add(self, fact: ContractFact, number: Callable[[str, datetime.date], str]) -> None:
        c = self.cells
        instalments, payments, invoices = self._simulate(fact)
        planned_at = fact.approved_at + datetime.timedelta(hours=1)
        ids: dict[int, int] = {}
        for instalment in instalments:
            ids[instalment.sequence] = self._next(ReceivableInstalment)
            self.rows["receivable instalments"].append(
                (
                    ids[instalment.sequence], c.dt(planned_at), c.dt(planned_at), fact.owner_id,
                    fact.owner_id, fact.id, instalment.sequence, c.day(instalment.due),
                    c.dec(instalment.amount), instalment.note,
                )
            )  # fmt: skip
        confirmed_total = Decimal("0.00")
        updated: Any = planned_at
        for payment in payments:
            confirmed_total += payment.amount
            updated = max(updated, payment.confirmed)
            self.rows["payments"].append(
                (
                    self._next(Payment), c.dt(payment.registered), c.dt(payment.confirmed),
                    fact.owner_id, self.confirmer_id, 2,
                    number(PAYMENT_PREFIX, payment.received_on), fact.id,
                    ids[payment.instalment], PaymentKind.PAYMENT.value, None,
                    c.dec(payment.amount), fact.currency, c.day(payment.received_on),
                    payment.method, "", payment.reference, "", PaymentStatus.CONFIRMED.value,
                    fact.owner_id, fact.department_id, self.confirmer_id, c.dt(payment.confirmed),
                    "",
                )
            )  # fmt: skip
        assert confirmed_total <= fact.total
        invoiced_total = Decimal("0.00")
        tax_number = f"914403{fact.customer_id:011d}X"  # 18 characters, like a credit code
        bank = f"{BANKS[fact.customer_id % len(BANKS)]} 6222{fact.customer_id:015d}"
        for invoice in invoices:
            invoiced_total += invoice.amount
            request_number = number(INVOICE_PREFIX, invoice.requested.date())
            # The tax office's number: 20 digits, from the request number (unique with it).
            year, serial = request_number.split("-")[1:]
            issued = datetime.datetime.combine(invoice.issued_on, datetime.time(15), self.tz)
            kind = InvoiceType.VAT_SPECIAL if invoice.special else InvoiceType.VAT_ORDINARY
            updated = max(updated, issued)
            self.rows["invoices"].append(
                (
                    self._next(Invoice), c.dt(invoice.requested), c.dt(issued), fact.owner_id,
                    self.confirmer_id, 3, request_number, fact.id,
                    kind.value,
                    fact.customer_name[:200] or fact.number, tax_number,
                    fact.customer_address[:300] if invoice.special else "",
                    bank if invoice.special else "", c.dec(invoice.amount), fact.currency, "",
                    InvoiceStatus.ISSUED.value, f"{year[2:]}44{int(serial):016d}",
                    c.day(invoice.issued_on), self.confirmer_id, "", fact.owner_id,
                    fact.department_id,
                )
            )  # fmt: skip
        assert invoiced_total <= fact.total
        self.rows["contract ledgers"].append(
            (
                1 + len(payments) + len(invoices), fact.id, c.dec(confirmed_total),
                c.dec(Decimal("0.00")), c.dec(invoiced_total), c.dt(updated),
            )
        )  # fmt: skip

    def flush(self) -> dict[str, int]:
        counts = {}
        for key, writer in self.writers.items():
            counts[key] = writer.write(self.rows[key])
            self.rows[key] = []
        return counts

    def finish(self) -> dict[str, int]:
        sequences_reset([ReceivableInstalment, Payment, Invoice])
        return {}
