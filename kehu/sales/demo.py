"""Demo quotes, contracts, approvals, orders and shipments over the last twelve months.

Everything goes through the services, so numbers, document events, approval requests with
their decisions, notifications, amendments and stock movements are the real ones.

Each story (a quote sent and converted into a contract approved in two steps, an order
shipped in two parts with a unit sent back …) is a generator that yields the day and hour
of its next step. The steps of all stories are played in date order, so document numbers
follow the dates as they would in real use; after each step the rows it wrote (documents,
events, approval steps and actions, notifications) get that step's time. Stock movements
and the operation log keep the time they were really written: both are ledgers, kept in
the order they were posted. Numbers carry the year the demo is loaded in.

Contracts needing approval belong to 销售一部 (sales1, sales2): its manager salesmgr1
decides the first step and the general manager ("manager") the second above ¥100,000.
销售二部 has no sales manager in the demo company, so sales3 gets quotes, a draft contract
and standalone orders only.

Deterministic (seeded, dates relative to today) and idempotent: when any quote, contract
or order exists, nothing is added.
"""

from __future__ import annotations

import datetime
import heapq
import random
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from kehu.approvals.models import ApprovalAction, ApprovalRequest, ApprovalStep
from kehu.approvals.services import (
    approval_approve,
    approval_pending_for_document,
    approval_reject,
)
from kehu.customers.models import Customer, Opportunity
from kehu.products.models import Product
from kehu.products.services import stock_movement_post
from kehu.sales import services
from kehu.sales.models import (
    Contract,
    ContractAmendment,
    ContractStatus,
    DocumentEvent,
    Order,
    Quote,
    Shipment,
)
from kehu.system.models import Notification

SEED = 2026
YEAR = datetime.timedelta(days=365)

T = TypeVar("T")
Step = tuple[datetime.date, int]  # the day and hour a story's next step happens
Story = Generator[Step, None, T]

# The rows a step writes, and their time fields, given the step's time afterwards.
STAMPED: list[tuple[Any, tuple[str, ...]]] = [
    (Quote, ("created_at", "updated_at")),
    (Contract, ("created_at", "updated_at", "approved_at", "completed_at", "terminated_at")),
    (ContractAmendment, ("created_at", "updated_at", "applied_at")),
    (Order, ("created_at", "updated_at", "confirmed_at", "completed_at", "cancelled_at")),
    (Shipment, ("created_at", "updated_at")),
    (DocumentEvent, ("at",)),
    (ApprovalRequest, ("created_at", "updated_at", "submitted_at", "decided_at")),
    (ApprovalStep, ("decided_at",)),
    (ApprovalAction, ("at",)),
    (Notification, ("created_at",)),
]

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
PAYMENT_TERMS = [
    "合同签订后 7 个工作日内支付 30% 预付款，货到验收合格后 30 日内支付 70% 尾款。",
    "货到验收合格后 30 日内一次性付清全款。",
    "分三期付款：签约后付 40%，到货验收后付 50%，质保期满付 10%。",
    "月结 60 天，凭增值税专用发票付款。",
]
NOTES = [
    "交货地点：需方指定地址。质保：整机 3 年，上门服务。",
    "含送货上门及安装调试，需方提供安装场地。",
    "",
    "分批交货，每批到货后 5 个工作日内完成验收。",
]
QUOTE_TERMS = "报价含增值税及运费；交货期为下单后 7 个工作日；付款方式以合同约定为准。"
APPROVE_COMMENTS = ["同意。", "价格合理，同意签订。", "同意，注意回款节点。", ""]
GM_COMMENTS = ["同意。", "重点客户，注意交付质量。", "同意，按约定节点回款。"]
RECEIVERS = ["王建国", "李娜", "陈晓东", "刘芳", "赵磊", "周婷"]
CARRIERS = ["顺丰速运", "德邦物流", "京东物流"]


def _half(quantity: Decimal) -> Decimal:
    return max(Decimal(1), (quantity / 2).quantize(Decimal(1)))


def _line_data(line, **changes) -> dict[str, Any]:
    """A document line as the services take it, with ``changes``."""
    data = {
        name: getattr(line, name)
        for name in (
            "product",
            "description",
            "unit",
            "quantity",
            "unit_price",
            "discount_rate",
            "tax_rate",
        )
    }
    return {**data, **changes}


class _Demo:
    def __init__(self, *, admin, users: dict[str, Any]) -> None:
        self.rng = random.Random(SEED)
        self.today = timezone.localdate()
        self.admin = admin
        self.sales1, self.sales2, self.sales3 = users["sales1"], users["sales2"], users["sales3"]
        self.manager, self.gm = users["salesmgr1"], users["manager"]
        self.warehouse = users["warehouse"]
        self.counts = {"quotes": 0, "contracts": 0, "orders": 0, "shipments": 0}
        on_sale = list(Product.objects.filter(status="on_sale").order_by("code"))
        # Goods the warehouse stocks (the demo catalogue stocks all but services).
        self.goods = [p for p in on_sale if p.stock_quantity > 0 or p.low_stock_threshold > 0]
        self.cheap = [p for p in self.goods if p.list_price <= 3000]
        self.dear = [p for p in self.goods if p.list_price >= 6000]
        self.services = [p for p in on_sale if p not in self.goods]
        self.customers: dict[int, list[Customer]] = {}
        self.used: set[int] = set()

    # --- time -----------------------------------------------------------------------------

    def ago(self, days: int) -> datetime.date:
        return self.today - datetime.timedelta(days=days)

    @contextmanager
    def at(self, day: datetime.date, hour: int) -> Iterator[None]:
        """Rows written inside the block are dated ``day`` at ``hour`` (never in the future)."""
        when = timezone.make_aware(
            datetime.datetime.combine(day, datetime.time(hour, self.rng.randint(0, 59)))
        )
        when = min(when, timezone.now() - datetime.timedelta(minutes=5))
        mark = timezone.now()
        yield
        for model, fields in STAMPED:  # one UPDATE per table
            written = Q()
            for name in fields:
                written |= Q(**{f"{name}__gte": mark})
            model._base_manager.filter(written).update(
                **{
                    name: Case(When(**{f"{name}__gte": mark}, then=Value(when)), default=F(name))
                    for name in fields
                }
            )

    def play(self, stories: list[Story]) -> None:
        """Run the stories' steps in date order (stories in list order within an hour)."""
        queue: list[tuple[datetime.date, int, int, Story]] = []

        def advance(position: int, story: Story) -> None:
            try:
                day, hour = next(story)
            except StopIteration:
                return
            heapq.heappush(queue, (day, hour, position, story))

        for position, story in enumerate(stories):
            advance(position, story)
        while queue:
            _day, _hour, position, story = heapq.heappop(queue)
            advance(position, story)

    # --- material -------------------------------------------------------------------------

    def customer(self, owner) -> Customer:
        """A customer of ``owner`` not yet used by the demo (reused when they run out)."""
        if owner.pk not in self.customers:
            self.customers[owner.pk] = list(
                Customer.objects.filter(owner=owner, in_pool=False).order_by("pk")
            )
        mine = self.customers[owner.pk]
        fresh = [c for c in mine if c.pk not in self.used]
        customer = self.rng.choice(fresh or mine)
        self.used.add(customer.pk)
        return customer

    def header(self, owner, customer) -> dict[str, Any]:
        contact = customer.contacts.order_by("-is_primary", "pk").first()
        opportunity = (
            Opportunity.objects.filter(customer=customer, owner=owner).order_by("pk").first()
        )
        return {"customer": customer, "contact": contact, "opportunity": opportunity}

    def lines(self, *, large: bool = False, service: bool = False) -> list[dict[str, Any]]:
        """Large: three or four lines of ¥40,000-150,000 each, so well over ¥100,000 in all.
        Otherwise one to three lines of ¥2,000-22,000 (and eight hours of a service when
        ``service``), under ¥100,000. Services only go on documents that never ship: the
        catalogue keeps no stock of them."""
        pool = self.dear if large else self.cheap
        lines = []
        for product in self.rng.sample(
            pool, self.rng.randint(3, 4) if large else self.rng.randint(1, 3)
        ):
            target = self.rng.randint(40_000, 150_000) if large else self.rng.randint(2_000, 22_000)
            quantity = min(max(target // int(product.list_price), 2 if large else 1), 200)
            lines.append(
                {
                    "product": product,
                    "quantity": Decimal(quantity),
                    "discount_rate": Decimal(self.rng.choice([0, 0, 0, 3, 5, 8])),
                }
            )
        hourly = [p for p in self.services if p.list_price <= 2000]
        if service and hourly:
            lines.append({"product": self.rng.choice(hourly), "quantity": Decimal(8)})
        return lines

    def title(self, day: datetime.date) -> str:
        return f"{day.year}年{self.rng.choice(SUBJECTS)}"

    # --- quotes ---------------------------------------------------------------------------

    def quote(
        self,
        owner,
        day: datetime.date,
        *,
        valid_days: int = 30,
        large: bool = False,
        service: bool = False,
    ) -> Story[Quote]:
        yield day, 9
        customer = self.customer(owner)
        with self.at(day, 9):
            quote = services.quote_create(
                actor=owner,
                data={
                    **self.header(owner, customer),
                    "title": self.title(day) + "报价",
                    "quote_date": day,
                    "valid_until": day + datetime.timedelta(days=valid_days),
                    "terms": QUOTE_TERMS,
                },
                lines=self.lines(large=large, service=service and self.rng.random() < 0.5),
            )
        self.counts["quotes"] += 1
        return quote

    def quote_sent(self, owner, day: datetime.date, **kwargs) -> Story[Quote]:
        quote = yield from self.quote(owner, day, **kwargs)
        yield day + datetime.timedelta(days=1), 15
        with self.at(day + datetime.timedelta(days=1), 15):
            return services.quote_send(actor=owner, quote=quote)

    def quote_answered(self, owner, day: datetime.date, *, reject: str = "") -> Story[Quote]:
        quote = yield from self.quote_sent(owner, day, service=True)
        answered = day + datetime.timedelta(days=5)
        yield answered, 11
        with self.at(answered, 11):
            if reject:
                return services.quote_reject(actor=owner, quote=quote, reason=reject)
            return services.quote_accept(actor=owner, quote=quote)

    # --- contracts ------------------------------------------------------------------------

    def contract(
        self,
        owner,
        day: datetime.date,
        *,
        large: bool = False,
        signed: bool = True,
        months: int = 12,
        from_quote: bool = False,
    ) -> Story[Contract]:
        """A draft made two days before ``day`` (the signing day when ``signed``), from a
        quote sent two weeks before if asked."""
        made = day - datetime.timedelta(days=2)
        start = day + datetime.timedelta(days=self.rng.randint(1, 7))
        header: dict[str, Any] = {
            "payment_terms": self.rng.choice(PAYMENT_TERMS),
            "notes": self.rng.choice(NOTES),
        }
        if signed:
            header.update(
                signed_on=day,
                start_date=start,
                end_date=start + datetime.timedelta(days=30 * months),
            )
        if from_quote:
            quote = yield from self.quote_sent(
                owner, day - datetime.timedelta(days=14), large=large
            )
            yield made, 11
            with self.at(made, 11):
                contract = services.quote_convert_to_contract(
                    actor=owner,
                    quote=quote,
                    data={"title": quote.title.replace("报价", "合同"), **header},
                )
        else:
            yield made, 11
            customer = self.customer(owner)
            with self.at(made, 11):
                contract = services.contract_create(
                    actor=owner,
                    data={
                        **self.header(owner, customer),
                        "title": self.title(day) + "合同",
                        **header,
                    },
                    # Unsigned ones (drafts, pending, rejected) are never ordered here.
                    lines=self.lines(large=large, service=not signed and self.rng.random() < 0.5),
                )
        self.counts["contracts"] += 1
        return contract

    def submit(self, contract: Contract, day: datetime.date) -> Story[Contract]:
        yield day, 16
        with self.at(day, 16):
            return services.contract_submit(
                actor=contract.owner, contract=contract, comment="请审批。"
            )

    def decide(
        self, contract: Contract, day: datetime.date, *, reject: str = "", hour: int = 10
    ) -> Story[Contract]:
        """The current step's approver (salesmgr1, then the general manager) decides."""
        yield day, hour
        request = approval_pending_for_document(contract)
        assert request is not None, contract
        step = request.steps.filter(status="pending").order_by("sort_order").get()
        candidates = list(step.candidates.order_by("pk"))
        approver = ([u for u in (self.manager, self.gm) if u in candidates] or candidates)[0]
        with self.at(day, hour):
            if reject:
                approval_reject(actor=approver, request=request, comment=reject)
            else:
                comments = GM_COMMENTS if approver == self.gm else APPROVE_COMMENTS
                approval_approve(actor=approver, request=request, comment=self.rng.choice(comments))
        contract.refresh_from_db()
        return contract

    def approved(self, contract: Contract, day: datetime.date) -> Story[Contract]:
        """Submitted the day before ``day``; decided on ``day`` (a large one's second step
        that afternoon)."""
        contract = yield from self.submit(contract, day - datetime.timedelta(days=1))
        hour = 9
        while contract.status == ContractStatus.PENDING:
            contract = yield from self.decide(contract, day, hour=hour)
            hour += 6
        return contract

    def signed(self, owner, day: datetime.date, **kwargs) -> Story[Contract]:
        """A contract signed on ``day``, approved and in force."""
        contract = yield from self.contract(owner, day, **kwargs)
        return (yield from self.approved(contract, day))

    def amend(self, contract: Contract, day: datetime.date, reason: str, **kwargs) -> Story[None]:
        yield day, 14
        contract.refresh_from_db()
        with self.at(day, 14):
            services.contract_amend(
                actor=contract.owner,
                contract=contract,
                expected_version=contract.version,
                reason=reason,
                **kwargs,
            )

    # --- orders ---------------------------------------------------------------------------

    def order_details(self, customer, day: datetime.date, ship_in: int) -> dict[str, Any]:
        address = "".join((customer.province, customer.city, customer.district, customer.street))
        return {
            "order_date": day,
            "ship_by": day + datetime.timedelta(days=ship_in),
            "receiver_name": self.rng.choice(RECEIVERS),
            "receiver_phone": f"139{self.rng.randint(10000000, 99999999)}",
            "shipping_address": address[:300],
        }

    def order_from(
        self, contract: Contract, day: datetime.date, *, half: bool = False
    ) -> Story[Order]:
        yield day, 10
        lines = None
        if half:
            lines = [
                {"contract_line": line, "quantity": _half(line.quantity)}
                for line in contract.lines.order_by("sort_order", "pk")
            ]
        with self.at(day, 10):
            order = services.order_create_from_contract(
                actor=contract.owner,
                contract=contract,
                data=self.order_details(contract.customer, day, 10),
                lines=lines,
            )
        self.counts["orders"] += 1
        return order

    def order(self, owner, day: datetime.date, *, ship_in: int = 10) -> Story[Order]:
        yield day, 10
        customer = self.customer(owner)
        with self.at(day, 10):
            order = services.order_create(
                actor=owner,
                data={
                    "customer": customer,
                    "title": self.title(day) + "订单",
                    **self.order_details(customer, day, ship_in),
                },
                lines=self.lines(),
            )
        self.counts["orders"] += 1
        return order

    def confirm(self, order: Order, day: datetime.date) -> Story[Order]:
        yield day, 14
        with self.at(day, 14):
            return services.order_confirm(actor=order.owner, order=order)

    def stock_for(self, order: Order, quantities: dict[int, Decimal] | None) -> None:
        """Receive what the warehouse lacks for this shipment (a purchase arriving)."""
        for line in order.lines.select_related("product").order_by("product_id", "pk"):
            need = line.outstanding_quantity if quantities is None else quantities.get(line.pk)
            if not need:
                continue
            product = Product.objects.get(pk=line.product_id)
            if product.stock_quantity < need:
                stock_movement_post(
                    actor=self.warehouse,
                    product=product,
                    kind="in",
                    quantity=need - product.stock_quantity + self.rng.randint(10, 40),
                    reason="采购入库",
                    reference=f"RK-{order.number}",
                )

    def ship(self, order: Order, day: datetime.date, *, part: bool = False) -> Story[Order]:
        """The warehouse ships what is outstanding (``part``: about half, not every line)."""
        yield day, 16
        quantities = None
        if part:
            lines = [line for line in order.lines.order_by("sort_order", "pk")]
            quantities = {
                line.pk: _half(line.outstanding_quantity)
                for line in lines[: max(1, len(lines) - 1)]
                if line.outstanding_quantity > 0
            }
        self.stock_for(order, quantities)
        with self.at(day, 16):
            services.order_ship(
                actor=self.warehouse,
                order=order,
                quantities=quantities,
                shipped_on=day,
                carrier=self.rng.choice(CARRIERS),
                tracking_number=f"SF{self.rng.randint(10**11, 10**12 - 1)}",
            )
        self.counts["shipments"] += 1
        order.refresh_from_db()
        return order

    def complete(self, order: Order, day: datetime.date) -> Story[Order]:
        yield day, 11
        with self.at(day, 11):
            return services.order_complete(actor=order.owner, order=order)

    def cancel(self, order: Order, day: datetime.date, reason: str) -> Story[Order]:
        """Cancelled by its owner, or by the warehouse when goods are out (they come back)."""
        yield day, 9
        order.refresh_from_db()
        out = any(line.shipped_quantity > line.returned_quantity for line in order.lines.all())
        with self.at(day, 9):
            return services.order_cancel(
                actor=self.warehouse if out else order.owner, order=order, reason=reason
            )

    def delivered(self, order: Order, day: datetime.date, *, split: bool = False) -> Story[Order]:
        """Confirmed on ``day``, shipped (in two parts if ``split``), completed two weeks on."""
        order = yield from self.confirm(order, day)
        if split:
            order = yield from self.ship(order, day + datetime.timedelta(days=2), part=True)
            order = yield from self.ship(order, day + datetime.timedelta(days=9))
        else:
            order = yield from self.ship(order, day + datetime.timedelta(days=3))
        return (yield from self.complete(order, day + datetime.timedelta(days=14)))

    # --- the stories ----------------------------------------------------------------------

    def completed_contract(self, owner, days: int, *, large: bool) -> Story[None]:
        """Signed ``days`` ago for nine months, delivered, closed after its end."""
        contract = yield from self.signed(owner, self.ago(days), large=large, months=9)
        order = yield from self.order_from(contract, self.ago(days - 5))
        yield from self.delivered(order, self.ago(days - 6), split=large)
        yield self.ago(days - 280), 10
        with self.at(self.ago(days - 280), 10):
            services.contract_complete(actor=owner, contract=contract)

    def active_contract(
        self, owner, days: int, *, large=False, from_quote=False, orders="", ends_in=0
    ) -> Story[None]:
        """Signed ``days`` ago and in force; ``orders`` says what its orders went through;
        ``ends_in``: an amendment moves the end to that many days from today."""
        d = self.ago
        contract = yield from self.signed(owner, d(days), large=large, from_quote=from_quote)
        start = days - 10  # the first order, ten days after signing
        if orders == "returned":  # delivered in two parts, one unit sent back and replaced
            order = yield from self.order_from(contract, d(start))
            order = yield from self.delivered(order, d(start - 1), split=True)
            line = order.lines.order_by("sort_order", "pk").first()
            assert line is not None
            returned = d(start - 20)
            yield returned, 15
            with self.at(returned, 15):
                services.order_return(
                    actor=self.warehouse,
                    order=order,
                    quantities={line.pk: Decimal(1)},
                    reason="运输途中外包装破损，退回 1 件换货。",
                    returned_on=returned,
                )
            order.refresh_from_db()
            order = yield from self.ship(order, d(start - 23))
            yield from self.complete(order, d(start - 30))
        elif orders == "half":  # half ordered and delivered, the rest not ordered yet
            order = yield from self.order_from(contract, d(start), half=True)
            yield from self.delivered(order, d(start - 1))
        elif orders == "partial":  # partly shipped, the rest to follow
            order = yield from self.order_from(contract, d(start))
            order = yield from self.confirm(order, d(start - 1))
            yield from self.ship(order, d(start - 5), part=True)
        elif orders == "shipped":  # all shipped, not yet closed
            order = yield from self.order_from(contract, d(start))
            order = yield from self.confirm(order, d(start - 1))
            yield from self.ship(order, d(start - 10))
        elif orders == "overdue":  # confirmed, ship-by date ten days ago
            order = yield from self.order_from(contract, d(20))
            yield from self.confirm(order, d(19))
        elif orders == "confirmed":  # to ship next week
            order = yield from self.order_from(contract, d(5))
            yield from self.confirm(order, d(4))
        elif orders == "pending":  # just placed, for half of it
            yield from self.order_from(contract, d(2), half=True)
        if ends_in:
            yield from self.amend(
                contract,
                d(10),
                "项目周期调整，合同到期日相应变更。",
                data={"end_date": self.today + datetime.timedelta(days=ends_in)},
            )

    def amended_contract(self, owner, days: int) -> Story[None]:
        """In force; the customer then takes five more of the first item, paid in three."""
        contract = yield from self.signed(owner, self.ago(days), from_quote=True)
        yield self.ago(days - 18), 13
        lines = [
            _line_data(line, id=line.pk, quantity=line.quantity + (5 if position == 0 else 0))
            for position, line in enumerate(contract.lines.order_by("sort_order", "pk"))
        ]
        yield from self.amend(
            contract,
            self.ago(days - 18),
            "客户追加采购 5 件，付款条件同步调整。",
            data={"payment_terms": PAYMENT_TERMS[2]},
            lines=lines,
        )

    def resubmitted_contract(self, owner, days: int) -> Story[None]:
        """Rejected for its discounts, fixed, signed and approved on the second submission."""
        d = self.ago
        contract = yield from self.contract(owner, d(days), signed=False)
        contract = yield from self.submit(contract, d(days - 1))
        contract = yield from self.decide(
            contract,
            d(days - 2),
            reject="折扣超出权限（最高 5%），付款条件也需调整，请修改后重新提交。",
        )
        yield d(days - 3), 10
        fixed = [
            _line_data(line, discount_rate=min(line.discount_rate, Decimal(5)))
            for line in contract.lines.order_by("sort_order", "pk")
        ]
        signed_on = d(days - 5)
        with self.at(d(days - 3), 10):
            contract = services.contract_update(
                actor=owner,
                contract=contract,
                expected_version=contract.version,
                data={
                    "signed_on": signed_on,
                    "start_date": signed_on + datetime.timedelta(days=3),
                    "end_date": signed_on + YEAR,
                    "payment_terms": PAYMENT_TERMS[0],
                },
                lines=fixed,
            )
        yield from self.approved(contract, signed_on)

    def terminated_contract(self, owner, days: int, *, goods_out: bool) -> Story[None]:
        d = self.ago
        contract = yield from self.signed(owner, d(days), large=goods_out)
        reason = "客户经营调整，双方协商一致提前终止合同。"
        ended = d(days - 120)
        if goods_out:  # part shipped, then the customer stopped paying: goods taken back
            order = yield from self.order_from(contract, d(days - 5), half=True)
            order = yield from self.confirm(order, d(days - 6))
            order = yield from self.ship(order, d(days - 10), part=True)
            yield from self.cancel(
                order, d(days - 70), "客户未按约定支付预付款，订单取消，货物退回。"
            )
            reason = "客户连续两期未按约定付款，依合同约定终止。"
            ended = d(days - 71)
        yield ended, 10
        with self.at(ended, 10):
            services.contract_terminate(actor=owner, contract=contract, reason=reason)

    def rejected_contract(self, owner, days: int, *, large: bool, reason: str) -> Story[None]:
        """Rejected by salesmgr1, or (large) by the general manager at the second step."""
        contract = yield from self.contract(owner, self.ago(days), large=large, signed=False)
        contract = yield from self.submit(contract, self.ago(days - 1))
        if large:
            contract = yield from self.decide(contract, self.ago(days - 2))
        yield from self.decide(contract, self.ago(days - 3), reject=reason)

    def pending_contract(self, owner, days: int, *, large=False, from_quote=False, step=0):
        """Waiting for approval; ``step`` 1: salesmgr1 has approved, the general manager next."""
        contract = yield from self.contract(
            owner, self.ago(days), large=large, signed=False, from_quote=from_quote
        )
        contract = yield from self.submit(contract, self.ago(days - 1))
        if step:
            yield from self.decide(contract, self.ago(days - 2))

    def standalone_order(self, owner, days: int, state: str) -> Story[None]:
        d = self.ago
        order = yield from self.order(owner, d(days), ship_in=8)
        if state == "pending":
            return
        if state == "cancelled":
            yield from self.cancel(order, d(days - 2), "客户取消采购计划。")
            return
        if state in ("completed", "completed_split"):
            yield from self.delivered(order, d(days - 1), split=state == "completed_split")
            return
        order = yield from self.confirm(order, d(days - 1))
        if state == "partial":
            yield from self.ship(order, d(days - 4), part=True)
        elif state == "shipped":
            yield from self.ship(order, d(days - 4))
        elif state == "cancelled_after_shipping":
            order = yield from self.ship(order, d(days - 3), part=True)
            yield from self.cancel(
                order, d(days - 8), "客户要求更换型号，原订单取消，已发货物退回。"
            )

    def quotes_expiring(self) -> Story[None]:
        """The daily job, today: quotes past their validity expire."""
        yield self.today, 1
        with self.at(self.today, 1):
            services.quotes_expire(today=self.today)

    def stories(self) -> list[Story]:
        s1, s2, s3 = self.sales1, self.sales2, self.sales3
        return [
            # Quotes in every status; converted ones come with contracts below.
            self.quote(s1, self.ago(3), service=True),
            self.quote(s3, self.ago(6), service=True),
            self.quote(s2, self.ago(12), service=True),
            self.quote_sent(s1, self.ago(9), service=True),
            self.quote_sent(s2, self.ago(15), service=True),
            self.quote_sent(s3, self.ago(20), service=True),
            self.quote_answered(s2, self.ago(18)),
            self.quote_answered(s1, self.ago(25)),
            self.quote_answered(s1, self.ago(75), reject="客户选择了其他供应商。"),
            self.quote_answered(s3, self.ago(130), reject="客户预算未获批准。"),
            self.quote_sent(s2, self.ago(95), valid_days=15, service=True),  # these expire today
            self.quote_sent(s3, self.ago(160), valid_days=15, service=True),
            self.quote_sent(s1, self.ago(240), valid_days=15, service=True),
            self.quote(s3, self.ago(60), service=True),
            # Contracts in every status, with their approvals and orders.
            self.completed_contract(s1, 350, large=True),
            self.completed_contract(s2, 330, large=False),
            self.completed_contract(s1, 300, large=False),
            self.active_contract(s1, 280, large=True, orders="returned", ends_in=6),
            self.active_contract(s2, 240, from_quote=True, orders="half", ends_in=21),
            self.active_contract(s1, 200, orders="partial"),
            self.active_contract(s2, 170, large=True, orders="shipped"),
            self.active_contract(s1, 120, from_quote=True, orders="overdue"),
            self.active_contract(s2, 90, from_quote=True, orders="confirmed"),
            self.active_contract(s1, 60, large=True, from_quote=True, orders="pending"),
            self.amended_contract(s2, 30),
            self.active_contract(s1, 14),
            self.resubmitted_contract(s2, 50),
            self.terminated_contract(s2, 220, goods_out=False),
            self.terminated_contract(s1, 150, goods_out=True),
            self.rejected_contract(
                s1, 36, large=False, reason="单价低于成本价，请重新核算后提交。"
            ),
            self.rejected_contract(
                s2,
                27,
                large=True,
                reason="预付款比例过低，风险较大，请与客户协商预付款不低于 30%。",
            ),
            self.pending_contract(s1, 6, large=True, step=1),
            self.pending_contract(s2, 4, from_quote=True),
            self.pending_contract(s1, 3, large=True),
            self.contract(s1, self.ago(4), signed=False),  # drafts
            self.contract(s3, self.ago(10), signed=False, from_quote=True),
            # Standalone orders in every status.
            self.standalone_order(s3, 1, "pending"),
            self.standalone_order(s1, 6, "confirmed"),
            self.standalone_order(s2, 40, "partial"),
            self.standalone_order(s3, 28, "shipped"),
            self.standalone_order(s3, 110, "completed"),
            self.standalone_order(s1, 200, "completed_split"),
            self.standalone_order(s2, 70, "cancelled"),
            self.standalone_order(s1, 55, "cancelled_after_shipping"),
            self.quotes_expiring(),
        ]


def _company_details_ensure(admin) -> None:
    """What a contract prints of the demo company, unless someone has set it already."""
    from kehu.system.services import system_settings_get, system_settings_update

    row = system_settings_get()
    if row.company_address or row.company_tax_number:
        return
    system_settings_update(
        actor=admin,
        expected_version=row.version,
        data={
            "company_address": "浙江省杭州市西湖区文三路 90 号东部软件园 2 号楼 501 室",
            "company_phone": "0571-88886666",
            "company_tax_number": "91330106MA2B3C4D5E",
            "company_bank": "招商银行杭州高新支行 5719 0888 8810 001",
        },
    )


def demo_load(*, admin, users) -> dict[str, int]:
    if Quote.all_objects.exists() or Contract.all_objects.exists() or Order.all_objects.exists():
        return {}
    needed = ("sales1", "sales2", "sales3", "salesmgr1", "manager", "warehouse")
    if not users or any(name not in users for name in needed):
        return {}
    demo = _Demo(admin=admin, users=users)
    if len(demo.cheap) < 3 or len(demo.dear) < 4:
        return {}  # no catalogue to sell from
    _company_details_ensure(admin)
    demo.play(demo.stories())
    return demo.counts
