"""Approvals in a real browser: the inbox, a request, an inline refusal, two approvals,
the rules admin. Screenshots in test-artifacts/screenshots/approvals-*.png."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_shell import log_in, switch_language

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def requests_(org):
    """Three contracts waiting: a large one (two steps), a small one, and one rejected once."""
    from kehu.approvals.models import ApprovalRequest
    from kehu.approvals.services import approval_reject
    from kehu.hr.models import Department
    from kehu.sales.services import contract_submit
    from tests.customers.factories import CustomerFactory
    from tests.products.factories import ProductFactory
    from tests.sales.factories import contract_for, line

    Department.objects.filter(pk=org.sales1_dept.pk).update(manager=org.salesmgr1)
    from kehu.system.models import User

    names = {"sales1": "张伟", "sales2": "李娜", "salesmgr1": "王强", "salesdirector": "赵敏"}
    names["manager"] = "陈总"
    for username, name in names.items():
        User.objects.filter(username=username).update(display_name=name)
    server = ProductFactory(name="华为服务器 2288H V6", list_price=Decimal("48000.00"))
    switch = ProductFactory(name="交换机 S5735", list_price=Decimal("6800.00"))
    large = contract_for(
        org.sales1,
        customer=CustomerFactory(owner=org.sales1, name="上海宏达信息技术有限公司"),
        title="数据中心扩容项目",
        lines=[
            line(server, quantity="3", tax_rate=Decimal("13")),
            line(switch, quantity="4", tax_rate=Decimal("13")),
        ],
    )
    contract_submit(actor=org.sales1, contract=large, comment="客户要求本月内签约，请尽快审批。")
    small = contract_for(
        org.sales2,
        customer=CustomerFactory(owner=org.sales2, name="杭州云帆贸易有限公司"),
        title="年度维保服务",
        amount="36000.00",
    )
    contract_submit(actor=org.sales2, contract=small)
    again = contract_for(
        org.sales1,
        customer=CustomerFactory(owner=org.sales1, name="苏州恒泰机械制造有限公司"),
        title="办公设备采购",
        amount="8800.00",
    )
    contract_submit(actor=org.sales1, contract=again)
    first = ApprovalRequest.objects.get(object_id=again.pk)
    approval_reject(
        actor=org.salesmgr1, request=first, comment="付款条件写得不清楚，请补充分期比例。"
    )
    again.refresh_from_db()
    contract_submit(actor=org.sales1, contract=again, comment="已补充：30% 预付，70% 验收后支付。")
    return {
        "large": ApprovalRequest.objects.get(object_id=large.pk),
        "small": ApprovalRequest.objects.get(object_id=small.pk),
        "again": ApprovalRequest.objects.get(object_id=again.pk, status="pending"),
        "large_contract": large,
    }


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_sales_manager_decides_from_the_inbox(org, requests_, new_page, screenshot, language):
    large = requests_["large"]
    page = new_page(DESKTOP)
    log_in(page, "salesmgr1")
    if language == "en":
        switch_language(page.locator("header"), "en")
    expect(page.locator("#approval-count")).to_have_text("3")
    page.locator("#approval-inbox-link").click()
    expect(page.locator("h1")).to_be_visible()
    expect(page.get_by_role("link", name=large.title)).to_be_visible()
    screenshot(page, f"approvals-inbox-{language}")

    page.get_by_role("link", name=large.title).click()
    expect(page.locator("#approval-status")).to_be_visible()
    screenshot(page, f"approvals-detail-{language}")

    # Reject without saying why: refused beside the comment box, nothing changes.
    page.locator("button[value=reject]").click()
    expect(page.locator("#comment-error")).to_be_visible()
    screenshot(top(page), f"approvals-reject-error-{language}")
    large.refresh_from_db()
    assert large.status == "pending" and large.version == 1

    page.locator("textarea[name=comment]").fill("价格已核对，同意。")
    page.locator("button[value=approve]").click()
    expect(page.locator(".alert-success")).to_be_visible()
    expect(page.locator("[data-step='1'][data-status=approved]")).to_be_visible()
    screenshot(page, f"approvals-after-approve-{language}")
    large.refresh_from_db()
    assert large.version == 2 and large.steps.get(sort_order=0).decided_by == org.salesmgr1

    # The general manager finishes it from their own inbox.
    boss = new_page(DESKTOP)
    log_in(boss, "manager")
    if language == "en":
        switch_language(boss.locator("header"), "en")
    expect(boss.locator("#approval-count")).to_have_text("1")
    boss.goto("/approvals/inbox/")
    boss.get_by_role("link", name=large.title).click()
    boss.locator("button[value=approve]").click()
    expect(boss.locator("#approval-status")).to_have_class(re.compile("text-bg-success"))
    screenshot(boss, f"approvals-approved-{language}")
    requests_["large_contract"].refresh_from_db()
    assert requests_["large_contract"].status == "active"


def test_a_request_with_history_and_the_lists(org, requests_, new_page, screenshot):
    page = new_page(DESKTOP)
    log_in(page, "sales1")
    switch_language(page.locator("header"), "en")
    page.goto(requests_["again"].get_absolute_url())
    expect(page.get_by_role("button", name="Withdraw")).to_be_visible()
    screenshot(page, "approvals-detail-submitter-en")
    page.goto("/approvals/mine/")
    expect(page.locator("h1")).to_have_text("My submissions")
    screenshot(page, "approvals-mine-en")
    director = new_page(DESKTOP)
    log_in(director, "salesdirector")
    switch_language(director.locator("header"), "en")
    director.goto("/approvals/?status=rejected")
    screenshot(director, "approvals-all-rejected-en")


def test_the_inbox_on_a_phone(org, requests_, new_page, screenshot):
    page = new_page(PHONE)
    log_in(page, "salesmgr1")
    page.goto("/approvals/inbox/")
    expect(page.locator("h1")).to_be_visible()
    screenshot(page, "approvals-inbox-phone")
    page.goto(requests_["large"].get_absolute_url())
    screenshot(page, "approvals-detail-phone")


def test_the_contract_page_panel(org, requests_, new_page, screenshot):
    page = new_page(DESKTOP)
    log_in(page, "salesmgr1")
    switch_language(page.locator("header"), "en")
    response = page.goto(requests_["again"].get_absolute_url())
    url = requests_["large_contract"].get_absolute_url()
    response = page.goto(url)
    if response is None or response.status != 200:
        pytest.skip("the contract page is not there yet")
    expect(page.locator("#approval-panel")).to_be_visible()
    screenshot(page, "approvals-contract-panel-en")


def top(page):
    """Full-page shots of a scrolled page draw the sticky bars mid-page: scroll back first."""
    page.evaluate("window.scrollTo(0, 0)")
    return page


def test_the_rules_admin(org, new_page, screenshot):
    page = new_page(DESKTOP)
    log_in(page, "admin")
    switch_language(page.locator("header"), "en")
    page.goto("/approvals/rules/")
    expect(page.get_by_role("link", name="大额合同（10万元以上）").first).to_be_visible()
    screenshot(page, "approvals-rules-en")
    page.get_by_role("link", name="大额合同（10万元以上）").first.click()
    expect(page.locator("#rule-steps tr")).to_have_count(2)
    page.get_by_role("button", name="Add a step").click()
    expect(page.locator("#rule-steps tr")).to_have_count(3)
    last = page.locator("#rule-steps tr").last
    last.locator("select[name=approver_kind]").select_option("user")
    expect(last.locator("select[name=user]")).to_be_visible()
    expect(last.locator("select[name=role]")).to_be_hidden()
    screenshot(top(page), "approvals-rule-form-en")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#form-container")).to_contain_text("Choose a user.")
    screenshot(top(page), "approvals-rule-form-error-en")
    last = page.locator("#rule-steps tr").last
    last.locator("select[name=user]").select_option(label="admin")
    last.locator("[data-step-move='-1']").click()  # the named user becomes step 2
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/approvals/rules/$"))
    expect(page.locator(".alert-success")).to_be_visible()
    from kehu.approvals.models import ApprovalRule

    rule = ApprovalRule.objects.get(name="大额合同（10万元以上）")
    assert [s.approver_kind for s in rule.steps.order_by("sort_order")] == ["role", "user", "role"]
