"""HR in a real browser: the HR user runs a resignation handover through the wizard;
employee list, org chart, targets and wizard screenshots in both languages."""

import datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP
from tests.browser.test_shell import log_in, switch_language

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = {
    "admin": "系统管理员", "manager": "王总", "salesdirector": "郑志远", "salesmgr1": "李强",
    "sales1": "张伟", "sales2": "刘洋", "sales3": "陈静", "finance": "赵敏", "hr": "孙丽",
    "warehouse": "周杰",
}  # fmt: skip


@pytest.fixture
def company(org):
    from kehu.customers.models import Customer
    from kehu.hr.models import Employee, Position, SalesTarget
    from kehu.hr.services import department_update
    from kehu.system.models import User

    for username, name in NAMES.items():
        User.objects.filter(username=username).update(display_name=name)
    department_update(actor=org.admin, department=org.sales1_dept, expected_version=1,
                      data={"manager": org.salesmgr1})  # fmt: skip
    department_update(actor=org.admin, department=org.head, expected_version=1,
                      data={"manager": org.manager})  # fmt: skip
    rep = Position.objects.create(name="销售代表", department=org.sales1_dept, level=2)
    lead = Position.objects.create(name="销售经理", department=org.sales1_dept, level=4)
    rep2 = Position.objects.create(name="销售代表", department=org.sales2_dept, level=2)
    staff = Position.objects.create(name="专员", level=1)
    places = {"salesmgr1": (org.sales1_dept, lead), "sales1": (org.sales1_dept, rep),
              "sales2": (org.sales1_dept, rep), "sales3": (org.sales2_dept, rep2)}  # fmt: skip
    for n, (username, name) in enumerate(NAMES.items(), start=1):
        user = User.objects.get(username=username)
        department, position = places.get(username, (user.department, staff))
        Employee.objects.create(
            employee_no=f"EMP-2026-{n:06d}", name=name, department=department,
            position=position, hire_date=datetime.date(2024, 3, n), status="active",
            id_number=f"11010519900{n:02d}11234"[:18], phone=f"1380000{n:04d}",
            base_salary=Decimal(9000 + n * 500), user=user,
        )  # fmt: skip
    for n in range(4):
        Customer.objects.create(code=f"KH-{n}", name=f"客户{n}", owner=org.sales2,
                                department=org.sales1_dept)  # fmt: skip
    year = datetime.date.today().year
    for month in range(1, 13):
        SalesTarget.objects.create(
            kind="employee",
            user=org.sales1,
            department=org.sales1_dept,
            year=year,
            month=month,
            contract_amount_target=Decimal(100000 + month * 5000),
        )
    return org


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_hr_pages_screenshots(company, new_page, screenshot, language):
    page = new_page(DESKTOP)
    log_in(page, "hr")
    if language == "en":
        switch_language(page.locator("header"), "en")
    for name, url in [
        ("employees", "/hr/employees/"),
        ("org-chart", "/hr/org-chart/"),
        ("targets", "/hr/targets/"),
        ("positions", "/hr/positions/"),
        ("employee-detail", f"/hr/employees/{company.sales1.employee.pk}/"),
    ]:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, f"hr-{name}-{language}")


def test_sales_manager_sees_masked_list(company, new_page, screenshot):
    page = new_page(DESKTOP)
    log_in(page, "salesmgr1")
    page.goto("/hr/employees/")
    expect(page.locator("table tbody tr")).to_have_count(3)
    expect(page.locator("table")).not_to_contain_text("9,500")
    screenshot(page, "hr-employees-salesmgr1")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_hr_runs_handover_through_the_wizard(company, new_page, screenshot, language):
    from kehu.customers.models import Customer
    from kehu.system.models import User

    org = company
    page = new_page(DESKTOP)
    log_in(page, "hr")
    if language == "en":
        switch_language(page.locator("header"), "en")
    # From the leaver's page.
    page.goto("/hr/employees/?q=刘洋")
    page.locator("table tbody tr").first.get_by_role("link").first.click()
    expect(page.locator("h1")).to_contain_text("刘洋")
    page.locator("a[href*='/hr/handover/?employee=']").click()
    expect(page.locator("#handover-step-1")).to_be_visible()
    page.select_option("#id_successor", str(org.sales1.pk))
    page.fill("#id_reason", "个人原因离职")
    screenshot(page, f"hr-handover-step1-{language}")
    page.locator("#handover-step-1 button[type=submit]").click()
    expect(page.locator("#handover-preview")).to_contain_text("4")
    screenshot(page, f"hr-handover-step2-{language}")
    page.locator("#handover-step-2 button[type=submit]").click()
    expect(page.locator("#handover-result")).to_contain_text("张伟")
    screenshot(page, f"hr-handover-done-{language}")
    assert Customer.objects.filter(owner=org.sales2).count() == 0
    assert Customer.objects.filter(owner=org.sales1).count() == 4
    assert not User.objects.get(pk=org.sales2.pk).is_active


def test_inline_target_edit(company, new_page):
    from kehu.hr.models import SalesTarget

    org = company
    page = new_page(DESKTOP)
    log_in(page, "hr")
    page.goto("/hr/targets/")
    row = page.locator(f"#target-row-employee-{org.sales1.pk}")
    cell = row.locator("input[name=value]").nth(0)
    cell.fill("200000")
    cell.dispatch_event("change")
    # Q1 = 200000 + 110000 + 115000, re-rendered by the server.
    expect(page.locator(f"#target-row-employee-{org.sales1.pk}")).to_contain_text("425,000.00")
    target = SalesTarget.objects.get(user=org.sales1, month=1)
    assert target.contract_amount_target == Decimal("200000.00")
