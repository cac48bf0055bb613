"""Demo history for the analytics pages: two years of sales and money, then the jobs.

Runs last among the demo modules, after the sales demo (and the finance demo). It gives
the customers of the demo salespeople two years of contracts, orders, shipments, receivable
plans and payments (``kehu.sales.generate`` with ``kehu.finance.generate``), ending a month
before today, so the sales demo's own documents, made through the services over the last
year, follow them. History numbers take their year from the document's date; in the current
year they continue after the sales demo's, from the same sequences, so documents created
later through the services still number on without gaps.

Salespeople call on customers before a deal and try to win back the ones who stopped
buying, so each history contract gets a follow-up or two in the weeks before signing and
some customers' last deal a call afterwards that brought nothing (the churn model reads this
activity).

Then it runs every analytics job once (``analytics_refresh_all``), so the pages have
results right after ``make demo``; the worker refreshes them daily afterwards.

Deterministic (fixed seeds, dates relative to today) and idempotent: when history exists
(an approval request under ``HISTORY_RULE_NAME``) nothing is added, and the jobs run again
only if none has succeeded yet. The sales demo decides to skip by "any quote, contract or
order exists"; it runs before this module, so the history never makes it skip.
"""

from __future__ import annotations

import datetime
import random

from django.db import models
from django.db.models import F, Max
from django.utils import timezone

from kehu.analytics.models import AnalyticsRun, RunStatus
from kehu.approvals.models import ApprovalRequest
from kehu.customers.models import Customer, FollowUp
from kehu.products.models import Product, ProductStatus
from kehu.sales.generate import HISTORY_RULE_NAME, HistoryMix, sales_history_generate

SEED = 2026
HISTORY_DAYS = 730
GAP_DAYS = 30  # the history ends this long before today; the sales demo's documents follow
SALESPEOPLE = ("sales1", "sales2", "sales3", "salesmgr1")
# Categories of the demo catalogue whose products sell together: a printer and its ink or
# toner, a laptop and a dock, a desktop and a monitor, a switch and access points …
COMPANION_CATEGORIES = [
    ("打印机", "墨盒"),
    ("打印机", "硒鼓"),
    ("复印机", "纸张"),
    ("笔记本", "配件"),
    ("台式机", "显示器"),
    ("交换机", "无线AP"),
    ("路由器", "交换机"),
    ("服务器", "防火墙"),
    ("平板电脑", "配件"),
    ("会议平板", "投影仪"),
]
MIX = HistoryMix(order_amount=20_000.0)
WIN_BACK_TEXTS = [
    "电话回访，客户表示近期暂无采购计划。",
    "微信联系采购负责人，对方未回复。",
    "客户反馈已更换供应商，约定明年再沟通。",
    "拜访客户，对方预算收紧，项目暂缓。",
]


def _goods() -> list[Product]:
    """What the warehouse stocks (services are never shipped), on sale."""
    return list(
        Product.objects.filter(status=ProductStatus.ON_SALE, list_price__gt=0)
        .filter(low_stock_threshold__gt=0)
        .select_related("unit", "category")
        .order_by("code")
    )


def _pairs(goods: list[Product]) -> list[tuple[int, int]]:
    """Each product of a category with a companion in its partner category, of the same
    brand when there is one (惠普 printers with 惠普 toner)."""
    rng = random.Random(SEED)
    by_category: dict[str, list[Product]] = {}
    for product in goods:
        if product.category is not None:
            by_category.setdefault(product.category.name, []).append(product)
    pairs = []
    for source, target in COMPANION_CATEGORIES:
        targets = by_category.get(target, [])
        if not targets:
            continue
        for product in by_category.get(source, []):
            same_brand = [t for t in targets if t.name[:2] == product.name[:2]]
            pairs.append((product.pk, rng.choice(same_brand or targets).pk))
    return pairs


def _followups_add(end: datetime.date) -> int:
    """Calls before each history contract; after a customer's last one, calls that bring
    nothing (fewer, further apart). Returns how many were written."""
    from kehu.customers.demo import FOLLOWUP_TEXTS, _items
    from kehu.sales.models import Contract

    rng = random.Random(SEED + 1)
    tz = timezone.get_current_timezone()
    methods = list(_items("followup_method").values())
    contracts = (
        Contract.objects.filter(
            pk__in=ApprovalRequest.objects.filter(rule_name=HISTORY_RULE_NAME).values("object_id")
        )
        .order_by("customer_id", "signed_on", "pk")
        .values_list("customer_id", "owner_id", "contact_id", "signed_on")
    )
    days: dict[int, list[tuple[int, int | None, datetime.date]]] = {}
    for customer, owner, contact, signed_on in contracts:
        days.setdefault(customer, []).append((owner, contact, signed_on))

    def call(customer, owner, contact, day, text) -> FollowUp:
        at = datetime.datetime.combine(day, datetime.time(rng.randint(9, 17), rng.randint(0, 59)))
        return FollowUp(
            customer_id=customer,
            contact_id=contact,
            method=rng.choice(methods) if methods else None,
            content=text,
            happened_at=at.replace(tzinfo=tz),
            author_id=owner,
            created_by_id=owner,
        )

    rows = []
    for customer, deals in days.items():
        for owner, contact, signed_on in deals:
            for _ in range(rng.choice([1, 2, 2, 3])):
                day = signed_on - datetime.timedelta(days=rng.randint(3, 40))
                rows.append(call(customer, owner, contact, day, rng.choice(FOLLOWUP_TEXTS)))
        owner, contact, last = deals[-1]
        if rng.random() < 0.3:  # one call after the last deal that brought nothing
            day = last + datetime.timedelta(days=rng.randint(60, 150))
            if day <= end:
                rows.append(call(customer, owner, contact, day, rng.choice(WIN_BACK_TEXTS)))
    first = (FollowUp.all_objects.aggregate(m=Max("pk"))["m"] or 0) + 1
    FollowUp.objects.bulk_create(rows, batch_size=1000)
    written = FollowUp.objects.filter(pk__gte=first)
    written.update(created_at=F("happened_at"), updated_at=F("happened_at"))
    latest = (
        FollowUp.objects.filter(customer_id__in=list(days))
        .values("customer_id")
        .annotate(last=Max("happened_at"))
        .values_list("customer_id", "last")
    )
    for customer, last in latest:
        Customer.all_objects.filter(pk=customer).filter(
            models.Q(last_followup_at__isnull=True) | models.Q(last_followup_at__lt=last)
        ).update(last_followup_at=last)
    return len(rows)


def demo_load(*, admin, users) -> dict[str, int]:
    from kehu.analytics.services import analytics_refresh_all
    from kehu.finance.generate import FinanceHistory

    if not users or not all(name in users for name in SALESPEOPLE):
        return {}
    created: dict[str, int] = {}
    if not ApprovalRequest.objects.filter(rule_name=HISTORY_RULE_NAME).exists():
        goods = _goods()
        customers = Customer.objects.filter(
            owner__in=[users[name] for name in SALESPEOPLE], in_pool=False
        )
        if len(goods) >= 10 and customers.exists():
            end = timezone.localdate() - datetime.timedelta(days=GAP_DAYS)
            result = sales_history_generate(
                customers=customers,
                products=goods,
                start=end - datetime.timedelta(days=HISTORY_DAYS),
                end=end,
                seed=SEED,
                mix=MIX,
                sinks=[FinanceHistory(seed=SEED, confirmer=users.get("finance"))],
                pairs=_pairs(goods),
                shipper=users.get("warehouse"),
            )
            created = {f"history {name}": count for name, count in result.counts.items()}
            created["history follow-ups"] = _followups_add(end)
    if created or not AnalyticsRun.objects.filter(status=RunStatus.SUCCEEDED).exists():
        created["analytics runs"] = len(analytics_refresh_all())
    return created
