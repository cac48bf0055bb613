"""The UI works under the Content-Security-Policy: no page of any module, for admin or for
a salesperson, makes the browser refuse a script (inline code, handlers, eval) or throw;
confirmations, auto-submitting selects and htmx still work."""

from __future__ import annotations

import contextlib
import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from kehu.products.models import Product
from kehu.products.services import product_create
from tests.browser.conftest import DESKTOP
from tests.browser.test_shell import log_in
from tests.customers.factories import CustomerFactory, FollowUpFactory
from tests.sales.factories import contract_for

pytestmark = pytest.mark.django_db(transaction=True)

# Registered before any page script runs: every violation the browser reports.
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""
ADMIN_PAGES = [
    "home",
    "customers:customer_list",
    "customers:pool_list",
    "customers:followup_list",
    "customers:followup_calendar",
    "customers:opportunity_board",
    "customers:customer_create",
    "sales:quote_list",
    "sales:contract_list",
    "sales:contract_create",
    "sales:order_list",
    "finance:payment_list",
    "finance:invoice_list",
    "finance:expense_list",
    "finance:aging",
    "finance:reports",
    "products:product_list",
    "products:product_create",
    "products:warehouse_list",
    "products:category_list",
    "hr:department_list",
    "hr:org_chart",
    "hr:employee_list",
    "hr:target_list",
    "system:user_list",
    "system:role_list",
    "system:role_create",
    "system:settings",
    "system:audit_list",
    "approvals:rule_list",
    "approvals:rule_create",
    "analytics:dashboard",
    "analytics:rfm",
    "analytics:forecast",
    "analytics:predictions",
    "api_docs",
]
SALES_PAGES = [
    "home",
    "customers:customer_list",
    "customers:opportunity_board",
    "sales:contract_list",
    "sales:quote_create",
    "products:product_list",
    "customers:followup_list",
]


def watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.set_default_timeout(30_000)  # dozens of pages on a shared machine
    page.add_init_script(WATCH)
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if re.search(r"Content.Security.Policy|Refused to", msg.text)
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    return problems


def visit(page: Page, url: str, problems: list[str]) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    # Let htmx's own loads (hx-trigger="load") run too; a busy machine may keep the
    # network from going idle, and what was refused so far is still read below.
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_load_state("networkidle", timeout=10_000)
    violations = page.evaluate("window.__csp || []")
    problems.extend(f"{url}: {v}" for v in violations)


@pytest.fixture
def data(org):
    customer = CustomerFactory(owner=org.sales1, name="测试科技")
    FollowUpFactory(customer=customer, author=org.sales1)
    contract = contract_for(org.sales1, customer=customer)
    product = product_create(
        actor=org.admin, data={"code": "CSP-1", "name": "打印机", "list_price": "10.00"}
    )
    return {"customer": customer, "contract": contract, "product": product}


def test_admin_pages_run_under_the_policy(org, data, new_page, screenshot):
    page = new_page(DESKTOP, locale="en-US")
    problems = watch(page)
    log_in(page, "admin")
    urls = [reverse(name) for name in ADMIN_PAGES] + [
        reverse("customers:customer_detail", args=[data["customer"].pk]),
        reverse("sales:contract_detail", args=[data["contract"].pk]),
        reverse("products:product_detail", args=[data["product"].pk]),
    ]
    for url in urls:
        visit(page, url, problems)
        if url in {reverse("finance:reports"), reverse("approvals:rule_create")}:
            screenshot(page, "csp-" + url.strip("/").replace("/", "-"))
    assert not problems, "\n".join(problems)
    # Swagger UI (split view, no inline script) actually rendered.
    visit(page, reverse("api_docs"), problems)
    expect(page.locator(".swagger-ui")).to_be_visible()
    screenshot(page, "csp-api-docs")
    assert not problems, "\n".join(problems)


def test_sales_pages_run_under_the_policy(org, data, new_page, screenshot):
    page = new_page(DESKTOP, locale="en-US")
    problems = watch(page)
    log_in(page, "sales1")
    for name in SALES_PAGES:
        visit(page, reverse(name), problems)
    visit(page, reverse("customers:customer_detail", args=[data["customer"].pk]), problems)
    screenshot(page, "csp-sales1-customer")
    # htmx under the policy: the global search fills its dropdown.
    page.fill("input[name=q]", "测试")
    expect(page.locator("#search-dropdown")).to_contain_text("测试科技")
    assert not problems, "\n".join(problems)


def test_confirm_dialog_guards_a_delete(org, data, new_page):
    page = new_page(DESKTOP, locale="en-US")
    problems = watch(page)
    log_in(page, "admin")
    product = data["product"]
    visit(page, reverse("products:product_detail", args=[product.pk]), problems)
    messages: list[str] = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator("form[data-confirm] button[type=submit]").first.click()
    page.wait_for_timeout(300)
    assert messages == ["Delete this product?"]
    assert Product.objects.filter(pk=product.pk).exists()

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("form[data-confirm] button[type=submit]").first.click()
    page.wait_for_load_state("networkidle")
    expect(page).not_to_have_url(re.compile(rf"/products/{product.pk}/$"))
    assert not Product.objects.filter(pk=product.pk).exists()
    assert not problems, "\n".join(problems)


def test_select_submits_its_form_when_changed(org, new_page, screenshot):
    page = new_page(DESKTOP, locale="en-US")
    problems = watch(page)
    log_in(page, "admin")
    visit(page, reverse("hr:target_list"), problems)
    year = page.locator("#t-year")
    options = year.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    target = options[0]
    year.select_option(target)
    expect(page).to_have_url(re.compile(rf"year={target}"))
    expect(page.locator("#t-year")).to_have_value(target)
    screenshot(page, "csp-hr-targets")
    assert not problems, "\n".join(problems)


def test_approval_rule_steps_script_runs(org, new_page):
    page = new_page(DESKTOP, locale="en-US")
    problems = watch(page)
    log_in(page, "admin")
    visit(page, reverse("approvals:rule_create"), problems)
    step = page.locator(".rule-step").first
    kind = step.locator("select[name=approver_kind]")
    for value in kind.locator("option").evaluate_all("(os) => os.map((o) => o.value)"):
        kind.select_option(value)
        expect(step).to_have_attribute("data-kind", value)
    assert not problems, "\n".join(problems)


def test_the_watch_sees_a_refused_inline_script(org, new_page):
    """The checks above can fail: an inline script added to a page is refused and seen."""
    page = new_page(DESKTOP, locale="en-US")
    problems = watch(page)
    log_in(page, "sales1")
    visit(page, reverse("home"), problems)
    assert not problems
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__ran = true";
          document.body.appendChild(script);
          document.body.setAttribute("onclick", "window.__ran = true");
          document.body.click();
        }"""
    )
    page.wait_for_timeout(300)
    assert page.evaluate("window.__ran === true") is False
    violations = page.evaluate("window.__csp")
    assert any(v.startswith("script-src") for v in violations), violations
    assert any("Content Security Policy" in p for p in problems), problems
