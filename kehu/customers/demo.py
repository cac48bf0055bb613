"""Demo customers: ~300 companies with contacts, follow-ups and opportunities.

Generated from word lists (city + brand word + industry word + 有限公司) with a fixed
random seed, so every demo install looks the same. Rows are bulk-created for speed, with
the derived fields (normalised name, pinyin, phone digits, last/next follow-up) computed
by the same helpers the services use; customer codes come from the document sequence.

Idempotent: the demo's "created" events carry ``{"demo": true}``; when one exists the
loader creates nothing.
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from kehu.core.models import DocumentSequence
from kehu.core.money import quantize_money
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
from kehu.customers.normalize import name_initials, name_normalize, name_pinyin, phone_normalize
from kehu.customers.services import CUSTOMER_CODE_PREFIX, opportunities_tracked
from kehu.system.models import DictionaryItem

CUSTOMER_COUNT = 300
SEED = 2026

# province, city, short city name, area code, districts
CITIES = [
    ("浙江省", "杭州市", "杭州", "0571", ["西湖区", "滨江区", "余杭区", "拱墅区"]),
    ("江苏省", "南京市", "南京", "025", ["鼓楼区", "江宁区", "建邺区"]),
    ("江苏省", "苏州市", "苏州", "0512", ["工业园区", "吴中区", "姑苏区"]),
    ("上海市", "上海市", "上海", "021", ["浦东新区", "徐汇区", "闵行区", "嘉定区"]),
    ("北京市", "北京市", "北京", "010", ["海淀区", "朝阳区", "丰台区", "大兴区"]),
    ("广东省", "广州市", "广州", "020", ["天河区", "番禺区", "白云区"]),
    ("广东省", "深圳市", "深圳", "0755", ["南山区", "福田区", "宝安区", "龙岗区"]),
    ("四川省", "成都市", "成都", "028", ["武侯区", "高新区", "锦江区"]),
    ("湖北省", "武汉市", "武汉", "027", ["洪山区", "江汉区", "东西湖区"]),
    ("山东省", "青岛市", "青岛", "0532", ["市南区", "黄岛区", "城阳区"]),
    ("福建省", "厦门市", "厦门", "0592", ["思明区", "湖里区", "集美区"]),
    ("陕西省", "西安市", "西安", "029", ["雁塔区", "未央区", "高新区"]),
]
BRANDS = [
    "华信", "鼎盛", "恒通", "远航", "瑞丰", "金桥", "天成", "博远", "宏图", "新锐",
    "嘉禾", "德润", "东方", "中科", "海纳", "启明", "卓越", "九州", "长风", "明辉",
    "盛世", "安泰", "万达通", "星河", "汇智", "云帆", "聚力", "信达", "永泰", "和众",
]  # fmt: skip
# industry word, industry dictionary value
INDUSTRIES = [
    ("机械制造", "manufacturing"),
    ("精密仪器", "manufacturing"),
    ("汽车配件", "manufacturing"),
    ("电子科技", "it"),
    ("软件技术", "it"),
    ("网络科技", "it"),
    ("信息技术", "it"),
    ("商贸", "retail"),
    ("连锁超市", "retail"),
    ("投资管理", "finance"),
    ("教育科技", "education"),
    ("医疗器械", "healthcare"),
    ("生物医药", "healthcare"),
    ("建设工程", "construction"),
    ("新型建材", "construction"),
    ("物流", "other"),
]
STREETS = ["科技路", "创业大道", "人民路", "中山路", "工业园路", "文三路", "长江路", "解放路"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = [
    "伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇",
    "军", "杰", "娟", "涛", "明", "超", "秀英", "建华", "志强", "海燕",
]  # fmt: skip
TITLES = ["总经理", "采购经理", "技术总监", "财务经理", "行政主管", "项目经理", "销售总监"]
TAGS = ["重点客户", "老客户", "展会线索", "华东", "华南", "需回访"]
FOLLOWUP_TEXTS = [
    "电话沟通采购需求，客户关注交付周期和售后服务。",
    "上门拜访，演示产品功能，对方技术负责人反馈良好。",
    "微信发送报价单，客户表示需内部讨论预算。",
    "邮件发送方案书和案例资料。",
    "参加客户项目评审会，确认二期需求范围。",
    "客户反馈价格偏高，约定下周再议折扣。",
    "回访使用情况，客户满意，有增购意向。",
]
NEXT_ACTIONS = ["电话回访", "上门拜访", "发送报价", "安排演示", "确认合同条款", "催促付款"]
OPPORTUNITY_TITLES = ["年度采购", "信息化升级项目", "设备更新", "二期扩容", "框架协议", "试点项目"]
LOST_REASONS = ["价格高于竞争对手", "预算取消", "客户选择了其他供应商", "需求延期一年"]


def _customer_codes(count: int) -> list[str]:
    """Reserve ``count`` consecutive customer codes in one locked update."""
    year = timezone.localdate().year
    DocumentSequence.objects.get_or_create(prefix=CUSTOMER_CODE_PREFIX, year=year)
    sequence = DocumentSequence.objects.select_for_update().get(
        prefix=CUSTOMER_CODE_PREFIX, year=year
    )
    start = sequence.last_value + 1
    sequence.last_value += count
    sequence.save(update_fields=["last_value"])
    return [f"{CUSTOMER_CODE_PREFIX}-{year}-{n:06d}" for n in range(start, start + count)]


def _items(code: str) -> dict[str, DictionaryItem]:
    return {i.value: i for i in DictionaryItem.objects.filter(dictionary__code=code)}


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 9)}{rng.randint(10000000, 99999999)}"


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def demo_load(*, admin, users) -> dict[str, int]:
    if CustomerEvent.objects.filter(kind=CustomerEventKind.CREATED, data__demo=True).exists():
        return {}
    owners_by_weight = [
        (users.get("sales1"), 30),
        (users.get("sales2"), 25),
        (users.get("sales3"), 25),
        (users.get("salesmgr1"), 10),
        (None, 10),  # the public pool
    ]
    owners = [u for u, _w in owners_by_weight]
    weights = [w for _u, w in owners_by_weight]
    rng = random.Random(SEED)
    now = timezone.now()
    industries = _items("industry")
    sources = list(_items("customer_source").values())
    levels = list(_items("customer_level").values())
    methods = list(_items("followup_method").values())
    stages = list(PipelineStage.objects.filter(is_active=True))
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    won_stage = next((s for s in stages if s.kind == StageKind.WON), None)
    lost_stage = next((s for s in stages if s.kind == StageKind.LOST), None)

    with transaction.atomic():
        tags = [CustomerTag.objects.get_or_create(name=name)[0] for name in TAGS]
        names: set[str] = set(Customer.all_objects.values_list("name", flat=True))
        specs: list[tuple[str, str, str, list[str], str, str]] = []
        while len(specs) < CUSTOMER_COUNT:
            province, city, short, area, districts = rng.choice(CITIES)
            word, industry = rng.choice(INDUSTRIES)
            name = f"{short}{rng.choice(BRANDS)}{word}有限公司"
            if name in names:
                continue
            names.add(name)
            specs.append((province, city, area, districts, industry, name))
        codes = _customer_codes(len(specs))
        customers = []
        for (province, city, area, districts, industry, name), code in zip(
            specs, codes, strict=True
        ):
            owner = rng.choices(owners, weights)[0]
            phone = f"{area}-{rng.randint(6000_0000, 8999_9999)}"
            mobile = _mobile(rng)
            owned_days = rng.randint(5, 400)
            stage = rng.choices(
                [
                    CustomerStage.POTENTIAL,
                    CustomerStage.INTENT,
                    CustomerStage.WON,
                    CustomerStage.LOST,
                ],
                [40, 35, 20, 5],
            )[0]
            customers.append(
                Customer(
                    code=code,
                    name=name,
                    name_normalized=name_normalize(name),
                    name_initials=name_initials(name),
                    name_pinyin=name_pinyin(name),
                    phone=phone,
                    phone_digits=phone_normalize(phone),
                    mobile=mobile,
                    mobile_digits=phone_normalize(mobile),
                    email=f"contact@{name_initials(name)[:8]}{rng.randint(1, 99)}.com.cn",
                    province=province,
                    city=city,
                    district=rng.choice(districts),
                    street=f"{rng.choice(STREETS)}{rng.randint(1, 999)}号",
                    industry=industries.get(industry),
                    source=rng.choice(sources) if sources else None,
                    level=rng.choice(levels) if levels else None,
                    stage=stage,
                    owner=owner,
                    department_id=owner.department_id if owner else None,
                    in_pool=owner is None,
                    pool_entered_at=now - datetime.timedelta(days=rng.randint(1, 60))
                    if owner is None
                    else None,
                    assigned_at=now - datetime.timedelta(days=owned_days) if owner else None,
                    last_deal_at=now - datetime.timedelta(days=rng.randint(1, 120))
                    if stage == CustomerStage.WON
                    else None,
                    created_by=admin,
                    updated_by=admin,
                )
            )
        customers = Customer.objects.bulk_create(customers)
        if not all(c.pk for c in customers):  # databases without RETURNING ids
            by_code = dict(Customer.objects.filter(code__in=codes).values_list("code", "pk"))
            for customer in customers:
                customer.pk = by_code[customer.code]
        through = Customer.tags.through
        through.objects.bulk_create(
            through(customer_id=c.pk, customertag_id=t.pk)
            for c in customers
            for t in rng.sample(tags, rng.choice([0, 0, 1, 1, 2]))
        )
        CustomerEvent.objects.bulk_create(
            CustomerEvent(
                customer=c,
                kind=CustomerEventKind.CREATED,
                to_owner=c.owner,
                actor=admin,
                data={"demo": True},
            )
            for c in customers
        )

        contacts = []
        for c in customers:
            for index in range(rng.randint(1, 3)):
                contacts.append(
                    Contact(
                        customer=c,
                        name=_person(rng),
                        title=rng.choice(TITLES),
                        mobile=_mobile(rng),
                        email=f"{name_initials(c.name)[:6]}{rng.randint(1, 999)}@example.com.cn",
                        wechat=f"wx_{rng.randint(100000, 999999)}",
                        is_primary=index == 0,
                        created_by=admin,
                    )
                )
        Contact.objects.bulk_create(contacts)

        followups = []
        dates: dict[int, tuple[datetime.datetime | None, datetime.datetime | None]] = {}
        for c in customers:
            if c.owner is None:
                continue
            count = rng.randint(0, 4)
            # Far enough back that every step (2-12 days apart) is still in the past.
            happened = now - datetime.timedelta(
                days=count * 12 + rng.randint(1, 30), hours=rng.randint(0, 8)
            )
            last = nxt = None
            for step in range(count):
                happened = happened + datetime.timedelta(days=rng.randint(2, 12))
                happened = min(happened, now - datetime.timedelta(hours=1))
                plan = None
                if step == count - 1:
                    # The latest follow-up plans the next: today, overdue, or soon.
                    roll = rng.random()
                    if roll < 0.15:
                        plan = timezone.localtime(now).replace(
                            hour=rng.choice([10, 14, 16]), minute=0, second=0, microsecond=0
                        )
                    elif roll < 0.35:
                        plan = now - datetime.timedelta(days=rng.randint(1, 10))
                    elif roll < 0.85:
                        plan = now + datetime.timedelta(days=rng.randint(1, 30))
                    if plan is not None and plan <= happened:
                        plan = happened + datetime.timedelta(days=1)
                followups.append(
                    FollowUp(
                        customer=c,
                        method=rng.choice(methods) if methods else None,
                        content=rng.choice(FOLLOWUP_TEXTS),
                        happened_at=happened,
                        next_followup_at=plan,
                        next_action=rng.choice(NEXT_ACTIONS) if plan else "",
                        author=c.owner,
                        created_by=c.owner,
                    )
                )
                last, nxt = happened, plan
            dates[c.pk] = (last, nxt)
        FollowUp.objects.bulk_create(followups)
        for c in customers:
            last, nxt = dates.get(c.pk, (None, None))
            if last or nxt:
                c.last_followup_at, c.next_followup_at = last, nxt
        Customer.objects.bulk_update(
            [c for c in customers if c.pk in dates], ["last_followup_at", "next_followup_at"]
        )

        opportunities = []
        positions: dict[int, int] = {}
        for c in customers:
            if c.owner is None or not open_stages or rng.random() > 0.45:
                continue
            roll = rng.random()
            pipeline_stage: PipelineStage = rng.choice(open_stages)
            if roll < 0.12 and won_stage:
                pipeline_stage = won_stage
            elif roll < 0.2 and lost_stage:
                pipeline_stage = lost_stage
            closed = pipeline_stage.kind != StageKind.OPEN
            position = positions.get(pipeline_stage.pk, 0)
            positions[pipeline_stage.pk] = position + 1
            opportunities.append(
                Opportunity(
                    customer=c,
                    title=f"{c.name[:2]}{rng.choice(OPPORTUNITY_TITLES)}",
                    amount=quantize_money(Decimal(rng.randint(20, 2000) * 1000)),
                    expected_close_date=timezone.localdate()
                    + datetime.timedelta(days=rng.randint(-10, 120)),
                    stage=pipeline_stage,
                    probability=pipeline_stage.probability,
                    owner=c.owner,
                    department_id=c.department_id,
                    board_position=position,
                    closed_at=now - datetime.timedelta(days=rng.randint(0, 25)) if closed else None,
                    lost_reason=rng.choice(LOST_REASONS)
                    if pipeline_stage.kind == StageKind.LOST
                    else "",
                    created_by=c.owner,
                )
            )
        with opportunities_tracked([]) as tracked:  # the dashboard's funnel counts them
            tracked.extend(o.pk for o in Opportunity.objects.bulk_create(opportunities))
    return {
        "customers": len(customers),
        "contacts": len(contacts),
        "follow-ups": len(followups),
        "opportunities": len(opportunities),
    }
