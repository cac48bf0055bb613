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

import json
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.bulk import (
    DAY,
    CopySink,
    GenerateResult,
    RowWriter,
    Vector,
    copy_sink,
    foreign_keys_off,
    foreign_keys_verify,
    group_cumsum,
    indexes_deferred,
    next_id,
    tables_analyze,
    within,
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


def text_indexes_drop() -> None:
    from kehu.customers.textindex import text_index_drop

    if connection.vendor == "sqlite":
        text_index_drop(connection.alias)  # FTS tables and their triggers


def text_indexes_ensure() -> None:
    from kehu.customers.textindex import text_index_ensure

    text_index_ensure(connection.alias)  # creates and fills the FTS tables if dropped


def customer_tables() -> list[str]:
    """The tables ``customers_generate`` writes."""
    models = [Customer, Customer.tags.through, CustomerEvent, Contact, FollowUp, Opportunity]
    return [model._meta.db_table for model in models]


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
    unchecked: bool | None = None,
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
    ``unchecked`` (default: as ``defer_indexes``) writes with foreign-key checks off and
    verifies the references by ranges afterwards (``foreign_keys_verify``).
    """
    if customers < 1:
        raise ServiceError(_("Generate at least one customer."))
    owners = sales_users()
    if not owners:
        raise ServiceError(_("There are no active sales users to own the customers."))
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    v = Vector()
    now = int(timezone.now().timestamp())
    industries = _items("industry")
    sources = [i.pk for i in _items("customer_source").values()]
    levels = [i.pk for i in _items("customer_level").values()]
    methods = [i.pk for i in _items("followup_method").values()]
    stages = list(PipelineStage.objects.filter(is_active=True).order_by("pk"))
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    won_stage = next((s for s in stages if s.kind == StageKind.WON), None)
    lost_stage = next((s for s in stages if s.kind == StageKind.LOST), None)
    tag_ids = np.array([CustomerTag.objects.get_or_create(name=name)[0].pk for name in TAGS])
    owner_ids = np.array([o.pk for o in owners], dtype=np.int64)
    owner_departments = np.array(
        [-1 if o.department_id is None else o.department_id for o in owners], dtype=np.int64
    )
    # Word tables: names are composed from them, with each part's pinyin and initials.
    brands = [a + b for a in BRAND_CHARS for b in BRAND_CHARS if a != b]
    shorts = [c[2] for c in CITIES]
    words = [w for w, _industry in ALL_INDUSTRIES]

    def table(values: list[str]) -> np.ndarray:
        return np.array(values, dtype=str)

    part_words = [table(shorts), table(brands), table(words), table(SUFFIXES)]
    part_initials = [table([_word_pinyin(w)[0] for w in t.tolist()]) for t in part_words]
    part_pinyin = [table([_word_pinyin(w)[1] for w in t.tolist()]) for t in part_words]
    industry_ids = np.array(
        [industries[i].pk if i in industries else -1 for _w, i in ALL_INDUSTRIES], dtype=np.int64
    )
    districts = [c[4] for c in CITIES]
    district_table = table([d for ds in districts for d in ds])
    district_first = np.cumsum([0] + [len(ds) for ds in districts])[:-1]
    district_count = np.array([len(ds) for ds in districts])
    areas = table([c[3] for c in CITIES])
    provinces, cities = table([c[0] for c in CITIES]), table([c[1] for c in CITIES])
    stage_values = table([CustomerStage.POTENTIAL, CustomerStage.INTENT, CustomerStage.WON,
                          CustomerStage.LOST])  # fmt: skip
    persons = (table(list(SURNAMES)), table(GIVEN))

    with transaction.atomic():
        codes = _customer_codes(customers)  # one reserved block of the KH sequence
    tag_through = Customer.tags.through
    ids: dict[Any, int] = {
        model: next_id(model)
        for model in (Customer, Contact, FollowUp, Opportunity, CustomerEvent, tag_through)
    }

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

    def take(model, count: int) -> np.ndarray:
        first = ids[model]
        ids[model] = first + count
        return np.arange(first, first + count, dtype=np.int64)

    def digits(count: int, low: int, high: int) -> np.ndarray:
        return rng.integers(low, high + 1, count).astype(str)

    tables = [writer.table for writer in writers.values()]
    if defer_indexes is None:  # a large load, not small next to what is there already
        defer_indexes = customers >= max(DEFER_INDEXES_FROM, Customer._base_manager.count())
    add = np.strings.add
    firsts = dict(ids)
    with (
        indexes_deferred(
            tables,
            enabled=defer_indexes,
            progress=progress,
            before_drop=text_indexes_drop,
            after_create=text_indexes_ensure,
        ),
        foreign_keys_off(defer_indexes if unchecked is None else unchecked) as checks_off,
        copy_sink() as sink,  # PostgreSQL: COPY from a thread while the next table is drawn
    ):
        done = 0
        while done < customers:
            # One transaction per batch: large enough to be fast, small enough to resume.
            pending: list[tuple] = []
            with transaction.atomic():
                n = min(batch, customers - done)
                cid = take(Customer, n)
                city = rng.integers(0, len(CITIES), n)
                parts = [
                    city,
                    rng.integers(0, len(brands), n),
                    rng.integers(0, len(words), n),
                    rng.integers(0, len(SUFFIXES), n),
                ]
                name_parts = [t[i] for t, i in zip(part_words, parts, strict=True)]
                normalized = add(add(name_parts[0], name_parts[1]), name_parts[2])
                name = add(normalized, name_parts[3])
                initials, pinyin = (
                    add(add(add(t[0][parts[0]], t[1][parts[1]]), t[2][parts[2]]), t[3][parts[3]])
                    for t in (part_initials, part_pinyin)
                )
                pool = rng.random(n) < POOL_SHARE
                owner_index = rng.integers(0, len(owners), n)
                owner = np.where(pool, -1, owner_ids[owner_index])
                department = np.where(pool, -1, owner_departments[owner_index])
                created = now - rng.integers(1, 1501, n) * DAY - rng.integers(0, DAY, n)
                area = areas[city]
                local = digits(n, 6000_0000, 8999_9999)
                phone_digits = add(area, local)
                phone = add(add(area, "-"), local)
                mobile = add(add("1", table(list("3589"))[rng.integers(0, 4, n)]),
                             digits(n, 100000000, 999999999))  # fmt: skip
                stage = stage_values[rng.choice(4, n, p=[0.4, 0.35, 0.2, 0.05])]

                # contacts first: follow-ups name the primary one
                per = 1 + rng.integers(0, contacts_max, n)
                k_customer = np.repeat(np.arange(n), per)
                k_n = within(per)
                nk = len(k_customer)
                contact_ids = take(Contact, nk)
                primary = contact_ids[np.cumsum(per) - per]
                k_created = v.times(created[k_customer])
                k_mobile = add(add("1", table(list("3589"))[rng.integers(0, 4, nk)]),
                               digits(nk, 100000000, 999999999))  # fmt: skip
                k_email = add(add(np.strings.slice(initials[k_customer], 0, 6), k_n.astype(str)),
                              "@example.com.cn")  # fmt: skip
                pending.append((writers["contacts"], [
                    v.ints(contact_ids), k_created, k_created, v.null, v.null, v.value(1), v.null,
                    v.null, v.ints(cid[k_customer]),
                    v.texts(add(persons[0][rng.integers(0, len(SURNAMES), nk)],
                                persons[1][rng.integers(0, len(GIVEN), nk)])),
                    v.texts(table(TITLES)[rng.integers(0, len(TITLES), nk)]), v.text(""),
                    k_mobile.tolist(), v.texts(k_email), v.text(""), v.null, v.bools(k_n == 0),
                    v.text(""),
                ], nk, counts, "contacts"))  # fmt: skip

                # follow-ups on owned customers; the latest is the customer's last/next
                f_count = np.where(pool, 0, rng.integers(0, followups_max + 1, n))
                f_customer = np.repeat(np.arange(n), f_count)
                nf = len(f_customer)
                first_at = now - (f_count * 12 + rng.integers(1, 61, n)) * DAY
                step = rng.integers(2, 13, nf) * DAY + rng.integers(0, 9, nf) * 3600
                happened = np.minimum(first_at[f_customer] + group_cumsum(step, f_customer),
                                      now - 3600)  # fmt: skip
                is_last = (
                    np.r_[f_customer[1:] != f_customer[:-1], True] if nf else np.zeros(0, bool)
                )
                planned = is_last & (rng.random(nf) < 0.8)
                plan = np.maximum(now + rng.integers(-10, 31, nf) * DAY, happened + DAY)
                last_at = np.full(n, -1, dtype=np.int64)
                next_at = np.full(n, -1, dtype=np.int64)
                last_at[f_customer[is_last]] = happened[is_last]
                next_at[f_customer[is_last]] = np.where(planned, plan, -1)[is_last]
                f_owner = owner[f_customer]
                f_happened = v.times(happened)
                actions = table(NEXT_ACTIONS)[rng.integers(0, len(NEXT_ACTIONS), nf)]
                pending.append((writers["follow-ups"], [
                    v.ints(take(FollowUp, nf)), f_happened, f_happened, v.ints(f_owner), v.null,
                    v.value(1), v.null, v.null, v.ints(cid[f_customer]),
                    v.ints(primary[f_customer]), _pick(v, rng, methods, nf),
                    v.texts(table(FOLLOWUP_TEXTS)[rng.integers(0, len(FOLLOWUP_TEXTS), nf)]),
                    f_happened, v.times(plan, ~planned),
                    v.texts(np.where(planned, actions, "")),
                    v.ints(f_owner),
                ], nf, counts, "follow-ups"))  # fmt: skip

                # opportunities on a share of owned customers
                won_at = np.full(n, -1, dtype=np.int64)
                if open_stages:
                    has = np.flatnonzero(~pool & (rng.random(n) < opportunity_share))
                    no = len(has)
                    roll = rng.random(no)
                    choice = [
                        open_stages[i] for i in rng.integers(0, len(open_stages), no).tolist()
                    ]
                    for index in np.flatnonzero(roll < 0.2).tolist():
                        closing = won_stage if roll[index] < 0.12 else lost_stage
                        choice[index] = closing or choice[index]
                    stage_id = np.array([s.pk for s in choice], dtype=np.int64)
                    kind = np.array([s.kind for s in choice], dtype=object)
                    closed = kind != StageKind.OPEN
                    closed_at = now - rng.integers(0, 26, no) * DAY
                    won = kind == StageKind.WON
                    won_at[has[won]] = closed_at[won]
                    board = np.empty(no, dtype=np.int64)
                    for pk in np.unique(stage_id).tolist():
                        at = np.flatnonzero(stage_id == pk)
                        board[at] = positions.get(pk, 0) + np.arange(len(at))
                        positions[pk] = positions.get(pk, 0) + len(at)
                    o_created = v.times(created[has])
                    what = table(OPPORTUNITY_TITLES)[rng.integers(0, len(OPPORTUNITY_TITLES), no)]
                    titles = add(add(name_parts[0][has], name_parts[1][has]), what)
                    lost = table(LOST_REASONS)[rng.integers(0, len(LOST_REASONS), no)]
                    pending.append((writers["opportunities"], [
                        v.ints(take(Opportunity, no)), o_created, o_created, v.ints(owner[has]),
                        v.null, v.value(1), v.null, v.null, v.ints(cid[has]), v.texts(titles),
                        v.money(rng.integers(20, 2001, no) * 100_000), "CNY",
                        v.days(now // DAY + rng.integers(-10, 121, no)), v.ints(stage_id),
                        v.ints(np.array([s.probability for s in choice], dtype=np.int64)),
                        v.ints(owner[has]), v.ints(department[has], department[has] < 0),
                        v.ints(board), v.times(closed_at, ~closed),
                        v.texts(np.where(kind == StageKind.LOST, lost, "")), v.text(""),
                    ], no, counts, "opportunities"))  # fmt: skip

                pool_entered = now - rng.integers(1, 61, n) * DAY
                assigned = now - rng.integers(5, 401, n) * DAY
                won_stage_value = str(CustomerStage.WON)
                if deals:
                    last_deal = np.where(
                        stage == won_stage_value, now - rng.integers(1, 121, n) * DAY, -1
                    )
                else:
                    # Deals come later (the sales history): only a won opportunity is one.
                    last_deal = won_at
                    stage = np.where(stage == won_stage_value, str(CustomerStage.INTENT), stage)
                    stage = np.where(won_at >= 0, won_stage_value, stage)
                industry = industry_ids[parts[2]]
                street = add(table(STREETS)[rng.integers(0, len(STREETS), n)],
                             add(rng.integers(1, 1000, n).astype(str), "号"))  # fmt: skip
                district = district_table[
                    district_first[city] + rng.integers(0, 99, n) % district_count[city]
                ]
                email = add(add(add("info", cid.astype(str)), "@"),
                            add(np.strings.slice(initials, 0, 8), ".com.cn"))  # fmt: skip
                c_created = v.times(created)
                pending.append((writers["customers"], [
                    v.ints(cid), c_created, c_created, v.null, v.null, v.value(1), v.null, v.null,
                    codes[done : done + n], v.text("company"), v.texts(name), v.text(""),
                    v.texts(normalized), v.texts(initials), v.texts(pinyin), v.texts(phone),
                    v.texts(mobile), v.texts(phone_digits), v.texts(mobile), v.texts(email),
                    v.text(""), v.texts(provinces[city]), v.texts(cities[city]),
                    v.texts(district), v.texts(street),
                    v.ints(industry, industry < 0), _pick(v, rng, sources, n),
                    _pick(v, rng, levels, n), v.texts(stage), v.text(""), v.ints(owner, pool),
                    v.ints(department, department < 0), v.bools(pool), v.times(pool_entered, ~pool),
                    v.times(assigned, pool), v.times(last_at, last_at < 0),
                    v.times(next_at, next_at < 0), v.times(last_deal, last_deal < 0), v.text("{}"),
                ], n, counts, "customers"))  # fmt: skip
                pending.append((writers["events"], [
                    v.ints(take(CustomerEvent, n)), v.ints(cid), v.text(CustomerEventKind.CREATED),
                    v.null, v.ints(owner, pool), v.text(""), v.text(CREATED_JSON), v.null,
                    c_created,
                ], n, counts, "events"))  # fmt: skip
                tagged = np.flatnonzero(rng.random(n) < 0.3)
                pending.append((writers["tags"], [
                    v.ints(take(tag_through, len(tagged))), v.ints(cid[tagged]),
                    v.ints(tag_ids[rng.integers(0, len(tag_ids), len(tagged))]),
                ], len(tagged), counts, "tags"))  # fmt: skip
                for args in sorted(pending, key=lambda args: WRITE_ORDER.index(args[4])):
                    write(*args, sink=sink)
                if sink is not None:
                    sink.drain()
            done += n
            if progress:
                elapsed = time.monotonic() - started
                total = sum(counts.values())
                progress(
                    _("%(done)d customers, %(rows)d rows, %(rate)d rows/s")
                    % {
                        "done": done,
                        "rows": total,
                        "rate": int(total / elapsed) if elapsed else 0,
                    }
                )
        if checks_off:  # checks were off for the load: every reference verified by ranges
            foreign_keys_verify(firsts)

    _sequences_reset([Customer, Contact, FollowUp, Opportunity, CustomerEvent, tag_through])
    if analyze:  # fresh statistics so the planner sees the rows
        tables_analyze([Customer, Contact, FollowUp, Opportunity, CustomerEvent])
    return GenerateResult(counts=counts, seconds=time.monotonic() - started)


CREATED_JSON = json.dumps({"generated": True})


def write(
    writer: RowWriter,
    columns: list,
    count: int,
    counts: dict[str, int],
    key: str,
    sink: CopySink | None = None,
) -> None:
    counts[key] += writer.write_columns(columns, count, sink)


# Parents before children: SQLite checks deferred foreign keys by searching the child table
# for each parent row inserted while a violation is pending, a full scan without its index.
WRITE_ORDER = ["customers", "events", "tags", "contacts", "follow-ups", "opportunities"]


def _pick(v: Vector, rng: np.random.Generator, choices: list[int], count: int) -> list:
    """A dictionary item (or NULL when the dictionary is empty) per row."""
    if not choices:
        return [v.null] * count
    return v.ints(np.array(choices, dtype=np.int64)[rng.integers(0, len(choices), count)])
