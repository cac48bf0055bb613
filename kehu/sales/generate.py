"""Bulk sales history: contracts, orders and shipments over a period, for existing customers.

Used by the demo (two years for the analytics pages to show); the large-scale data
generator (``manage.py generate``) draws the same kinds of rows vectorised in
``kehu.system.company`` and shares the closing steps here (stock levels, customers' last
deals). Rows go straight to the tables, as in ``kehu.customers.generate`` (COPY on
PostgreSQL, ``executemany`` on SQLite, all in one transaction), and are what the services
would have written:

- contracts, active or completed, with lines priced by ``kehu.sales.totals`` (document
  totals are the sums of the rounded lines), the events draft → pending → active
  (→ completed) and an approval request approved automatically under the rule name
  ``HISTORY_RULE_NAME``, so no contract in force lacks an approval record;
- orders placed against them after signing, confirmed, shipped (some in two parts) and
  mostly completed; order lines point at their contract lines and carry the shipped
  quantities; an event for every step;
- shipments, their lines and ``order_shipment`` stock movements. Purchase receipts ("in")
  on the first of each month bring in exactly what that month ships, so the history never
  takes stock below zero and leaves today's stock as it was. Afterwards the balances of
  every touched product are replayed in time order (``balance_after``) and the stock levels
  and product totals are summed from the movements;
- numbers per prefix and year of the document's date (HT-2025-…, HT-2026-…), in date
  order, from blocks reserved in ``DocumentSequence``: documents created afterwards through
  the services continue the sequences without gaps or clashes;
- customers: last deal time and stage "won" as ``customer_deal_record`` would leave them,
  and the creation time moved back before the first deal when it was later.

For analytics the behaviour is realistic: seasonality (busy in the weeks before the Lunar
New Year, at quarter ends and in Q4; quiet in February, August and Golden Week and at
weekends), loyal customers buying regularly with growing spend, lapsing ones whose gaps
grow until they stop, one-off buyers and newcomers, favourite products, product pairs
commonly bought together, list prices above cost.

Money (receivable plans, payments, ledgers) belongs to the finance module; it plugs in as a
``ContractSink`` (``kehu.finance.generate.FinanceHistory``) that is shown each contract.

Deterministic for a seed. Each customer's history comes from its own random stream, so the
generator runs it twice: a first pass dates every numbered document (numbers follow the
dates), the second writes. Memory stays flat: customers are read and written in batches.
Meant for a database nobody else writes to while it runs.
"""

from __future__ import annotations

import array
import bisect
import datetime
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.approvals.models import (
    ApprovalAction,
    ApprovalActionKind,
    ApprovalRequest,
    ApprovalStatus,
)
from kehu.core.bulk import (
    Cells,
    GenerateResult,
    IdBlocks,
    RowWriter,
    sequences_reset,
    tables_analyze,
)
from kehu.core.exceptions import ServiceError
from kehu.core.models import DocumentSequence
from kehu.customers.models import Contact, Customer, CustomerEvent, CustomerEventKind, CustomerStage
from kehu.products.models import MovementKind, Product, StockLevel, StockMovement, Warehouse
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
from kehu.sales.totals import line_amounts

SEED = 20260701
HISTORY_RULE_NAME = "历史数据"  # the approval "rule" of imported history (data, like rule names)
RECEIPT_REASON = "采购入库"
CARRIERS = ["顺丰速运", "德邦物流", "京东物流", "中通快运"]
RECEIVERS = ["王建国", "李娜", "陈晓东", "刘芳", "赵磊", "周婷", "孙浩", "吴敏"]
SUBJECTS = [
    "办公设备采购",
    "网络设备采购",
    "电脑及配件采购",
    "会议室设备采购",
    "信息化升级",
    "门店设备更新",
    "年度耗材供应",
    "研发中心设备采购",
]
# Payment terms as written on the contract; finance draws the receivable plan from the key.
PAYMENT_TERMS = {
    "advance_30": "合同签订后 7 个工作日内支付 30% 预付款，货到验收合格后 30 日内支付 70% 尾款。",
    "on_delivery": "货到验收合格后 30 日内一次性付清全款。",
    "three_stage": "分三期付款：签约后付 40%，到货验收后付 50%，质保期满付 10%。",
    "monthly": "月结 60 天，凭增值税专用发票付款。",
}
TERMS_WEIGHTS = {"advance_30": 35, "on_delivery": 35, "three_stage": 15, "monthly": 15}

MOVEMENT_COLUMNS = [
    "id", "product_id", "warehouse_id", "kind", "quantity", "balance_after", "reason",
    "reference", "reference_type_id", "reference_id", "user_id", "at",
]  # fmt: skip

# --- the calendar -------------------------------------------------------------------------

MONTH_WEIGHT = {
    1: 1.2, 2: 0.55, 3: 1.1, 4: 0.95, 5: 0.95, 6: 1.1,
    7: 0.9, 8: 0.6, 9: 1.1, 10: 0.85, 11: 1.2, 12: 1.45,
}  # fmt: skip
WEEKDAY_WEIGHT = (1.0, 1.05, 1.05, 1.0, 0.95, 0.12, 0.05)
LUNAR_NEW_YEAR = {
    2019: datetime.date(2019, 2, 5),
    2020: datetime.date(2020, 1, 25),
    2021: datetime.date(2021, 2, 12),
    2022: datetime.date(2022, 2, 1),
    2023: datetime.date(2023, 1, 22),
    2024: datetime.date(2024, 2, 10),
    2025: datetime.date(2025, 1, 29),
    2026: datetime.date(2026, 2, 17),
    2027: datetime.date(2027, 2, 6),
    2028: datetime.date(2028, 1, 26),
    2029: datetime.date(2029, 2, 13),
    2030: datetime.date(2030, 2, 3),
    2031: datetime.date(2031, 1, 23),
    2032: datetime.date(2032, 2, 11),
}


def day_weight(day: datetime.date) -> float:
    """How busy buying is on ``day`` relative to an ordinary weekday."""
    weight = MONTH_WEIGHT[day.month] * WEEKDAY_WEIGHT[day.weekday()]
    for year in (day.year, day.year + 1):
        festival = LUNAR_NEW_YEAR.get(year)
        if festival is None:
            continue
        offset = (day - festival).days
        if -24 <= offset <= -4:
            weight *= 1.6  # stocking up before the Spring Festival
        elif -3 <= offset <= 7:
            weight *= 0.08  # the holiday itself
        elif 8 <= offset <= 20:
            weight *= 0.6  # slow restart
    if day.month == 10 and day.day <= 7:
        weight *= 0.1  # Golden Week
    if day.month in (3, 6, 9, 12) and day.day >= 20:
        weight *= 1.25  # quarter-end push
    return weight


class DemandCalendar:
    """Business time: a customer's purchases are spaced in "average days", which this maps
    to calendar days through the day weights, so busy seasons get more of them."""

    def __init__(self, start: datetime.date, end: datetime.date) -> None:
        self.start, self.end = start, end
        weights = [
            day_weight(start + datetime.timedelta(days=i)) for i in range((end - start).days + 1)
        ]
        scale = len(weights) / sum(weights)
        self.cumulative: list[float] = []
        total = 0.0
        for weight in weights:
            total += weight * scale
            self.cumulative.append(total)
        self.length = total  # equals the number of days

    def day(self, tau: float) -> datetime.date:
        index = min(bisect.bisect_left(self.cumulative, tau), len(self.cumulative) - 1)
        return self.start + datetime.timedelta(days=index)

    def tau(self, day: datetime.date) -> float:
        index = (day - self.start).days
        if index <= 0:
            return 0.0
        return self.cumulative[min(index, len(self.cumulative)) - 1]


# --- behaviour ----------------------------------------------------------------------------

LOYAL, LAPSING, OCCASIONAL, ONE_OFF, NEWCOMER = (
    "loyal", "lapsing", "occasional", "one_off", "newcomer"
)  # fmt: skip


@dataclass(frozen=True)
class HistoryMix:
    """Who the customers are and how much they buy.

    ``buyers`` is the share of the given customers with any history; the behaviour shares
    are relative weights among those: loyal customers buy regularly and spend more each
    year, lapsing ones come back less and less often until they stop, occasional ones buy
    once or twice a year, one-off buyers once (a few return once, much later), newcomers
    start in the last year. ``orders_per_year`` bounds a regular buyer's
    purchase rate; ``order_amount`` is the median order before tax in yuan (customers'
    sizes spread log-normally around it); ``framework_share`` of regular buyers' contracts
    are supply agreements ordered in two or three call-offs.
    """

    buyers: float = 0.8
    loyal: float = 0.35
    lapsing: float = 0.25
    occasional: float = 0.13
    one_off: float = 0.12
    newcomer: float = 0.15
    orders_per_year: tuple[float, float] = (3.0, 9.0)
    order_amount: float = 25_000.0
    framework_share: float = 0.15
    split_shipment_share: float = 0.12


@dataclass(frozen=True)
class ContractFact:
    """What a sink (finance) needs to know of one generated contract."""

    id: int
    key: int  # the contract's position in this generation: stable seeds, unlike ids
    number: str  # "" in the dating pass, before numbers are reserved
    customer_id: int
    owner_id: int
    department_id: int | None
    currency: str
    total: Decimal
    signed_on: datetime.date
    approved_at: datetime.datetime
    delivered_on: datetime.date | None  # last shipment, None when nothing shipped yet
    terms: str  # a PAYMENT_TERMS key
    risk: float  # 0 pays on time … 1 likely to stop paying
    end: datetime.date  # the history ends here: nothing after it happens
    customer_name: str = ""
    customer_address: str = ""


class ContractSink(Protocol):
    """Another module's rows per contract, written in the generator's transaction.

    ``plan`` returns (prefix, date) of every numbered document ``add`` will write for the
    contract, in the order ``add`` takes the numbers; both must decide the same way for
    the same contract (derive randomness from ``fact.key``, not the id, which depends on
    what the database held before). ``flush`` writes what was added
    and returns row counts; ``finish`` runs once at the end.
    """

    def plan(self, fact: ContractFact) -> list[tuple[str, datetime.date]]: ...

    def add(self, fact: ContractFact, number: Callable[[str, datetime.date], str]) -> None: ...

    def flush(self) -> dict[str, int]: ...

    def finish(self) -> dict[str, int]: ...


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    id: int
    description: str
    unit: str
    price: Decimal
    tax: Decimal
    category: int


@dataclass(frozen=True)
class _Buyer:
    id: int
    position: int  # among the customers given, in id order
    name: str
    owner_id: int
    department_id: int | None
    created_at: datetime.datetime
    contact_id: int | None
    address: str


@dataclass
class _Order:
    day: datetime.date
    created: datetime.datetime
    quantities: list[int]  # per contract line, 0 when the line is not on this order
    confirmed: datetime.datetime
    shipments: list[tuple[datetime.datetime, list[int]]]  # (time, quantity per contract line)
    completed: datetime.datetime | None
    receiver: str
    phone: str
    carrier: str


@dataclass
class _Deal:
    created: datetime.datetime
    submitted: datetime.datetime  # approved automatically at once
    signed_on: datetime.date
    start_date: datetime.date
    end_date: datetime.date
    title: str
    terms: str
    risk: float
    lines: list[tuple[_Item, int, Decimal]]  # item, quantity, discount
    orders: list[_Order] = field(default_factory=list)
    completed: datetime.datetime | None = None


def _zipf(n: int, rng: random.Random) -> list[float]:
    ranks = list(range(n))
    rng.shuffle(ranks)
    return [1.0 / (rank + 3) ** 0.8 for rank in ranks]


class _Catalogue:
    """The goods on sale, their popularity, and which pairs sell together."""

    def __init__(
        self,
        products: Sequence[Product],
        rng: random.Random,
        pairs: Sequence[tuple[int, int]] | None,
    ):
        items = []
        for product in sorted(products, key=lambda p: p.pk):
            if product.list_price <= 0:
                continue
            description = " ".join(p for p in (product.name, product.specification) if p)
            items.append(
                _Item(
                    id=product.pk,
                    description=description[:300],
                    unit=(product.unit.label if product.unit_id and product.unit else "")[:20],
                    price=product.list_price,
                    tax=product.tax_rate,
                    category=product.category_id or 0,
                )
            )
        if len(items) < 2:
            raise ServiceError(_("Sales history needs at least two products with a list price."))
        self.items = items
        self.weights = _zipf(len(items), rng)
        by_id = {item.id: item for item in items}
        categories: dict[int, list[_Item]] = defaultdict(list)
        for item in items:
            categories[item.category].append(item)
        self.categories = categories
        self.companion: dict[int, _Item] = {}
        if pairs is None:
            # Every fourth product has a companion in another category (a cheaper one when
            # there is one): a printer and its toner, a laptop and its dock.
            anchors = rng.sample(items, max(1, len(items) // 4))
            for anchor in anchors:
                others = [i for i in items if i.category != anchor.category] or [
                    i for i in items if i.id != anchor.id
                ]
                cheaper = [i for i in others if i.price < anchor.price] or others
                self.companion[anchor.id] = rng.choice(cheaper)
        else:
            for source, target in pairs:
                if source in by_id and target in by_id and source != target:
                    self.companion[source] = by_id[target]

    def favourites(self, rng: random.Random) -> list[_Item]:
        """A customer's regular buys: a few products of one to three categories."""
        chosen = rng.choices(self.items, self.weights, k=rng.randint(1, 3))
        pool = [i for item in chosen for i in self.categories[item.category]]
        return rng.sample(pool, min(len(pool), rng.randint(2, 6)))


# --- numbers ------------------------------------------------------------------------------


class _Numbers:
    """Numbers per prefix and year in date order, reserved in one block per sequence."""

    def __init__(self) -> None:
        self.days: dict[str, array.array] = defaultdict(lambda: array.array("i"))
        self.assigned: dict[str, tuple[array.array, array.array]] = {}
        self.taken: dict[str, int] = defaultdict(int)

    def note(self, prefix: str, day: datetime.date) -> None:
        self.days[prefix].append(day.toordinal())

    def reserve(self) -> dict[tuple[str, int], int]:
        """Lock the sequences, take the blocks; returns the count per (prefix, year)."""
        counts: dict[tuple[str, int], int] = {}
        for prefix, days in self.days.items():
            # Date order; the order of generation breaks ties (sort is stable).
            order = sorted(range(len(days)), key=days.__getitem__)
            years = array.array("H", bytes(2 * len(days)))
            values = array.array("L", bytes(array.array("L").itemsize * len(days)))
            per_year: dict[int, int] = defaultdict(int)
            for position in order:
                year = datetime.date.fromordinal(days[position]).year
                per_year[year] += 1
                years[position] = year
                values[position] = per_year[year]
            for year, count in per_year.items():
                DocumentSequence.objects.get_or_create(prefix=prefix, year=year)
                sequence = DocumentSequence.objects.select_for_update().get(
                    prefix=prefix, year=year
                )
                base = sequence.last_value
                sequence.last_value = base + count
                sequence.save(update_fields=["last_value"])
                counts[(prefix, year)] = count
                for position in range(len(days)):
                    if years[position] == year:
                        values[position] += base
            self.assigned[prefix] = (years, values)
        return counts

    def check_all_taken(self) -> None:
        """The writing pass used exactly the numbers the dating pass reserved."""
        for prefix, days in self.days.items():
            if self.taken[prefix] != len(days):
                raise RuntimeError(
                    f"{prefix}: {len(days)} numbers reserved, {self.taken[prefix]} used; "
                    "the two passes disagree"
                )

    def take(self, prefix: str, day: datetime.date) -> str:
        position = self.taken[prefix]
        self.taken[prefix] = position + 1
        years, values = self.assigned[prefix]
        return f"{prefix}-{years[position]}-{values[position]:06d}"


# --- the generator ------------------------------------------------------------------------


def _customer_rng(seed: int, position: int) -> random.Random:
    """The random stream of the customer at ``position`` in id order: the same history for
    the same customers whatever their ids (PostgreSQL sequences do not restart)."""
    return random.Random(seed * 1_000_003 + position)


_Cells = Cells  # the finance generator's name for it, kept for importers


class _SalesHistory:
    def __init__(
        self,
        *,
        start: datetime.date,
        end: datetime.date,
        seed: int,
        mix: HistoryMix,
        catalogue: _Catalogue,
        sinks: Sequence[ContractSink],
        shipper_id: int | None,
        warehouse: Warehouse,
        ids: IdBlocks,
    ) -> None:
        self.start, self.end, self.seed, self.mix = start, end, seed, mix
        self.calendar = DemandCalendar(start, end)
        self.catalogue = catalogue
        self.sinks = sinks
        self.shipper_id = shipper_id
        self.warehouse = warehouse
        self.tz = timezone.get_current_timezone()
        self.cells = Cells()
        self.contract_type = ContentType.objects.get_for_model(Contract).pk
        self.order_type = ContentType.objects.get_for_model(Order).pk
        self.id_blocks = ids
        self.first_ids = {
            model: ids.start(model)
            for model in (
                Contract,
                ContractLine,
                Order,
                OrderLine,
                Shipment,
                ShipmentLine,
                StockMovement,
                DocumentEvent,
                ApprovalRequest,
                ApprovalAction,
            )
        }
        self.receipts: dict[tuple[int, datetime.date], int] = defaultdict(int)
        self.deal_facts: list[tuple[int, Any, Any]] = []
        columns = {
            "contracts": (Contract, [
                "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
                "deleted_at", "deleted_by_id", "number", "customer_id", "currency",
                "subtotal_amount", "tax_amount", "total_amount", "owner_id", "department_id",
                "notes", "opportunity_id", "quote_id", "contact_id", "title", "signed_on",
                "start_date", "end_date", "payment_terms", "status", "approved_at",
                "completed_at", "terminated_at", "termination_reason",
            ]),
            "contract lines": (ContractLine, [
                "id", "product_id", "description", "unit", "quantity", "unit_price",
                "discount_rate", "tax_rate", "subtotal", "tax_amount", "total_amount",
                "sort_order", "contract_id",
            ]),
            "approval requests": (ApprovalRequest, [
                "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
                "document_type", "content_type_id", "object_id", "title", "amount", "currency",
                "department_id", "submitter_id", "rule_id", "rule_name", "status",
                "submitted_at", "decided_at",
            ]),
            "approval actions": (ApprovalAction, [
                "id", "request_id", "step_id", "kind", "actor_id", "comment", "at",
            ]),
            "orders": (Order, [
                "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
                "deleted_at", "deleted_by_id", "number", "customer_id", "currency",
                "subtotal_amount", "tax_amount", "total_amount", "owner_id", "department_id",
                "notes", "contract_id", "title", "order_date", "ship_by", "warehouse_id",
                "receiver_name", "receiver_phone", "shipping_address", "status",
                "confirmed_at", "completed_at", "cancelled_at", "cancel_reason",
            ]),
            "order lines": (OrderLine, [
                "id", "product_id", "description", "unit", "quantity", "unit_price",
                "discount_rate", "tax_rate", "subtotal", "tax_amount", "total_amount",
                "sort_order", "order_id", "contract_line_id", "shipped_quantity",
                "returned_quantity",
            ]),
            "shipments": (Shipment, [
                "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "number",
                "order_id", "kind", "warehouse_id", "shipped_on", "carrier", "tracking_number",
                "note",
            ]),
            "stock movements": (StockMovement, MOVEMENT_COLUMNS),
            "shipment lines": (ShipmentLine, [
                "id", "shipment_id", "order_line_id", "quantity", "stock_movement_id",
            ]),
            "document events": (DocumentEvent, [
                "id", "content_type_id", "object_id", "from_status", "to_status", "note",
                "actor_id", "at",
            ]),
        }  # fmt: skip
        self.writers = {key: RowWriter(model, cols) for key, (model, cols) in columns.items()}
        self.rows: dict[str, list[tuple]] = {key: [] for key in self.writers}
        self.counts: dict[str, int] = dict.fromkeys(self.writers, 0)
        # (customer, last deal approved, created moved back or None) for customers_update
        self.deals_writer = RowWriter(DEALS_TABLE, ["id", "last_deal", "created"])

    # --- time -----------------------------------------------------------------------------

    def moment(self, day: datetime.date, hour: int, rng: random.Random) -> datetime.datetime:
        return datetime.datetime(
            day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59),
            tzinfo=self.tz,
        )  # fmt: skip

    def workday(self, day: datetime.date) -> datetime.date:
        """The next weekday on or after ``day`` (warehouses ship on working days)."""
        while day.weekday() >= 5:
            day += datetime.timedelta(days=1)
        return day

    # --- simulation -----------------------------------------------------------------------

    def occasions(self, buyer: _Buyer, rng: random.Random, kind: str) -> list[float]:
        """Purchase times in business days from the start, by the customer's behaviour."""
        length = self.calendar.length
        mix = self.mix
        created = timezone.localtime(buyer.created_at, self.tz).date()
        # A customer on the books before the period's last quarter buys only after being
        # created; one created later (a demo's fresh rows) is moved back before its first
        # deal instead.
        lowest = 0.0
        if created > self.start and created <= self.end - datetime.timedelta(days=90):
            lowest = self.calendar.tau(created)
        room = length - lowest
        mean_gap = 365.0 / rng.uniform(*mix.orders_per_year)
        times: list[float]
        if kind == ONE_OFF:
            times = [rng.uniform(lowest, length)]
            if rng.random() < 0.3:  # an occasional buyer, back once after a long while
                times.append(times[0] + rng.uniform(120, 450))
            return [t for t in times if t < length]
        times = []
        if kind == LAPSING:
            t = lowest + rng.uniform(0, room * 0.45)
            gap = mean_gap * rng.uniform(0.5, 0.9)
            growth = rng.uniform(1.4, 1.9)
            while t < length:
                times.append(t)
                if len(times) > 2 and rng.random() < 0.12:
                    break  # stops without warning
                t += gap * rng.uniform(0.75, 1.25)
                gap *= growth
            return times
        if kind == OCCASIONAL:
            mean_gap = 365.0 / rng.uniform(0.6, 1.8)
        if kind == NEWCOMER:
            t = rng.uniform(max(lowest, length * 0.55), length * 0.95)
        else:
            t = lowest + rng.uniform(0, min(room, mean_gap * 1.5))
        while t < length:
            times.append(t)
            if rng.random() < 0.015:
                break  # even loyal customers go sometimes
            t += rng.gammavariate(2.0, mean_gap / 2.0)
        return times

    def basket(
        self, rng: random.Random, favourites: list[_Item], amount: float
    ) -> list[tuple[_Item, int, Decimal]]:
        catalogue = self.catalogue
        wanted = rng.choices([1, 2, 3, 4], [35, 35, 20, 10])[0]
        chosen: list[_Item] = []
        while len(chosen) < wanted:
            if favourites and rng.random() < 0.75:
                item = rng.choice(favourites)
            else:
                item = rng.choices(catalogue.items, catalogue.weights)[0]
            if item not in chosen:
                chosen.append(item)
            elif len(chosen) >= len(favourites) and rng.random() < 0.3:
                break
        shares = [rng.random() + 0.3 for _ in chosen]
        for anchor in list(chosen):
            companion = catalogue.companion.get(anchor.id)
            if companion is not None and companion not in chosen and rng.random() < 0.65:
                chosen.append(companion)
                shares.append(0.15 + rng.random() * 0.2)
        total_share = sum(shares)
        lines = []
        for item, share in zip(chosen, shares, strict=True):
            target = amount * share / total_share
            quantity = max(1, min(999, round(target / float(item.price))))
            discount = Decimal(rng.choices([0, 3, 5, 8], [55, 20, 15, 10])[0])
            lines.append((item, quantity, discount))
        return lines

    def deals(self, buyer: _Buyer, rng: random.Random) -> list[_Deal]:
        """The customer's contracts with their orders and shipments, or none."""
        mix = self.mix
        if rng.random() >= mix.buyers:
            return []
        kind = rng.choices(
            [LOYAL, LAPSING, OCCASIONAL, ONE_OFF, NEWCOMER],
            [mix.loyal, mix.lapsing, mix.occasional, mix.one_off, mix.newcomer],
        )[0]
        times = self.occasions(buyer, rng, kind)
        if not times:
            return []
        size = mix.order_amount * math.exp(rng.gauss(0, 0.8))
        growth = {
            LOYAL: rng.uniform(1.1, 1.5),
            NEWCOMER: rng.uniform(1.2, 1.6),
            LAPSING: rng.uniform(0.7, 0.95),
            OCCASIONAL: 1.0,
            ONE_OFF: 1.0,
        }[kind]
        # Late payers: most pay on time; lapsing customers less so, their last deals least.
        payer = rng.random() * (0.35 if kind in (LOYAL, NEWCOMER) else 0.6)
        favourites = self.catalogue.favourites(rng)
        deals = []
        for position, tau in enumerate(times):
            signed_on = self.workday(self.calendar.day(tau))
            if signed_on > self.end:
                break
            years = (tau - times[0]) / 365.0
            amount = size * growth**years * math.exp(rng.gauss(0, 0.3))
            risk = payer
            if kind == LAPSING and position >= len(times) - 2:
                risk = min(1.0, payer + 0.5)
            elif kind in (ONE_OFF, OCCASIONAL):
                risk = min(1.0, payer + 0.2)
            framework = kind in (LOYAL, NEWCOMER) and rng.random() < mix.framework_share
            deals.append(self.deal(buyer, rng, signed_on, amount, risk, favourites, framework))
        return deals

    def deal(
        self,
        buyer: _Buyer,
        rng: random.Random,
        signed_on: datetime.date,
        amount: float,
        risk: float,
        favourites: list[_Item],
        framework: bool,
    ) -> _Deal:
        days = datetime.timedelta
        calls = rng.randint(2, 3) if framework else 1
        lines = self.basket(rng, favourites, amount * (calls if framework else 1))
        created = self.moment(signed_on - days(days=rng.randint(1, 3)), rng.randint(9, 11), rng)
        submitted = self.moment(signed_on - days(days=1), rng.randint(14, 17), rng)
        if submitted <= created:
            submitted = created + days(hours=2)
        start_date = signed_on + days(days=rng.randint(0, 7))
        end_date = start_date + days(days=365 if framework else rng.choice([90, 120, 180]))
        terms = rng.choices(list(TERMS_WEIGHTS), list(TERMS_WEIGHTS.values()))[0]
        deal = _Deal(
            created=created,
            submitted=submitted,
            signed_on=signed_on,
            start_date=start_date,
            end_date=end_date,
            title=f"{signed_on.year}年{rng.choice(SUBJECTS)}{'框架' if framework else ''}合同",
            terms=terms,
            risk=risk,
            lines=lines,
        )
        # What each call-off takes: the line split evenly, the remainder on the first.
        parts: list[list[int]] = [[0] * len(lines) for _ in range(calls)]
        for index, (_item, quantity, _discount) in enumerate(lines):
            if quantity < calls:
                parts[0][index] = quantity
                continue
            each = quantity // calls
            for call in range(calls):
                parts[call][index] = each
            parts[0][index] += quantity - each * calls
        day = signed_on + days(days=rng.randint(2, 10))
        for quantities in parts:
            day = self.workday(day)
            order = self.order(rng, day, quantities)
            if order is None:
                break  # the rest is ordered after the history ends
            deal.orders.append(order)
            day = day + days(days=rng.randint(25, 50))
        everything = len(deal.orders) == calls
        if (
            everything
            and all(order.completed for order in deal.orders)
            and end_date < self.end - days(days=10)
        ):
            finished = max(order.completed for order in deal.orders if order.completed)
            closing = max(end_date + days(days=rng.randint(1, 10)), finished.date())
            if closing <= self.end:
                deal.completed = max(self.moment(closing, 10, rng), finished)
        return deal

    def order(self, rng: random.Random, day: datetime.date, quantities: list[int]) -> _Order | None:
        """An order placed on ``day`` and shipped before the history ends, or None."""
        days = datetime.timedelta
        if not any(quantities):
            return None
        created = self.moment(day, 10, rng)
        confirmed = self.moment(day + days(days=rng.choice([0, 0, 1])), 14, rng)
        first = self.workday(confirmed.date() + days(days=rng.randint(1, 4)))
        if first > self.end:
            return None
        shipments: list[tuple[datetime.datetime, list[int]]]
        second = self.workday(first + days(days=rng.randint(3, 8)))
        if (
            rng.random() < self.mix.split_shipment_share
            and any(q >= 2 for q in quantities)
            and second <= self.end
        ):
            part = [(q + 1) // 2 if q >= 2 else q for q in quantities]
            rest = [q - p for q, p in zip(quantities, part, strict=True)]
            shipments = [
                (self.moment(first, 16, rng), part),
                (self.moment(second, 16, rng), rest),
            ]
        else:
            shipments = [(self.moment(first, 16, rng), list(quantities))]
        last = shipments[-1][0].date()
        done = last + days(days=rng.randint(5, 20))
        completed = self.moment(done, 11, rng) if done <= self.end else None
        return _Order(
            day=day,
            created=created,
            quantities=quantities,
            confirmed=confirmed,
            shipments=shipments,
            completed=completed,
            receiver=rng.choice(RECEIVERS),
            phone=f"139{rng.randint(10000000, 99999999)}",
            carrier=rng.choice(CARRIERS),
        )

    def history(self, buyer: _Buyer) -> list[_Deal]:
        return self.deals(buyer, _customer_rng(self.seed, buyer.position))

    # --- facts and numbers ----------------------------------------------------------------

    def fact(self, buyer: _Buyer, deal: _Deal, contract_id: int, number: str) -> ContractFact:
        total = Decimal("0.00")
        for item, quantity, discount in deal.lines:
            total += line_amounts(
                quantity=Decimal(quantity),
                unit_price=item.price,
                discount_rate=discount,
                tax_rate=item.tax,
            ).total_amount
        delivered = max(
            (time_.date() for order in deal.orders for time_, _q in order.shipments),
            default=None,
        )
        return ContractFact(
            id=contract_id,
            key=contract_id - self.first_ids[Contract],
            number=number,
            customer_id=buyer.id,
            owner_id=buyer.owner_id,
            department_id=buyer.department_id,
            currency="CNY",
            total=total,
            signed_on=deal.signed_on,
            approved_at=deal.submitted,
            delivered_on=delivered,
            terms=deal.terms,
            risk=deal.risk,
            end=self.end,
            customer_name=buyer.name,
            customer_address=buyer.address,
        )

    def date_documents(self, buyers: Iterator[list[_Buyer]], numbers: _Numbers) -> None:
        """First pass: the date of every numbered document, in the order they are written."""
        contract_id = self.first_ids[Contract]
        for chunk in buyers:
            for buyer in chunk:
                for deal in self.history(buyer):
                    numbers.note(CONTRACT_PREFIX, deal.created.date())
                    for order in deal.orders:
                        numbers.note(ORDER_PREFIX, order.day)
                        for moment, _quantities in order.shipments:
                            numbers.note(SHIPMENT_PREFIX, moment.date())
                    fact = self.fact(buyer, deal, contract_id, "")
                    for sink in self.sinks:
                        for prefix, day in sink.plan(fact):
                            numbers.note(prefix, day)
                    contract_id += 1

    # --- rows -----------------------------------------------------------------------------

    def next_id(self, model) -> int:
        return self.id_blocks.take(model)

    def event(self, content_type: int, object_id: int, before: str, after: str, actor, at, note=""):
        self.rows["document events"].append(
            (
                self.next_id(DocumentEvent), content_type, object_id, before, after, note[:500],
                actor, self.cells.dt(at),
            )
        )  # fmt: skip

    def write_deal(self, buyer: _Buyer, deal: _Deal, numbers: _Numbers) -> None:
        c = self.cells
        owner = buyer.owner_id
        contract_id = self.next_id(Contract)
        number = numbers.take(CONTRACT_PREFIX, deal.created.date())
        line_ids = []
        subtotal = tax = Decimal("0.00")
        for position, (item, quantity, discount) in enumerate(deal.lines, start=1):
            amounts = line_amounts(
                quantity=Decimal(quantity),
                unit_price=item.price,
                discount_rate=discount,
                tax_rate=item.tax,
            )
            subtotal += amounts.subtotal
            tax += amounts.tax_amount
            line_id = self.next_id(ContractLine)
            line_ids.append(line_id)
            self.rows["contract lines"].append(
                (
                    line_id, item.id, item.description, item.unit, c.dec(Decimal(quantity)),
                    c.dec(item.price), c.dec(discount), c.dec(item.tax), c.dec(amounts.subtotal),
                    c.dec(amounts.tax_amount), c.dec(amounts.total_amount), position,
                    contract_id,
                )
            )  # fmt: skip
        total = subtotal + tax
        status = ContractStatus.COMPLETED if deal.completed else ContractStatus.ACTIVE
        self.rows["contracts"].append(
            (
                contract_id, c.dt(deal.created), c.dt(deal.completed or deal.submitted), owner,
                owner, 4 if deal.completed else 3, None, None, number, buyer.id, "CNY",
                c.dec(subtotal), c.dec(tax), c.dec(total), owner, buyer.department_id, "",
                None, None, buyer.contact_id, deal.title, c.day(deal.signed_on),
                c.day(deal.start_date), c.day(deal.end_date), PAYMENT_TERMS[deal.terms],
                status.value, c.dt(deal.submitted), c.dt(deal.completed), None, "",
            )
        )  # fmt: skip
        ct = self.contract_type
        self.event(ct, contract_id, "", ContractStatus.DRAFT, owner, deal.created)
        self.event(
            ct, contract_id, ContractStatus.DRAFT, ContractStatus.PENDING, owner, deal.submitted
        )
        self.event(
            ct, contract_id, ContractStatus.PENDING, ContractStatus.ACTIVE, owner, deal.submitted
        )
        if deal.completed:
            self.event(
                ct,
                contract_id,
                ContractStatus.ACTIVE,
                ContractStatus.COMPLETED,
                owner,
                deal.completed,
            )
        request_id = self.next_id(ApprovalRequest)
        self.rows["approval requests"].append(
            (
                request_id, c.dt(deal.submitted), c.dt(deal.submitted), owner, owner, 2,
                CONTRACT_DOCUMENT_TYPE, ct, contract_id,
                f"{number} {deal.title} · {buyer.name}"[:300], c.dec(total), "CNY",
                buyer.department_id, owner, None, HISTORY_RULE_NAME,
                ApprovalStatus.APPROVED.value, c.dt(deal.submitted), c.dt(deal.submitted),
            )
        )  # fmt: skip
        for kind, actor in (
            (ApprovalActionKind.SUBMIT, owner),
            (ApprovalActionKind.AUTO_APPROVE, None),
        ):
            action_id = self.next_id(ApprovalAction)
            self.rows["approval actions"].append(
                (action_id, request_id, None, kind.value, actor, "", c.dt(deal.submitted))
            )

        for order in deal.orders:
            self.write_order(buyer, deal, order, contract_id, line_ids, numbers)

        fact = self.fact(buyer, deal, contract_id, number)
        assert fact.total == total
        for sink in self.sinks:
            sink.add(fact, numbers.take)

    def write_order(
        self,
        buyer: _Buyer,
        deal: _Deal,
        order: _Order,
        contract_id: int,
        contract_line_ids: list[int],
        numbers: _Numbers,
    ) -> None:
        c = self.cells
        owner = buyer.owner_id
        order_id = self.next_id(Order)
        number = numbers.take(ORDER_PREFIX, order.day)
        created = order.created
        order_line_ids: dict[int, int] = {}
        subtotal = tax = Decimal("0.00")
        position = 0
        for index, ((item, _q, discount), quantity) in enumerate(
            zip(deal.lines, order.quantities, strict=True)
        ):
            if not quantity:
                continue
            position += 1
            amounts = line_amounts(
                quantity=Decimal(quantity),
                unit_price=item.price,
                discount_rate=discount,
                tax_rate=item.tax,
            )
            subtotal += amounts.subtotal
            tax += amounts.tax_amount
            line_id = self.next_id(OrderLine)
            order_line_ids[index] = line_id
            self.rows["order lines"].append(
                (
                    line_id, item.id, item.description, item.unit, c.dec(Decimal(quantity)),
                    c.dec(item.price), c.dec(discount), c.dec(item.tax), c.dec(amounts.subtotal),
                    c.dec(amounts.tax_amount), c.dec(amounts.total_amount), position, order_id,
                    contract_line_ids[index], c.dec(Decimal(quantity)), c.dec(Decimal(0)),
                )
            )  # fmt: skip
        status = OrderStatus.COMPLETED if order.completed else OrderStatus.SHIPPED
        last_change = order.completed or order.shipments[-1][0]
        self.rows["orders"].append(
            (
                order_id, c.dt(created), c.dt(last_change), owner, owner,
                2 + len(order.shipments) + (1 if order.completed else 0), None, None, number,
                buyer.id, "CNY", c.dec(subtotal), c.dec(tax), c.dec(subtotal + tax), owner,
                buyer.department_id, "", contract_id, deal.title, c.day(order.day),
                c.day(order.day + datetime.timedelta(days=10)), None, order.receiver,
                order.phone, buyer.address, status.value, c.dt(order.confirmed),
                c.dt(order.completed), None, "",
            )
        )  # fmt: skip
        ot = self.order_type
        self.event(ot, order_id, "", OrderStatus.PENDING, owner, created)
        self.event(ot, order_id, OrderStatus.PENDING, OrderStatus.CONFIRMED, owner, order.confirmed)
        before = OrderStatus.CONFIRMED.value
        for part, (moment, quantities) in enumerate(order.shipments, start=1):
            shipment_id = self.next_id(Shipment)
            shipment_number = numbers.take(SHIPMENT_PREFIX, moment.date())
            self.rows["shipments"].append(
                (
                    shipment_id, c.dt(moment), c.dt(moment), self.shipper_id, self.shipper_id,
                    shipment_number, order_id, ShipmentKind.SHIPMENT.value, self.warehouse.pk,
                    c.day(moment.date()), order.carrier,
                    f"SF{(order_id * 7919 + part) % 10**12:012d}", "",
                )
            )  # fmt: skip
            # Product-id order, as the services post them.
            picked = sorted(
                ((deal.lines[i][0], q, i) for i, q in enumerate(quantities) if q),
                key=lambda entry: (entry[0].id, entry[2]),
            )
            for item, quantity, index in picked:
                movement_id = self.next_id(StockMovement)
                self.rows["stock movements"].append(
                    (
                        movement_id, item.id, self.warehouse.pk, MovementKind.ORDER_SHIPMENT.value,
                        c.dec(Decimal(-quantity)), c.dec(Decimal(0)), "", shipment_number,
                        self.order_type, str(order_id), self.shipper_id, c.dt(moment),
                    )
                )  # fmt: skip
                self.rows["shipment lines"].append(
                    (
                        self.next_id(ShipmentLine), shipment_id, order_line_ids[index],
                        c.dec(Decimal(quantity)), movement_id,
                    )
                )  # fmt: skip
                month = moment.date().replace(day=1)
                self.receipts[(item.id, month)] += quantity
            after = (
                OrderStatus.SHIPPED.value
                if part == len(order.shipments)
                else OrderStatus.PARTIALLY_SHIPPED.value
            )
            self.event(ot, order_id, before, after, self.shipper_id, moment, shipment_number)
            before = after
        if order.completed:
            self.event(
                ot, order_id, OrderStatus.SHIPPED, OrderStatus.COMPLETED, owner, order.completed
            )

    def write_buyer(self, buyer: _Buyer, numbers: _Numbers) -> int:
        deals = self.history(buyer)
        for deal in deals:
            self.write_deal(buyer, deal, numbers)
        if deals:
            first = deals[0].created
            moved = None
            if buyer.created_at > first:
                rng = _customer_rng(self.seed + 1, buyer.position)
                moved = first - datetime.timedelta(days=rng.randint(7, 90), hours=rng.randint(0, 6))
            last = max(deal.submitted for deal in deals)  # approved at once
            self.deal_facts.append((buyer.id, self.cells.dt(last), self.cells.dt(moved)))
        return len(deals)

    def flush(self) -> None:
        self.deals_writer.write(self.deal_facts)
        self.deal_facts = []
        for key, writer in self.writers.items():
            self.counts[key] += writer.write(self.rows[key])
            self.rows[key] = []
        for sink in self.sinks:
            for key, count in sink.flush().items():
                self.counts[key] = self.counts.get(key, 0) + count

    # --- after the documents: stock, customers --------------------------------------------

    def write_receipts(self) -> None:
        self.counts["stock movements"] += receipts_write(
            self.receipts,
            start=self.start,
            warehouse_id=self.warehouse.pk,
            shipper_id=self.shipper_id,
            ids=self.id_blocks,
        )

    def stock_replay(self) -> None:
        stock_replay(
            first_movement=self.first_ids[StockMovement],
            products={product for product, _month in self.receipts},
        )

    def customers_update(self) -> None:
        customers_deals_update()


# --- after the documents: stock, customers (shared with kehu.system.company) ----------------


def receipts_write(
    receipts: Mapping[tuple[int, datetime.date], int],
    *,
    start: datetime.date,
    warehouse_id: int,
    shipper_id: int | None,
    ids: IdBlocks,
) -> int:
    """One purchase receipt per product and month for what that month ships, posted at
    the start of the month (or of the history) before any of its shipments."""
    c = Cells()
    tz = timezone.get_current_timezone()
    rows = []
    for (product_id, month), quantity in sorted(receipts.items()):
        if not quantity:
            continue
        day = max(month, start)
        at = datetime.datetime(day.year, day.month, day.day, 8, 30, tzinfo=tz)
        rows.append(
            (
                ids.take(StockMovement), product_id, warehouse_id, MovementKind.IN.value,
                c.dec(Decimal(quantity)), c.dec(Decimal(0)), RECEIPT_REASON,
                f"RK-{month:%Y%m}", None, "", shipper_id, c.dt(at),
            )
        )  # fmt: skip
    return RowWriter(StockMovement, MOVEMENT_COLUMNS).write(rows)


def stock_replay(*, first_movement: int, products: Iterable[int]) -> None:
    """Balances of every touched product in time order; levels and totals from them."""
    products = set(products)
    table = connection.ops.quote_name(StockMovement._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET balance_after = r.running FROM ("
            "SELECT id, ROUND(SUM(quantity) OVER (PARTITION BY product_id, warehouse_id "
            "ORDER BY at, id ROWS UNBOUNDED PRECEDING), 3) AS running "
            f"FROM {table} WHERE product_id IN "
            f"(SELECT DISTINCT product_id FROM {table} WHERE id >= %s)) AS r "
            f"WHERE {table}.id = r.id AND {table}.balance_after <> r.running",
            [first_movement],
        )
    # What the history moved (its receipts mirror its shipments), then one grouped pass
    # over those products' movements: no per-product subquery, so no index needed.
    totals = {
        (row["product_id"], row["warehouse_id"]): row["total"]
        for row in StockMovement.objects.filter(product_id__in=products)
        .order_by()
        .values("product_id", "warehouse_id")
        .annotate(total=Sum("quantity"))
    }
    stock_levels_set(totals)


def stock_levels_set(totals: Mapping[tuple[int, int], Decimal]) -> None:
    """Stock levels (product, warehouse) and product totals from the movements' sums."""
    products = {product for product, _warehouse in totals}
    levels_existing = set(
        StockLevel.objects.filter(product_id__in=products).values_list("product_id", "warehouse_id")
    )
    StockLevel.objects.bulk_create(
        [StockLevel(product_id=p, warehouse_id=w) for p, w in sorted(set(totals) - levels_existing)]
    )
    now = timezone.now()
    levels = list(StockLevel.objects.filter(product_id__in=products))
    per_product: dict[int, Decimal] = defaultdict(Decimal)
    for level in levels:
        level.quantity = totals.get((level.product_id, level.warehouse_id), Decimal(0))
        level.updated_at = now
        per_product[level.product_id] += level.quantity
    StockLevel.objects.bulk_update(levels, ["quantity", "updated_at"], batch_size=500)
    stocked = list(Product.all_objects.filter(pk__in=products).only("pk"))
    for product in stocked:
        product.stock_quantity = per_product[product.pk]
    Product.all_objects.bulk_update(stocked, ["stock_quantity"], batch_size=500)


def customers_deals_update() -> None:
    """Last deal and stage as ``customer_deal_record`` leaves them (the later of the
    last history contract and what the customer had); creation moved back before the
    first deal, with its "created" event. One set-based UPDATE from the side table
    (``DEALS_TABLE``: id, last deal, creation moved back or NULL), so it costs the same
    whatever indexes the contracts have."""
    qn = connection.ops.quote_name
    customers = qn(Customer._meta.db_table)
    events = qn(CustomerEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {customers} SET stage = %s, "
            f"last_deal_at = CASE WHEN {customers}.last_deal_at IS NULL "
            f"OR {customers}.last_deal_at < d.last_deal THEN d.last_deal "
            f"ELSE {customers}.last_deal_at END, "
            f"created_at = COALESCE(d.created, {customers}.created_at) "
            f"FROM {DEALS_TABLE} d WHERE {customers}.id = d.id",
            [CustomerStage.WON.value],
        )
        cursor.execute(
            f"UPDATE {events} SET at = d.created FROM {DEALS_TABLE} d "
            f"WHERE {events}.customer_id = d.id AND d.created IS NOT NULL "
            f"AND {events}.kind = %s",
            [CustomerEventKind.CREATED.value],
        )


DEALS_TABLE = "kehu_generate_deals"


def deals_table_create() -> None:
    """The side table of per-customer deal facts (temporary: this connection only)."""
    stamp = "timestamp with time zone" if connection.vendor == "postgresql" else "text"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {DEALS_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {DEALS_TABLE} "
            f"(id bigint PRIMARY KEY, last_deal {stamp} NOT NULL, created {stamp})"
        )


def deals_table_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {DEALS_TABLE}")


def _buyers(
    customers, owners: Mapping[int, int | None], pool_owners: Sequence[int], chunk: int
) -> Iterator[list[_Buyer]]:
    """The customers in id order, ``chunk`` at a time, with their owner and first contact."""
    last = 0
    position = 0
    while True:
        rows = list(
            customers.filter(pk__gt=last)
            .order_by("pk")
            .values_list(
                "pk", "name", "owner_id", "created_at", "province", "city", "district", "street"
            )[:chunk]
        )
        if not rows:
            return
        last = rows[-1][0]
        contacts: dict[int, int] = {}
        for customer_id, contact_id in (
            Contact.objects.filter(customer_id__in=[r[0] for r in rows])
            .order_by("customer_id", "-is_primary", "pk")
            .values_list("customer_id", "pk")
        ):
            contacts.setdefault(customer_id, contact_id)
        batch = []
        for pk, name, owner_id, created_at, province, city, district, street in rows:
            position += 1
            if owner_id is None:
                if not pool_owners:
                    continue
                # A pool customer's history was its former owner's.
                owner_id = pool_owners[position % len(pool_owners)]
            if owner_id not in owners:
                continue
            batch.append(
                _Buyer(
                    id=pk,
                    position=position,
                    name=name,
                    owner_id=owner_id,
                    department_id=owners[owner_id],
                    created_at=created_at,
                    contact_id=contacts.get(pk),
                    address=f"{province}{city}{district}{street}"[:300],
                )
            )
        yield batch


def sales_history_generate(
    *,
    customers,
    products: Sequence[Product],
    start: datetime.date,
    end: datetime.date,
    seed: int = SEED,
    mix: HistoryMix | None = None,
    sinks: Sequence[ContractSink] = (),
    pairs: Sequence[tuple[int, int]] | None = None,
    pool_owners: Sequence[Any] = (),
    shipper=None,
    warehouse: Warehouse | None = None,
    batch: int = 2_000,
    progress: Callable[[str], None] | None = None,
) -> GenerateResult:
    """Write the sales history of ``customers`` (a Customer queryset) from ``start`` to ``end``.

    ``products`` are the goods sold (each is shipped, so stocked goods, not services);
    ``pairs`` (product id, product id) are sold together often (default: drawn at random,
    one product in four with a companion). Documents belong to each customer's owner and
    the owner's department; customers in the pool take one of ``pool_owners`` as their
    former owner, or are left out. ``shipper`` is the warehouse user on shipments and stock
    movements, ``warehouse`` the one shipped from (the default warehouse). ``sinks`` write
    their own rows per contract (``kehu.finance.generate.FinanceHistory``).

    All or nothing: one transaction. ``seed`` (not a ``random.Random``) because every
    customer's history is drawn from its own stream derived from it, twice. Primary keys
    come from the first sink's ``ids`` (so sales and finance rows in the same table never
    collide), else a new ``IdBlocks``. Every status change has its event; numbers follow the
    documents' dates. (``kehu.system.company`` is the fast generator for large data sets.)
    """
    if end <= start:
        raise ServiceError(_("The history must end after it starts."), field="end")
    from kehu.products.services import warehouse_default_ensure
    from kehu.system.models import User

    started = time.monotonic()
    mix = mix or HistoryMix()
    owners = dict(User.objects.values_list("pk", "department_id"))
    pool = [getattr(user, "pk", user) for user in pool_owners]
    shared = [getattr(sink, "ids", None) for sink in sinks]
    ids = next((block for block in shared if isinstance(block, IdBlocks)), None) or IdBlocks()
    phases: dict[str, float] = {}
    with transaction.atomic():
        deals_table_create()
        generator = _SalesHistory(
            start=start,
            end=end,
            seed=seed,
            mix=mix,
            catalogue=_Catalogue(list(products), random.Random(seed), pairs),
            sinks=sinks,
            shipper_id=getattr(shipper, "pk", None),
            warehouse=warehouse or warehouse_default_ensure(),
            ids=ids,
        )
        numbers = _Numbers()
        generator.date_documents(_buyers(customers, owners, pool, batch), numbers)
        numbers.reserve()
        phases["dating"] = time.monotonic() - started
        if progress:
            progress(f"documents dated in {phases['dating']:.1f} s")
        done = 0
        for chunk in _buyers(customers, owners, pool, batch):
            for buyer in chunk:
                generator.write_buyer(buyer, numbers)
            generator.flush()
            done += len(chunk)
            if progress:
                elapsed = time.monotonic() - started
                rows = sum(generator.counts.values())
                progress(
                    f"{done} customers, {rows} rows, {int(rows / elapsed) if elapsed else 0} rows/s"
                )
        phases["writing"] = time.monotonic() - started - phases["dating"]
        numbers.check_all_taken()
        for step in (generator.write_receipts, generator.stock_replay, generator.customers_update):
            begun = time.monotonic()
            step()
            phases[step.__name__] = time.monotonic() - begun
            if progress:
                progress(f"{step.__name__}: {phases[step.__name__]:.1f} s")
        for sink in sinks:
            for key, count in sink.finish().items():
                generator.counts[key] = generator.counts.get(key, 0) + count
        begun = time.monotonic()
        if connection.vendor == "postgresql":
            # Foreign keys are checked at commit (a large share of the time on PostgreSQL);
            # check them here so a failure and the time show up in the generator.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            phases["foreign keys"] = time.monotonic() - begun
            if progress:
                progress(f"foreign keys checked: {phases['foreign keys']:.1f} s")
        deals_table_drop()
    sequences_reset(ids.models())
    tables_analyze(
        [Contract, ContractLine, Order, OrderLine, StockMovement, DocumentEvent, Customer]
    )
    counts = {key: count for key, count in generator.counts.items() if count}
    return GenerateResult(counts=counts, seconds=time.monotonic() - started, phases=phases)
