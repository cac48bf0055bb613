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
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.bulk import (
    DAY,
    CopySink,
    GenerateResult,
    References,
    RowWriter,
    Vector,
    copy_sink,
    foreign_keys_off,
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
    return [model._meta.db_table for model in CUSTOMER_MODELS]


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
    analyze: bool = True,
    progress: Callable[[str], None] | None = None,
) -> GenerateResult:
    """Insert ``customers`` customers and their related rows; returns counts and time.

    ``contacts_per`` and ``followups_per`` are averages per customer (follow-ups only on
    owned customers); ``opportunity_share`` of owned customers get one opportunity.
    ``defer_indexes`` (default: when loading at least ``DEFER_INDEXES_FROM`` customers and
    no fewer than are there) drops the tables' non-unique indexes, the trigram index and
    the FTS tables before the load and builds them once afterwards, also if the load fails.
    ``unchecked`` (default: as ``defer_indexes``) writes with foreign-key checks off; every
    reference is then checked in numpy as it is written (``References``).
    """
    started = time.monotonic()
    if defer_indexes is None:  # a large load, not small next to what is there already
        defer_indexes = customers >= max(DEFER_INDEXES_FROM, Customer._base_manager.count())
    unchecked = defer_indexes if unchecked is None else unchecked
    draws = CustomerBatches(
        customers=customers,
        contacts_per=contacts_per,
        followups_per=followups_per,
        opportunity_share=opportunity_share,
        seed=seed,
        references=References(CUSTOMER_MODELS) if unchecked else None,
    )
    with (
        indexes_deferred(
            customer_tables(),
            enabled=defer_indexes,
            progress=progress,
            before_drop=text_indexes_drop,
            after_create=text_indexes_ensure,
        ),
        foreign_keys_off(unchecked),
    ):
        with copy_sink() as sink:  # PostgreSQL: COPY from a thread while the next is drawn
            done = 0
            while done < customers:
                # One transaction per batch: large enough to be fast, small enough to resume.
                with transaction.atomic():
                    part = draws.draw(min(batch, customers - done))
                    draws.write(part, sink)
                    if sink is not None:
                        sink.drain()
                done += part.n
                if progress:
                    elapsed = time.monotonic() - started
                    total = sum(draws.counts.values())
                    progress(
                        _("%(done)d customers, %(rows)d rows, %(rate)d rows/s")
                        % {
                            "done": done,
                            "rows": total,
                            "rate": int(total / elapsed) if elapsed else 0,
                        }
                    )
        if draws.references is not None:
            draws.references.finish()
    _sequences_reset(CUSTOMER_MODELS)
    if analyze:  # fresh statistics so the planner sees the rows
        tables_analyze(CUSTOMER_MODELS)
    return GenerateResult(counts=draws.counts, seconds=time.monotonic() - started)


CUSTOMER_MODELS: list[type[models.Model]] = [
    Customer,
    Customer.tags.through,
    CustomerEvent,
    Contact,
    FollowUp,
    Opportunity,
]


class CustomerBatch:
    """One batch of drawn customers and their rows, as numpy columns (times in seconds,
    ``-1`` for none), written by ``CustomerBatches.write``. Until then the customers' stage,
    last deal and creation may still change (``deals_set``)."""

    n: int
    first: int  # position of the first customer in the load (0-based)
    id: np.ndarray
    owner: np.ndarray  # -1: in the pool
    department: np.ndarray  # -1: none
    pool: np.ndarray
    created: np.ndarray
    stage: np.ndarray
    last_deal: np.ndarray
    primary: np.ndarray  # each customer's primary contact
    name: np.ndarray
    address: np.ndarray
    columns: dict[str, Any]

    def deals_set(
        self, index: np.ndarray, last_deal: np.ndarray, first_deal: np.ndarray, rng
    ) -> None:
        """Customers ``index`` (positions in the batch) won deals: stage and last deal as
        ``customer_deal_record`` leaves them, and those created after their first deal
        (``first_deal``: when its contract was created) moved back before it."""
        self.stage[index] = str(CustomerStage.WON)
        self.last_deal[index] = np.maximum(self.last_deal[index], last_deal)
        moved = first_deal - rng.integers(7, 91, len(index)) * DAY
        moved -= rng.integers(0, 7, len(index)) * 3600
        later = self.created[index] > first_deal
        self.created[index[later]] = moved[later]


class CustomerBatches:
    """Customers drawn batch by batch with numpy and written by table (parents first)."""

    def __init__(
        self,
        *,
        customers: int,
        contacts_per: float = 2,
        followups_per: float = 3,
        opportunity_share: float = 0.3,
        seed: int = SEED,
        deals: bool = True,
        references: References | None = None,
    ) -> None:
        """``customers``: how many in all (their codes are reserved at once). ``deals``:
        won customers get a last deal of their own; without, only a won opportunity is a
        deal (a sales history sets the rest through ``CustomerBatch.deals_set``)."""
        if customers < 1:
            raise ServiceError(_("Generate at least one customer."))
        owners = sales_users()
        if not owners:
            raise ServiceError(_("There are no active sales users to own the customers."))
        self.rng = np.random.default_rng(seed)
        self.v = Vector()
        self.deals = deals
        self.contacts_per, self.followups_per = contacts_per, followups_per
        self.opportunity_share = opportunity_share
        self.now = int(timezone.now().timestamp())
        industries = _items("industry")
        self.sources = [i.pk for i in _items("customer_source").values()]
        self.levels = [i.pk for i in _items("customer_level").values()]
        self.methods = [i.pk for i in _items("followup_method").values()]
        stages = list(PipelineStage.objects.filter(is_active=True).order_by("pk"))
        self.open_stages = [s for s in stages if s.kind == StageKind.OPEN]
        self.won_stage = next((s for s in stages if s.kind == StageKind.WON), None)
        self.lost_stage = next((s for s in stages if s.kind == StageKind.LOST), None)
        self.tag_ids = np.array(
            [CustomerTag.objects.get_or_create(name=name)[0].pk for name in TAGS], dtype=np.int64
        )
        self.owner_ids = np.array([o.pk for o in owners], dtype=np.int64)
        self.owner_departments = np.array(
            [-1 if o.department_id is None else o.department_id for o in owners], dtype=np.int64
        )
        # Word tables: names are composed from them, with each part's pinyin and initials.
        self.brands = [a + b for a in BRAND_CHARS for b in BRAND_CHARS if a != b]
        shorts = [c[2] for c in CITIES]
        words = [w for w, _industry in ALL_INDUSTRIES]
        self.part_words = [_table(shorts), _table(self.brands), _table(words), _table(SUFFIXES)]
        self.part_initials = [
            _table([_word_pinyin(w)[0] for w in t.tolist()]) for t in self.part_words
        ]
        self.part_pinyin = [
            _table([_word_pinyin(w)[1] for w in t.tolist()]) for t in self.part_words
        ]
        self.industry_ids = np.array(
            [industries[i].pk if i in industries else -1 for _w, i in ALL_INDUSTRIES],
            dtype=np.int64,
        )
        districts = [c[4] for c in CITIES]
        self.district_table = _table([d for ds in districts for d in ds])
        self.district_first = np.cumsum([0] + [len(ds) for ds in districts])[:-1]
        self.district_count = np.array([len(ds) for ds in districts])
        self.areas = _table([c[3] for c in CITIES])
        self.provinces = _table([c[0] for c in CITIES])
        self.cities = _table([c[1] for c in CITIES])
        self.stage_values = _table([CustomerStage.POTENTIAL, CustomerStage.INTENT,
                                    CustomerStage.WON, CustomerStage.LOST])  # fmt: skip
        self.persons = (_table(list(SURNAMES)), _table(GIVEN))
        with transaction.atomic():
            self.codes = _customer_codes(customers)  # one reserved block of the KH sequence
        self.ids: dict[Any, int] = {model: next_id(model) for model in CUSTOMER_MODELS}
        self.references = references
        self.writers = {
            key: RowWriter(model, columns, references)
            for key, (model, columns) in _customer_columns().items()
        }
        self.counts = dict.fromkeys(self.writers, 0)
        self.positions: dict[int, int] = {}
        self.contacts_max = max(1, round(contacts_per * 2 - 1))
        self.followups_max = max(0, round(followups_per * 2))
        self.done = 0

    def _take(self, model, count: int) -> np.ndarray:
        first = self.ids[model]
        self.ids[model] = first + count
        return np.arange(first, first + count, dtype=np.int64)

    def _digits(self, count: int, low: int, high: int) -> np.ndarray:
        return self.rng.integers(low, high + 1, count).astype(str)

    def draw(self, n: int) -> CustomerBatch:
        """The next ``n`` customers and their rows (nothing written yet)."""
        rng, now, add = self.rng, self.now, np.strings.add
        b = CustomerBatch()
        b.n, b.first = n, self.done
        self.done += n
        b.id = cid = self._take(Customer, n)
        city = rng.integers(0, len(CITIES), n)
        parts = [
            city,
            rng.integers(0, len(self.brands), n),
            rng.integers(0, len(self.part_words[2]), n),
            rng.integers(0, len(SUFFIXES), n),
        ]
        name_parts = [t[i] for t, i in zip(self.part_words, parts, strict=True)]
        normalized = add(add(name_parts[0], name_parts[1]), name_parts[2])
        b.name = add(normalized, name_parts[3])
        initials, pinyin = (
            add(add(add(t[0][parts[0]], t[1][parts[1]]), t[2][parts[2]]), t[3][parts[3]])
            for t in (self.part_initials, self.part_pinyin)
        )
        b.pool = pool = rng.random(n) < POOL_SHARE
        owner_index = rng.integers(0, len(self.owner_ids), n)
        b.owner = np.where(pool, -1, self.owner_ids[owner_index])
        b.department = np.where(pool, -1, self.owner_departments[owner_index])
        b.created = now - rng.integers(1, 1501, n) * DAY - rng.integers(0, DAY, n)
        area = self.areas[city]
        local = self._digits(n, 6000_0000, 8999_9999)
        mobile = add(add("1", _table(list("3589"))[rng.integers(0, 4, n)]),
                     self._digits(n, 100000000, 999999999))  # fmt: skip
        stage = self.stage_values[rng.choice(4, n, p=[0.4, 0.35, 0.2, 0.05])]

        # contacts first: follow-ups name the primary one
        per = 1 + rng.integers(0, self.contacts_max, n)
        k_customer = np.repeat(np.arange(n), per)
        nk = len(k_customer)
        contact_ids = self._take(Contact, nk)
        b.primary = contact_ids[np.cumsum(per) - per]
        k_mobile = add(add("1", _table(list("3589"))[rng.integers(0, 4, nk)]),
                       self._digits(nk, 100000000, 999999999))  # fmt: skip
        k_n = within(per)
        k_email = add(add(np.strings.slice(initials[k_customer], 0, 6), k_n.astype(str)),
                      "@example.com.cn")  # fmt: skip
        k_name = add(self.persons[0][rng.integers(0, len(SURNAMES), nk)],
                     self.persons[1][rng.integers(0, len(GIVEN), nk)])  # fmt: skip
        k_title = _table(TITLES)[rng.integers(0, len(TITLES), nk)]

        # follow-ups on owned customers; the latest is the customer's last/next
        f_count = np.where(pool, 0, rng.integers(0, self.followups_max + 1, n))
        f_customer = np.repeat(np.arange(n), f_count)
        nf = len(f_customer)
        first_at = now - (f_count * 12 + rng.integers(1, 61, n)) * DAY
        step = rng.integers(2, 13, nf) * DAY + rng.integers(0, 9, nf) * 3600
        happened = np.minimum(first_at[f_customer] + group_cumsum(step, f_customer),
                              now - 3600)  # fmt: skip
        is_last = np.r_[f_customer[1:] != f_customer[:-1], True] if nf else np.zeros(0, bool)
        planned = is_last & (rng.random(nf) < 0.8)
        plan = np.maximum(now + rng.integers(-10, 31, nf) * DAY, happened + DAY)
        last_at = np.full(n, -1, dtype=np.int64)
        next_at = np.full(n, -1, dtype=np.int64)
        last_at[f_customer[is_last]] = happened[is_last]
        next_at[f_customer[is_last]] = np.where(planned, plan, -1)[is_last]
        actions = _table(NEXT_ACTIONS)[rng.integers(0, len(NEXT_ACTIONS), nf)]
        f_method = _choose(rng, self.methods, nf)
        f_text = _table(FOLLOWUP_TEXTS)[rng.integers(0, len(FOLLOWUP_TEXTS), nf)]

        # opportunities on a share of owned customers
        won_at = np.full(n, -1, dtype=np.int64)
        opportunities = None
        if self.open_stages:
            has = np.flatnonzero(~pool & (rng.random(n) < self.opportunity_share))
            no = len(has)
            roll = rng.random(no)
            choice = [
                self.open_stages[i] for i in rng.integers(0, len(self.open_stages), no).tolist()
            ]
            for index in np.flatnonzero(roll < 0.2).tolist():
                closing = self.won_stage if roll[index] < 0.12 else self.lost_stage
                choice[index] = closing or choice[index]
            stage_id = np.array([s.pk for s in choice], dtype=np.int64)
            kind = np.array([s.kind for s in choice], dtype=object)
            closed_at = now - rng.integers(0, 26, no) * DAY
            won = kind == StageKind.WON
            won_at[has[won]] = closed_at[won]
            board = np.empty(no, dtype=np.int64)
            for pk in np.unique(stage_id).tolist():
                at = np.flatnonzero(stage_id == pk)
                board[at] = self.positions.get(pk, 0) + np.arange(len(at))
                self.positions[pk] = self.positions.get(pk, 0) + len(at)
            what = _table(OPPORTUNITY_TITLES)[rng.integers(0, len(OPPORTUNITY_TITLES), no)]
            opportunities = {
                "has": has, "stage": stage_id, "kind": kind, "closed": closed_at,
                "board": board, "title": add(add(name_parts[0][has], name_parts[1][has]), what),
                "lost": _table(LOST_REASONS)[rng.integers(0, len(LOST_REASONS), no)],
                "amount": rng.integers(20, 2001, no) * 100_000,
                "close": now // DAY + rng.integers(-10, 121, no),
                "probability": np.array([s.probability for s in choice], dtype=np.int64),
            }  # fmt: skip

        pool_entered = now - rng.integers(1, 61, n) * DAY
        assigned = now - rng.integers(5, 401, n) * DAY
        won_value = str(CustomerStage.WON)
        if self.deals:
            b.last_deal = np.where(stage == won_value, now - rng.integers(1, 121, n) * DAY, -1)
        else:
            # Deals come later (the sales history): only a won opportunity is one.
            b.last_deal = won_at
            stage = np.where(stage == won_value, str(CustomerStage.INTENT), stage)
            stage = np.where(won_at >= 0, won_value, stage)
        b.stage = stage.astype(object)
        street = add(_table(STREETS)[rng.integers(0, len(STREETS), n)],
                     add(rng.integers(1, 1000, n).astype(str), "号"))  # fmt: skip
        district = self.district_table[
            self.district_first[city] + rng.integers(0, 99, n) % self.district_count[city]
        ]
        province, town = self.provinces[city], self.cities[city]
        b.address = np.strings.slice(add(add(add(province, town), district), street), 0, 300)
        tagged = np.flatnonzero(rng.random(n) < 0.3)
        b.columns = {
            "normalized": normalized, "initials": initials, "pinyin": pinyin,
            "phone": add(add(area, "-"), local), "phone_digits": add(area, local),
            "mobile": mobile, "email": add(add(add("info", cid.astype(str)), "@"),
                                           add(np.strings.slice(initials, 0, 8), ".com.cn")),
            "province": province, "city": town, "district": district, "street": street,
            "industry": self.industry_ids[parts[2]], "source": _choose(rng, self.sources, n),
            "level": _choose(rng, self.levels, n), "pool_entered": pool_entered,
            "assigned": assigned, "last_at": last_at, "next_at": next_at,
            "contacts": (contact_ids, k_customer, k_n, k_name, k_title, k_mobile, k_email),
            "follow-ups": (f_customer, happened, planned, plan, actions, f_method, f_text),
            "opportunities": opportunities,
            "tags": (tagged, self.tag_ids[rng.integers(0, len(self.tag_ids), len(tagged))]),
        }  # fmt: skip
        return b

    def write(self, b: CustomerBatch, sink: CopySink | None) -> None:
        """The batch's rows, parents first (SQLite checks deferred foreign keys by searching
        the child table for each parent row inserted while a violation is pending)."""
        v, w, c, n = self.v, self.writers, b.columns, b.n
        owner, department, pool, cid = b.owner, b.department, b.pool, b.id

        def put(key: str, columns: list, count: int) -> None:
            self.counts[key] += w[key].write_columns(columns, count, sink)

        created = v.times(b.created)
        industry = c["industry"]
        put("customers", [
            v.ints(cid), created, created, v.null, v.null, v.value(1), v.null, v.null,
            self.codes[b.first : b.first + n], v.text("company"), v.texts(b.name), v.text(""),
            v.texts(c["normalized"]), v.texts(c["initials"]), v.texts(c["pinyin"]),
            v.texts(c["phone"]), v.texts(c["mobile"]), v.texts(c["phone_digits"]),
            v.texts(c["mobile"]), v.texts(c["email"]), v.text(""), v.texts(c["province"]),
            v.texts(c["city"]), v.texts(c["district"]), v.texts(c["street"]),
            v.ints(industry, industry < 0), _cells(v, c["source"]), _cells(v, c["level"]),
            v.texts(b.stage), v.text(""), v.ints(owner, pool), v.ints(department, department < 0),
            v.bools(pool), v.times(c["pool_entered"], ~pool), v.times(c["assigned"], pool),
            v.times(c["last_at"], c["last_at"] < 0), v.times(c["next_at"], c["next_at"] < 0),
            v.times(b.last_deal, b.last_deal < 0), v.text("{}"),
        ], n)  # fmt: skip
        put("events", [
            v.ints(self._take(CustomerEvent, n)), v.ints(cid), v.text(CustomerEventKind.CREATED),
            v.null, v.ints(owner, pool), v.text(""), v.text(CREATED_JSON), v.null, created,
        ], n)  # fmt: skip
        tagged, tags = c["tags"]
        put("tags", [
            v.ints(self._take(Customer.tags.through, len(tagged))), v.ints(cid[tagged]),
            v.ints(tags),
        ], len(tagged))  # fmt: skip
        contact_ids, k_customer, k_n, k_name, k_title, k_mobile, k_email = c["contacts"]
        nk = len(contact_ids)
        k_created = v.times(b.created[k_customer])
        put("contacts", [
            v.ints(contact_ids), k_created, k_created, v.null, v.null, v.value(1), v.null,
            v.null, v.ints(cid[k_customer]), v.texts(k_name), v.texts(k_title), v.text(""),
            k_mobile.tolist(), v.texts(k_email), v.text(""), v.null, v.bools(k_n == 0),
            v.text(""),
        ], nk)  # fmt: skip
        f_customer, happened, planned, plan, actions, f_method, f_text = c["follow-ups"]
        nf = len(f_customer)
        f_owner = owner[f_customer]
        f_happened = v.times(happened)
        put("follow-ups", [
            v.ints(self._take(FollowUp, nf)), f_happened, f_happened, v.ints(f_owner), v.null,
            v.value(1), v.null, v.null, v.ints(cid[f_customer]), v.ints(b.primary[f_customer]),
            _cells(v, f_method), v.texts(f_text), f_happened, v.times(plan, ~planned),
            v.texts(np.where(planned, actions, "")), v.ints(f_owner),
        ], nf)  # fmt: skip
        o = c["opportunities"]
        if o is not None:
            has = o["has"]
            no = len(has)
            o_created = v.times(b.created[has])
            put("opportunities", [
                v.ints(self._take(Opportunity, no)), o_created, o_created, v.ints(owner[has]),
                v.null, v.value(1), v.null, v.null, v.ints(cid[has]), v.texts(o["title"]),
                v.money(o["amount"]), "CNY", v.days(o["close"]), v.ints(o["stage"]),
                v.ints(o["probability"]), v.ints(owner[has]),
                v.ints(department[has], department[has] < 0), v.ints(o["board"]),
                v.times(o["closed"], o["kind"] == StageKind.OPEN),
                v.texts(np.where(o["kind"] == StageKind.LOST, o["lost"], "")), v.text(""),
            ], no)  # fmt: skip


def _table(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=str)


def _customer_columns() -> dict[str, tuple[Any, list[str]]]:
    """The tables written, in the order a batch writes them (parents first)."""
    return {
        "customers": (Customer, [
            "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
            "deleted_at", "deleted_by_id", "code", "kind", "name", "short_name",
            "name_normalized", "name_initials", "name_pinyin", "phone", "mobile",
            "phone_digits", "mobile_digits", "email", "website", "province", "city",
            "district", "street", "industry_id", "source_id", "level_id", "stage", "notes",
            "owner_id", "department_id", "in_pool", "pool_entered_at", "assigned_at",
            "last_followup_at", "next_followup_at", "last_deal_at", "custom_fields",
        ]),
        "events": (CustomerEvent, [
            "id", "customer_id", "kind", "from_owner_id", "to_owner_id", "reason", "data",
            "actor_id", "at",
        ]),
        "tags": (Customer.tags.through, ["id", "customer_id", "customertag_id"]),
        "contacts": (Contact, [
            "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
            "deleted_at", "deleted_by_id", "customer_id", "name", "title", "phone", "mobile",
            "email", "wechat", "birthday", "is_primary", "notes",
        ]),
        "follow-ups": (FollowUp, [
            "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
            "deleted_at", "deleted_by_id", "customer_id", "contact_id", "method_id", "content",
            "happened_at", "next_followup_at", "next_action", "author_id",
        ]),
        "opportunities": (Opportunity, [
            "id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version",
            "deleted_at", "deleted_by_id", "customer_id", "title", "amount", "currency",
            "expected_close_date", "stage_id", "probability", "owner_id", "department_id",
            "board_position", "closed_at", "lost_reason", "notes",
        ]),
    }  # fmt: skip


CREATED_JSON = json.dumps({"generated": True})


def _choose(rng: np.random.Generator, choices: list[int], count: int) -> np.ndarray | None:
    """A dictionary item per row (None when the dictionary is empty)."""
    if not choices:
        return None
    return np.array(choices, dtype=np.int64)[rng.integers(0, len(choices), count)]


def _cells(v: Vector, values: np.ndarray | None) -> Any:
    return v.null if values is None else v.ints(values)
