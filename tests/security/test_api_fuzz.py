"""API fuzzing (issue 9): schemathesis over every operation of /api/schema/, in-process.

Each operation is fuzzed as an administrator and as a salesperson against a small world
(customers, contracts, orders, payments …) so detail endpoints see real ids, both the
salesperson's own and ones outside their scope. Every response must not be a server error
and must conform to the schema: a documented status code, the documented content type and
a body that matches the documented schema. Every example runs in a savepoint that is rolled
back, so a DELETE or a revoked token does not change what the next example sees.

``KEHU_FUZZ_EXAMPLES`` raises the number of examples per operation and mode for a longer
local run (CI uses the default).
"""

from __future__ import annotations

import datetime
import os
import sys
import traceback
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import got_request_exception, request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.urls import Resolver404, resolve
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup

from kehu.system.models import Role
from tests import figures

EXAMPLES = int(os.environ.get("KEHU_FUZZ_EXAMPLES", "10"))
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
ROLES = ("admin", "sales1")

APP = get_wsgi_application()
load_all_checks()
CHECKS_RUN = [CHECKS.get_one(name) for name in CHECK_NAMES]


# Loaded from the app itself (no database needed), once per process at collection.
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP)
OPERATIONS = {
    result.ok().label: result.ok() for result in SCHEMA.get_all_operations() if result.ok()
}


# --- the world ------------------------------------------------------------------------------


def _build_world():
    from kehu.customers import services_opportunities
    from kehu.finance import services as finance
    from kehu.hr import services as hr
    from kehu.products.services import stock_movement_post, warehouse_default_ensure
    from kehu.sales import services as sales_services
    from tests.customers.factories import ContactFactory, CustomerFactory, FollowUpFactory
    from tests.factories import DepartmentFactory, UserFactory
    from tests.finance.factories import (
        active_contract,
        department_managers,
        expense_for,
        invoice_for,
        pay,
        plan,
    )
    from tests.products.factories import CategoryFactory, ProductFactory
    from tests.sales.factories import contract_for, line, order_for, quote_for

    def role(code):
        return Role.objects.get(code=code)

    class World:
        pass

    w = World()
    head = DepartmentFactory(name="总经办")
    sales = DepartmentFactory(name="销售部", parent=head)
    sales1_dept = DepartmentFactory(name="销售一部", parent=sales)
    sales2_dept = DepartmentFactory(name="销售二部", parent=sales)
    finance_dept = DepartmentFactory(name="财务部", parent=head)
    w.head, w.sales, w.sales1_dept, w.sales2_dept = head, sales, sales1_dept, sales2_dept
    w.finance_dept = finance_dept
    w.admin = UserFactory(username="admin", department=head, roles=[role("admin")])
    w.manager = UserFactory(username="manager", department=head, roles=[role("general_manager")])
    w.salesdirector = UserFactory(
        username="salesdirector", department=sales, roles=[role("sales_manager")]
    )
    w.salesmgr1 = UserFactory(
        username="salesmgr1", department=sales1_dept, roles=[role("sales_manager")]
    )
    w.sales1 = UserFactory(username="sales1", department=sales1_dept, roles=[role("salesperson")])
    w.sales2 = UserFactory(username="sales2", department=sales1_dept, roles=[role("salesperson")])
    w.sales3 = UserFactory(username="sales3", department=sales2_dept, roles=[role("salesperson")])
    w.finance = UserFactory(username="finance", department=finance_dept, roles=[role("finance")])
    w.hr = UserFactory(username="hr", department=head, roles=[role("hr")])
    w.warehouse = UserFactory(username="warehouse", department=head, roles=[role("warehouse")])
    department_managers(w)

    warehouse = warehouse_default_ensure()
    category = CategoryFactory(name="打印机")
    products = [ProductFactory(category=category) for _ in range(2)]
    for product in products:
        stock_movement_post(
            actor=w.admin, product=product, warehouse=warehouse, kind="in", quantity=100
        )

    for owner in (w.sales1, w.sales3):
        customer = CustomerFactory(owner=owner)
        ContactFactory(customer=customer)
        FollowUpFactory(customer=customer)
        services_opportunities.opportunity_create(
            actor=owner, data={"customer": customer, "title": "年度采购", "amount": Decimal("5000")}
        )
        quote_for(owner, customer=customer, lines=[line(products[0], quantity="2")])
        contract_for(owner, customer=customer)
        contract = active_contract(
            w,
            owner,
            customer=customer,
            lines=[line(products[0], quantity="5", unit_price="2000.00", tax_rate=Decimal("0"))],
        )
        today = timezone.localdate()
        plan(contract, (today + datetime.timedelta(days=30), "10000.00"))
        payment = pay(contract, "2000.00", confirm_by=w.finance)
        finance.refund_request(actor=owner, payment=payment, amount=Decimal("100"), reason="退货")
        invoice_for(contract, "1000.00")
        order = sales_services.order_create_from_contract(actor=owner, contract=contract)
        sales_services.order_confirm(actor=owner, order=order)
        sales_services.order_ship(actor=w.warehouse, order=order)
        order_for(owner, customer=customer, lines=[line(products[1])])
        expense_for(owner)
    CustomerFactory(owner=None, in_pool=True)
    position = hr.position_create(actor=w.admin, data={"name": "销售代表"})
    hr.employee_create(
        actor=w.admin,
        data={
            "name": "张三",
            "department": sales1_dept,
            "position": position,
            "user": w.sales1,
            "hire_date": timezone.localdate(),
        },
    )
    today = timezone.localdate()
    hr.sales_target_set(
        actor=w.admin,
        kind="employee",
        year=today.year,
        month=today.month,
        user=w.sales1,
        contract_amount_target=Decimal("100000"),
    )
    w.tokens = {name: Token.objects.create(user=getattr(w, name)).key for name in ROLES}
    return w


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once per module (and xdist worker) in a transaction rolled back at the end.

    The requests go through the real WSGI handler, whose request signals would close the
    database connection (and with it the test transaction, on PostgreSQL); like Django's
    test client, the fuzz keeps the connection open while it runs.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with django_db_blocker.unblock():
            atomic = transaction.atomic()
            atomic.__enter__()
            try:
                yield _build_world()
            finally:
                transaction.set_rollback(True)
                atomic.__exit__(None, None, None)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# --- which ids a path parameter takes -------------------------------------------------------


def _model_for(path: str):
    """The model behind ``/api/v1/things/{id}/`` (through the view's queryset)."""
    try:
        match = resolve(path.replace("{id}", "1").replace("{contract_id}", "1").split("?")[0])
    except Resolver404:
        return None
    view = getattr(match.func, "cls", None)
    queryset = getattr(view, "queryset", None)
    if queryset is not None:
        return queryset.model
    meta = getattr(getattr(view, "serializer_class", None), "Meta", None)
    return getattr(meta, "model", None)


def _ids_for(operation) -> dict[str, list]:
    path = operation.path
    if "{contract_id}" in path:
        from kehu.sales.models import Contract

        return {"contract_id": list(Contract.objects.values_list("pk", flat=True))}
    if "{code}" in path:
        from kehu.system.models import Dictionary

        return {"code": list(Dictionary.objects.values_list("code", flat=True)[:10])}
    if "{id}" in path:
        model = _model_for(path)
        if model is not None:
            manager = getattr(model, "all_objects", model._default_manager)
            return {"id": list(manager.values_list("pk", flat=True))}
    return {}


def _strategy(operation):
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]
    for name, values in _ids_for(operation).items():
        if values:
            strategies.append(
                st.sampled_from(values).flatmap(
                    lambda value, name=name: operation.as_strategy(
                        generation_mode=GenerationMode.POSITIVE, path_parameters={name: value}
                    )
                )
            )
    return st.one_of(strategies)


# --- the test ----------------------------------------------------------------------------


def _summary(failure, case, response) -> str:
    text = failure.message.strip()
    first = text.splitlines()[0] if text else ""
    where = ""
    if hasattr(failure, "instance_path"):
        where = " at " + "/".join(map(str, failure.instance_path))
        for line in text.splitlines():
            if line.strip().startswith("Schema at "):
                where += f" ({line.strip()[10:].rstrip(':')})"
    request = f"{case.method} {case.formatted_path}"
    return f"{failure.code} {failure.title} [{response.status_code}] {request}: {first}{where}"


def _key(failure, response) -> str:
    """One report per distinct failure: the check, the status and where in the body."""
    path = "/".join(str(p) for p in getattr(failure, "schema_path", ()))
    return f"{failure.code} {response.status_code} {path}"


@pytest.mark.parametrize("user", ROLES)
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_api_fuzz(label, user, world, db):
    operation = OPERATIONS[label]
    headers = {"Authorization": f"Token {world.tokens[user]}"}
    cases = 0
    server_errors: list[str] = []
    violations: dict[str, str] = {}
    errors: list[str] = []

    def on_exception(sender, request, **kwargs):
        exc_type, exc, tb = sys.exc_info()
        frames = [
            f"{f.filename.rsplit('site-packages/', 1)[-1].split('/work/main/')[-1]}:{f.lineno}"
            for f in traceback.extract_tb(tb)
        ]
        errors.append(
            f"{exc_type.__name__ if exc_type else ''}: {exc} at {' < '.join(frames[-4:])}"
        )

    got_request_exception.connect(on_exception)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation))
    def fuzz(case):
        nonlocal cases
        cases += 1
        with transaction.atomic():
            try:
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path} {case.query or ''} "
                        f"{str(case.body)[:200] if case.body is not None else ''}: "
                        f"{errors[-1] if errors else response.status_code}"
                    )
                try:
                    case.validate_response(response, checks=CHECKS_RUN, headers=headers)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        violations.setdefault(
                            _key(failure, response), _summary(failure, case, response)
                        )
            finally:
                transaction.set_rollback(True)

    try:
        fuzz()
    finally:
        got_request_exception.disconnect(on_exception)
    figures.record("fuzz operations x roles", 1)
    figures.record("fuzz cases run", cases)
    figures.record("fuzz 5xx found", len(server_errors))
    figures.record("fuzz schema violations found", len(violations))
    if server_errors:
        print("server errors:", *server_errors, sep="\n  ")
    assert not server_errors and not violations, "\n".join([*server_errors, *violations.values()])
