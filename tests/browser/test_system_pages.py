"""An administrator walks through the system pages in a real browser, in both languages."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_shell import log_in, switch_language

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = [
    ("users", "/system/users/"),
    ("user-edit", None),
    ("roles", "/system/roles/"),
    ("role-edit", None),
    ("dictionaries", "/system/dictionaries/"),
    ("settings", "/system/settings/"),
    ("audit-log", "/system/audit-log/"),
    ("notifications", "/system/notifications/"),
    ("departments", "/hr/departments/"),
]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_admin_tours_system_pages(org, new_page, screenshot, language):
    from kehu.system.models import Role

    page = new_page(DESKTOP)
    log_in(page, "admin")
    if language == "en":
        switch_language(page.locator("header"), "en")
    for name, url in PAGES:
        if name == "user-edit":
            url = f"/system/users/{org.sales1.pk}/"
        elif name == "role-edit":
            url = f"/system/roles/{Role.objects.get(code='salesperson').pk}/"
        response = page.goto(url)
        assert response is not None and response.status == 200, (url, response)
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, f"system-{name}-{language}")


def test_user_list_on_a_phone_becomes_cards(org, new_page, screenshot):
    page = new_page(PHONE)
    log_in(page, "admin")
    page.goto("/system/users/")
    first_row = page.locator("table.kehu-responsive tbody tr").first
    expect(first_row).to_be_visible()
    # Cards: the header row is hidden and each cell carries its own label.
    expect(page.locator("table.kehu-responsive thead")).to_be_hidden()
    screenshot(page, "system-users-phone")
