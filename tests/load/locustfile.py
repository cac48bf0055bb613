"""Load test (issue 8): salespeople and managers using Kehu through its pages.

Run by ``make loadtest`` (BENCHMARKS.md, "Load test"), which serves Kehu with gunicorn on
loopback and drives it with ``locust --headless``. Every user logs in through the login page
and then clicks around as people do: lists, searches, a customer's 360° page, contracts, the
dashboard and the aging report, searches of contracts, orders, the board and the global
search by a customer's name, now and then a follow-up written through the API. A
response that is not what the page should answer counts as a failure; the run must end
with none.

The users are FastHttpUsers (geventhttpclient): the load generator shares the machine with
the server and the database, and requests' per-request CPU would take theirs.
"""

from __future__ import annotations

import os
import random
import re

from locust import FastHttpUser, between, task

PASSWORD = os.environ.get("LOAD_PASSWORD", "kehu-demo-2026")
SALES_LOGINS = os.environ.get("LOAD_SALES_USERS", "sales1,sales2,sales3").split(",")
MANAGER_LOGINS = os.environ.get("LOAD_MANAGER_USERS", "manager,salesmgr1,salesmgr2").split(",")
# Terms a salesperson types: a Chinese fragment, pinyin initials, the start of a mobile number.
SEARCH_TERMS = ["科技", "贸易", "有限", "kj", "my", "138", "139", "华"]
# Terms a record search gets: part of a customer's name (a few customers, two characters,
# nearly all), a word of a title or none.
RECORD_TERMS = ["达安数据", "恒通建设", "九州汽车", "达安", "恒通", "有限公司", "框架合同", "ERP"]
RECORD_SEARCHES = [
    ("/sales/contracts/?q=", "contracts: search"),
    ("/sales/orders/?q=", "orders: search"),
    ("/customers/opportunities/?q=", "opportunities: board, searched"),
    ("/search/?q=", "global search"),
]
CUSTOMER_LINK = re.compile(r'href="/customers/(\d+)/"')
CONTRACT_LINK = re.compile(r'href="/sales/contracts/(\d+)/"')
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class KehuUser(FastHttpUser):
    abstract = True
    wait_time = between(1, 4)  # think time between clicks
    logins: list[str] = []

    def on_start(self) -> None:
        self.customers: list[str] = []
        self.contracts: list[str] = []
        username = random.choice(self.logins)
        page = self.client.get("/accounts/login/", name="login page")
        token = CSRF_FIELD.search(page.text)
        with self.client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": token.group(1) if token else "",
            },
            headers={"Referer": self.host + "/accounts/login/"},
            name="login",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            # A login redirects to the home page; a refusal shows the form again (200).
            if response.status_code != 302 or "/accounts/login/" in response.headers.get(
                "Location", ""
            ):
                response.failure(f"login as {username} failed")

    def cookie(self, name: str) -> str:
        return next((c.value or "" for c in self.client.cookiejar if c.name == name), "")

    def page(self, url: str, name: str, expect: str | None = None):
        # Redirects are not followed: a page view answers 200, a lost session redirects.
        with self.client.get(
            url, name=name, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code in (301, 302):
                response.failure(f"redirected to {response.headers.get('Location')}")
            elif response.status_code != 200:
                response.failure(f"{response.status_code} for {url}")
            elif expect and expect not in response.text:
                response.failure(f"{url} lacks {expect!r}")
            return response

    def remember(self, text: str) -> None:
        self.customers = CUSTOMER_LINK.findall(text)[:20] or self.customers
        self.contracts = CONTRACT_LINK.findall(text)[:20] or self.contracts

    @task(3)
    def home(self) -> None:
        self.page("/", "home")

    @task(6)
    def customer_list(self) -> None:
        self.remember(self.page("/customers/", "customers: list").text)

    @task(2)
    def customer_list_deep(self) -> None:
        self.page(f"/customers/?page={random.randint(2, 40)}", "customers: list, page n")

    @task(4)
    def customer_search(self) -> None:
        term = random.choice(SEARCH_TERMS)
        self.page(f"/customers/?q={term}", "customers: search")

    @task(5)
    def customer_detail(self) -> None:
        if self.customers:
            pk = random.choice(self.customers)
            self.page(f"/customers/{pk}/", "customer: 360° page")

    @task(3)
    def contract_list(self) -> None:
        self.remember(self.page("/sales/contracts/", "contracts: list").text)

    @task(2)
    def record_search(self) -> None:
        url, name = random.choice(RECORD_SEARCHES)
        self.page(url + random.choice(RECORD_TERMS), name)

    @task(2)
    def contract_detail(self) -> None:
        if self.contracts:
            pk = random.choice(self.contracts)
            self.page(f"/sales/contracts/{pk}/", "contract: detail")


class Salesperson(KehuUser):
    weight = 4
    logins = SALES_LOGINS

    @task(1)
    def followup_write(self) -> None:
        if not self.customers:
            return
        token = self.cookie("csrftoken")
        with self.client.post(
            "/api/v1/followups/",
            json={
                "customer": int(random.choice(self.customers)),
                "method": "phone",
                "content": "Load test call: asked about the next order.",
            },
            headers={"X-CSRFToken": token, "Referer": self.host + "/"},
            name="follow-up: create (API)",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(2)
    def order_list(self) -> None:
        self.page("/sales/orders/", "orders: list")


class Manager(KehuUser):
    weight = 1
    logins = MANAGER_LOGINS

    @task(4)
    def dashboard(self) -> None:
        self.page("/analytics/", "dashboard")

    @task(2)
    def aging(self) -> None:
        self.page("/finance/aging/", "finance: aging report")

    @task(2)
    def approvals(self) -> None:
        self.page("/approvals/inbox/", "approvals: inbox")

    @task(1)
    def payments(self) -> None:
        self.page("/finance/payments/", "payments: list")
