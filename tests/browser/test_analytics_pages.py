"""Analytics pages in a real browser over two years of business: every page drawn in both
languages (screenshots in test-artifacts/screenshots/), charts present and drawn, a chart
click and the period picker leading where they should."""

from __future__ import annotations

import datetime
import random
import re
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone, translation
from playwright.sync_api import expect

from tests.analytics import conftest as analytics_conftest
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_shell import log_in, switch_language

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = {"manager": "王总", "salesmgr1": "李强", "sales1": "张伟", "sales2": "刘洋",
         "sales3": "陈静", "finance": "赵敏"}  # fmt: skip
history = analytics_conftest.history  # the two-year order history fixture
PAGES = [
    ("dashboard", "/analytics/"),
    ("dashboard-12m", "/analytics/?preset=last_12_months"),
    ("customer-value", "/analytics/customer-value/"),
    ("rfm", "/analytics/rfm/"),
    ("predictions", "/analytics/predictions/"),
    ("forecast", "/analytics/forecast/"),
]


def _month_start(day: datetime.date, back: int) -> datetime.date:
    index = day.year * 12 + day.month - 1 - back
    return datetime.date(index // 12, index % 12 + 1, 1)


@pytest.fixture
def business(org, history):
    """The order history plus two years of contracts, collections, follow-ups, expenses,
    targets, a pipeline and receivables; then the analytics jobs."""
    from kehu.analytics import services
    from kehu.customers.models import Customer, FollowUp, Opportunity, PipelineStage, StageKind
    from kehu.finance.models import (
        ContractLedger,
        ExpenseClaim,
        Payment,
        PaymentStatus,
        ReceivableInstalment,
    )
    from kehu.hr.models import Department, SalesTarget
    from kehu.products.models import Product
    from kehu.sales.models import Contract, ContractStatus
    from kehu.system.models import DictionaryItem, User

    for username, name in NAMES.items():
        User.objects.filter(username=username).update(display_name=name)
    Department.objects.filter(pk=org.sales1_dept.pk).update(manager=org.salesmgr1)
    names = ["华东机电设备", "北方精密仪器", "星河软件科技", "万达物流", "青山建材", "海川医疗器械",
             "金桥电子", "远航包装材料", "恒信化工", "明德教育科技"]  # fmt: skip
    for i, customer in enumerate(history["customers"]):
        Customer.objects.filter(pk=customer.pk).update(
            name=f"{names[i % len(names)]}{'有限公司' if i < 10 else f'（{i}号分公司）'}"
        )
    for i, product in enumerate(history["products"]):
        label = ["工业控制器", "传感器套件", "伺服电机", "变频器", "PLC 模块", "触摸屏", "线缆组件",
                 "维保服务"][i]  # fmt: skip
        Product.objects.filter(pk=product.pk).update(name=label)
    rng = random.Random(7)
    today = timezone.localdate()
    people = [(org.sales1, history["customers"][0::2]), (org.sales3, history["customers"][1::2])]
    number = 0
    for back in range(25, -1, -1):
        month = _month_start(today, back)
        season = 1.0 + 0.35 * (month.month in (3, 6, 9, 12)) - 0.3 * (month.month in (1, 2))
        growth = 1.0 + (25 - back) * 0.02
        for owner, customers in people:
            for _k in range(rng.randint(2, 4)):
                number += 1
                signed = month + datetime.timedelta(days=rng.randint(0, 25))
                if signed > today:
                    continue
                amount = Decimal(int(rng.randint(30, 120) * 1000 * season * growth))
                contract = Contract.objects.create(
                    number=f"HT-T-{number:06d}",
                    customer=rng.choice(customers),
                    owner=owner,
                    department=owner.department,
                    title="年度采购合同",
                    signed_on=signed,
                    status=ContractStatus.ACTIVE,
                    subtotal_amount=amount,
                    total_amount=amount,
                )
                paid_on = signed + datetime.timedelta(days=rng.randint(10, 50))
                due = signed + datetime.timedelta(days=30)
                ReceivableInstalment.objects.create(
                    contract=contract, sequence=1, due_date=due, amount=amount
                )
                if paid_on <= today and rng.random() < 0.85:
                    Payment.objects.create(
                        number=f"HK-T-{number:06d}",
                        contract=contract,
                        amount=amount,
                        received_on=paid_on,
                        method="bank_transfer",
                        status=PaymentStatus.CONFIRMED,
                        owner=owner,
                        department=owner.department,
                    )
                    ContractLedger.objects.update_or_create(
                        contract=contract, defaults={"confirmed_amount": amount}
                    )
            for _k in range(rng.randint(4, 12)):
                day = month + datetime.timedelta(days=rng.randint(0, 27))
                if day <= today:
                    FollowUp.objects.create(
                        customer=rng.choice(customers),
                        author=owner,
                        content="电话回访",
                        happened_at=timezone.make_aware(
                            datetime.datetime.combine(day, datetime.time(10))
                        ),
                    )
    categories = list(DictionaryItem.objects.filter(dictionary__code="expense_category"))
    for n in range(30):
        owner = [org.sales1, org.sales3, org.salesmgr1][n % 3]
        ExpenseClaim.objects.create(
            number=f"BX-T-{n:06d}",
            owner=owner,
            department=owner.department,
            category=categories[n % len(categories)],
            amount=Decimal(rng.randint(200, 3000)),
            spent_on=today - datetime.timedelta(days=rng.randint(0, 300)),
            description="差旅",
            status="approved",
        )
    stages = list(PipelineStage.objects.filter(is_active=True))
    for n in range(40):
        owner, customers = people[n % 2]
        stage = stages[min(int(rng.expovariate(0.6)), len(stages) - 1)]
        Opportunity.objects.create(
            customer=rng.choice(customers),
            title=f"项目 {n + 1}",
            amount=Decimal(rng.randint(20, 300) * 1000),
            stage=stage,
            probability=stage.probability,
            owner=owner,
            department=owner.department,
            closed_at=timezone.now() if stage.kind != StageKind.OPEN else None,
        )
    for back in range(-3, 12):
        month = _month_start(today, back)
        for user, dept, base in ((org.sales1, org.sales1_dept, 180000),
                                 (org.sales3, org.sales2_dept, 150000)):  # fmt: skip
            SalesTarget.objects.create(
                kind="employee", user=user, department=dept, year=month.year, month=month.month,
                contract_amount_target=Decimal(base), payment_target=Decimal(base * 0.8),
            )  # fmt: skip
    runs = services.analytics_refresh_all(as_of=today)
    assert all(r.status == "succeeded" for r in runs), [r.error for r in runs]
    return history


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_analytics_pages_screenshots(business, org, new_page, screenshot, language):
    page = new_page(DESKTOP)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, "manager")
    if language == "en":
        switch_language(page.locator("header"), "en")
    for name, url in PAGES:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        charts = page.locator("[data-chart]")
        for i in range(charts.count()):
            # ECharts draws into a canvas inside each chart box.
            expect(charts.nth(i).locator("canvas")).to_have_count(1)
        page.wait_for_timeout(600)  # the charts' entry animation
        screenshot(page, f"analytics-{name}-{language}")
    assert not errors, errors


def test_charts_download_as_png(business, org, new_page):
    page = new_page(DESKTOP)
    log_in(page, "manager")
    page.goto("/analytics/")
    expect(page.locator("[data-chart=money] canvas")).to_have_count(1)
    with page.expect_download() as one:
        page.click("[data-chart-png=money]")
    assert one.value.suggested_filename.endswith(".png")
    with page.expect_download() as everything:
        page.click("[data-charts-png]")
    path = everything.value.path()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sales_manager_dashboard_and_drill_down(business, org, new_page, screenshot):
    page = new_page(DESKTOP, locale="en-US")
    log_in(page, "salesmgr1")
    switch_language(page.locator("header"), "en")
    page.goto("/analytics/")
    expect(page.locator("[data-chart=money] canvas")).to_have_count(1)
    screenshot(page, "analytics-dashboard-salesmgr1-en")
    # The period picker reloads the body through htmx and keeps the URL shareable.
    page.select_option("[data-period-preset]", "last_12_months")
    expect(page).to_have_url(re.compile(r"preset=last_12_months"))
    expect(page.locator("[data-chart=money] canvas")).to_have_count(1)
    # A KPI card opens the list behind it with the same filters.
    href = page.locator("[data-kpi=followups] a.stretched-link").get_attribute("href")
    assert href and "date_from=" in href
    page.locator("[data-kpi=followups]").click()  # the whole card is the link
    expect(page).to_have_url(re.compile(r"/customers/followups/\?.*date_from="))


def test_dashboard_on_a_phone(business, org, new_page, screenshot):
    page = new_page(PHONE)
    log_in(page, "finance")
    page.goto("/analytics/")
    expect(page.locator("[data-chart=money] canvas")).to_have_count(1)
    page.wait_for_timeout(600)
    screenshot(page, "analytics-dashboard-finance-zh-phone")


def test_customer_insights_panel(business, org, new_page, screenshot, live_server):
    """The panel the 360° page will include, rendered by its tag and shown with the site's
    styles (the page itself includes it at merge time)."""
    from kehu.analytics.services import recommendations_for

    # A customer at risk who has recommendations, to show every part of the panel.
    customer = max(
        (c for c in business["customers"] if recommendations_for(customer=c)),
        key=lambda c: c.score.churn_risk or 0,
    )
    request = RequestFactory().get("/")
    request.user = org.manager
    page = new_page(DESKTOP)
    page.goto("/healthz")  # same origin as the static files, so the icon font loads
    for language in ("zh-hans", "en"):
        with translation.override(language):
            html = Template("{% load analytics %}{% customer_insights customer %}").render(
                Context({"customer": customer, "request": request})
            )
        static = f"{live_server.url}/static"
        page.set_content(
            f'<html lang="{language}"><head><link rel="stylesheet" '
            f'href="{static}/vendor/bootstrap/css/bootstrap.min.css">'
            f'<link rel="stylesheet" href="{static}/vendor/bootstrap-icons/'
            f'bootstrap-icons.min.css">'
            f'<link rel="stylesheet" href="{static}/kehu/kehu.css"></head>'
            f'<body class="kehu p-3" style="max-width:420px">{html}</body></html>'
        )
        page.wait_for_load_state("networkidle")
        expect(page.locator("#customer-insights")).to_be_visible()
        screenshot(page, f"analytics-customer-panel-{language}")
