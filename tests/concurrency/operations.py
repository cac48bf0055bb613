"""What concurrent writers do, shared by the thread tests and the writer processes.

Every operation is a plain function ``op(ctx, writer) -> JSON value`` that goes through
the services (or the API, as a client would), run by ``attempt`` which turns the result
into an outcome: ``ok``, ``conflict`` (stale version, HTTP 409), ``refused`` (a rule said
no, with its code), ``locked`` (SQLite's "database is locked" reached the caller),
``db_error`` (any other database error, e.g. a deadlock) or ``error`` (anything else).
Only the first three are acceptable; the rest are anomalies.
"""

from __future__ import annotations

import datetime
import time
import traceback
from decimal import Decimal
from typing import Any

from django.db import OperationalError, connections
from django.utils import timezone

PAYMENTS = "/api/v1/payments/"
CUSTOMERS = "/api/v1/customers/"
ACCEPTABLE = {"ok", "conflict", "refused"}


def attempt(op, ctx: dict, writer: int) -> dict[str, Any]:
    started = time.monotonic()
    outcome = _attempt(op, ctx, writer)
    outcome["seconds"] = round(time.monotonic() - started, 3)
    return outcome


def _attempt(op, ctx: dict, writer: int) -> dict[str, Any]:
    from kehu.core.exceptions import ConflictError, ServiceError

    try:
        return {"op": op.__name__, "outcome": "ok", "value": op(ctx, writer)}
    except ConflictError:
        return {"op": op.__name__, "outcome": "conflict"}
    except ServiceError as exc:
        return {"op": op.__name__, "outcome": "refused", "code": exc.code}
    except OperationalError as exc:
        outcome = "locked" if "locked" in str(exc).lower() else "db_error"
        return {"op": op.__name__, "outcome": outcome, "error": repr(exc)}
    except Exception as exc:  # noqa: BLE001 - every surprise is counted as an anomaly
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return {"op": op.__name__, "outcome": "error", "error": detail}


def _user(username: str):
    from kehu.system.models import User

    return User.objects.get(username=username)


def _api(username: str):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(_user(username))
    return client


def _response(response) -> dict[str, Any]:
    """An API answer as data; 5xx and "database is locked" in a body count as errors."""
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.content[:200].decode(errors="replace")}
    if response.status_code >= 500 or "locked" in str(body).lower():
        raise RuntimeError(f"HTTP {response.status_code}: {body}")
    if response.status_code == 409:
        from kehu.core.exceptions import ConflictError

        raise ConflictError()
    return {"status": response.status_code, "body": body}


# --- the operations -------------------------------------------------------------------------


def customer_edit_same_version(ctx, writer):
    """Everyone edits one customer from the same version: one wins, the rest are stale."""
    from kehu.customers.models import Customer
    from kehu.customers.services import customer_update

    customer = Customer.objects.get(pk=ctx["customer"])
    updated = customer_update(
        actor=_user("sales1"),
        customer=customer,
        expected_version=ctx["customer_version"],
        data={"street": f"writer {writer}"},
    )
    return updated.version


def customer_edit_same_version_api(ctx, writer):
    """The same through the API: PATCH with the version read earlier; 409 when stale."""
    answer = _response(
        _api("sales1").patch(
            f"{CUSTOMERS}{ctx['customer']}/",
            {"version": ctx["customer_version"], "street": f"api writer {writer}"},
            format="json",
        )
    )
    if answer["status"] != 200:
        raise RuntimeError(f"unexpected answer {answer}")
    return answer["body"]["version"]


def customer_note_append(ctx, writer):
    """Read, edit, save with the version read; on a conflict read again and retry. Every
    writer's mark must survive (no lost update). Returns how many retries it took."""
    from kehu.core.exceptions import ConflictError
    from kehu.customers.models import Customer
    from kehu.customers.services import customer_update

    actor = _user("sales1")
    for retries in range(500):
        customer = Customer.objects.get(pk=ctx["note_customer"])
        try:
            customer_update(
                actor=actor,
                customer=customer,
                expected_version=customer.version,
                data={"notes": f"{customer.notes}[{writer}]"},
            )
            return retries
        except ConflictError:
            continue
    raise RuntimeError("gave up after 500 conflicts")


def contract_create(ctx, writer):
    from kehu.customers.models import Customer
    from kehu.products.models import Product
    from kehu.sales import services

    contract = services.contract_create(
        actor=_user("sales1"),
        data={"customer": Customer.objects.get(pk=ctx["doc_customer"]), "title": f"w{writer}"},
        lines=[{"product": Product.objects.get(pk=ctx["doc_product"]), "quantity": "1"}],
    )
    return contract.number


def order_create(ctx, writer):
    from kehu.customers.models import Customer
    from kehu.products.models import Product
    from kehu.sales import services

    order = services.order_create(
        actor=_user("sales1"),
        data={"customer": Customer.objects.get(pk=ctx["doc_customer"]), "title": f"w{writer}"},
        lines=[{"product": Product.objects.get(pk=ctx["doc_product"]), "quantity": "1"}],
    )
    return order.number


def payment_register(ctx, writer):
    from kehu.finance.services import payment_register as register
    from kehu.sales.models import Contract

    payment, _created = register(
        actor=_user("sales1"),
        data={
            "contract": Contract.objects.get(pk=ctx["big_contract"]),
            "amount": Decimal("1.00"),
            "received_on": timezone.localdate(),
            "method": "bank_transfer",
        },
    )
    return payment.number


def invoice_request(ctx, writer):
    from kehu.finance.services import invoice_request as request
    from kehu.sales.models import Contract

    invoice = request(
        actor=_user("sales1"),
        data={
            "contract": Contract.objects.get(pk=ctx["big_contract"]),
            "amount": Decimal("1.00"),
            "invoice_type": "vat_ordinary",
            "title": "测试客户有限公司",
            "tax_number": "91310000123456789X",
        },
    )
    return invoice.number


def payment_body(ctx, amount: str = "1234.56") -> dict[str, Any]:
    return {
        "contract": ctx["key_contract"],
        "amount": amount,
        "received_on": datetime.date.today().isoformat(),
        "method": "bank_transfer",
    }


def payment_same_key_api(ctx, writer):
    """One Idempotency-Key, one body, many clients at once: one payment, same answers."""
    answer = _response(
        _api("sales1").post(
            PAYMENTS, payment_body(ctx), format="json", HTTP_IDEMPOTENCY_KEY=ctx["key"]
        )
    )
    if answer["status"] not in (200, 201):
        raise RuntimeError(f"unexpected answer {answer}")
    return answer


def stock_take_one(ctx, writer):
    """Take one unit of a product that has fewer units than takers."""
    from kehu.products.models import Product
    from kehu.products.services import stock_movement_post

    movement = stock_movement_post(
        actor=_user("warehouse"),
        product=Product.objects.get(pk=ctx["scarce_product"]),
        kind="out",
        quantity=1,
        reason=f"w{writer}",
    )
    return str(movement.balance_after)


def order_ship(ctx, writer):
    """Ship the ``writer``-th of several confirmed orders competing for the same units."""
    from kehu.sales import services
    from kehu.sales.models import Order

    order = Order.objects.get(pk=ctx["orders"][writer])
    return services.order_ship(actor=_user("warehouse"), order=order).number


CLAIMERS = ("sales1", "sales2", "sales3", "salesmgr1")


def pool_claim(ctx, writer):
    from kehu.customers.models import Customer
    from kehu.customers.services import customer_claim

    claimed = customer_claim(
        actor=_user(CLAIMERS[writer % len(CLAIMERS)]),
        customer=Customer.objects.get(pk=ctx["pool_customer"]),
    )
    return claimed.owner.username


# What each writer process runs, in order (the thread tests pick single operations).
MIX = (
    payment_same_key_api,
    customer_edit_same_version,
    customer_note_append,
    contract_create,
    order_create,
    payment_register,
    invoice_request,
    stock_take_one,
    pool_claim,
)
BY_NAME = {op.__name__: op for op in (*MIX, customer_edit_same_version_api, order_ship)}


def close_connections() -> None:
    connections.close_all()
