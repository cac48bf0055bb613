"""Two years of sales and money for many customers at once, vectorised (``manage.py generate``).

The demo's history (``kehu.sales.generate``) simulates one customer at a time in Python,
with an event per status change and numbers in date order; that is about 25,000 rows per
second. This module draws the same kinds of rows for a batch of customers at a time with
numpy (column arrays: integer cents for money with ``kehu.sales.totals.line_amounts``'
rounding, int64 seconds for times, int64 days for dates) and hands whole columns to the
database: ``executemany`` over zipped lists on SQLite, COPY of pre-formatted text blocks on
PostgreSQL, sent from a thread so the server loads one batch while Python draws the next.

What it writes, as the services would have left it:

- contracts in force (active, or completed when every call-off was delivered), each with an
  approval request approved automatically (``HISTORY_RULE_NAME``: a submit and an
  auto-approve action) and one document event (its current status);
- frame agreements: a contract is ordered in one to six call-offs (orders), each taking a
  share of every contract line, so contracts are fewer than orders; contract lines ordered
  in full, priced exactly as ``line_amounts`` prices them, totals the sums of the lines;
- orders shipped (some in two parts) and mostly completed, one event each, shipments with
  lines and ``order_shipment`` stock movements; monthly purchase receipts bring in what each
  month ships, so stock never goes below zero; balances replayed afterwards;
- receivable plans by payment terms (instalments add up to the contract), confirmed
  payments (on time, late, in two parts; risky customers later or never), issued invoices
  (after payment, or on delivery for monthly accounts) and the contract ledgers; what is
  still unpaid at the end is the aging report's open receivables;
- numbers per prefix and year of the document's date, gap-free, continuing the
  ``DocumentSequence`` rows (locked for the load, moved past the numbers at the end); every
  document owned by its customer's owner and department; customers' last deal, stage and,
  where it was later than the first deal, their creation as ``customer_deal_record`` would
  leave them.

Behaviour: a share of customers buy; loyal ones over the whole period with growing orders,
lapsing ones less and less often until they stop, occasional and one-off buyers, newcomers
in the last year; order days follow the seasonal calendar (``DemandCalendar``); customers
favour a category; products sell by popularity (Zipf), some with a companion product.
Deterministic for a seed and batch size. Meant for a database nobody else writes to.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.approvals.models import (
    ApprovalAction,
    ApprovalActionKind,
    ApprovalRequest,
    ApprovalStatus,
)
from kehu.core.bulk import (
    DAY,
    CopySink,
    GenerateResult,
    IdBlocks,
    References,
    RowWriter,
    Vector,
    copy_sink,
    group_cummax,
    group_cumsum,
    sequences_reset,
    within,
)
from kehu.core.exceptions import ServiceError
from kehu.core.models import DocumentSequence
from kehu.customers.models import Contact
from kehu.finance.generate import BANKS, INVOICED_SHARE, METHODS, PLANS
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
from kehu.finance.services import INVOICE_PREFIX, PAYMENT_PREFIX
from kehu.products.models import MovementKind, Product, StockMovement, Warehouse
from kehu.sales.generate import (
    CARRIERS,
    DEALS_TABLE,
    HISTORY_RULE_NAME,
    MOVEMENT_COLUMNS,
    PAYMENT_TERMS,
    RECEIPT_REASON,
    RECEIVERS,
    SUBJECTS,
    TERMS_WEIGHTS,
    DemandCalendar,
    HistoryMix,
    customers_deals_update,
    deals_table_create,
    deals_table_drop,
    stock_levels_set,
)
from kehu.sales.models import (
    Contract,
    ContractLine,
    ContractStatus,
    DocumentEvent,
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
    ShipmentKind,
    ShipmentLine,
)
from kehu.sales.services import (
    CONTRACT_DOCUMENT_TYPE,
    CONTRACT_PREFIX,
    ORDER_PREFIX,
    SHIPMENT_PREFIX,
)

SEED = 20260801
EPOCH = datetime.date(1970, 1, 1).toordinal()
KINDS = ("loyal", "lapsing", "occasional", "one_off", "newcomer")
LOYAL, LAPSING, OCCASIONAL, ONE_OFF, NEWCOMER = range(5)
# Purchase rate relative to a loyal customer's (orders a year, before the scale that makes
# the average ``orders_per`` per customer).
RATE = np.array([1.0, 0.8, 0.25, 0.0, 1.2])
NEW_CONTRACT = np.array([0.12, 0.35, 0.5, 1.0, 0.12])  # chance an order opens a new contract
MAX_CALL_OFFS = 6
LINES = (np.array([1, 2, 3, 4]), np.array([0.45, 0.33, 0.15, 0.07]))
DISCOUNTS = (np.array([0, 3, 5, 8]), np.array([0.55, 0.2, 0.15, 0.1]))
TERMS = list(TERMS_WEIGHTS)
AUTO_APPROVE, SUBMIT = ApprovalActionKind.AUTO_APPROVE.value, ApprovalActionKind.SUBMIT.value
VAT_SPECIAL, VAT_ORDINARY = InvoiceType.VAT_SPECIAL.value, InvoiceType.VAT_ORDINARY.value

# The tables written, in the order the rows of a batch go in (parents first).
TABLES = {
    "contracts": (Contract, [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "deleted_at", "deleted_by_id", "number", "customer_id", "currency", "subtotal_amount",
        "tax_amount", "total_amount", "owner_id", "department_id", "notes", "opportunity_id",
        "quote_id", "contact_id", "title", "signed_on", "start_date", "end_date",
        "payment_terms", "status", "approved_at", "completed_at", "terminated_at",
        "termination_reason",
    ]),
    "contract lines": (ContractLine, [
        "id", "product_id", "description", "unit", "quantity", "unit_price", "discount_rate",
        "tax_rate", "subtotal", "tax_amount", "total_amount", "sort_order", "contract_id",
    ]),
    "approval requests": (ApprovalRequest, [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "document_type", "content_type_id", "object_id", "title", "amount", "currency",
        "department_id", "submitter_id", "rule_id", "rule_name", "status", "submitted_at",
        "decided_at",
    ]),
    "approval actions": (ApprovalAction, [
        "id", "request_id", "step_id", "kind", "actor_id", "comment", "at",
    ]),
    "orders": (Order, [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "deleted_at", "deleted_by_id", "number", "customer_id", "currency", "subtotal_amount",
        "tax_amount", "total_amount", "owner_id", "department_id", "notes", "contract_id",
        "title", "order_date", "ship_by", "warehouse_id", "receiver_name", "receiver_phone",
        "shipping_address", "status", "confirmed_at", "completed_at", "cancelled_at",
        "cancel_reason",
    ]),
    "order lines": (OrderLine, [
        "id", "product_id", "description", "unit", "quantity", "unit_price", "discount_rate",
        "tax_rate", "subtotal", "tax_amount", "total_amount", "sort_order", "order_id",
        "contract_line_id", "shipped_quantity", "returned_quantity",
    ]),
    "shipments": (Shipment, [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "number",
        "order_id", "kind", "warehouse_id", "shipped_on", "carrier", "tracking_number", "note",
    ]),
    "stock movements": (StockMovement, MOVEMENT_COLUMNS),
    "shipment lines": (ShipmentLine, [
        "id", "shipment_id", "order_line_id", "quantity", "stock_movement_id",
    ]),
    "document events": (DocumentEvent, [
        "id", "content_type_id", "object_id", "from_status", "to_status", "note", "actor_id",
        "at",
    ]),
    "receivable instalments": (ReceivableInstalment, [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "contract_id",
        "sequence", "due_date", "amount", "note",
    ]),
    "payments": (Payment, [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "number", "contract_id", "instalment_id", "kind", "reverses_id", "amount", "currency",
        "received_on", "method", "account", "reference", "note", "status", "owner_id",
        "department_id", "confirmed_by_id", "confirmed_at", "decision_note",
    ]),
    "invoices": (Invoice, [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "number", "contract_id", "invoice_type", "title", "tax_number", "address_phone",
        "bank_account", "amount", "currency", "note", "status", "invoice_number", "issued_on",
        "issued_by_id", "void_reason", "owner_id", "department_id",
    ]),
    "contract ledgers": (ContractLedger, [
        "version", "contract_id", "confirmed_amount", "refunded_amount", "invoiced_amount",
        "updated_at",
    ]),
}  # fmt: skip
# Models whose ids the generator hands out (the ledger's key is its contract's).
ID_MODELS = [model for key, (model, _cols) in TABLES.items() if key != "contract ledgers"]


# A batch's buyers' deals, before its rows are written: positions of the buyers (in the
# batch) with contracts, their last deal (approval) and their first contract's creation.
Deals = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


# --- numpy helpers --------------------------------------------------------------------------


def pick(rng: np.random.Generator, choices: tuple[np.ndarray, np.ndarray], size: int):
    return rng.choice(choices[0], size=size, p=choices[1])


def weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 1970-01-01 was a Thursday; 0 is Monday


def workday(days: np.ndarray) -> np.ndarray:
    """The next weekday on or after each day (offices and warehouses work on weekdays)."""
    wd = weekday(days)
    return days + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))


def years_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def months_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def strings(values: Sequence[str]) -> np.ndarray:
    table = np.empty(len(values), dtype=object)
    table[:] = list(values)
    return table


# --- inputs ---------------------------------------------------------------------------------


@dataclass
class Catalogue:
    """Goods on sale as arrays: price in cents, tax in hundredths of a percent, popularity."""

    ids: np.ndarray
    price: np.ndarray
    tax: np.ndarray
    description: np.ndarray
    unit: np.ndarray
    popular: np.ndarray  # cumulative popularity, 0 … 1
    by_category: np.ndarray  # product indexes sorted by category
    category_cum: np.ndarray  # category + cumulative popularity inside it, for searchsorted
    category_of: np.ndarray  # each product's category (0 … categories - 1)
    companion: np.ndarray  # a product index often bought with it, or -1

    @classmethod
    def of(cls, products: Sequence[Product], rng: np.random.Generator) -> Catalogue:
        goods = [p for p in sorted(products, key=lambda p: p.pk) if p.list_price > 0]
        if len(goods) < 2:
            raise ServiceError(_("Sales history needs at least two products with a list price."))
        price = [p.list_price * 100 for p in goods]
        tax = [p.tax_rate * 100 for p in goods]
        if any(v != v.to_integral_value() for v in price + tax):
            raise ServiceError(_("Product prices and tax rates must have at most two decimals."))
        n = len(goods)
        weights = 1.0 / (rng.permutation(n) + 3.0) ** 0.8  # Zipf-like popularity
        categories = sorted({p.category_id or 0 for p in goods})
        category_of = np.array([categories.index(p.category_id or 0) for p in goods])
        by_category = np.lexsort((np.arange(n), category_of))
        sorted_category, sorted_weight = category_of[by_category], weights[by_category]
        cum = np.empty(n)
        for c in range(len(categories)):
            inside = sorted_category == c
            cum[inside] = c + np.cumsum(sorted_weight[inside]) / sorted_weight[inside].sum()
            cum[np.flatnonzero(inside)[-1]] = c + 1
        # Every fourth product has a companion in another category (a cheaper one if any).
        companion = np.full(n, -1)
        for anchor in rng.choice(n, size=max(1, n // 4), replace=False).tolist():
            others = np.flatnonzero(category_of != category_of[anchor])
            if not len(others):
                others = np.flatnonzero(np.arange(n) != anchor)
            cheaper = others[
                np.array([goods[i].list_price for i in others]) < goods[anchor].list_price
            ]
            pool = cheaper if len(cheaper) else others
            companion[anchor] = pool[rng.integers(len(pool))]

        def label(p: Product) -> str:
            return " ".join(x for x in (p.name, p.specification) if x)[:300]

        return cls(
            ids=np.array([p.pk for p in goods], dtype=np.int64),
            price=np.array([int(v) for v in price], dtype=np.int64),
            tax=np.array([int(v) for v in tax], dtype=np.int64),
            description=strings([label(p) for p in goods]),
            unit=strings([(p.unit.label if p.unit_id and p.unit else "")[:20] for p in goods]),
            popular=np.cumsum(weights) / weights.sum(),
            by_category=by_category,
            category_cum=cum,
            category_of=category_of,
            companion=companion,
        )

    def popular_pick(self, u: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.popular, u), len(self.ids) - 1)

    def in_category(self, categories: np.ndarray, u: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.category_cum, categories + u, side="right")
        index = np.minimum(index, len(self.by_category) - 1)
        return self.by_category[index]


@dataclass
class Buyers:
    """The customers, in id order, as arrays (pool customers with a former owner)."""

    id: np.ndarray
    owner: np.ndarray
    department: np.ndarray  # -1: none
    created: np.ndarray  # seconds
    contact: np.ndarray  # -1: none
    name: list[str]
    address: list[str]

    def __len__(self) -> int:
        return len(self.id)

    def part(self, start: int, stop: int) -> Buyers:
        return Buyers(
            self.id[start:stop], self.owner[start:stop], self.department[start:stop],
            self.created[start:stop], self.contact[start:stop], self.name[start:stop],
            self.address[start:stop],
        )  # fmt: skip


def buyers_read(
    customers,
    departments: Mapping[int, int | None],
    pool_owners: Sequence[int],
    chunk: int = 50_000,
) -> Buyers:
    """The customers of the queryset with what the history needs (read once, up front: on
    PostgreSQL the connection is busy with COPY while the batches are drawn)."""
    ids, owners, created, names, addresses = [], [], [], [], []
    contact_of: dict[int, int] = {}
    table = connection.ops.quote_name(Contact._meta.db_table)
    last, position = 0, 0
    while True:
        rows = list(
            customers.filter(pk__gt=last)
            .order_by("pk")
            .values_list(
                "pk", "name", "owner_id", "created_at", "province", "city", "district", "street"
            )[:chunk]
        )
        if not rows:
            break
        first, last = rows[0][0], rows[-1][0]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT customer_id, id FROM {table} WHERE customer_id BETWEEN %s AND %s "
                "AND deleted_at IS NULL ORDER BY customer_id, is_primary DESC, id",
                [first, last],
            )
            for customer_id, contact_id in cursor.fetchall():
                contact_of.setdefault(customer_id, contact_id)
        for pk, name, owner_id, created_at, province, city, district, street in rows:
            position += 1
            if owner_id is None:
                if not pool_owners:
                    continue
                owner_id = pool_owners[position % len(pool_owners)]  # its former owner
            if owner_id not in departments:
                continue
            ids.append(pk)
            owners.append(owner_id)
            created.append(int(created_at.timestamp()))
            names.append(name)
            addresses.append(f"{province}{city}{district}{street}"[:300])
    department = [departments[o] for o in owners]
    return Buyers(
        id=np.array(ids, dtype=np.int64),
        owner=np.array(owners, dtype=np.int64),
        department=np.array([-1 if d is None else d for d in department], dtype=np.int64),
        created=np.array(created, dtype=np.int64),
        contact=np.array([contact_of.get(i, -1) for i in ids], dtype=np.int64),
        name=names,
        address=addresses,
    )


# --- numbers --------------------------------------------------------------------------------


class Serials:
    """Document numbers per prefix and year, continuing the locked ``DocumentSequence`` rows
    in the order generated (gap-free); ``close`` moves the sequences past them."""

    def __init__(self, prefixes: Sequence[str], years: range) -> None:
        self.years = years
        self.next: dict[tuple[str, int], int] = {}
        for prefix in prefixes:
            for year in years:
                DocumentSequence.objects.get_or_create(prefix=prefix, year=year)
                locked = DocumentSequence.objects.select_for_update().get(prefix=prefix, year=year)
                self.next[(prefix, year)] = locked.last_value
        self.base = dict(self.next)

    def take(self, prefix: str, years: np.ndarray) -> np.ndarray:
        values = np.empty(len(years), dtype=np.int64)
        for year in np.unique(years).tolist():
            if year not in self.years:
                raise RuntimeError(f"{prefix}: a document dated {year}, outside the history")
            index = np.flatnonzero(years == year)
            start = self.next[(prefix, year)]
            values[index] = start + 1 + np.arange(len(index))
            self.next[(prefix, year)] = start + len(index)
        return values

    def numbers(self, prefix: str, years: np.ndarray) -> tuple[list[str], np.ndarray]:
        values = self.take(prefix, years)
        heads = strings([f"{prefix}-{year}-" for year in self.years])
        text = np.strings.add(
            heads[years - self.years.start].astype(str),
            np.strings.zfill(values.astype(str), 6),
        )
        return text.tolist(), values

    def close(self) -> None:
        for (prefix, year), value in self.next.items():
            if value != self.base[(prefix, year)]:
                DocumentSequence.objects.filter(prefix=prefix, year=year).update(last_value=value)


# --- the history ----------------------------------------------------------------------------


class CompanyHistory:
    """Draws and writes the history batch by batch (``batch``), then the closing steps."""

    def __init__(
        self,
        *,
        start: datetime.date,
        end: datetime.date,
        seed: int,
        orders_per: float,
        mix: HistoryMix,
        catalogue: Catalogue,
        warehouse: Warehouse,
        shipper_id: int | None,
        confirmer_id: int | None,
        serials: Serials,
        ids: IdBlocks,
        references: References | None = None,
    ) -> None:
        self.start, self.end, self.seed, self.mix = start, end, seed, mix
        self.orders_per = orders_per
        self.catalogue = catalogue
        self.warehouse_id = warehouse.pk
        self.shipper_id, self.confirmer_id = shipper_id, confirmer_id
        self.serials = serials
        self.ids = ids
        self.v = Vector()
        self.d0 = start.toordinal() - EPOCH  # days since the epoch
        self.d1 = end.toordinal() - EPOCH
        tz = timezone.get_current_timezone()
        middle = datetime.datetime.combine(start, datetime.time(12))
        self.offset = int(tz.utcoffset(middle).total_seconds())  # type: ignore[union-attr]
        calendar = DemandCalendar(start, end)
        self.cumulative = np.array(calendar.cumulative)
        self.contract_type = ContentType.objects.get_for_model(Contract).pk
        self.order_type = ContentType.objects.get_for_model(Order).pk
        self.references = references
        self.writers = {
            key: RowWriter(model, cols, references) for key, (model, cols) in TABLES.items()
        }
        self.counts = dict.fromkeys(TABLES, 0)
        self.month0 = int(months_of(np.array([self.d0]))[0])
        months = int(months_of(np.array([self.d1]))[0]) - self.month0 + 1
        self.receipts = np.zeros((len(catalogue.ids), months), dtype=np.int64)
        self.deals: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.moves: list[dict[str, np.ndarray]] = []
        self.terms_text = strings([PAYMENT_TERMS[t] for t in TERMS])
        weights = np.array(list(TERMS_WEIGHTS.values()), dtype=float)
        self.terms_p = weights / weights.sum()
        self.titles = strings(
            [
                f"{year}年{subject}{'框架' if frame else ''}合同"
                for year in range(start.year, end.year + 1)
                for subject in SUBJECTS
                for frame in (False, True)
            ]
        )
        self.carriers, self.receivers = strings(CARRIERS), strings(RECEIVERS)
        methods = [m for m, _w in METHODS]
        self.methods = strings(methods)
        self.methods_p = np.array([w for _m, w in METHODS], dtype=float)
        self.methods_p /= self.methods_p.sum()
        self.banks = BANKS

    # --- time ---------------------------------------------------------------------------

    def at(self, days: np.ndarray, hour: np.ndarray | int, rng: np.random.Generator):
        """A moment (seconds) at ``hour`` local time on each day, minutes and seconds drawn."""
        return days * DAY + np.asarray(hour) * 3600 + rng.integers(0, 3600, len(days)) - self.offset

    def day_of(self, seconds: np.ndarray) -> np.ndarray:
        return (seconds + self.offset) // DAY

    def day_at(self, tau: np.ndarray) -> np.ndarray:
        """Business time (``DemandCalendar``) to days: busy seasons get more of them."""
        index = np.minimum(np.searchsorted(self.cumulative, tau), len(self.cumulative) - 1)
        return self.d0 + index

    def tau_of(self, days: np.ndarray) -> np.ndarray:
        index = np.clip(days - self.d0, 0, len(self.cumulative))
        return np.where(index > 0, self.cumulative[np.maximum(index - 1, 0)], 0.0)

    # --- one batch ----------------------------------------------------------------------

    def batch(
        self, buyers: Buyers, number: int, sink: CopySink | None, before: Deals | None = None
    ) -> None:
        """Draw and write the history of one batch of buyers. ``before``, when given, is
        told each buyer's deals before any row is written (the customers' rows can then go
        in first with their last deal and stage); otherwise the customers are updated at
        the end (``finish``)."""
        rng = np.random.default_rng([self.seed, number])
        orders = self._orders(buyers, rng)
        if orders is None:
            if before is not None:
                none = np.zeros(0, dtype=np.int64)
                before(none, none, none)
            return
        self._write(buyers, orders, rng, sink, before)

    def _counts(self, kind: np.ndarray, years: np.ndarray, rng: np.random.Generator):
        """Orders per customer: Poisson around each one's rate, at least one, scaled so the
        batch averages ``orders_per`` per customer (the non-buyers included)."""
        n_buyers = len(kind)
        target = self.orders_per * n_buyers / self.mix.buyers
        fixed = kind == ONE_OFF
        base = RATE[kind] * years * rng.uniform(0.5, 1.5, n_buyers)
        wanted = target - 1.3 * fixed.sum()
        low, high = 0.0, 1000.0
        for _step in range(60):  # E[max(1, Poisson(l))] = l + e^-l
            scale = (low + high) / 2
            lam = scale * base[~fixed]
            if (lam + np.exp(-lam)).sum() > wanted:
                high = scale
            else:
                low = scale
        counts = np.maximum(1, rng.poisson(low * base))
        counts[fixed] = 1 + (rng.random(fixed.sum()) < 0.3)
        return np.minimum(counts, 300)

    def _orders(self, buyers: Buyers, rng: np.random.Generator) -> dict[str, Any] | None:
        mix = self.mix
        n = len(buyers)
        buying = np.flatnonzero(rng.random(n) < mix.buyers)
        if not len(buying):
            return None
        shares = np.array([mix.loyal, mix.lapsing, mix.occasional, mix.one_off, mix.newcomer])
        kind = rng.choice(5, size=len(buying), p=shares / shares.sum())
        # Orders between 16 days after the start (the contract comes first) and 9 before the
        # end (shipped inside the history), in business time.
        lo = float(self.tau_of(np.array([self.d0 + 16]))[0])
        hi = float(self.tau_of(np.array([self.d1 - 9]))[0])
        created = self.day_of(buyers.created[buying])
        # Customers on the books before the last quarter buy after being created; later
        # ones (fresh rows) are moved back before their first deal instead.
        lowest = np.where(
            (created > self.d0) & (created <= self.d1 - 90), self.tau_of(created), 0.0
        )
        lowest = np.clip(lowest, lo, hi - 1)
        room = hi - lowest
        a = lowest.copy()
        b = np.full(len(buying), hi)
        loyal = kind == LOYAL
        a[loyal] += rng.uniform(0, np.minimum(room[loyal], 90))
        lapsing = kind == LAPSING
        a[lapsing] += rng.uniform(0, 0.45 * room[lapsing])
        b[lapsing] = a[lapsing] + (hi - a[lapsing]) * rng.uniform(0.35, 0.9, lapsing.sum())
        newcomer = kind == NEWCOMER
        a[newcomer] = np.maximum(a[newcomer], rng.uniform(0.55, 0.9, newcomer.sum()) * hi)
        a = np.minimum(a, hi - 1)
        b = np.maximum(b, a + 1)
        counts = self._counts(kind, (b - a) / 365.0, rng)
        owner_of = np.repeat(np.arange(len(buying)), counts)  # buyer (in ``buying``) per order
        u = rng.random(len(owner_of))
        u = np.where(kind[owner_of] == LAPSING, u**1.8, u)  # lapsing: fewer and fewer
        tau = a[owner_of] + (b - a)[owner_of] * u
        tau = tau[np.lexsort((tau, owner_of))]
        days = np.minimum(workday(self.day_at(tau)), self.d1 - 7)
        # Contracts: frame agreements ordered in call-offs (up to six, gaps under 180 days).
        first = np.r_[True, owner_of[1:] != owner_of[:-1]]
        gap = np.r_[0, np.diff(days)]
        opens = first | (rng.random(len(days)) < NEW_CONTRACT[kind[owner_of]]) | (gap > 180)
        run = np.cumsum(opens) - 1
        position = np.arange(len(days)) - np.flatnonzero(opens)[run]
        opens |= position % MAX_CALL_OFFS == 0
        contract_of = np.cumsum(opens) - 1
        return {
            "buying": buying,
            "kind": kind,
            "owner_of": owner_of,
            "days": days,
            "contract_of": contract_of,
            "opens": np.flatnonzero(opens),
            "span_years": (tau - a[owner_of]) / 365.0,
        }

    def _write(
        self,
        buyers: Buyers,
        o: dict[str, Any],
        rng: np.random.Generator,
        sink: CopySink | None,
        before: Deals | None,
    ) -> None:
        v, cat, mix = self.v, self.catalogue, self.mix
        buying, kind = o["buying"], o["kind"]
        nb = len(buying)
        c_id_b = buyers.id[buying]
        owner_b, dept_b = buyers.owner[buying], buyers.department[buying]
        contact_b = buyers.contact[buying]
        names = [buyers.name[i] for i in buying.tolist()]
        addresses = [buyers.address[i] for i in buying.tolist()]
        size = mix.order_amount * np.exp(rng.normal(0, 0.8, nb)) * 100  # cents
        growth = np.ones(nb)
        growth[kind == LOYAL] = rng.uniform(1.1, 1.5, (kind == LOYAL).sum())
        growth[kind == NEWCOMER] = rng.uniform(1.2, 1.6, (kind == NEWCOMER).sum())
        growth[kind == LAPSING] = rng.uniform(0.7, 0.95, (kind == LAPSING).sum())
        payer = rng.random(nb) * np.where((kind == LOYAL) | (kind == NEWCOMER), 0.35, 0.6)
        favourite = cat.category_of[cat.popular_pick(rng.random(nb))]

        # --- orders and contracts ---
        order_buyer, order_day, order_contract = o["owner_of"], o["days"], o["contract_of"]
        n_orders = len(order_day)
        opens = o["opens"]
        n_contracts = len(opens)
        cb = order_buyer[opens]  # buyer per contract
        calls = np.diff(np.r_[opens, n_orders])
        first_day = order_day[opens]
        last_day = order_day[np.r_[opens[1:], n_orders] - 1]
        signed = np.minimum(workday(first_day - rng.integers(2, 11, n_contracts)), first_day)
        c_created = self.at(
            signed - rng.integers(1, 4, n_contracts), rng.integers(9, 12, n_contracts), rng
        )
        submitted = self.at(signed - 1, rng.integers(14, 18, n_contracts), rng)
        submitted = np.maximum(submitted, c_created + 7200)
        start_date = signed + rng.integers(0, 8, n_contracts)
        term = np.where(calls > 1, 365, rng.choice([90, 120, 180], n_contracts))
        end_date = np.maximum(start_date + term, last_day)
        terms = rng.choice(len(TERMS), size=n_contracts, p=self.terms_p)
        contracts_of_buyer = np.bincount(cb, minlength=nb)
        if before is not None:  # each buyer's last deal (approval) and first contract
            last_deal = np.zeros(nb, dtype=np.int64)
            np.maximum.at(last_deal, cb, submitted)
            first_created = np.full(nb, np.iinfo(np.int64).max)
            np.minimum.at(first_created, cb, c_created)
            dealt = np.flatnonzero(contracts_of_buyer > 0)
            before(buying[dealt], last_deal[dealt], first_created[dealt])
        contract_number_in_buyer = within(contracts_of_buyer)
        risk = payer[cb].copy()
        late = (kind[cb] == LAPSING) & (contract_number_in_buyer >= contracts_of_buyer[cb] - 2)
        risk[late] = np.minimum(1.0, risk[late] + 0.5)
        casual = (kind[cb] == ONE_OFF) | (kind[cb] == OCCASIONAL)
        risk[casual] = np.minimum(1.0, risk[casual] + 0.2)

        # --- contract lines: a basket per contract, favourites first, sorted by product ---
        k = pick(rng, LINES, n_contracts)
        line_contract = np.repeat(np.arange(n_contracts), k)
        favoured = rng.random(len(line_contract)) < 0.75
        product = np.where(
            favoured,
            cat.in_category(favourite[cb[line_contract]], rng.random(len(line_contract))),
            cat.popular_pick(rng.random(len(line_contract))),
        )
        # A companion (toner with the printer) joins the first line's product now and then.
        head = np.cumsum(k) - k
        companion = cat.companion[product[head]]
        joins = (companion >= 0) & (rng.random(n_contracts) < 0.5)
        line_contract = np.r_[line_contract, np.flatnonzero(joins)]
        product = np.r_[product, companion[joins]]
        keys = line_contract * len(cat.ids) + product
        keys = np.unique(keys)  # one line per product, in product order within a contract
        line_contract, product = keys // len(cat.ids), keys % len(cat.ids)
        k = np.bincount(line_contract, minlength=n_contracts)
        line_start = np.cumsum(k) - k
        n_lines = len(product)
        discount = pick(rng, DISCOUNTS, n_lines)
        share = rng.uniform(0.3, 1.3, n_lines)
        share_sum = np.bincount(line_contract, weights=share, minlength=n_contracts)

        # --- order lines: every call-off takes every line of its contract ---
        per_order = k[order_contract]
        ol_order = np.repeat(np.arange(n_orders), per_order)
        ol_line = line_start[order_contract][ol_order] + within(per_order)
        years = o["span_years"]
        target = (
            size[order_buyer] * growth[order_buyer] ** years * np.exp(rng.normal(0, 0.3, n_orders))
        )
        want = target[ol_order] * share[ol_line] / share_sum[line_contract[ol_line]]
        ol_product = product[ol_line]
        quantity = np.clip(np.rint(want / cat.price[ol_product]), 1, 999).astype(np.int64)
        cl_quantity = np.bincount(ol_line, weights=quantity, minlength=n_lines).astype(np.int64)

        def amounts(q: np.ndarray, prod: np.ndarray, disc: np.ndarray):
            sub = (q * cat.price[prod] * (100 - disc) + 50) // 100  # line_amounts, in cents
            tax = (sub * cat.tax[prod] + 5000) // 10000
            return sub, tax

        cl_sub, cl_tax = amounts(cl_quantity, product, discount)
        ol_sub, ol_tax = amounts(quantity, ol_product, discount[ol_line])
        c_sub = np.bincount(line_contract, weights=cl_sub, minlength=n_contracts).astype(np.int64)
        c_tax = np.bincount(line_contract, weights=cl_tax, minlength=n_contracts).astype(np.int64)
        o_sub = np.bincount(ol_order, weights=ol_sub, minlength=n_orders).astype(np.int64)
        o_tax = np.bincount(ol_order, weights=ol_tax, minlength=n_orders).astype(np.int64)
        if max(c_sub.max(), c_tax.max()) >= 2**52:  # bincount sums in float64
            raise RuntimeError("amounts too large for exact sums")
        c_total = c_sub + c_tax

        # --- order steps: confirmed, shipped (some in two parts), completed ---
        o_created = self.at(order_day, 10, rng)
        confirm_day = order_day + rng.choice([0, 0, 1], n_orders)
        confirmed = self.at(confirm_day, 14, rng)
        ship1 = workday(confirm_day + rng.integers(1, 5, n_orders))
        ship2 = workday(ship1 + rng.integers(3, 9, n_orders))
        biggest = np.zeros(n_orders, dtype=np.int64)
        np.maximum.at(biggest, ol_order, quantity)
        split = (
            (rng.random(n_orders) < mix.split_shipment_share) & (biggest >= 2) & (ship2 <= self.d1)
        )
        parts = 1 + split
        last_ship = np.where(split, ship2, ship1)
        done_day = last_ship + rng.integers(5, 21, n_orders)
        completed = done_day <= self.d1
        o_completed = self.at(done_day, 11, rng)
        ship1_at = self.at(ship1, 16, rng)
        ship2_at = self.at(ship2, 16, rng)
        last_ship_at = np.where(split, ship2_at, ship1_at)

        # contracts complete when every call-off is and the term is over
        all_done = np.bincount(order_contract, weights=~completed, minlength=n_contracts) == 0
        finished = np.zeros(n_contracts, dtype=np.int64)
        np.maximum.at(finished, order_contract, np.where(completed, o_completed, 0))
        closing = np.maximum(end_date + rng.integers(1, 11, n_contracts), self.day_of(finished))
        c_done = all_done & (end_date < self.d1 - 10) & (closing <= self.d1)
        c_completed = np.maximum(self.at(closing, 10, rng), finished)
        delivered = np.zeros(n_contracts, dtype=np.int64)
        np.maximum.at(delivered, order_contract, last_ship)

        # --- ids and numbers ---
        take = self._ids
        contract_ids = take(Contract, n_contracts)
        line_ids = take(ContractLine, n_lines)
        order_ids = take(Order, n_orders)
        ol_ids = take(OrderLine, len(ol_order))
        request_ids = take(ApprovalRequest, n_contracts)
        s = self.serials
        contract_numbers, _values = s.numbers(CONTRACT_PREFIX, years_of(self.day_of(c_created)))
        order_numbers, _values = s.numbers(ORDER_PREFIX, years_of(order_day))

        owner_c, dept_c = owner_b[cb], dept_b[cb]
        owner_o, dept_o = owner_b[order_buyer], dept_b[order_buyer]
        no_dept_c, no_dept_o = dept_c < 0, dept_o < 0
        title_index = (
            (years_of(signed) - self.start.year) * len(SUBJECTS)
            + rng.integers(0, len(SUBJECTS), n_contracts)
        ) * 2 + (calls > 1)
        titles = self.titles[title_index]
        status_c = np.where(c_done, ContractStatus.COMPLETED.value, ContractStatus.ACTIVE.value)
        status_o = np.where(completed, OrderStatus.COMPLETED.value, OrderStatus.SHIPPED.value)
        w = self.writers

        def put(key: str, columns: list, count: int) -> None:
            self.counts[key] += w[key].write_columns(columns, count, sink)

        title_list = v.texts(titles)
        c_updated = np.where(c_done, c_completed, submitted)
        put("contracts", [
            v.ints(contract_ids), v.times(c_created), v.times(c_updated),
            v.ints(owner_c), v.ints(owner_c), v.ints(np.where(c_done, 4, 3)), v.null, v.null,
            contract_numbers, v.ints(c_id_b[cb]), "CNY", v.money(c_sub), v.money(c_tax),
            v.money(c_total), v.ints(owner_c), v.ints(dept_c, no_dept_c), v.text(""), v.null,
            v.null, v.ints(contact_b[cb], contact_b[cb] < 0), title_list, v.days(signed),
            v.days(start_date), v.days(end_date), v.texts(self.terms_text[terms]),
            v.texts(status_c), v.times(submitted), v.times(c_completed, ~c_done), v.null,
            v.text(""),
        ], n_contracts)  # fmt: skip
        put("contract lines", [
            v.ints(line_ids), v.ints(cat.ids[product]), v.texts(cat.description[product]),
            v.texts(cat.unit[product]), v.ints(cl_quantity), v.money(cat.price[product]),
            v.ints(discount), v.money(cat.tax[product]), v.money(cl_sub), v.money(cl_tax),
            v.money(cl_sub + cl_tax), v.ints(within(k) + 1), v.ints(contract_ids[line_contract]),
        ], n_lines)  # fmt: skip
        request_titles = [
            f"{number} {title} · {names[b]}"[:300]
            for number, title, b in zip(contract_numbers, titles.tolist(), cb.tolist(), strict=True)
        ]
        submitted_list = v.times(submitted)
        put("approval requests", [
            v.ints(request_ids), submitted_list, submitted_list, v.ints(owner_c), v.ints(owner_c),
            v.value(2), v.text(CONTRACT_DOCUMENT_TYPE), v.value(self.contract_type),
            v.ints(contract_ids), v.texts(request_titles), v.money(c_total), "CNY",
            v.ints(dept_c, no_dept_c), v.ints(owner_c), v.null, v.text(HISTORY_RULE_NAME),
            v.text(ApprovalStatus.APPROVED.value), submitted_list, submitted_list,
        ], n_contracts)  # fmt: skip
        action_ids = take(ApprovalAction, 2 * n_contracts)
        both = np.repeat(np.arange(n_contracts), 2)
        auto = np.tile([False, True], n_contracts)
        put("approval actions", [
            v.ints(action_ids), v.ints(request_ids[both]), v.null,
            v.texts(np.where(auto, AUTO_APPROVE, SUBMIT)),
            v.ints(owner_c[both], auto), v.text(""), v.times(submitted[both]),
        ], 2 * n_contracts)  # fmt: skip

        receivers = v.texts(self.receivers[rng.integers(0, len(RECEIVERS), n_orders)])
        phones = v.ints(13_910_000_000 + rng.integers(0, 90_000_000, n_orders))
        if not v.postgres:
            phones = list(map(str, phones))
        put("orders", [
            v.ints(order_ids), v.times(o_created),
            v.times(np.where(completed, o_completed, last_ship_at)), v.ints(owner_o),
            v.ints(owner_o), v.ints(2 + parts + completed), v.null, v.null, order_numbers,
            v.ints(c_id_b[order_buyer]), "CNY", v.money(o_sub), v.money(o_tax),
            v.money(o_sub + o_tax), v.ints(owner_o), v.ints(dept_o, no_dept_o), v.text(""),
            v.ints(contract_ids[order_contract]), [title_list[c] for c in order_contract.tolist()],
            v.days(order_day), v.days(order_day + 10), v.null, receivers, phones,
            v.texts([addresses[b] for b in order_buyer.tolist()]),
            v.texts(status_o),
            v.times(confirmed), v.times(o_completed, ~completed), v.null, v.text(""),
        ], n_orders)  # fmt: skip
        put("order lines", [
            v.ints(ol_ids), v.ints(cat.ids[ol_product]), v.texts(cat.description[ol_product]),
            v.texts(cat.unit[ol_product]), v.ints(quantity), v.money(cat.price[ol_product]),
            v.ints(discount[ol_line]), v.money(cat.tax[ol_product]), v.money(ol_sub),
            v.money(ol_tax), v.money(ol_sub + ol_tax), v.ints(within(per_order) + 1),
            v.ints(order_ids[ol_order]), v.ints(line_ids[ol_line]), v.ints(quantity), v.value(0),
        ], len(ol_order))  # fmt: skip

        # --- shipments, their lines and stock movements ---
        sh_order = np.repeat(np.arange(n_orders), parts)
        sh_part = within(parts)
        sh_at = np.where(sh_part == 0, ship1_at[sh_order], ship2_at[sh_order])
        sh_day = self.day_of(sh_at)
        shipment_ids = take(Shipment, len(sh_order))
        shipment_numbers, shipment_serials = s.numbers(SHIPMENT_PREFIX, years_of(sh_day))
        tracking = (order_ids[sh_order] * 7919 + sh_part + 1) % 10**12
        sh_at_list = v.times(sh_at)
        carriers = self.carriers[rng.integers(0, len(CARRIERS), n_orders)]
        put("shipments", [
            v.ints(shipment_ids), sh_at_list, sh_at_list, v.value(self.shipper_id),
            v.value(self.shipper_id), shipment_numbers, v.ints(order_ids[sh_order]),
            v.text(ShipmentKind.SHIPMENT.value), v.value(self.warehouse_id), v.days(sh_day),
            v.texts(carriers[sh_order]),
            np.strings.add("SF", np.strings.zfill(tracking.astype(str), 12)).tolist(), v.text(""),
        ], len(sh_order))  # fmt: skip
        # First part: half of each line of two or more (all of it when not split); second:
        # the rest. Lines in product order, as the services post them.
        first_part = np.where(split[ol_order] & (quantity >= 2), (quantity + 1) // 2, quantity)
        rest = quantity - first_part
        sl_line = np.r_[np.arange(len(ol_order)), np.flatnonzero(rest > 0)]
        sl_part = np.r_[
            np.zeros(len(ol_order), dtype=np.int64), np.ones((rest > 0).sum(), dtype=np.int64)
        ]
        sl_qty = np.r_[first_part, rest[rest > 0]]
        sh_first = np.cumsum(parts) - parts
        sl_shipment = sh_first[ol_order[sl_line]] + sl_part
        order_sl = np.lexsort((sl_line, sl_shipment))
        sl_line, sl_qty, sl_shipment = sl_line[order_sl], sl_qty[order_sl], sl_shipment[order_sl]
        n_sl = len(sl_line)
        movement_ids = take(StockMovement, n_sl)
        sl_product = ol_product[sl_line]
        sl_order = ol_order[sl_line]
        # Stock movements go in at the end, with their balances (``moves_write``); the
        # shipment lines now (their movements' ids are known).
        put("shipment lines", [
            v.ints(take(ShipmentLine, n_sl)), v.ints(shipment_ids[sl_shipment]),
            v.ints(ol_ids[sl_line]), v.ints(sl_qty), v.ints(movement_ids),
        ], n_sl)  # fmt: skip
        self.moves.append(
            {
                "id": movement_ids,
                "product": sl_product.astype(np.int32),
                "at": sh_at[sl_shipment],
                "quantity": sl_qty.astype(np.int32),
                "year": years_of(sh_day)[sl_shipment].astype(np.int16),
                "serial": shipment_serials[sl_shipment],
                "order": order_ids[sl_order],
            }
        )
        month = months_of(sh_day[sl_shipment]) - self.month0
        np.add.at(self.receipts, (sl_product, month), sl_qty)

        # --- one event per document: its current status ---
        c_events_at = np.where(c_done, c_completed, submitted)
        second_of = sh_first + parts - 1
        o_before = np.where(
            completed, OrderStatus.SHIPPED.value,
            np.where(split, OrderStatus.PARTIALLY_SHIPPED.value, OrderStatus.CONFIRMED.value),
        )  # fmt: skip
        event_ids = take(DocumentEvent, n_contracts + n_orders)
        c_before = np.where(c_done, ContractStatus.ACTIVE.value, ContractStatus.PENDING.value)
        notes = [shipment_numbers[i] for i in second_of.tolist()]
        for index in np.flatnonzero(completed).tolist():
            notes[index] = ""
        put("document events", [
            v.ints(event_ids),
            v.ints(np.repeat([self.contract_type, self.order_type], [n_contracts, n_orders])),
            v.ints(np.r_[contract_ids, order_ids]),
            v.texts(np.r_[c_before, o_before]),
            v.texts(np.r_[status_c, status_o]),
            [v.text("")] * n_contracts + v.texts(notes),
            v.ints(np.r_[owner_c, np.where(completed, owner_o, self.shipper_id or 0)],
                   np.r_[np.zeros(n_contracts, bool), ~completed & (self.shipper_id is None)]),
            v.times(np.r_[c_events_at, np.where(completed, o_completed, last_ship_at)]),
        ], n_contracts + n_orders)  # fmt: skip

        self._money(
            rng, contract_ids, cb, c_total, signed, submitted, delivered, terms, risk,
            owner_c, dept_c, c_id_b, names, addresses, contract_numbers, put,
        )  # fmt: skip

        if before is not None:
            return  # the customers were written with their deals
        # customers: last deal (approved) and creation moved back before the first deal
        last_deal = np.zeros(nb, dtype=np.int64)
        np.maximum.at(last_deal, cb, submitted)
        first_created = np.full(nb, np.iinfo(np.int64).max)
        np.minimum.at(first_created, cb, c_created)
        has = np.flatnonzero(contracts_of_buyer > 0)
        created = buyers.created[buying][has]
        moved = (
            first_created[has]
            - rng.integers(7, 91, len(has)) * DAY
            - rng.integers(0, 7, len(has)) * 3600
        )
        self.deals.append(
            (c_id_b[has], last_deal[has], np.where(created > first_created[has], moved, -1))
        )

    def _money(
        self, rng, contract_ids, cb, total, signed, submitted, delivered, terms, risk,
        owner_c, dept_c, customer_ids, names, addresses, numbers, put,
    ) -> None:  # fmt: skip
        """Receivable plans, payments, invoices and ledgers of the batch's contracts."""
        v = self.v
        n = len(contract_ids)
        no_dept = dept_c < 0
        # plans: up to three stages per terms key; a total too small to split pays at once
        stages = max(len(p) for p in PLANS.values())
        pct = np.zeros((len(TERMS), stages), dtype=np.int64)
        base = np.zeros((len(TERMS), stages), dtype=np.int64)  # 0 signed, 1 delivered
        after = np.zeros((len(TERMS), stages), dtype=np.int64)
        notes = np.empty((len(TERMS), stages), dtype=object)
        for t, key in enumerate(TERMS):
            for i, (share, origin, days, note) in enumerate(PLANS[key]):
                pct[t, i], base[t, i], after[t, i], notes[t, i] = (
                    share, origin == "delivered", days, note
                )  # fmt: skip
        on_delivery = TERMS.index("on_delivery")
        amounts = (total[:, None] * pct[terms] + 50) // 100  # receivable_plan_split
        count = (pct[terms] > 0).sum(axis=1)
        last = count - 1
        rows = np.arange(n)
        amounts[rows, last] = total - (amounts.sum(axis=1) - amounts[rows, last])
        bad = ((amounts <= 0) & (pct[terms] > 0)).any(axis=1)
        terms_plan = np.where(bad, on_delivery, terms)
        amounts[bad] = 0
        amounts[bad, 0] = total[bad]
        count = np.where(bad, 1, count)
        delivered_or = np.where(delivered > 0, delivered, signed + 30)
        i_contract = np.repeat(rows, count)
        i_stage = within(count)
        tp = terms_plan[i_contract]
        due = (
            np.where(base[tp, i_stage] == 1, delivered_or[i_contract], signed[i_contract])
            + after[tp, i_stage]
        )
        order = np.lexsort((i_stage, due, i_contract))
        i_contract, i_stage, tp, due = i_contract[order], i_stage[order], tp[order], due[order]
        i_amount = amounts[i_contract, i_stage]
        i_sequence = within(count)  # already grouped by contract
        ni = len(i_contract)
        instalment_ids = self._ids(ReceivableInstalment, ni)
        planned = submitted + 3600
        planned_list = v.times(planned[i_contract])
        owner_i = owner_c[i_contract]
        put("receivable instalments", [
            v.ints(instalment_ids), planned_list, planned_list, v.ints(owner_i), v.ints(owner_i),
            v.ints(contract_ids[i_contract]), v.ints(i_sequence + 1), v.days(due),
            v.money(i_amount), v.texts(notes[tp, i_stage]),
        ], ni)  # fmt: skip

        # payments: on time, late (risky payers longer), stopped; some in two parts
        r = risk[i_contract]
        roll = rng.random(ni)
        stop = roll < 0.01 + 0.3 * r**1.5
        stopped = group_cumsum(stop.astype(np.int64), i_contract) > 0
        longer = rng.random(ni) < 0.3 + 0.5 * r
        delay = np.where(
            roll < 0.13 + 0.45 * r,
            np.where(longer, rng.integers(31, 151, ni), rng.integers(8, 31, ni)),
            rng.integers(-7, 4, ni),
        )
        received = workday(group_cummax(due + delay - self.d0 + 10, i_contract) + self.d0 - 10)
        received = np.maximum(received, signed[i_contract])
        late_end = group_cumsum((received > self.d1).astype(np.int64), i_contract) > 0
        paid = ~stopped & ~late_end
        halves = paid & (rng.random(ni) < 0.08) & (i_amount >= 200)
        first_half = (i_amount * rng.integers(50, 71, ni) + 50) // 100
        second_day = workday(received + rng.integers(10, 41, ni))
        second = halves & (second_day <= self.d1)
        p_inst = np.r_[np.flatnonzero(paid), np.flatnonzero(second)]
        p_amount = np.r_[
            np.where(halves, first_half, i_amount)[paid], (i_amount - first_half)[second]
        ]
        p_day = np.r_[received[paid], second_day[second]]
        order = np.lexsort((p_day, p_inst))
        p_inst, p_amount, p_day = p_inst[order], p_amount[order], p_day[order]
        np_ = len(p_inst)
        p_contract = i_contract[p_inst]
        registered = self.at(p_day, rng.integers(9, 12, np_), rng)
        confirmed = np.minimum(
            registered + rng.integers(2, 27, np_) * 3600, self.d1 * DAY + 23 * 3600 - self.offset
        )
        p_ids = self._ids(Payment, np_)
        p_numbers, _values = self.serials.numbers(PAYMENT_PREFIX, years_of(p_day))
        methods = self.methods[rng.choice(len(self.methods), size=np_, p=self.methods_p)]
        refs = np.strings.add(
            np.datetime_as_string(p_day.astype("datetime64[D]")).astype("U10"),
            rng.integers(10**7, 10**8, np_).astype(str),
        )
        refs = np.strings.replace(refs, "-", "")
        owner_p = owner_c[p_contract]
        confirmed_list = v.times(confirmed)
        put("payments", [
            v.ints(p_ids), v.times(registered), confirmed_list, v.ints(owner_p),
            v.value(self.confirmer_id), v.value(2), p_numbers, v.ints(contract_ids[p_contract]),
            v.ints(instalment_ids[p_inst]), v.text(PaymentKind.PAYMENT.value), v.null,
            v.money(p_amount), "CNY", v.days(p_day), v.texts(methods), v.text(""),
            refs.tolist(), v.text(""), v.text(PaymentStatus.CONFIRMED.value), v.ints(owner_p),
            v.ints(dept_c[p_contract], no_dept[p_contract]), v.value(self.confirmer_id),
            confirmed_list, v.text(""),
        ], np_)  # fmt: skip

        # invoices: monthly accounts on delivery (95 %), other terms after most payments
        special = rng.random(n) < 0.7
        monthly = terms_plan == TERMS.index("monthly")
        by_delivery = (
            monthly[i_contract] & (rng.random(n) < 0.95)[i_contract] & (delivered[i_contract] > 0)
        )
        after_payment = ~monthly[p_contract] & (rng.random(np_) < INVOICED_SHARE)
        v_contract = np.r_[i_contract[by_delivery], p_contract[after_payment]]
        v_amount = np.r_[i_amount[by_delivery], p_amount[after_payment]]
        requested_day = np.r_[
            delivered[i_contract][by_delivery] + rng.integers(1, 6, by_delivery.sum()),
            p_day[after_payment] + rng.integers(0, 11, after_payment.sum()),
        ]
        issued_on = requested_day + rng.integers(0, 4, len(v_contract))
        keep = issued_on <= self.d1
        order = np.lexsort((requested_day[keep], v_contract[keep]))
        v_contract = v_contract[keep][order]
        v_amount, requested_day, issued_on = (
            v_amount[keep][order], requested_day[keep][order], issued_on[keep][order]
        )  # fmt: skip
        nv = len(v_contract)
        requested = self.at(requested_day, rng.integers(9, 17, nv), rng)
        issued = issued_on * DAY + 15 * 3600 - self.offset
        v_ids = self._ids(Invoice, nv)
        v_years = years_of(requested_day)
        v_numbers, v_serial = self.serials.numbers(INVOICE_PREFIX, v_years)
        tax_office = np.strings.add(
            np.strings.add((v_years % 100).astype(str), "44"),
            np.strings.zfill(v_serial.astype(str), 16),
        )
        v_customer = customer_ids[cb[v_contract]].tolist()
        v_special = special[v_contract]
        v_buyer = cb[v_contract].tolist()
        v_contracts, v_specials = v_contract.tolist(), v_special.tolist()
        v_titles = [names[b][:200] or numbers[c] for b, c in zip(v_buyer, v_contracts, strict=True)]
        v_address = [addresses[b] if s else "" for b, s in zip(v_buyer, v_specials, strict=True)]
        banks = self.banks
        v_bank = [
            f"{banks[c % len(banks)]} 6222{c:015d}" if s else ""
            for c, s in zip(v_customer, v_specials, strict=True)
        ]
        owner_v = owner_c[v_contract]
        put("invoices", [
            v.ints(v_ids), v.times(requested), v.times(issued), v.ints(owner_v),
            v.value(self.confirmer_id), v.value(3), v_numbers, v.ints(contract_ids[v_contract]),
            v.texts(np.where(v_special, VAT_SPECIAL, VAT_ORDINARY)),
            v.texts(v_titles), [f"914403{c:011d}X" for c in v_customer], v.texts(v_address),
            v.texts(v_bank),
            v.money(v_amount), "CNY", v.text(""), v.text(InvoiceStatus.ISSUED.value),
            tax_office.tolist(), v.days(issued_on), v.value(self.confirmer_id), v.text(""),
            v.ints(owner_v), v.ints(dept_c[v_contract], no_dept[v_contract]),
        ], nv)  # fmt: skip

        # ledgers: the sums
        confirmed_total = np.bincount(p_contract, weights=p_amount, minlength=n).astype(np.int64)
        invoiced_total = np.bincount(v_contract, weights=v_amount, minlength=n).astype(np.int64)
        if (confirmed_total > total).any() or (invoiced_total > total).any():
            raise RuntimeError("more received or invoiced than a contract's amount")
        updated = planned.copy()
        np.maximum.at(updated, p_contract, confirmed)
        np.maximum.at(updated, v_contract, issued)
        version = 1 + np.bincount(p_contract, minlength=n) + np.bincount(v_contract, minlength=n)
        put("contract ledgers", [
            v.ints(version), v.ints(contract_ids), v.money(confirmed_total), v.value(0),
            v.money(invoiced_total), v.times(updated),
        ], n)  # fmt: skip

    def _ids(self, model, count: int) -> np.ndarray:
        first = self.ids.take(model)
        self.ids.following[model] = first + count
        return np.arange(first, first + count, dtype=np.int64)

    # --- after the batches --------------------------------------------------------------

    def moves_write(self, sink: CopySink | None) -> None:
        """Stock movements (shipments, then a receipt per product and month for what the
        month ships, at its start) with their balances, and the shipment lines.

        Balances are running sums per product and warehouse in time order over these and
        the movements already there (whose balances are corrected where they change), so
        they are written once, right, instead of updated afterwards; the stock levels and
        product totals are the last balances."""
        v, cat = self.v, self.catalogue
        if sink is not None:
            sink.drain()  # the connection is needed below
        moves = {key: np.concatenate([m[key] for m in self.moves]) for key in self.moves[0]}
        self.moves = []
        product_index, month_index = np.nonzero(self.receipts)
        first_days = (month_index + self.month0).astype("datetime64[M]").astype("datetime64[D]")
        receipt_days = np.maximum(first_days.astype(np.int64), self.d0)
        receipt_at = receipt_days * DAY + 8 * 3600 + 30 * 60 - self.offset
        receipt_ids = self._ids(StockMovement, len(product_index))
        touched = np.unique(product_index)
        old = self._movements_there(cat.ids[touched])
        # all movements: existing, shipments (out), receipts (in); quantities in thousandths
        n_old, n_out = len(old["id"]), len(moves["id"])
        ids = np.r_[old["id"], moves["id"], receipt_ids]
        product = np.r_[old["product"], cat.ids[moves["product"]], cat.ids[product_index]]
        warehouse = np.r_[old["warehouse"], np.full(n_out + len(receipt_ids), self.warehouse_id)]
        at = np.r_[old["at"], moves["at"], receipt_at]
        quantity = np.r_[
            old["quantity"],
            -1000 * moves["quantity"].astype(np.int64),
            1000 * self.receipts[product_index, month_index],
        ]
        order = np.lexsort((ids, at, warehouse, product))
        group = np.r_[
            0, np.cumsum((np.diff(product[order]) != 0) | (np.diff(warehouse[order]) != 0))
        ]
        balance = np.empty(len(ids), dtype=np.int64)
        balance[order] = group_cumsum(quantity[order], group)
        changed = np.flatnonzero(balance[:n_old] != old["balance"])
        if len(changed):
            table = connection.ops.quote_name(StockMovement._meta.db_table)
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET balance_after = %s WHERE id = %s",
                    [
                        (Decimal(int(b)) / 1000, int(i))
                        for b, i in zip(balance[changed], old["id"][changed], strict=True)
                    ],
                )
        last = order[np.r_[np.flatnonzero(np.diff(group)), len(order) - 1]]
        self.levels = {
            (int(product[i]), int(warehouse[i])): Decimal(int(balance[i])) / 1000 for i in last
        }

        def thousandths(values: np.ndarray) -> list:
            if v.postgres:
                return [f"{x}e-3" for x in values.tolist()]
            return (values / 1000).tolist()

        heads = strings([f"{SHIPMENT_PREFIX}-{year}-" for year in self.serials.years])
        out = slice(n_old, n_old + n_out)
        chunk = 500_000
        writer = self.writers["stock movements"]
        for start in range(0, n_out, chunk):
            part = slice(start, min(start + chunk, n_out))
            count = part.stop - part.start
            numbers = np.strings.add(
                heads[moves["year"][part] - self.serials.years.start].astype(str),
                np.strings.zfill(moves["serial"][part].astype(str), 6),
            ).tolist()
            self.counts["stock movements"] += writer.write_columns([
                v.ints(moves["id"][part]), v.ints(cat.ids[moves["product"][part]]),
                v.value(self.warehouse_id), v.text(MovementKind.ORDER_SHIPMENT.value),
                v.ints(-moves["quantity"][part]),
                thousandths(balance[out][part]), v.text(""), numbers, v.value(self.order_type),
                v.texts(moves["order"][part].astype(str)), v.value(self.shipper_id),
                v.times(moves["at"][part]),
            ], count, sink)  # fmt: skip
        months = (month_index + self.month0).astype("datetime64[M]").astype(str)
        self.counts["stock movements"] += writer.write_columns([
            v.ints(receipt_ids), v.ints(cat.ids[product_index]), v.value(self.warehouse_id),
            v.text(MovementKind.IN.value), v.ints(self.receipts[product_index, month_index]),
            thousandths(balance[n_old + n_out :]), v.text(RECEIPT_REASON),
            np.strings.add("RK-", np.strings.replace(months, "-", "")).tolist(), v.null,
            v.text(""), v.value(self.shipper_id), v.times(receipt_at),
        ], len(receipt_ids), sink)  # fmt: skip

    def _movements_there(self, products: np.ndarray) -> dict[str, np.ndarray]:
        """Movements of ``products`` already in the table (before this load)."""
        rows = list(
            StockMovement.objects.filter(
                product_id__in=products.tolist(), id__lt=self.ids.first[StockMovement]
            ).values_list("id", "product_id", "warehouse_id", "at", "quantity", "balance_after")
        )
        columns = list(zip(*rows, strict=True)) if rows else [()] * 6

        def thousandths(values) -> np.ndarray:
            return np.array([int(q * 1000) for q in values], dtype=np.int64)

        return {
            "id": np.array(columns[0], dtype=np.int64),
            "product": np.array(columns[1], dtype=np.int64),
            "warehouse": np.array(columns[2], dtype=np.int64),
            "at": np.array([int(t.timestamp()) for t in columns[3]], dtype=np.int64),
            "quantity": thousandths(columns[4]),
            "balance": thousandths(columns[5]),
        }

    def close(
        self,
        sink: CopySink | None,
        phases: dict[str, float],
        cpu: dict[str, float],
        progress: Callable[[str], None] | None,
    ) -> None:
        """After the last batch: the stock movements with their balances, the stock levels,
        the customers' deals (unless ``batch`` gave them to ``before``), the sequences moved
        past the numbers and the identities past the ids; the kept references checked."""

        def step(name: str, run: Callable[[], Any]) -> None:
            begun, processor = time.monotonic(), time.process_time()
            run()
            phases[name] = time.monotonic() - begun
            cpu[name] = time.process_time() - processor
            if progress:
                progress(f"{name}: {phases[name]:.1f} s, CPU {cpu[name]:.1f} s")

        if self.moves:
            step("stock movements", lambda: self.moves_write(sink))
        if sink is not None:
            sink.drain()
            phases["COPY busy (thread)"] = sink.busy
            if progress:
                for table, seconds in sorted(sink.busy_by.items(), key=lambda x: -x[1]):
                    progress(f"COPY {table}: {seconds:.1f} s")
        step("stock levels", lambda: stock_levels_set(getattr(self, "levels", {})))
        if self.deals:
            step("customers' deals", self._customers)
        self.serials.close()
        sequences_reset(ID_MODELS)
        if self.references is not None:
            step("references", self.references.finish)

    def _customers(self) -> None:
        if not self.deals:
            return
        ids = np.concatenate([d[0] for d in self.deals])
        last = np.concatenate([d[1] for d in self.deals])
        moved = np.concatenate([d[2] for d in self.deals])
        deals_table_create()
        writer = RowWriter(DEALS_TABLE, ["id", "last_deal", "created"])
        writer.write_columns(
            [self.v.ints(ids), self.v.times(last), self.v.times(moved, moved < 0)], len(ids)
        )
        customers_deals_update()
        deals_table_drop()


def company_history(
    *,
    products: Sequence[Product],
    start: datetime.date,
    end: datetime.date,
    orders_per: float = 5.0,
    seed: int = SEED,
    mix: HistoryMix | None = None,
    shipper=None,
    confirmer=None,
    references: References | None = None,
) -> CompanyHistory:
    """The history's state, ready for ``batch``: the catalogue, the default warehouse, the
    first free id of each table and the document sequences, locked (call it inside the
    load's transaction; ``close`` ends it)."""
    from kehu.products.services import warehouse_default_ensure

    if end - start < datetime.timedelta(days=60):
        raise ServiceError(_("The history must cover at least 60 days."), field="end")
    ids = IdBlocks()
    for model in ID_MODELS:
        ids.start(model)
    return CompanyHistory(
        start=start,
        end=end,
        seed=seed,
        orders_per=orders_per,
        mix=mix or HistoryMix(),
        catalogue=Catalogue.of(products, np.random.default_rng([seed, 0xC0FFEE])),
        warehouse=warehouse_default_ensure(),
        shipper_id=getattr(shipper, "pk", shipper),
        confirmer_id=getattr(confirmer, "pk", confirmer),
        serials=Serials(
            [CONTRACT_PREFIX, ORDER_PREFIX, SHIPMENT_PREFIX, PAYMENT_PREFIX, INVOICE_PREFIX],
            range(start.year, end.year + 1),
        ),
        ids=ids,
        references=references,
    )


def company_history_generate(
    *,
    customers,
    products: Sequence[Product],
    start: datetime.date,
    end: datetime.date,
    orders_per: float = 5.0,
    seed: int = SEED,
    mix: HistoryMix | None = None,
    pool_owners: Sequence[Any] = (),
    shipper=None,
    confirmer=None,
    batch: int = 20_000,
    progress: Callable[[str], None] | None = None,
) -> tuple[GenerateResult, dict[Any, int]]:
    """Write two years (``start`` … ``end``) of sales and money for ``customers`` (a
    Customer queryset), about ``orders_per`` orders per customer, in one transaction; the
    customers' last deal and stage are updated afterwards. Returns the rows per table with
    the phases, and the first new id per model."""
    from kehu.system.models import User

    if end - start < datetime.timedelta(days=60):
        raise ServiceError(_("The history must cover at least 60 days."), field="end")
    started = time.monotonic()
    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}
    departments = dict(User.objects.values_list("pk", "department_id"))
    pool = [getattr(user, "pk", user) for user in pool_owners]
    buyers = buyers_read(customers, departments, pool)
    phases["read customers"] = time.monotonic() - started
    with transaction.atomic():
        history = company_history(
            products=products,
            start=start,
            end=end,
            orders_per=orders_per,
            seed=seed,
            mix=mix,
            shipper=shipper,
            confirmer=confirmer,
        )
        with copy_sink() as sink:
            begun, processor = time.monotonic(), time.process_time()
            for number, first in enumerate(range(0, len(buyers), batch)):
                history.batch(buyers.part(first, first + batch), number, sink)
                if progress:
                    elapsed = time.monotonic() - begun
                    rows = sum(history.counts.values())
                    progress(
                        f"{min(first + batch, len(buyers))} customers, {rows} rows, "
                        f"{int(rows / elapsed) if elapsed else 0} rows/s"
                    )
            phases["writing"] = time.monotonic() - begun
            cpu["writing"] = time.process_time() - processor
            history.close(sink, phases, cpu, progress)
    counts = {key: count for key, count in history.counts.items() if count}
    result = GenerateResult(
        counts=counts, seconds=time.monotonic() - started, phases=phases, cpu=cpu
    )
    return result, dict(history.ids.first)
