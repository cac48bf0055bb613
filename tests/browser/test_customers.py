"""A salesperson's day in a real browser, and screenshots of the customer pages.

sales1 creates a customer, adds a contact and a follow-up, drags an opportunity on the
board, returns the customer to the pool; sales2 claims it.
"""

import datetime
import re

import pytest
from django.db.models import Count
from django.utils import timezone
from playwright.sync_api import Page, expect

from kehu.customers.demo import demo_load
from kehu.customers.models import Contact, Customer, FollowUp, Opportunity, PipelineStage
from kehu.system.models import User
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_shell import log_in, switch_language

pytestmark = pytest.mark.django_db(transaction=True)


def _demo(org) -> None:
    """The demo customers, so the screenshots look like a working day."""
    users = {u.username: u for u in (org.sales1, org.sales2, org.sales3, org.salesmgr1)}
    demo_load(admin=org.admin, users=users)


def _language(page: Page, code: str) -> None:
    switch_language(page.locator("header"), code)
    expect(page.locator("html")).to_have_attribute("lang", code)


def test_a_salespersons_day(org, new_page, screenshot):
    _demo(org)
    page = new_page(DESKTOP, locale="en-US")
    log_in(page, "sales1")

    # Create a customer through the form (the duplicate check runs as the name box is left).
    page.goto("/customers/new/")
    page.fill("#id_name", "杭州云杉智能科技有限公司")
    page.fill("#id_mobile", "13905710001")
    page.fill("#id_tags_text", "重点客户, 新线索")
    page.locator("#customer-form button[type=submit]").click()
    expect(page.locator("h1")).to_contain_text("杭州云杉智能科技有限公司")
    customer = Customer.objects.get(name="杭州云杉智能科技有限公司")
    assert customer.owner == org.sales1

    # A contact, inline on the 360° page.
    page.locator("#contacts").get_by_role("button", name="Add").click()
    page.fill("#id_contact-name", "林晓")
    page.fill("#id_contact-title", "采购经理")
    page.fill("#id_contact-mobile", "13811112222")
    page.get_by_role("button", name="Add contact").click()
    expect(page.locator("#contacts")).to_contain_text("林晓")

    # A follow-up with the next step planned (htmx posts it and reloads the page).
    tomorrow = timezone.localtime() + datetime.timedelta(days=1)
    page.fill("#id_followup-content", "电话沟通：客户计划下季度上线新系统，需要报价。")
    page.fill("#id_followup-next_followup_at", tomorrow.strftime("%Y-%m-%dT10:00"))
    page.fill("#id_followup-next_action", "发送报价单")
    page.get_by_role("button", name="Save follow-up").click()
    expect(page.locator("#timeline")).to_contain_text("需要报价")
    assert FollowUp.objects.filter(customer=customer).count() == 1
    assert Contact.objects.filter(customer=customer, name="林晓").exists()

    # An opportunity, then a drag on the board to the next stage.
    page.goto(f"/customers/opportunities/new/?customer={customer.pk}")
    page.fill("#id_title", "云杉 CRM 上线项目")
    page.fill("#id_amount", "180000")
    page.locator("#form-container button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/customers/opportunities/$"))
    opportunity = Opportunity.objects.get(title="云杉 CRM 上线项目")
    first, second = list(PipelineStage.objects.filter(kind="open"))[:2]
    assert opportunity.stage == first
    card = page.locator(f".kehu-board-card[data-id='{opportunity.pk}']")
    target = page.locator(f".kehu-board-cards[data-stage='{second.pk}']")

    def counter(stage):
        return page.locator(f"section[data-stage='{stage.pk}'] [data-count]")

    # A column shows its first cards only: the counts move with the card, not recounted.
    counts = {s.pk: int(counter(s).get_attribute("data-count")) for s in (first, second)}
    with page.expect_response(re.compile(r"/move/$")) as moved:
        card.drag_to(target, target_position={"x": 40, "y": 10})
    assert moved.value.ok
    expect(target.locator(f"[data-id='{opportunity.pk}']")).to_be_visible()
    expect(counter(first)).to_have_attribute("data-count", str(counts[first.pk] - 1))
    expect(counter(second)).to_have_attribute("data-count", str(counts[second.pk] + 1))
    opportunity.refresh_from_db()
    assert opportunity.stage == second and opportunity.version == 2

    # A refused move (lost needs a reason; cancelling the dialog) snaps the card back.
    lost = PipelineStage.objects.get(kind="lost")
    lost_cards = page.locator(f".kehu-board-cards[data-stage='{lost.pk}']")
    card.drag_to(lost_cards, target_position={"x": 40, "y": 10})
    expect(page.locator("#lost-dialog")).to_be_visible()
    page.locator("#lost-dialog").get_by_role("button", name="Cancel").click()
    expect(target.locator(f"[data-id='{opportunity.pk}']")).to_be_visible()
    expect(counter(second)).to_have_attribute("data-count", str(counts[second.pk] + 1))
    opportunity.refresh_from_db()
    assert opportunity.stage == second

    # Back to the pool, with a reason.
    page.goto(f"/customers/{customer.pk}/")
    page.get_by_role("button", name="Return to the pool").first.click()
    page.fill("#return-reason", "客户暂缓采购，半年后再联系")
    page.locator("#return-dialog").get_by_role("button", name="Return to the pool").click()
    expect(page.locator(".alert-success")).to_contain_text("pool")
    customer.refresh_from_db()
    assert customer.in_pool and customer.owner is None

    # Another salesperson claims it from the pool.
    other = new_page(DESKTOP, locale="en-US")
    log_in(other, "sales2")
    other.goto("/customers/pool/?q=云杉")
    row = other.locator("tr", has_text="杭州云杉智能科技有限公司")
    row.get_by_role("button", name="Claim").click()
    expect(other.locator(".alert-success")).to_be_visible()
    customer.refresh_from_db()
    assert customer.owner == org.sales2 and not customer.in_pool


def test_customer_pages_screenshots(org, new_page, screenshot):
    _demo(org)
    # A well-filled customer: the most follow-ups among sales1's with an opportunity.
    customer = (
        Customer.objects.filter(owner=org.sales1, opportunities__isnull=False)
        .annotate(n=Count("followups"))
        .order_by("-n", "id")
        .first()
    )
    page = new_page(DESKTOP)
    log_in(page, "sales1")
    for code in ("zh-hans", "en"):
        _language(page, code)
        short = "zh" if code == "zh-hans" else "en"
        page.goto("/customers/")
        expect(page.locator("#list-results table")).to_be_visible()
        screenshot(page, f"customers-list-{short}-desktop")
        page.goto(f"/customers/{customer.pk}/")
        expect(page.locator("#timeline")).to_be_visible()
        screenshot(page, f"customers-360-{short}-desktop")
        page.goto("/customers/opportunities/")
        expect(page.locator("#board")).to_be_visible()
        screenshot(page, f"customers-board-{short}-desktop")
        page.goto("/customers/followups/calendar/")
        expect(page.locator(".kehu-calendar")).to_be_visible()
        screenshot(page, f"customers-calendar-{short}-desktop")
        page.goto("/customers/pool/")
        screenshot(page, f"customers-pool-{short}-desktop")
        page.goto("/customers/new/")
        screenshot(page, f"customers-form-{short}-desktop")

    User.objects.filter(pk=org.sales1.pk).update(language="zh-hans")
    phone = new_page(PHONE)
    log_in(phone, "sales1")
    phone.goto(f"/customers/{customer.pk}/")
    expect(phone.locator("#timeline")).to_be_visible()
    screenshot(phone, "customers-360-zh-phone")
    phone.goto("/customers/")
    screenshot(phone, "customers-list-zh-phone")
    phone.goto("/customers/opportunities/")
    screenshot(phone, "customers-board-zh-phone")
