"""Bulk generation of realistic customers for benchmarks (``manage.py generate_customers``).

Rows are internally consistent: names composed from word lists with their normalised
form, pinyin and initials, phones and their digits, owners spread over the sales users
with the owner's department, a share in the pool, contacts, follow-ups whose latest date
is the customer's last/next follow-up, some opportunities, a "created" event per customer,
and codes from one reserved block of the KH sequence.

Speed is the point, so the ORM is bypassed for the inserts: rows are tuples in column order,
written with COPY on PostgreSQL and ``executemany`` in large transactions on SQLite. Primary
keys are assigned here (children need their parents' ids without reading them back); the
PostgreSQL identity sequences are moved past them at the end. Meant for a database nobody
else writes to while it runs.
"""

from __future__ import annotations

import datetime
import json
import random
import time
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.bulk import (
    GenerateResult,
    RowWriter,
    indexes_deferred,
    next_id,
    tables_analyze,
)
from kehu.core.bulk import sequences_reset as _sequences_reset
from kehu.core.exceptions import ServiceError
from kehu.customers.demo import CITIES as DEMO_CITIES
from kehu.customers.demo import (
    FOLLOWUP_TEXTS,
    GIVEN,
    INDUSTRIES,
    LOST_REASONS,
    NEXT_ACTIONS,
    OPPORTUNITY_TITLES,
    STREETS,
    SURNAMES,
    TAGS,
    TITLES,
    _customer_codes,
    _items,
)
from kehu.customers.models import (
    Contact,
    Customer,
    CustomerEvent,
    CustomerEventKind,
    CustomerStage,
    CustomerTag,
    FollowUp,
    Opportunity,
    PipelineStage,
    StageKind,
)
from kehu.customers.normalize import name_initials, name_pinyin

SEED = 20260601
SALES_ROLES = ("salesperson", "sales_manager")
POOL_SHARE = 0.1

CITIES = DEMO_CITIES + [
    ("天津市", "天津市", "天津", "022", ["和平区", "南开区", "滨海新区"]),
    ("重庆市", "重庆市", "重庆", "023", ["渝中区", "江北区", "渝北区"]),
    ("湖南省", "长沙市", "长沙", "0731", ["岳麓区", "芙蓉区", "雨花区"]),
    ("河南省", "郑州市", "郑州", "0371", ["金水区", "二七区", "郑东新区"]),
    ("浙江省", "宁波市", "宁波", "0574", ["鄞州区", "海曙区", "北仑区"]),
    ("辽宁省", "大连市", "大连", "0411", ["中山区", "沙河口区", "甘井子区"]),
    ("安徽省", "合肥市", "合肥", "0551", ["蜀山区", "包河区", "庐阳区"]),
    ("江苏省", "无锡市", "无锡", "0510", ["梁溪区", "滨湖区", "新吴区"]),
]
# Brand words are two of these characters: 70² ≈ 4,900 brands, so a million names are
# mostly distinct, as in a real customer base. Characters with a common second reading
# (长, 行, 重, 乐) are left out so each word's pinyin is unambiguous.
BRAND_CHARS = (
    "华信鼎盛恒通远航瑞丰金桥天成博宏图新锐嘉禾德润东方中科海纳启明卓越九州风辉世安泰万达"
    "星河汇智云帆聚力永众创亿联佳美利隆兴泽正乾坤宇龙凯旋浩源达晟晖"
)
MORE_INDUSTRIES = [
    ("环保科技", "other"),
    ("食品", "retail"),
    ("纺织", "manufacturing"),
    ("新能源", "manufacturing"),
    ("文化传媒", "other"),
    ("供应链管理", "other"),
    ("智能装备", "manufacturing"),
    ("数据服务", "it"),
]
ALL_INDUSTRIES = INDUSTRIES + MORE_INDUSTRIES
SUFFIXES = ["有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司"]
# Suffixes name_normalize strips ("集团有限公司" loses both words).
NORMALIZED_SUFFIX_LEN = {"有限公司": 4, "股份有限公司": 6, "集团有限公司": 6}


@cache
def _word_pinyin(word: str) -> tuple[str, str]:
    """(initials, full pinyin) of one word; pypinyin is slow, the word lists are short."""
    return name_initials(word), name_pinyin(word)


# A load this large (and not small next to what is there) builds its indexes afterwards.
DEFER_INDEXES_FROM = 50_000


def _text_index_drop() -> None:
    from kehu.customers.textindex import text_index_drop

    if connection.vendor == "sqlite":
        text_index_drop(connection.alias)  # FTS tables and their triggers


def _text_index_ensure() -> None:
    from kehu.customers.textindex import text_index_ensure

    text_index_ensure(connection.alias)  # creates and fills the FTS tables if dropped


def sales_users() -> list:
    from kehu.system.models import User

    return list(
        User.objects.filter(is_active=True, roles__code__in=SALES_ROLES)
        .distinct()
        .order_by("pk")
        .only("pk", "department_id")
    )


def customers_generate(
    *,
    customers: int,
    contacts_per: float = 2,
    followups_per: float = 3,
    opportunity_share: float = 0.3,
    batch: int = 20_000,
    seed: int = SEED,
    defer_indexes: bool | None = None,
    deals: bool = True,
    analyze: bool = True,
    progress: Callable[[str], None] | None = None,
) -> GenerateResult:
    """Insert ``customers`` customers and their related rows; returns counts and time.

    ``contacts_per`` and ``followups_per`` are averages per customer (follow-ups only on
    owned customers); ``opportunity_share`` of owned customers get one opportunity.
    ``defer_indexes`` (default: when loading at least ``DEFER_INDEXES_FROM`` customers and
    no fewer than are there) drops the tables' non-unique indexes, the trigram index and
    the FTS tables before the load and builds them once afterwards, also if the load fails.
    """
    if customers < 1:
        raise ServiceError(_("Generate at least one customer."))
    owners = sales_users()
    if not owners:
        raise ServiceError(_("There are no active sales users to own the customers."))
    started = time.monotonic()
    rng = random.Random(seed)
    postgres = connection.vendor == "postgresql"
    now = timezone.now().replace(microsecond=0)

    def dt(value: datetime.datetime | None) -> Any:
        # SQLite stores UTC datetimes as text (what Django's adapter would write).
        if value is None or postgres:
            return value
        return value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat(" ")

    def dec(value: Decimal) -> Any:
        return value if postgres else str(value)

    def day(value: datetime.date | None) -> Any:
        return value if postgres or value is None else value.isoformat()

    empty_json = "{}"
    created_json = json.dumps({"generated": True})
    industries = _items("industry")
    sources: list[int | None] = [i.pk for i in _items("customer_source").values()] or [None]
    levels: list[int | None] = [i.pk for i in _items("customer_level").values()] or [None]
    methods: list[int | None] = [i.pk for i in _items("followup_method").values()] or [None]
    stages = list(PipelineStage.objects.filter(is_active=True))
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    won_stage = next((s for s in stages if s.kind == StageKind.WON), None)
    lost_stage = next((s for s in stages if s.kind == StageKind.LOST), None)
    tag_ids = [CustomerTag.objects.get_or_create(name=name)[0].pk for name in TAGS]
    brands = [a + b for a in BRAND_CHARS for b in BRAND_CHARS if a != b]
    stage_values = [
        CustomerStage.POTENTIAL,
        CustomerStage.INTENT,
        CustomerStage.WON,
        CustomerStage.LOST,
    ]

    with transaction.atomic():
        codes = _customer_codes(customers)  # one reserved block of the KH sequence
    ids = {
        model: next_id(model) for model in (Customer, Contact, FollowUp, Opportunity, CustomerEvent)
    }
    tag_through = Customer.tags.through
    tag_next = next_id(tag_through)

    customer_cols = [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "deleted_at", "deleted_by_id", "code", "kind", "name", "short_name",
        "name_normalized", "name_initials", "name_pinyin", "phone", "mobile", "phone_digits",
        "mobile_digits", "email", "website", "province", "city", "district", "street",
        "industry_id", "source_id", "level_id", "stage", "notes", "owner_id", "department_id",
        "in_pool", "pool_entered_at", "assigned_at", "last_followup_at", "next_followup_at",
        "last_deal_at", "custom_fields",
    ]  # fmt: skip
    contact_cols = [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "deleted_at", "deleted_by_id", "customer_id", "name", "title", "phone", "mobile",
        "email", "wechat", "birthday", "is_primary", "notes",
    ]  # fmt: skip
    followup_cols = [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "deleted_at", "deleted_by_id", "customer_id", "contact_id", "method_id", "content",
        "happened_at", "next_followup_at", "next_action", "author_id",
    ]  # fmt: skip
    opportunity_cols = [
        "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
        "deleted_at", "deleted_by_id", "customer_id", "title", "amount", "currency",
        "expected_close_date", "stage_id", "probability", "owner_id", "department_id",
        "board_position", "closed_at", "lost_reason", "notes",
    ]  # fmt: skip
    event_cols = [
        "id", "customer_id", "kind", "from_owner_id", "to_owner_id", "reason", "data",
        "actor_id", "at",
    ]  # fmt: skip
    writers = {
        "customers": RowWriter(Customer, customer_cols),
        "tags": RowWriter(tag_through, ["id", "customer_id", "customertag_id"]),
        "events": RowWriter(CustomerEvent, event_cols),
        "contacts": RowWriter(Contact, contact_cols),
        "follow-ups": RowWriter(FollowUp, followup_cols),
        "opportunities": RowWriter(Opportunity, opportunity_cols),
    }
    counts = dict.fromkeys(writers, 0)
    positions: dict[int, int] = {}
    contacts_max = max(1, round(contacts_per * 2 - 1))
    followups_max = max(0, round(followups_per * 2))

    tables = [writer.table for writer in writers.values()]
    if defer_indexes is None:  # a large load, not small next to what is there already
        defer_indexes = customers >= max(DEFER_INDEXES_FROM, Customer._base_manager.count())
    with indexes_deferred(
        tables,
        enabled=defer_indexes,
        progress=progress,
        before_drop=_text_index_drop,
        after_create=_text_index_ensure,
    ):
        done = 0
        while done < customers:
            size = min(batch, customers - done)
            rows: dict[str, list[tuple]] = {key: [] for key in writers}
            for index in range(done, done + size):
                cid = ids[Customer]
                ids[Customer] += 1
                province, city, short, area, districts = CITIES[int(rng.random() * len(CITIES))]
                brand = brands[int(rng.random() * len(brands))]
                word, industry = ALL_INDUSTRIES[int(rng.random() * len(ALL_INDUSTRIES))]
                suffix = SUFFIXES[int(rng.random() * len(SUFFIXES))]
                name = f"{short}{brand}{word}{suffix}"
                parts = [_word_pinyin(w) for w in (short, brand, word, suffix)]
                initials = "".join(p[0] for p in parts)
                pinyin = "".join(p[1] for p in parts)
                normalized = f"{short}{brand}{word}"
                owner = (
                    None if rng.random() < POOL_SHARE else owners[int(rng.random() * len(owners))]
                )
                owner_id = owner.pk if owner else None
                department_id = owner.department_id if owner else None
                created = now - datetime.timedelta(
                    days=rng.randint(1, 1500), seconds=rng.randint(0, 86399)
                )
                phone_digits = f"{area}{rng.randint(6000_0000, 8999_9999)}"
                phone = f"{area}-{phone_digits[len(area) :]}"
                mobile = f"1{'3589'[int(rng.random() * 4)]}{rng.randint(100000000, 999999999)}"
                stage = rng.choices(stage_values, [40, 35, 20, 5])[0]

                # Contacts first: follow-ups name the primary one.
                contact_ids = []
                for n in range(1 + int(rng.random() * contacts_max)):
                    kid = ids[Contact]
                    ids[Contact] += 1
                    contact_ids.append(kid)
                    rows["contacts"].append(
                        (
                            kid, dt(created), dt(created), None, None, 1, None, None, cid,
                            SURNAMES[int(rng.random() * len(SURNAMES))]
                            + GIVEN[int(rng.random() * len(GIVEN))],
                            TITLES[int(rng.random() * len(TITLES))], "",
                            f"1{'3589'[int(rng.random() * 4)]}{rng.randint(100000000, 999999999)}",
                            f"{initials[:6]}{n}@example.com.cn", "", None, n == 0, "",
                        )
                    )  # fmt: skip

                last = nxt = None
                if owner is not None and followups_max:
                    count = int(rng.random() * (followups_max + 1))
                    happened = now - datetime.timedelta(days=count * 12 + rng.randint(1, 60))
                    for step in range(count):
                        happened = min(
                            happened
                            + datetime.timedelta(days=rng.randint(2, 12), hours=rng.randint(0, 8)),
                            now - datetime.timedelta(hours=1),
                        )
                        plan = None
                        if step == count - 1 and rng.random() < 0.8:
                            plan = max(
                                now + datetime.timedelta(days=rng.randint(-10, 30)),
                                happened + datetime.timedelta(days=1),
                            )
                        fid = ids[FollowUp]
                        ids[FollowUp] += 1
                        rows["follow-ups"].append(
                            (
                                fid, dt(happened), dt(happened), owner_id, None, 1, None, None, cid,
                                contact_ids[0], methods[int(rng.random() * len(methods))],
                                FOLLOWUP_TEXTS[int(rng.random() * len(FOLLOWUP_TEXTS))],
                                dt(happened), dt(plan),
                                NEXT_ACTIONS[int(rng.random() * len(NEXT_ACTIONS))] if plan else "",
                                owner_id,
                            )
                        )  # fmt: skip
                        last, nxt = happened, plan

                won_at = None
                if owner is not None and open_stages and rng.random() < opportunity_share:
                    roll = rng.random()
                    pipeline_stage = open_stages[int(rng.random() * len(open_stages))]
                    if roll < 0.12 and won_stage:
                        pipeline_stage = won_stage
                    elif roll < 0.2 and lost_stage:
                        pipeline_stage = lost_stage
                    closed = pipeline_stage.kind != StageKind.OPEN
                    closed_at = (
                        now - datetime.timedelta(days=rng.randint(0, 25)) if closed else None
                    )
                    if pipeline_stage.kind == StageKind.WON:
                        won_at = closed_at
                    position = positions.get(pipeline_stage.pk, 0)
                    positions[pipeline_stage.pk] = position + 1
                    rows["opportunities"].append(
                        (
                            ids[Opportunity], dt(created), dt(created), owner_id, None, 1, None,
                            None, cid,
                            short + brand + rng.choice(OPPORTUNITY_TITLES),
                            dec(Decimal(rng.randint(20, 2000) * 1000).quantize(Decimal("0.01"))),
                            "CNY",
                            day(now.date() + datetime.timedelta(days=rng.randint(-10, 120))),
                            pipeline_stage.pk, pipeline_stage.probability, owner_id, department_id,
                            position,
                            dt(closed_at),
                            LOST_REASONS[int(rng.random() * len(LOST_REASONS))]
                            if pipeline_stage.kind == StageKind.LOST
                            else "",
                            "",
                        )
                    )  # fmt: skip
                    ids[Opportunity] += 1

                pool_entered = (
                    now - datetime.timedelta(days=rng.randint(1, 60)) if owner is None else None
                )
                assigned = now - datetime.timedelta(days=rng.randint(5, 400)) if owner else None
                if deals:
                    last_deal = (
                        now - datetime.timedelta(days=rng.randint(1, 120))
                        if stage == CustomerStage.WON
                        else None
                    )
                else:
                    # Deals come later (the sales history): only a won opportunity is one.
                    last_deal = won_at
                    if won_at is not None:
                        stage = CustomerStage.WON
                    elif stage == CustomerStage.WON:
                        stage = CustomerStage.INTENT
                industry_item = industries.get(industry)
                rows["customers"].append(
                    (
                        cid, dt(created), dt(created), None, None, 1, None, None, codes[index],
                        "company", name, "", normalized, initials, pinyin, phone, mobile,
                        phone_digits, mobile[:], f"info{cid}@{initials[:8]}.com.cn", "", province,
                        city, districts[int(rng.random() * len(districts))],
                        f"{STREETS[int(rng.random() * len(STREETS))]}{rng.randint(1, 999)}号",
                        industry_item.pk if industry_item else None,
                        sources[int(rng.random() * len(sources))],
                        levels[int(rng.random() * len(levels))], stage, "", owner_id, department_id,
                        owner is None, dt(pool_entered), dt(assigned), dt(last), dt(nxt),
                        dt(last_deal), empty_json,
                    )
                )  # fmt: skip
                rows["events"].append(
                    (
                        ids[CustomerEvent], cid, CustomerEventKind.CREATED.value, None, owner_id,
                        "", created_json, None, dt(created),
                    )
                )  # fmt: skip
                ids[CustomerEvent] += 1
                if rng.random() < 0.3:
                    rows["tags"].append((tag_next, cid, tag_ids[int(rng.random() * len(tag_ids))]))
                    tag_next += 1

            # One transaction per batch: large enough to be fast, small enough to resume.
            with transaction.atomic():
                for key, writer in writers.items():
                    counts[key] += writer.write(rows[key])
            done += size
            if progress:
                elapsed = time.monotonic() - started
                total = sum(counts.values())
                progress(
                    _("%(done)d customers, %(rows)d rows, %(rate)d rows/s")
                    % {"done": done, "rows": total, "rate": int(total / elapsed) if elapsed else 0}
                )

    _sequences_reset([Customer, Contact, FollowUp, Opportunity, CustomerEvent, tag_through])
    if analyze:  # fresh statistics so the planner sees the rows
        tables_analyze([Customer, Contact, FollowUp, Opportunity, CustomerEvent])
    return GenerateResult(counts=counts, seconds=time.monotonic() - started)
