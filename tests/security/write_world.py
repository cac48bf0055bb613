"""One of every record the write endpoints act on, owned by sales1 where records have owners.

Built through the services (as users would make them) on top of the ``org`` fixture, so
refusal tests can aim every write endpoint at a real object: sales3 (another department)
must get 404 on sales1's records, a role without the permission 403, a stale version 409.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from kehu.approvals.models import ApprovalRequest, ApprovalRule
from kehu.customers import services as customers
from kehu.customers.services_opportunities import opportunity_create
from kehu.hr.models import Employee, EmployeeStatus, Position
from kehu.hr.services import sales_target_set
from kehu.products.models import Warehouse
from kehu.products.services import (
    stock_movement_post,
    warehouse_create,
    warehouse_default_ensure,
)
from kehu.sales import services as sales
from kehu.system.models import DictionaryItem, Notification, Role, User
from tests.customers.factories import CustomerFactory
from tests.finance.factories import (
    active_contract,
    department_managers,
    expense_for,
    invoice_for,
    pay,
)
from tests.products.factories import CategoryFactory, ProductFactory
from tests.sales.factories import contract_for, line, order_for, quote_for
from tests.security import snapshot


@dataclass
class World:
    org: Any
    nobody: User
    objects: dict[str, Any] = field(default_factory=dict)
    # (path prefix, action) → object when the action needs a record in a particular state
    by_action: dict[tuple[str, str], Any] = field(default_factory=dict)
    baseline: snapshot.Snapshot = field(default_factory=dict)
    pages: dict[str, Client] = field(default_factory=dict)  # username → logged-in client

    def object_for(self, prefix: str, action: str = "") -> Any:
        return self.by_action.get((prefix, action)) or self.objects.get(prefix)


def make_org():
    """The ``org`` fixture's company and users (tests/conftest.py), for module-scoped use."""
    from tests.factories import DepartmentFactory, UserFactory

    def role(code: str) -> Role:
        return Role.objects.get(code=code)

    class Org:
        pass

    o: Any = Org()
    o.head = DepartmentFactory(name="总经办")
    o.sales = DepartmentFactory(name="销售部", parent=o.head)
    o.sales1_dept = DepartmentFactory(name="销售一部", parent=o.sales)
    o.sales2_dept = DepartmentFactory(name="销售二部", parent=o.sales)
    o.finance_dept = DepartmentFactory(name="财务部", parent=o.head)
    for username, department, code in (
        ("admin", o.head, "admin"),
        ("manager", o.head, "general_manager"),
        ("salesdirector", o.sales, "sales_manager"),
        ("salesmgr1", o.sales1_dept, "sales_manager"),
        ("sales1", o.sales1_dept, "salesperson"),
        ("sales2", o.sales1_dept, "salesperson"),
        ("sales3", o.sales2_dept, "salesperson"),
        ("finance", o.finance_dept, "finance"),
        ("hr", o.head, "hr"),
        ("warehouse", o.head, "warehouse"),
    ):
        setattr(
            o, username, UserFactory(username=username, department=department, roles=[role(code)])
        )
    return o


@pytest.fixture(scope="module", name="world")
def world_fixture(django_db_setup, django_db_blocker):
    """The world, built once per test module inside a transaction rolled back at its end;
    each test's own transaction (the ``db`` fixture) nests inside it as a savepoint."""
    with django_db_blocker.unblock(), transaction.atomic():
        built = build(make_org())
        users = (built.org.admin, built.org.sales1, built.org.sales3, built.nobody)
        for user in users:  # logging in writes the login log: before the baseline
            built.pages[user.username] = Client()
            built.pages[user.username].force_login(user)
        built.baseline = snapshot.take()
        yield built
        transaction.set_rollback(True)


def build(org) -> World:
    department_managers(org)
    nobody = User.objects.create_user(
        username="nobody", password="x-not-used-9", department=org.sales1_dept
    )
    s1 = org.sales1
    customer = CustomerFactory(owner=s1, name="安全测试客户有限公司")
    contact = customers.contact_create(
        actor=s1, customer=customer, data={"name": "王经理", "mobile": "13900001111"}
    )
    followup = customers.followup_create(
        actor=s1, customer=customer, data={"content": "电话沟通需求"}
    )
    opportunity = opportunity_create(
        actor=s1, data={"customer": customer, "title": "年度采购", "amount": Decimal("5000.00")}
    )
    product = ProductFactory()
    category = CategoryFactory()
    stock_movement_post(
        actor=org.admin,
        product=product,
        warehouse=warehouse_default_ensure(),
        kind="in",
        quantity=Decimal("100"),
    )
    warehouse = warehouse_create(actor=org.admin, data={"name": "二号仓", "code": "wh-2"})
    quote = quote_for(s1, customer=customer, lines=[line(product, quantity="2")])
    draft = contract_for(s1, customer=customer)
    contract = active_contract(org, s1, amount="10000.00")
    submitted = sales.contract_submit(actor=s1, contract=contract_for(s1, customer=customer))
    approval = ApprovalRequest.objects.filter(object_id=submitted.pk, status="pending").first()
    order = order_for(s1, customer=customer, lines=[line(product)])
    payment = pay(contract, "1000.00")
    confirmed = pay(contract, "2000.00", confirm_by=org.finance)
    invoice = invoice_for(contract, "500.00")
    expense = expense_for(s1)
    position = Position.objects.create(name="销售代表", department=org.sales1_dept, level=2)
    employee = Employee.objects.create(
        employee_no="E900",
        name="张三",
        department=org.sales1_dept,
        position=position,
        hire_date=datetime.date(2024, 1, 1),
        status=EmployeeStatus.ACTIVE,
        phone="13800009999",
        base_salary=Decimal("9000.00"),
        user=s1,
    )
    today = timezone.localdate()
    target = sales_target_set(
        actor=org.admin,
        kind="employee",
        year=today.year,
        month=today.month,
        user=s1,
        contract_amount_target=Decimal("100000.00"),
    )
    Notification.objects.create(recipient=s1, title="提醒")
    world = World(org=org, nobody=nobody)
    world.objects.update(
        {
            "approval-rules": ApprovalRule.objects.order_by("pk").first(),
            "approvals": approval,
            "contacts": contact,
            "contracts": draft,
            "customers": customer,
            "departments": org.sales2_dept,
            "dictionary-items": DictionaryItem.objects.order_by("pk").first(),
            "employees": employee,
            "expenses": expense,
            "followups": followup,
            "invoices": invoice,
            "opportunities": opportunity,
            "orders": order,
            "payments": payment,
            "positions": position,
            "product-categories": category,
            "products": product,
            "quotes": quote,
            "receivable-plans": contract,
            "roles": Role.objects.get(code="warehouse"),
            "sales-targets": target,
            "users": org.sales2,
            "warehouses": warehouse,
        }
    )
    for action in ("amend", "complete", "terminate", "orders"):
        world.by_action[("contracts", action)] = contract
    for action in ("reverse",):
        world.by_action[("payments", action)] = confirmed
    world.by_action[("warehouses", "set-default")] = warehouse
    world.objects["_confirmed_payment"] = confirmed
    world.objects["_active_contract"] = contract
    world.objects["_product"] = product
    world.objects["_default_warehouse"] = Warehouse.objects.get(is_default=True)
    return world
