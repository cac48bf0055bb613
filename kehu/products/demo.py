"""Demo catalogue: a category tree, ~200 products with prices in CNY, and stock.

Idempotent: categories are found by name under their parent and products by code, so a
second run creates nothing. Stock is received through the stock service (movements), only
for products this run created; a few end up at or below their low-stock threshold.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from kehu.core.money import quantize_money
from kehu.products.models import Product, ProductCategory
from kehu.products.services import (
    category_create,
    product_create,
    stock_movement_post,
    warehouse_default_ensure,
)
from kehu.system.models import DictionaryItem


@dataclass(frozen=True)
class Line:
    """One leaf category's products: brands × models, with a price range."""

    path: tuple[str, str]
    prefix: str
    brands: tuple[str, ...]
    models: tuple[tuple[str, str], ...]  # (name, specification)
    price: tuple[int, int]
    unit: str = "piece"
    tax: str = "13.00"
    stocked: bool = True


LINES: list[Line] = [
    Line(
        ("办公设备", "打印机"),
        "DY",
        ("惠普", "佳能", "兄弟", "爱普生"),
        (
            ("黑白激光打印机", "A4 单面 22页/分钟"),
            ("彩色激光打印机", "A4 双面 28页/分钟"),
            ("喷墨一体机", "打印/复印/扫描 Wi-Fi"),
        ),
        (899, 4999),
    ),
    Line(
        ("办公设备", "投影仪"),
        "TY",
        ("爱普生", "明基", "索尼"),
        (
            ("商务投影仪", "3600流明 1024×768"),
            ("高清会议投影仪", "4200流明 1920×1080"),
            ("短焦投影仪", "3300流明 0.5投射比"),
            ("激光工程投影仪", "6000流明 WUXGA"),
        ),
        (2999, 29999),
    ),
    Line(
        ("办公设备", "复印机"),
        "FY",
        ("理光", "柯尼卡美能达", "夏普"),
        (("数码复合机", "A3 黑白 30页/分钟"), ("彩色复合机", "A3 彩色 35页/分钟")),
        (12000, 45000),
    ),
    Line(
        ("办公设备", "碎纸机"),
        "SZ",
        ("得力", "科密", "齐心"),
        (("办公碎纸机", "5级保密 15L"), ("大容量碎纸机", "4级保密 30L")),
        (399, 2599),
    ),
    Line(
        ("电脑", "笔记本"),
        "BJ",
        ("联想", "华为", "戴尔", "惠普", "小米"),
        (
            ("轻薄笔记本", "14英寸 i5 16G 512G"),
            ("商务笔记本", "14英寸 i7 32G 1T"),
            ("高性能笔记本", "16英寸 i9 32G 1T RTX4060"),
            ("二合一笔记本", "13英寸 触屏 16G 512G"),
        ),
        (4299, 15999),
    ),
    Line(
        ("电脑", "台式机"),
        "TS",
        ("联想", "戴尔", "惠普"),
        (
            ("商用台式机", "i5 16G 512G 23.8英寸"),
            ("图形工作站", "Xeon 64G 2T RTX A2000"),
            ("迷你主机", "i5 16G 512G 1L机箱"),
            ("一体机", "27英寸 i7 16G 1T"),
        ),
        (2999, 19999),
    ),
    Line(
        ("电脑", "显示器"),
        "XS",
        ("戴尔", "飞利浦", "AOC", "三星"),
        (
            ("办公显示器", "23.8英寸 IPS 1080P"),
            ("高清显示器", "27英寸 IPS 2K"),
            ("设计显示器", "27英寸 4K 99% sRGB"),
        ),
        (699, 4599),
    ),
    Line(
        ("电脑", "配件"),
        "PJ",
        ("罗技", "雷柏", "绿联"),
        (
            ("无线键鼠套装", "2.4G 静音"),
            ("多功能扩展坞", "USB-C 十一合一"),
            ("移动固态硬盘", "1TB USB 3.2"),
            ("降噪耳机", "蓝牙 5.3"),
        ),
        (99, 1299),
    ),
    Line(
        ("网络设备", "路由器"),
        "LY",
        ("华为", "TP-LINK", "H3C"),
        (
            ("企业级路由器", "千兆 5口 VPN"),
            ("无线路由器", "Wi-Fi 6 AX3000"),
            ("多WAN口路由器", "万兆 上网行为管理"),
        ),
        (199, 5999),
    ),
    Line(
        ("网络设备", "交换机"),
        "JH",
        ("华为", "H3C", "锐捷"),
        (
            ("非网管交换机", "24口 千兆"),
            ("网管交换机", "48口 千兆 4SFP"),
            ("PoE交换机", "16口 千兆 PoE+"),
        ),
        (399, 8999),
    ),
    Line(
        ("网络设备", "无线AP"),
        "AP",
        ("华为", "锐捷", "TP-LINK"),
        (("吸顶式无线AP", "Wi-Fi 6 双频"), ("面板式无线AP", "86型 千兆")),
        (299, 1999),
    ),
    Line(
        ("软件服务", "订阅"),
        "RJ",
        ("金蝶", "用友", "钉钉", "企业微信"),
        (
            ("财务软件年度订阅", "10用户 1年"),
            ("协同办公年度订阅", "50用户 1年"),
            ("云存储年度订阅", "1TB 1年"),
        ),
        (1980, 29800),
        unit="set",
        tax="6.00",
        stocked=False,
    ),
    Line(
        ("软件服务", "实施服务"),
        "FW",
        ("标准", "高级"),
        (("现场实施服务", "工程师驻场"), ("远程技术支持", "工作日 9:00-18:00")),
        (300, 1200),
        unit="hour",
        tax="6.00",
        stocked=False,
    ),
    Line(
        ("耗材", "墨盒"),
        "MH",
        ("惠普", "佳能", "爱普生"),
        (("黑色墨盒", "标准容量"), ("彩色墨盒", "三色 标准容量"), ("大容量墨盒", "黑色 XL")),
        (89, 399),
    ),
    Line(
        ("耗材", "硒鼓"),
        "XG",
        ("惠普", "兄弟", "天威"),
        (("黑色硒鼓", "约1600页"), ("大容量硒鼓", "约3000页")),
        (199, 899),
    ),
    Line(
        ("耗材", "纸张"),
        "ZZ",
        ("得力", "晨光", "亚太森博"),
        (("A4复印纸", "70g 500张/包 8包/箱"), ("A3复印纸", "80g 500张/包 4包/箱")),
        (129, 299),
        unit="box",
    ),
    Line(
        ("办公设备", "会议平板"),
        "HY",
        ("MAXHUB", "希沃", "华为"),
        (("智能会议平板", "65英寸 4K 触控"), ("智能会议平板", "86英寸 4K 触控 含支架")),
        (8999, 39999),
    ),
    Line(
        ("电脑", "平板电脑"),
        "PB",
        ("华为", "联想", "小米"),
        (
            ("平板电脑", "11英寸 8G 128G"),
            ("平板电脑 Pro", "12.6英寸 12G 256G"),
            ("平板电脑键盘套装", "11英寸 含手写笔"),
        ),
        (1499, 5999),
    ),
    Line(
        ("电脑", "服务器"),
        "FWQ",
        ("浪潮", "戴尔", "华为"),
        (
            ("塔式服务器", "Xeon Silver 32G 2×4T"),
            ("机架式服务器", "2U 2×Xeon Gold 128G"),
            ("存储服务器", "4U 24盘位"),
        ),
        (9999, 69999),
    ),
    Line(
        ("网络设备", "防火墙"),
        "FH",
        ("深信服", "华为", "H3C"),
        (("下一代防火墙", "千兆 8口 含1年特征库"), ("VPN网关", "千兆 200并发")),
        (3999, 25999),
    ),
    Line(
        ("耗材", "办公文具"),
        "WJ",
        ("得力", "晨光", "齐心"),
        (
            ("中性笔", "0.5mm 黑色 12支/盒"),
            ("文件夹", "A4 强力夹 24个/箱"),
            ("便利贴", "76×76mm 12本/包"),
            ("订书机", "12号 可订20页"),
            ("白板笔", "可擦 10支/盒"),
        ),
        (9, 99),
    ),
]


def demo_load(*, admin, users) -> dict[str, int]:
    created = {"product_categories": 0, "products": 0, "stock_movements": 0}
    rng = random.Random(2026)  # the same catalogue on every machine
    units = {
        item.value: item for item in DictionaryItem.objects.filter(dictionary__code="product_unit")
    }
    warehouse = warehouse_default_ensure()
    actor = users.get("warehouse", admin) if users else admin
    existing = set(Product.all_objects.values_list("code", flat=True))
    categories: dict[tuple[str, ...], ProductCategory] = {}
    for line in LINES:
        parent = None
        for depth in range(len(line.path)):
            key = line.path[: depth + 1]
            if key not in categories:
                found = ProductCategory.objects.filter(parent=parent, name=key[-1]).first()
                if found is None:
                    found = category_create(actor=admin, data={"name": key[-1], "parent": parent})
                    created["product_categories"] += 1
                categories[key] = found
            parent = categories[key]
        number = 0
        for brand in line.brands:
            for model_name, spec in line.models:
                number += 1
                code = f"{line.prefix}-{number:04d}"
                list_price = quantize_money(rng.randint(*line.price))
                # Round catalogue prices: 1999 rather than 2003.
                list_price = quantize_money(max(list_price // 10 * 10 - 1, Decimal("9")))
                cost = quantize_money(list_price * Decimal(rng.randint(55, 82)) / 100)
                if code in existing:
                    continue
                threshold = Decimal(rng.choice([5, 10, 20])) if line.stocked else Decimal("0")
                product = product_create(
                    actor=admin,
                    data={
                        "code": code,
                        "name": f"{brand}{model_name}",
                        "specification": spec,
                        "category": parent,
                        "unit": units.get(line.unit),
                        "list_price": list_price,
                        "cost_price": cost,
                        "tax_rate": Decimal(line.tax),
                        "barcode": f"69{rng.randint(10**10, 10**11 - 1)}" if line.stocked else "",
                        "low_stock_threshold": threshold,
                        "status": "off_sale" if rng.random() < 0.05 else "on_sale",
                    },
                )
                created["products"] += 1
                if not line.stocked:
                    continue
                # Most arrive well stocked; about one in twelve stays at or below its threshold.
                low = rng.random() < 0.08
                received = rng.randint(1, int(threshold)) if low else rng.randint(30, 200)
                stock_movement_post(
                    actor=actor,
                    product=product,
                    warehouse=warehouse,
                    kind="in",
                    quantity=received,
                    reason="期初入库",
                    reference="RK-2026-0001",
                )
                created["stock_movements"] += 1
                if not low and rng.random() < 0.5:
                    stock_movement_post(
                        actor=actor,
                        product=product,
                        warehouse=warehouse,
                        kind="out",
                        quantity=rng.randint(1, 20),
                        reason="领用出库",
                    )
                    created["stock_movements"] += 1
    return created
