"""Log in through the real login page, switch language, see the sidebar, log out."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE

PASSWORD = "kehu-demo-2026"

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form button[type=submit]:not([name=language])")
    expect(page.locator("#sidebar")).to_be_attached()


def switch_language(scope, code: str) -> None:
    # By value: the button labels are language names, whose wording is the template's concern.
    scope.locator(f"button[name=language][value={code}]").first.click()


def expect_language(page: Page, code: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", code)


def test_sales1_logs_in_switches_language_and_logs_out(org, new_page, screenshot):
    page = new_page(DESKTOP)
    page.goto("/")
    # Not logged in: the login page, in Chinese for a Chinese browser.
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect_language(page, "zh-hans")
    expect(page.locator("#id_username")).to_be_visible()
    screenshot(page, "login-zh-desktop")

    switch_language(page, "en")
    expect_language(page, "en")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    screenshot(page, "login-en-desktop")

    log_in(page, "sales1")
    expect(page).to_have_url(re.compile(r"/$"))
    sidebar = page.locator("#sidebar")
    expect(sidebar).to_be_visible()
    expect(sidebar.get_by_role("link", name="Home")).to_be_visible()
    expect(sidebar.locator("[data-module=system]")).to_have_count(0)
    expect_language(page, "en")
    screenshot(page, "home-en-desktop")

    switch_language(page.locator("header"), "zh-hans")
    expect_language(page, "zh-hans")
    expect(page.locator("#sidebar")).to_be_visible()
    screenshot(page, "home-zh-desktop")

    switch_language(page.locator("header"), "en")
    expect_language(page, "en")

    page.click("#user-menu")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_wrong_password_shows_an_error_and_stays_on_login(org, new_page):
    page = new_page(DESKTOP, locale="en-US")
    page.goto("/accounts/login/")
    page.fill("#id_username", "sales1")
    page.fill("#id_password", "not-the-password")
    page.click("form button[type=submit]:not([name=language])")
    expect(page.locator(".alert-danger")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_admin_sees_system_menu_and_sales1_does_not(org, new_page):
    admin_page = new_page(DESKTOP, locale="en-US")
    log_in(admin_page, "admin")
    expect(admin_page.locator("#sidebar [data-module=system]")).to_be_visible()
    expect(admin_page.locator("#sidebar").get_by_role("link", name="Users")).to_be_visible()

    sales_page = new_page(DESKTOP, locale="en-US")
    log_in(sales_page, "sales1")
    expect(sales_page.locator("#sidebar [data-module=system]")).to_have_count(0)
    expect(sales_page.locator("#sidebar").get_by_role("link", name="Users")).to_have_count(0)


def test_phone_layout_in_both_languages(org, new_page, screenshot):
    page = new_page(PHONE)
    page.goto("/accounts/login/")
    expect_language(page, "zh-hans")
    screenshot(page, "login-zh-phone")
    switch_language(page, "en")
    expect_language(page, "en")
    screenshot(page, "login-en-phone")

    log_in(page, "sales1")
    # On a phone the sidebar is an off-canvas menu behind the menu button.
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    screenshot(page, "home-en-phone")
    page.get_by_role("button", name="Menu").click()
    expect(page.locator("#sidebar")).to_have_class(re.compile(r"\bshow\b"))
    expect(page.locator("#sidebar").get_by_role("link", name="Home")).to_be_in_viewport()
    page.wait_for_timeout(400)  # let the slide-in transition finish before the picture
    screenshot(page, "home-en-phone-menu")
    page.locator("#sidebar").get_by_role("button", name="Close").click()

    # The language switch moves into the user menu on narrow screens.
    page.click("#user-menu")
    switch_language(page.locator(".dropdown-menu"), "zh-hans")
    expect_language(page, "zh-hans")
    screenshot(page, "home-zh-phone")
