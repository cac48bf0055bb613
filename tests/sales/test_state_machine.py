"""Statuses of quotes, contracts and orders: legal steps leave history, illegal ones nothing.

Every refusal is checked against a snapshot of every table a sales service may write:
the database after the refusal is the database before it, row for row.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from kehu.core.exceptions import ConflictError, ServiceError
from kehu.sales import services
from kehu.sales.models import (
    ContractStatus,
    DocumentEvent,
    OrderStatus,
    QuoteStatus,
)
from kehu.system.models import AuditLog
from tests.products.factories import ProductFactory
from tests.sales.factories import contract_for, line, order_for, quote_for
from tests.sales.helpers import activate, confirmed_order, db_state, stock_in

pytestmark = pytest.mark.django_db


def events(document) -> list[tuple[str, str]]:
    return list(
        DocumentEvent.objects.filter(
            content_type=ContentType.objects.get_for_model(type(document)), object_id=document.pk
        )
        .order_by("id")
        .values_list("from_status", "to_status")
    )


def status_log(document) -> list[list[str]]:
    return [
        row.changes["status"]
        for row in AuditLog.objects.filter(
            model=document._meta.label_lower, object_id=str(document.pk), action="status"
        ).order_by("id")
    ]


def refused(call, *, code: str | None = None, field: str | None = None, error=ServiceError):
    """``call()`` is refused with ``error`` and writes nothing at all."""
    before = db_state()
    with pytest.raises(error) as info:
        call()
    assert db_state() == before
    if code is not None:
        assert info.value.code == code, info.value.message
    if field is not None:
        assert info.value.field == field
    return info.value


# --- contracts ------------------------------------------------------------------------------


@pytest.fixture
def draft(org):
    return contract_for(org.sales1, amount="5000.00")


@pytest.fixture
def active(org):
    return activate(contract_for(org.sales1, amount="5000.00"), org)


def test_contract_legal_path_leaves_events_and_log_rows(org, draft):
    contract = activate(draft, org)
    contract = services.contract_complete(actor=org.sales1, contract=contract)
    assert contract.status == ContractStatus.COMPLETED and contract.completed_at
    expected = [("", "draft"), ("draft", "pending"), ("pending", "active"), ("active", "completed")]
    assert events(contract) == expected
    assert status_log(contract) == [list(step) for step in expected[1:]]
    assert AuditLog.objects.filter(
        model="sales.contract", object_id=str(contract.pk), action="create"
    ).exists()


def test_terminate_records_the_reason(org, active):
    contract = services.contract_terminate(actor=org.sales1, contract=active, reason="客户违约")
    assert contract.status == ContractStatus.TERMINATED
    assert contract.termination_reason == "客户违约" and contract.terminated_at
    event = DocumentEvent.objects.filter(object_id=contract.pk, to_status="terminated").get()
    assert event.note == "客户违约" and event.actor == org.sales1


def test_submit_an_active_contract_is_refused(org, active):
    error = refused(
        lambda: services.contract_submit(actor=org.sales1, contract=active), code="invalid_status"
    )
    assert "Active" in str(error.message) and "Pending approval" in str(error.message)


def test_submit_a_pending_contract_again_is_refused(org, draft):
    services.contract_submit(actor=org.sales1, contract=draft)
    refused(
        lambda: services.contract_submit(actor=org.sales1, contract=draft), code="invalid_status"
    )


def test_submit_a_contract_worth_nothing_is_refused(org):
    contract = contract_for(org.sales1, amount="0.00")
    refused(lambda: services.contract_submit(actor=org.sales1, contract=contract), field="lines")


def test_complete_a_draft_is_refused(org, draft):
    refused(
        lambda: services.contract_complete(actor=org.sales1, contract=draft), code="invalid_status"
    )


def test_terminate_without_reason_is_refused(org, active):
    for reason in ("", "   "):
        refused(
            lambda reason=reason: services.contract_terminate(
                actor=org.sales1, contract=active, reason=reason
            ),
            field="reason",
        )


def test_terminate_a_draft_is_refused(org, draft):
    refused(
        lambda: services.contract_terminate(actor=org.sales1, contract=draft, reason="x"),
        code="invalid_status",
    )


def test_edit_an_active_contract_says_amend_instead(org, active):
    error = refused(
        lambda: services.contract_update(
            actor=org.sales1,
            contract=active,
            expected_version=active.version,
            data={"title": "改名"},
        ),
        code="amend_instead",
    )
    assert "amendment" in str(error.message)


def test_edit_a_pending_or_completed_contract_is_refused(org, draft):
    pending = services.contract_submit(actor=org.sales1, contract=draft)
    refused(
        lambda: services.contract_update(
            actor=org.sales1,
            contract=pending,
            expected_version=pending.version,
            data={"title": "x"},
        ),
        code="not_editable",
    )


def test_edit_with_a_stale_instance_that_looks_editable_is_refused(org, draft):
    stale = services.contract_update(
        actor=org.sales1, contract=draft, expected_version=draft.version, data={"title": "v2"}
    )
    activate(stale, org)
    # ``stale`` still says draft; the service reads the row under its lock.
    refused(
        lambda: services.contract_update(
            actor=org.sales1, contract=stale, expected_version=stale.version, data={"title": "x"}
        ),
        error=ConflictError,
    )


def test_stale_version_is_a_conflict(org, draft):
    refused(
        lambda: services.contract_update(
            actor=org.sales1,
            contract=draft,
            expected_version=draft.version + 1,
            data={"title": "x"},
        ),
        error=ConflictError,
    )
    refused(
        lambda: services.contract_submit(
            actor=org.sales1, contract=draft, expected_version=draft.version + 1
        ),
        error=ConflictError,
    )


def test_delete_an_active_contract_is_refused(org, active):
    refused(lambda: services.contract_delete(actor=org.admin, contract=active))


def test_amend_a_draft_is_refused(org, draft):
    refused(
        lambda: services.contract_amend(
            actor=org.sales1,
            contract=draft,
            expected_version=draft.version,
            reason="改",
            data={"title": "新"},
        ),
        code="invalid_status",
    )


def test_rejected_contract_is_edited_and_resubmitted(org, draft):
    from kehu.approvals.services import approval_reject
    from tests.sales.helpers import pending_request

    services.contract_submit(actor=org.sales1, contract=draft)
    approval_reject(actor=org.salesmgr1, request=pending_request(draft), comment="价格太低")
    draft.refresh_from_db()
    assert draft.status == ContractStatus.REJECTED
    edited = services.contract_update(
        actor=org.sales1, contract=draft, expected_version=draft.version, data={"title": "改价"}
    )
    resubmitted = services.contract_submit(actor=org.sales1, contract=edited)
    assert resubmitted.status == ContractStatus.PENDING
    assert events(draft)[-3:] == [
        ("draft", "pending"),
        ("pending", "rejected"),
        ("rejected", "pending"),
    ]


# --- quotes ---------------------------------------------------------------------------------


def test_quote_legal_path(org):
    quote = quote_for(org.sales1)
    quote = services.quote_send(actor=org.sales1, quote=quote)
    quote = services.quote_accept(actor=org.sales1, quote=quote)
    contract = services.quote_convert_to_contract(actor=org.sales1, quote=quote)
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.CONVERTED and contract.quote_id == quote.pk
    assert events(quote) == [
        ("", "draft"),
        ("draft", "sent"),
        ("sent", "accepted"),
        ("accepted", "converted"),
    ]
    assert status_log(quote) == [["draft", "sent"], ["sent", "accepted"], ["accepted", "converted"]]
    assert events(contract) == [("", "draft")]


def test_convert_a_sent_quote_accepts_it_on_the_way(org):
    quote = services.quote_send(actor=org.sales1, quote=quote_for(org.sales1))
    services.quote_convert_to_contract(actor=org.sales1, quote=quote)
    assert events(quote)[-2:] == [("sent", "accepted"), ("accepted", "converted")]


def test_convert_a_draft_quote_is_refused(org):
    quote = quote_for(org.sales1)
    refused(
        lambda: services.quote_convert_to_contract(actor=org.sales1, quote=quote),
        code="invalid_status",
    )


def test_convert_twice_is_refused(org):
    quote = services.quote_send(actor=org.sales1, quote=quote_for(org.sales1))
    services.quote_convert_to_contract(actor=org.sales1, quote=quote)
    refused(
        lambda: services.quote_convert_to_contract(actor=org.sales1, quote=quote),
        code="invalid_status",
    )


@pytest.mark.parametrize(
    ("prepare", "action"),
    [
        ("draft", "accept"),
        ("draft", "reject"),
        ("sent", "send"),
        ("rejected", "accept"),
        ("rejected", "convert"),
        ("expired", "send"),
        ("expired", "convert"),
    ],
)
def test_illegal_quote_steps(org, prepare, action):
    quote = quote_for(org.sales1, quote_date=datetime.date(2026, 1, 5))
    if prepare in ("sent", "rejected"):
        quote = services.quote_send(actor=org.sales1, quote=quote)
    if prepare == "rejected":
        quote = services.quote_reject(actor=org.sales1, quote=quote, reason="太贵")
    if prepare == "expired":
        assert services.quotes_expire(today=datetime.date(2026, 12, 31)) >= 1
    calls = {
        "accept": lambda: services.quote_accept(actor=org.sales1, quote=quote),
        "reject": lambda: services.quote_reject(actor=org.sales1, quote=quote),
        "send": lambda: services.quote_send(actor=org.sales1, quote=quote),
        "convert": lambda: services.quote_convert_to_contract(actor=org.sales1, quote=quote),
    }
    refused(calls[action], code="invalid_status")


def test_editing_an_accepted_quote_is_refused(org):
    quote = services.quote_send(actor=org.sales1, quote=quote_for(org.sales1))
    quote = services.quote_accept(actor=org.sales1, quote=quote)
    refused(
        lambda: services.quote_update(
            actor=org.sales1, quote=quote, expected_version=quote.version, data={"title": "x"}
        ),
        code="not_editable",
    )


def test_quotes_expire_after_their_validity(org):
    quote = quote_for(
        org.sales1, quote_date=datetime.date(2026, 1, 5), valid_until=datetime.date(2026, 2, 4)
    )
    assert services.quotes_expire(today=datetime.date(2026, 2, 4)) == 0
    assert services.quotes_expire(today=datetime.date(2026, 2, 5)) == 1
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.EXPIRED
    assert events(quote)[-1] == ("draft", "expired")


# --- orders ---------------------------------------------------------------------------------


def test_order_legal_path_leaves_events_and_log_rows(org):
    product = ProductFactory()
    stock_in(org.warehouse, product, "10")
    order = confirmed_order(org.sales1, [line(product, quantity="4")])
    services.order_ship(actor=org.warehouse, order=order, quantities={order.lines.get().pk: "1"})
    services.order_ship(actor=org.warehouse, order=order)
    order = services.order_complete(actor=org.sales1, order=order)
    assert order.status == OrderStatus.COMPLETED
    expected = [
        ("", "pending"),
        ("pending", "confirmed"),
        ("confirmed", "partially_shipped"),
        ("partially_shipped", "shipped"),
        ("shipped", "completed"),
    ]
    assert events(order) == expected
    assert status_log(order) == [list(step) for step in expected[1:]]


def test_ship_a_pending_order_is_refused(org):
    product = ProductFactory()
    stock_in(org.warehouse, product, "10")
    order = order_for(org.sales1, lines=[line(product)])
    refused(lambda: services.order_ship(actor=org.warehouse, order=order), code="invalid_status")


def test_confirm_a_cancelled_order_is_refused(org):
    order = order_for(org.sales1)
    services.order_cancel(actor=org.sales1, order=order, reason="客户取消")
    refused(lambda: services.order_confirm(actor=org.sales1, order=order), code="invalid_status")


def test_cancel_twice_and_cancel_a_completed_order_are_refused(org):
    order = order_for(org.sales1)
    services.order_cancel(actor=org.sales1, order=order, reason="客户取消")
    refused(
        lambda: services.order_cancel(actor=org.sales1, order=order, reason="again"),
        code="invalid_status",
    )
    product = ProductFactory()
    stock_in(org.warehouse, product, "5")
    done = confirmed_order(org.sales1, [line(product, quantity="2")])
    services.order_ship(actor=org.warehouse, order=done)
    services.order_complete(actor=org.sales1, order=done)
    refused(
        lambda: services.order_cancel(actor=org.warehouse, order=done, reason="x"),
        code="invalid_status",
    )


def test_complete_an_order_not_fully_shipped_is_refused(org):
    product = ProductFactory()
    stock_in(org.warehouse, product, "5")
    order = confirmed_order(org.sales1, [line(product, quantity="2")])
    refused(lambda: services.order_complete(actor=org.sales1, order=order), code="invalid_status")
    services.order_ship(actor=org.warehouse, order=order, quantities={order.lines.get().pk: 1})
    refused(lambda: services.order_complete(actor=org.sales1, order=order), code="invalid_status")


def test_return_on_an_order_nothing_shipped_is_refused(org):
    order = confirmed_order(org.sales1, [line()])
    refused(
        lambda: services.order_return(
            actor=org.warehouse, order=order, quantities=None, reason="x"
        ),
        code="invalid_status",
    )


def test_edit_a_confirmed_order_is_refused(org):
    order = confirmed_order(org.sales1, [line()])
    refused(
        lambda: services.order_update(
            actor=org.sales1, order=order, expected_version=order.version, data={"title": "x"}
        ),
        code="not_editable",
    )


def test_cancel_without_reason_is_refused(org):
    order = order_for(org.sales1)
    refused(
        lambda: services.order_cancel(actor=org.sales1, order=order, reason=" "), field="reason"
    )


def test_order_from_a_contract_that_is_not_active_is_refused(org, draft):
    refused(
        lambda: services.order_create_from_contract(actor=org.sales1, contract=draft),
        code="invalid_status",
    )
    active = activate(draft, org)
    services.contract_complete(actor=org.sales1, contract=active)
    refused(
        lambda: services.order_create_from_contract(actor=org.sales1, contract=active),
        code="invalid_status",
    )


def test_deleted_documents_take_no_steps(org):
    from django.http import Http404

    quote = quote_for(org.sales1)
    services.quote_delete(actor=org.admin, quote=quote)
    refused(lambda: services.quote_send(actor=org.sales1, quote=quote), error=Http404)
    assert quote.deleted_at is not None
    assert Decimal(quote.total_amount) > 0
