"""Data scope on every sales document, in the selectors and in the services.

sales1 and sales2 are in 销售一部, sales3 in 销售二部; salesmgr1 manages 销售一部; the
general manager, finance and the warehouse see everything. Out of scope is a 404, as for a
missing document, and a refused service writes nothing.
"""

from __future__ import annotations

import pytest
from django.http import Http404

from kehu.approvals.models import ApprovalRule
from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.customers.models import Opportunity, PipelineStage
from kehu.sales import selectors, services
from kehu.system.models import Role
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.products.factories import ProductFactory
from tests.sales.factories import contract_for, line, order_for, quote_for
from tests.sales.helpers import activate, confirmed_order, db_state, stock_in

pytestmark = pytest.mark.django_db


def refused(call, *, error=ServiceError, field=None):
    before = db_state()
    with pytest.raises(error) as info:
        call()
    assert db_state() == before
    if field is not None:
        assert info.value.field == field
    return info.value


@pytest.fixture
def docs(org):
    """One of each document for sales1, sales2 and sales3."""
    rule = ApprovalRule.objects.create(document_type="sales.contract_amendment", name="变更")
    rule.steps.create(approver_kind="role", role=Role.objects.get(code="sales_manager"))
    result = {}
    for name in ("sales1", "sales2", "sales3"):
        user = getattr(org, name)
        product = ProductFactory()
        stock_in(org.warehouse, product, "10")
        contract = activate(contract_for(user, lines=[line(product, quantity="5")]), org)
        amendment = services.contract_amend(
            actor=user,
            contract=contract,
            expected_version=contract.version,
            reason="改名",
            data={"title": f"{name} 修订"},
        )
        order = services.order_confirm(
            actor=user, order=services.order_create_from_contract(actor=user, contract=contract)
        )
        shipment = services.order_ship(
            actor=org.warehouse, order=order, quantities={order.lines.get().pk: 1}
        )
        result[name] = {
            "quote": quote_for(user),
            "contract": contract,
            "order": order,
            "amendment": amendment,
            "shipment": shipment,
        }
    return result


LISTS = {
    "quote": selectors.quote_list_visible_to,
    "contract": selectors.contract_list_visible_to,
    "order": selectors.order_list_visible_to,
    "amendment": selectors.amendment_list_visible_to,
    "shipment": selectors.shipment_list_visible_to,
}
GETS = {
    "quote": selectors.quote_get_for,
    "contract": selectors.contract_get_for,
    "order": selectors.order_get_for,
    "amendment": selectors.amendment_get_for,
    "shipment": selectors.shipment_get_for,
}


@pytest.mark.parametrize(
    ("viewer", "sees"),
    [
        ("sales1", {"sales1"}),
        ("sales3", {"sales3"}),
        ("salesmgr1", {"sales1", "sales2"}),
        ("salesdirector", {"sales1", "sales2", "sales3"}),
        ("manager", {"sales1", "sales2", "sales3"}),
        ("finance", {"sales1", "sales2", "sales3"}),
        ("warehouse", {"sales1", "sales2", "sales3"}),
    ],
)
@pytest.mark.parametrize("kind", list(LISTS))
def test_who_sees_which_documents(org, docs, viewer, sees, kind):
    user = getattr(org, viewer)
    visible = set(LISTS[kind](user=user).values_list("pk", flat=True))
    assert visible == {docs[name][kind].pk for name in sees}
    for name, documents in docs.items():
        if name in sees:
            assert GETS[kind](user=user, pk=documents[kind].pk).pk == documents[kind].pk
        else:
            with pytest.raises(Http404):
                GETS[kind](user=user, pk=documents[kind].pk)


def test_without_sales_view_no_lists(org, docs):
    for selector in LISTS.values():
        with pytest.raises(PermissionRefused):
            selector(user=org.hr)


def test_sales1_cannot_act_on_sales3s_documents(org, docs):
    theirs = docs["sales3"]
    quote, contract, order = theirs["quote"], theirs["contract"], theirs["order"]
    amendment = theirs["amendment"]
    calls = [
        lambda: services.quote_update(
            actor=org.sales1, quote=quote, expected_version=quote.version, data={"title": "x"}
        ),
        lambda: services.quote_send(actor=org.sales1, quote=quote),
        lambda: services.quote_convert_to_contract(actor=org.sales1, quote=quote),
        lambda: services.contract_complete(actor=org.sales1, contract=contract),
        lambda: services.contract_terminate(actor=org.sales1, contract=contract, reason="x"),
        lambda: services.contract_amend(
            actor=org.sales1,
            contract=contract,
            expected_version=contract.version,
            reason="x",
            data={"notes": "x"},
        ),
        lambda: services.amendment_withdraw(actor=org.sales1, amendment=amendment),
        lambda: services.order_create_from_contract(actor=org.sales1, contract=contract),
        lambda: services.order_confirm(actor=org.sales1, order=order),
        lambda: services.order_complete(actor=org.sales1, order=order),
        lambda: services.order_cancel(actor=org.sales1, order=order, reason="x"),
    ]
    for call in calls:
        refused(call, error=Http404)


def test_the_manager_acts_on_the_department_only(org, docs):
    refused(
        lambda: services.contract_complete(
            actor=org.salesmgr1, contract=docs["sales3"]["contract"]
        ),
        error=Http404,
    )
    quote = services.quote_send(actor=org.salesmgr1, quote=docs["sales2"]["quote"])
    assert quote.status == "sent"


def test_draft_of_another_salesperson_is_out_of_reach(org):
    draft = contract_for(org.sales3)
    refused(lambda: services.contract_submit(actor=org.sales1, contract=draft), error=Http404)
    refused(
        lambda: services.contract_update(
            actor=org.sales1, contract=draft, expected_version=draft.version, data={"title": "x"}
        ),
        error=Http404,
    )


def test_documents_only_for_customers_in_scope(org):
    lines = [line()]
    theirs = CustomerFactory(owner=org.sales3)
    pooled = CustomerFactory(owner=None, in_pool=True)
    for customer in (theirs, pooled):
        for create in (services.quote_create, services.contract_create, services.order_create):
            refused(
                lambda create=create, customer=customer: create(
                    actor=org.sales1, data={"customer": customer, "title": "x"}, lines=lines
                ),
                field="customer",
            )
    # Changing a draft's customer to someone else's is refused the same way.
    draft = order_for(org.sales1)
    refused(
        lambda: services.order_update(
            actor=org.sales1, order=draft, expected_version=draft.version, data={"customer": theirs}
        ),
        field="customer",
    )


def test_contact_and_opportunity_of_another_customer_are_refused(org):
    mine, theirs = CustomerFactory(owner=org.sales1), CustomerFactory(owner=org.sales3)
    contact = ContactFactory(customer=theirs)
    stage = PipelineStage.objects.filter(kind="open").first()
    deal = Opportunity.objects.create(
        customer=theirs, title="他的商机", stage=stage, owner=org.sales3
    )
    lines = [line()]
    for extra, field in (({"contact": contact}, "contact"), ({"opportunity": deal}, "opportunity")):
        for create in (services.quote_create, services.contract_create):
            refused(
                lambda create=create, extra=extra: create(
                    actor=org.sales1,
                    data={"customer": mine, "title": "x", **extra},
                    lines=lines,
                ),
                field=field,
            )
    # An opportunity of the right customer that the actor does not see is refused too.
    hidden = Opportunity.objects.create(
        customer=mine, title="别人跟的", stage=stage, owner=org.sales3
    )
    refused(
        lambda: services.contract_create(
            actor=org.sales1,
            data={"customer": mine, "title": "x", "opportunity": hidden},
            lines=lines,
        ),
        field="opportunity",
    )


def test_assigning_another_owner_needs_sales_assign(org):
    customer = CustomerFactory(owner=org.sales1)
    lines = [line()]
    for create in (services.quote_create, services.contract_create, services.order_create):
        refused(
            lambda create=create: create(
                actor=org.sales1,
                data={"customer": customer, "title": "x", "owner": org.sales2},
                lines=lines,
            ),
            error=PermissionRefused,
        )
    quote = services.quote_create(
        actor=org.salesmgr1,
        data={"customer": customer, "title": "x", "owner": org.sales2},
        lines=lines,
    )
    assert quote.owner == org.sales2 and quote.department == org.sales2.department


def test_the_warehouse_ships_every_order_but_edits_none(org):
    product = ProductFactory()
    stock_in(org.warehouse, product, "5")
    order = confirmed_order(org.sales3, [line(product, quantity="1")])
    services.order_ship(actor=org.warehouse, order=order)
    refused(
        lambda: services.order_complete(actor=org.warehouse, order=order), error=PermissionRefused
    )
