"""Parallel writers on one committed database (PostgreSQL or a SQLite file): threads and
separate processes on the same customer, contract, stock and payment.

Every operation's outcome is counted: acceptable ones are a success, a stale-version
conflict (409) or a refusal by a business rule; anything else ("database is locked", a
deadlock, a 500, an exception) is an anomaly, and so is every broken invariant checked
afterwards (more than one winner, a lost update, a duplicate or missing document number,
two payments for one idempotency key, stock below zero). The figures "concurrent
operations run" and "concurrency anomalies" are printed at the end of the run; a test
fails on any anomaly.
"""

from __future__ import annotations

import pprint
import re
from decimal import Decimal

import pytest
from django.db.models import Sum

from tests import figures
from tests.concurrency import operations as ops

pytestmark = pytest.mark.django_db(transaction=True)

SCARCE_UNITS = 5
WRITER_PROCESSES = 8
THREADS_PER_PROCESS = 2


class Tally:
    """Operations and anomalies of one test, recorded as run figures at the end."""

    def __init__(self, live):
        self.vendor = live.vendor
        self.operations = 0
        self.locked = 0
        self.anomalies: list[dict] = []

    def outcomes(self, results: list[dict]) -> list[dict]:
        self.operations += len(results)
        for result in results:
            if result["outcome"] == "locked":
                self.locked += 1
            if result["outcome"] not in ops.ACCEPTABLE:
                self.anomalies.append(result)
        return results

    def check(self, name: str, ok: bool, detail=None) -> None:
        if not ok:
            self.anomalies.append({"check": name, "detail": detail})

    def finish(self) -> None:
        for suffix in ("", f" ({self.vendor})"):
            figures.record(f"concurrent operations run{suffix}", self.operations)
            figures.record(f"concurrency anomalies{suffix}", len(self.anomalies))
        if self.vendor == "sqlite":
            figures.record("SQLite 'database is locked' errors reaching a user", self.locked)
        assert not self.anomalies, pprint.pformat(self.anomalies[:20])


@pytest.fixture
def tally(live):
    return Tally(live)


def seed() -> dict:
    """The shared records the writers fight over; returns their ids (JSON for processes)."""
    from kehu.products.services import stock_movement_post, warehouse_default_ensure
    from tests.conftest import make_org
    from tests.customers.factories import CustomerFactory
    from tests.finance.factories import active_contract
    from tests.products.factories import ProductFactory

    org = make_org()
    warehouse_default_ensure()
    customer = CustomerFactory(owner=org.sales1)
    note_customer = CustomerFactory(owner=org.sales1)
    scarce = ProductFactory()
    stock_movement_post(actor=org.warehouse, product=scarce, kind="in", quantity=SCARCE_UNITS)
    return {
        "customer": customer.pk,
        "customer_version": customer.version,
        "note_customer": note_customer.pk,
        "note_version": note_customer.version,
        "doc_customer": CustomerFactory(owner=org.sales1).pk,
        "doc_product": ProductFactory().pk,
        "big_contract": active_contract(org, amount="1000000.00").pk,
        "key_contract": active_contract(org, amount="10000.00").pk,
        "key": "one-key-for-everyone",
        "scarce_product": scarce.pk,
        "pool_customer": CustomerFactory(owner=None, in_pool=True).pk,
    }


# --- invariants -----------------------------------------------------------------------------


def ok_values(results: list[dict]) -> list:
    return [r["value"] for r in results if r["outcome"] == "ok"]


def check_one_edit_won(tally: Tally, results: list[dict], ctx: dict) -> None:
    from kehu.customers.models import Customer

    won = ok_values(results)
    tally.check("one edit from a shared version wins", len(won) == 1, won)
    stale = [r for r in results if r["outcome"] == "conflict"]
    tally.check("every other edit is a version conflict", len(stale) == len(results) - 1)
    version = Customer.objects.get(pk=ctx["customer"]).version
    tally.check("the version moved by one", version == ctx["customer_version"] + 1, version)


def check_no_lost_update(tally: Tally, results: list[dict], ctx: dict, writers: list) -> None:
    from kehu.customers.models import Customer

    tally.check("every retrying editor got through", len(ok_values(results)) == len(results))
    customer = Customer.objects.get(pk=ctx["note_customer"])
    marks = re.findall(r"\[(\d+)\]", customer.notes)
    tally.check(
        "every edit survived exactly once (no lost update)",
        sorted(map(int, marks)) == sorted(writers),
        customer.notes,
    )
    tally.check(
        "one version per edit",
        customer.version == ctx["note_version"] + len(writers),
        customer.version,
    )


NUMBERED = {
    "contract_create": ("sales.Contract", "HT"),
    "order_create": ("sales.Order", "DD"),
    "payment_register": ("finance.Payment", "HK"),
    "invoice_request": ("finance.Invoice", "KP"),
}


def check_numbers(tally: Tally, results: list[dict], op_name: str) -> None:
    """Numbers handed out concurrently are unique, and the stored ones run 1..n."""
    from django.apps import apps

    label, prefix = NUMBERED[op_name]
    mine = [r for r in results if r["op"] == op_name]
    numbers = ok_values(mine)
    tally.check(f"{prefix}: every creation succeeded", len(numbers) == len(mine), mine[:3])
    tally.check(f"{prefix}: no number handed out twice", len(set(numbers)) == len(numbers))
    stored = apps.get_model(label)._base_manager.values_list("number", flat=True)
    sequence = sorted(int(n.rsplit("-", 1)[1]) for n in stored if n.startswith(prefix))
    tally.check(
        f"{prefix}: stored numbers are unique and gap-free",
        sequence == list(range(1, len(sequence) + 1)),
        sequence,
    )
    tally.check(f"{prefix}: every number handed out is stored", set(numbers) <= set(stored))


def check_one_payment_per_key(tally: Tally, results: list[dict], ctx: dict) -> None:
    from kehu.finance.models import IdempotencyKey, Payment

    answers = ok_values(results)
    created = [a for a in answers if a["status"] == 201]
    tally.check("exactly one answer created the payment", len(created) == 1, len(created))
    bodies = {repr(sorted(a["body"].items())) for a in answers}
    tally.check("every answer is the same payment, or a 409", len(bodies) == 1, bodies)
    payments = Payment.objects.filter(contract_id=ctx["key_contract"]).count()
    tally.check("one payment recorded for the key", payments == 1, payments)
    keys = IdempotencyKey.objects.filter(key=ctx["key"]).count()
    tally.check("one idempotency key stored", keys == 1, keys)


def check_stock(tally: Tally, results: list[dict], ctx: dict) -> None:
    from kehu.products.models import Product, StockLevel, StockMovement

    taken = ok_values(results)
    expected = min(SCARCE_UNITS, len(results))
    tally.check("exactly the units in stock were taken", len(taken) == expected, taken)
    refused = {r.get("code") for r in results if r["outcome"] != "ok"}
    tally.check("the others were told the stock is short", refused <= {"insufficient_stock"})
    product = Product.objects.get(pk=ctx["scarce_product"])
    level = StockLevel.objects.get(product=product).quantity
    movements = StockMovement.objects.filter(product=product)
    moved = movements.aggregate(s=Sum("quantity"))["s"]
    tally.check(
        "level = movements = product total",
        level == moved == product.stock_quantity == SCARCE_UNITS - expected,
        (level, moved, product.stock_quantity),
    )
    running = Decimal("0")
    for movement in movements.order_by("id"):
        running += movement.quantity
        tally.check("balances replay exactly", movement.balance_after == running)
        tally.check("stock never below zero", running >= 0, running)


def check_one_claim(tally: Tally, results: list[dict], ctx: dict) -> None:
    from kehu.customers.models import Customer, CustomerEvent

    won = ok_values(results)
    tally.check("one claimer wins the pool customer", len(won) == 1, won)
    codes = {r.get("code") for r in results if r["outcome"] != "ok"}
    tally.check("the others are told it is gone", codes <= {"not_in_pool"}, codes)
    customer = Customer.objects.get(pk=ctx["pool_customer"])
    tally.check("it left the pool", not customer.in_pool and customer.owner_id is not None)
    claims = CustomerEvent.objects.filter(customer=customer, kind="claimed").count()
    tally.check("one claim event", claims == 1, claims)


# --- threads --------------------------------------------------------------------------------


def test_one_customer_edited_at_once_through_the_api(live, tally):
    """Eight clients PATCH one customer with the version they all read: one 200, seven 409."""
    ctx = seed()
    results = tally.outcomes(live.threads(8, ops.customer_edit_same_version_api, ctx))
    check_one_edit_won(tally, results, ctx)
    tally.finish()


def test_read_edit_retry_loses_no_update(live, tally):
    ctx = seed()
    results = tally.outcomes(live.threads(8, ops.customer_note_append, ctx))
    check_no_lost_update(tally, results, ctx, list(range(8)))
    tally.finish()


def test_document_numbers_created_at_once_are_unique_and_gap_free(live, tally):
    """Contracts, orders, payments and invoices, eight at once, twice each."""
    ctx = seed()
    for op_name in sorted(NUMBERED):
        op = ops.BY_NAME[op_name]
        results = []
        for _round in range(2):
            results += tally.outcomes(live.threads(8, op, ctx))
        check_numbers(tally, results, op_name)
    tally.finish()


def test_fifty_requests_with_one_idempotency_key_record_one_payment(live, tally):
    from kehu.finance.models import IdempotencyKey, Payment

    ctx = seed()
    results = tally.outcomes(live.threads(50, ops.payment_same_key_api, ctx))
    check_one_payment_per_key(tally, results, ctx)
    # The same key with another body is refused (422), and writes nothing.
    client = ops._api("sales1")
    other = client.post(
        ops.PAYMENTS,
        ops.payment_body(ctx, amount="99.00"),
        format="json",
        HTTP_IDEMPOTENCY_KEY=ctx["key"],
    )
    tally.operations += 1
    tally.check("same key, other body: 422", other.status_code == 422, other.status_code)
    tally.check(
        "same key, other body: refusal names the key",
        "idempotency_key" in other.json(),
        other.json(),
    )
    tally.check(
        "same key, other body: nothing written",
        Payment.objects.filter(contract_id=ctx["key_contract"]).count() == 1
        and IdempotencyKey.objects.count() == 1,
    )
    tally.finish()


def test_stock_taken_at_once_never_goes_below_zero(live, tally):
    ctx = seed()
    results = tally.outcomes(live.threads(12, ops.stock_take_one, ctx))
    check_stock(tally, results, ctx)
    tally.finish()


def test_shipments_racing_for_the_last_units_ship_once(live, tally):
    """Two confirmed orders of 4 each for the 5 units left: one ships, one is short."""
    from kehu.customers.models import Customer
    from kehu.products.models import Product, StockLevel
    from kehu.sales import services
    from kehu.sales.models import Shipment
    from kehu.system.models import User

    ctx = seed()
    sales1 = User.objects.get(username="sales1")
    orders = []
    for _ in range(2):
        order = services.order_create(
            actor=sales1,
            data={"customer": Customer.objects.get(pk=ctx["doc_customer"]), "title": "抢货"},
            lines=[{"product": Product.objects.get(pk=ctx["scarce_product"]), "quantity": "4"}],
        )
        orders.append(services.order_confirm(actor=sales1, order=order).pk)
    ctx["orders"] = orders
    results = tally.outcomes(live.threads(2, ops.order_ship, ctx))
    shipped = ok_values(results)
    tally.check("one order ships", len(shipped) == 1, results)
    codes = [r.get("code") for r in results if r["outcome"] != "ok"]
    tally.check("the other is short of stock", codes == ["insufficient_stock"], codes)
    tally.check("one shipment", Shipment.objects.count() == 1)
    level = StockLevel.objects.get(product_id=ctx["scarce_product"]).quantity
    tally.check("one unit left", level == SCARCE_UNITS - 4, level)
    tally.finish()


def test_pool_claims_at_once_have_one_winner(live, tally):
    ctx = seed()
    results = tally.outcomes(live.threads(8, ops.pool_claim, ctx))
    check_one_claim(tally, results, ctx)
    tally.finish()


# --- processes ------------------------------------------------------------------------------


def test_writer_processes_on_the_same_records(live, tally):
    """Eight writer processes (two threads each) run the whole mix on the same records:
    one idempotency key, one customer version, retried edits, four numbered documents,
    the last units of a product and one pool customer. On SQLite no "database is locked"
    may reach a caller."""
    ctx = seed()
    results = tally.outcomes(
        live.processes(WRITER_PROCESSES, threads=THREADS_PER_PROCESS, ops=ops.MIX, ctx=ctx)
    )
    writers = list(range(WRITER_PROCESSES * THREADS_PER_PROCESS))
    assert len(results) == len(writers) * len(ops.MIX)

    def of(op) -> list[dict]:
        return [r for r in results if r["op"] == op.__name__]

    check_one_payment_per_key(tally, of(ops.payment_same_key_api), ctx)
    check_one_edit_won(tally, of(ops.customer_edit_same_version), ctx)
    check_no_lost_update(tally, of(ops.customer_note_append), ctx, writers)
    for name in NUMBERED:
        check_numbers(tally, of(ops.BY_NAME[name]), name)
    check_stock(tally, of(ops.stock_take_one), ctx)
    check_one_claim(tally, of(ops.pool_claim), ctx)
    tally.finish()


# --- SQLite: why writers queue instead of failing -------------------------------------------


def test_sqlite_transactions_take_the_write_lock_at_begin(live):
    """Every service transaction on SQLite starts with BEGIN IMMEDIATE (it holds the write
    lock before its first read) on a WAL database with a 30 s busy timeout: a read-then-
    write transaction can then never find the snapshot it read overtaken by another writer,
    the one "database is locked" that a busy timeout cannot absorb."""
    import sqlite3

    from django.db import connection, transaction

    if live.vendor != "sqlite":
        pytest.skip("SQLite's locking")
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    other = sqlite3.connect(live.settings_dict["NAME"], timeout=0, isolation_level=None)
    try:
        # Nothing written yet, yet another writer cannot begin: the lock came with BEGIN.
        with transaction.atomic(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")

        # The trap IMMEDIATE avoids: a DEFERRED transaction reads, another writer commits,
        # and the first one's write fails at once, whatever the busy timeout.
        path = live.settings_dict["NAME"]
        first = sqlite3.connect(path, timeout=5, isolation_level=None)
        second = sqlite3.connect(path, timeout=5, isolation_level=None)
        first.execute("BEGIN DEFERRED")
        first.execute("SELECT count(*) FROM system_systemsettings").fetchone()
        second.execute("UPDATE system_systemsettings SET id = id")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            first.execute("UPDATE system_systemsettings SET id = id")
        first.execute("ROLLBACK")
        first.close()
        second.close()
    finally:
        other.close()
