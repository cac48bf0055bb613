"""``access_world``: one small company with one record of every scoped kind owned by sales1
(销售一部) and one owned by sales3 (销售二部), each carrying a unique marker, built once per
test module and rolled back at its end.

The access matrix sends thousands of requests; building the world per test would cost more
than the requests. The world lives in a transaction opened by this module-scoped fixture;
each test (``db``) runs in a savepoint inside it, so nothing a test writes outlives it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone

ROLES = (
    "admin",
    "manager",
    "salesmgr1",
    "sales1",
    "sales2",
    "sales3",
    "finance",
    "hr",
    "warehouse",
)
# The sides of the world: "A" is owned by sales1 (销售一部), "B" by sales3 (销售二部).
OWNERS = {"A": "sales1", "B": "sales3"}


def marker(side: str, kind: str) -> str:
    """A string that appears only in the one record it names (ASCII: found in any export)."""
    return f"QX{side}{kind.replace('_', '')}ZQ"


@dataclass
class AccessWorld:
    org: Any
    # kind → side → object ("A"/"B" for scoped kinds; "A" only for shared ones)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # marker → (kind, side) of the record it lives in
    markers: dict[str, tuple[str, str]] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # username → session key

    def obj(self, kind: str, side: str = "A"):
        return self.objects[kind][side]

    def user(self, username: str):
        return getattr(self.org, username)

    def client(self, username: str | None) -> Client:
        """A fresh client carrying the role's session (a logout cannot leak to later requests)."""
        client = Client()
        if username is not None:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[username]
        return client


def _build(org) -> AccessWorld:
    from kehu.approvals.models import ApprovalRequest
    from kehu.customers import services as customers
    from kehu.customers.services_opportunities import opportunity_create
    from kehu.hr.models import Employee, EmployeeStatus, Position
    from kehu.products.services import warehouse_default_ensure
    from kehu.sales import services as sales
    from kehu.system.models import Notification
    from tests.customers.factories import CustomerFactory
    from tests.finance.factories import (
        active_contract,
        department_managers,
        expense_for,
        invoice_for,
        pay,
        plan,
    )
    from tests.products.factories import ProductFactory
    from tests.sales.factories import contract_for, line, order_for, quote_for

    department_managers(org)
    warehouse_default_ensure()
    world = AccessWorld(org=org)
    product = ProductFactory(name="共享产品")

    def put(kind: str, side: str, obj) -> None:
        world.objects.setdefault(kind, {})[side] = obj

    for n, (side, username) in enumerate(OWNERS.items(), start=1):
        owner = getattr(org, username)

        def mark(kind: str, _side: str = side) -> str:
            text = marker(_side, kind)
            world.markers[text] = (kind, _side)
            return text

        customer = CustomerFactory(owner=owner, name=mark("customer"), notes=mark("customernote"))
        put("customer", side, customer)
        put(
            "contact",
            side,
            customers.contact_create(
                actor=owner, customer=customer, data={"name": mark("contact")}
            ),
        )
        put(
            "followup",
            side,
            customers.followup_create(
                actor=owner, customer=customer, data={"content": mark("followup")}
            ),
        )
        put(
            "opportunity",
            side,
            opportunity_create(
                actor=owner,
                data={"customer": customer, "title": mark("opportunity"), "amount": Decimal("5")},
            ),
        )
        put(
            "quote",
            side,
            quote_for(owner, customer=customer, title=mark("quote"), lines=[line(product)]),
        )
        contract = active_contract(org, owner, customer=customer, title=mark("contract"))
        put("contract", side, contract)
        pending = sales.contract_submit(
            actor=owner, contract=contract_for(owner, customer=customer, title=mark("pending"))
        )
        put(
            "approval",
            side,
            ApprovalRequest.objects.filter(object_id=pending.pk, status="pending").first()
            or ApprovalRequest.objects.filter(object_id=contract.pk).first(),
        )
        put(
            "order",
            side,
            order_for(owner, customer=customer, title=mark("order"), lines=[line(product)]),
        )
        today = timezone.localdate()
        plan(contract, (today + datetime.timedelta(days=30), contract.total_amount))
        put("payment", side, pay(contract, "100.00", note=mark("payment")))
        put("invoice", side, invoice_for(contract, "50.00", title=mark("invoice")))
        put(
            "expense",
            side,
            expense_for(owner, description=mark("expense")),
        )
        position = Position.objects.create(name=f"岗位{n}", department=owner.department)
        put(
            "employee",
            side,
            Employee.objects.create(
                employee_no=f"E9{n:02d}",
                name=mark("employee"),
                department=owner.department,
                position=position,
                hire_date=datetime.date(2024, 1, 1),
                status=EmployeeStatus.ACTIVE,
                phone="13800009999",
                base_salary=Decimal("9000.00"),
                user=owner,
            ),
        )
        put("notification", side, Notification.objects.create(recipient=owner, title=mark("note")))
        put("user", side, owner)
        put("department", side, owner.department)
    from kehu.approvals.models import ApprovalRule
    from kehu.customers.models import PipelineStage
    from kehu.hr.services import sales_target_set
    from kehu.products.models import Warehouse
    from kehu.system.models import AuditLog, Dictionary, DictionaryItem, Role
    from tests.products.factories import CategoryFactory

    put("product", "A", product)
    put("pool_customer", "A", CustomerFactory(owner=None, in_pool=True, name="公海客户"))
    put("category", "A", CategoryFactory())
    put("warehouse", "A", Warehouse.objects.get(is_default=True))
    put("role", "A", Role.objects.get(code="warehouse"))
    put("dictionary", "A", Dictionary.objects.order_by("pk").first())
    put("dictionary_item", "A", DictionaryItem.objects.order_by("pk").first())
    put("position", "A", Position.objects.order_by("pk").first())
    put("stage", "A", PipelineStage.objects.order_by("pk").first())
    put("approval_rule", "A", ApprovalRule.objects.order_by("pk").first())
    put("audit_log", "A", AuditLog.objects.order_by("pk").first())
    today = timezone.localdate()
    put(
        "target",
        "A",
        sales_target_set(
            actor=org.admin,
            kind="employee",
            year=today.year,
            month=today.month,
            user=org.sales1,
            contract_amount_target=Decimal("100000.00"),
        ),
    )
    for username in ROLES:
        client = Client()
        client.force_login(getattr(org, username))
        world.sessions[username] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return world


@pytest.fixture(scope="module")
def access_world(django_db_setup, django_db_blocker):
    """The world of records above, shared by the tests of one module, rolled back after it."""
    from tests.conftest import make_org

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            with _language("en"):
                world = _build(make_org())
            yield world
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _language(code: str):
    from django.utils import translation

    return translation.override(code)
