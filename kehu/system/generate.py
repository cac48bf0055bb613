"""A whole company's data at any size (``manage.py generate --customers N``), for benchmarks.

Phases, each timed: products (the demo catalogue, when fewer than ``MIN_GOODS`` stocked
goods are on sale), customers with contacts, follow-ups, opportunities, tags and events
(``kehu.customers.generate``), then two years of sales and money for them
(``kehu.system.company``, numpy per batch of customers): frame contracts with lines and
approval records, orders (call-offs) with lines, shipments and stock movements, receivable
plans, payments, invoices and ledgers. About ``orders_per`` orders per customer on average.
At the end the stored aggregates are rebuilt when the analytics module offers it.

Everything holds the invariants the services enforce: document totals are the sums of their
lines, ledgers the sums of their payments and invoices, nothing received or invoiced above
a contract's amount, numbers gap-free per prefix and year (reserved from the same
sequences the services use), each document owned by its customer's owner and department,
customers' last deal and last follow-up as the services leave them.

A large load drops the secondary indexes of every table it writes and builds them once at
the end (also when it fails), and writes with foreign-key checks off (SQLite:
``PRAGMA foreign_keys``; PostgreSQL: ``session_replication_role``), then checks every new
row's references by ranges (``foreign_keys_verify``: one pass per table).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import time
from collections.abc import Callable, Iterator

import numpy as np
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.bulk import (
    GenerateResult,
    References,
    copy_sink,
    foreign_keys_off,
    indexes_deferred,
    sequences_reset,
    server_cpu,
    tables_analyze,
)
from kehu.core.exceptions import ServiceError

SEED = 20260801
MIN_GOODS = 20
HISTORY_DAYS = 730
DEFER_INDEXES_FROM = 20_000


def _goods():
    from kehu.products.models import Product, ProductStatus

    return list(
        Product.objects.filter(
            status=ProductStatus.ON_SALE, list_price__gt=0, low_stock_threshold__gt=0
        )
        .select_related("unit", "category")
        .order_by("pk")
    )


def _products_ensure() -> int:
    """The demo catalogue when too few stocked goods are on sale; returns products added."""
    from kehu.products.demo import demo_load
    from kehu.system.models import User

    if len(_goods()) >= MIN_GOODS:
        return 0
    admin = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if admin is None:
        raise ServiceError(_("There is no active administrator to create the products."))
    return demo_load(admin=admin, users=None).get("products", 0)


def _user(role: str):
    from kehu.system.models import User

    return User.objects.filter(is_active=True, roles__code=role).order_by("pk").first()


def data_generate(
    *,
    customers: int,
    orders_per: float = 5.0,
    seed: int = SEED,
    defer_indexes: bool | None = None,
    batch: int = 20_000,
    progress: Callable[[str], None] | None = None,
) -> GenerateResult:
    """Generate ``customers`` customers with about ``orders_per`` orders each and all their
    related rows. Returns the rows per table, the seconds per phase and in all."""
    from kehu.customers.generate import (
        CUSTOMER_MODELS,
        CustomerBatches,
        customer_tables,
        text_indexes_drop,
        text_indexes_ensure,
    )
    from kehu.customers.models import Customer
    from kehu.system.company import TABLES, company_history

    if customers < 1:
        raise ServiceError(_("Generate at least one customer."), field="customers")
    if not 0 < orders_per <= 50:
        raise ServiceError(_("Orders per customer must be above 0 and at most 50."))
    started = time.monotonic()
    result = GenerateResult()

    def clock() -> tuple[float, float, float | None]:
        return time.monotonic(), time.process_time(), server_cpu()

    def phase(name: str, begun: tuple[float, float, float | None]) -> None:
        # CPU time of this process too: on a shared machine wall time says little (the
        # SQLite work is in it; PostgreSQL's server is a process of its own, measured when
        # it runs on this machine).
        result.phases[name] = time.monotonic() - begun[0]
        result.cpu[name] = time.process_time() - begun[1]
        server = server_cpu() if begun[2] is not None else None
        text = f"{name}: {result.phases[name]:.1f} s, CPU {result.cpu[name]:.1f} s"
        if server is not None and begun[2] is not None:
            result.server[name] = server - begun[2]
            text += f", server CPU {result.server[name]:.1f} s"
        if progress:
            progress(text)

    begun = clock()
    added = _products_ensure()
    if added:
        result.counts["products"] = added
    goods = _goods()
    if len(goods) < 2:
        raise ServiceError(_("There are too few products on sale to sell."))
    phase("products", begun)

    if defer_indexes is None:
        defer_indexes = customers >= max(DEFER_INDEXES_FROM, Customer._base_manager.count())
    history_models = [model for model, _columns in TABLES.values()]
    # A large load writes with foreign-key checks off; every reference is then checked in
    # numpy as the rows are written (``References``).
    references = References(CUSTOMER_MODELS + history_models) if defer_indexes else None
    draws = CustomerBatches(customers=customers, seed=seed, deals=False, references=references)
    former = _former_owners(draws.owner_ids)
    end = timezone.localdate() - datetime.timedelta(days=1)
    # One pass: each batch's customers are drawn, then their history, and the customers
    # written first with the last deal and stage the history gives them (no reading back,
    # no UPDATE of a million rows). The customers' indexes, trigram and FTS included, are
    # built once at the end.
    with (
        _load_settings(defer_indexes),
        indexes_deferred(
            customer_tables() + [model._meta.db_table for model in history_models],
            enabled=defer_indexes,
            progress=progress,
            before_drop=text_indexes_drop,
            after_create=text_indexes_ensure,
            phases=result.phases,
            cpu=result.cpu,
            server=result.server,
            timings=result.indexes,
        ),
        foreign_keys_off(defer_indexes),
        transaction.atomic(),  # all or nothing: the document sequences stay consistent
    ):
        begun = clock()
        history = company_history(
            products=goods,
            start=end - datetime.timedelta(days=HISTORY_DAYS),
            end=end,
            orders_per=orders_per,
            seed=seed,
            shipper=_user("warehouse"),
            confirmer=_user("finance"),
            references=references,
        )
        with copy_sink() as sink:
            done = 0
            for number in itertools.count():
                if done >= customers:
                    break
                part = draws.draw(min(batch, customers - done))

                def before(index, last_deal, first_deal, part=part) -> None:
                    part.deals_set(index, last_deal, first_deal, draws.rng)
                    draws.write(part, sink)

                history.batch(_buyers(part, *former), number, sink, before)
                done += part.n
                if progress:
                    elapsed = time.monotonic() - begun[0]
                    rows = sum(draws.counts.values()) + sum(history.counts.values())
                    progress(
                        f"{done} customers, {rows} rows, "
                        f"{int(rows / elapsed) if elapsed else 0} rows/s"
                    )
            if sink is not None:
                sink.drain()
            result.phases["customers and history"] = time.monotonic() - begun[0]
            result.cpu["customers and history"] = time.process_time() - begun[1]
            closing: dict[str, float] = {}
            closing_cpu: dict[str, float] = {}
            history.close(sink, closing, closing_cpu, progress)
            for name, seconds in closing.items():
                result.phases[f"history {name}"] = seconds
                if name in closing_cpu:
                    result.cpu[f"history {name}"] = closing_cpu[name]
        sequences_reset(CUSTOMER_MODELS)
        result.counts.update(draws.counts)
        result.counts.update({key: count for key, count in history.counts.items() if count})
        if references is not None and progress:
            progress(f"{references.values:,} foreign-key values checked")
        phase("load", begun)
    # Whole statistics, not sampled ones (``PRAGMA analysis_limit``): from 2,000 rows per
    # index SQLite guessed 2,000 contracts per owner instead of 190,000, drove the
    # manager's contract list from the users table and sorted every contract (8 s).
    begun = clock()
    tables_analyze([*CUSTOMER_MODELS, *history_models])
    phase("analyze", begun)
    begun = clock()
    if aggregates_rebuild():
        phase("aggregates", begun)
    result.seconds = time.monotonic() - started
    return result


def _former_owners(owner_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sales users in turn (a pool customer's documents belong to its former owner)
    and their departments (-1: none)."""
    from kehu.system.models import User

    users = User.objects.filter(pk__in=owner_ids.tolist())
    departments = dict(users.values_list("pk", "department_id"))
    return owner_ids, np.array(
        [-1 if departments.get(o) is None else departments[o] for o in owner_ids.tolist()],
        dtype=np.int64,
    )


def _buyers(part, owner_ids: np.ndarray, departments: np.ndarray):
    """The history's view of a drawn batch of customers: a pool customer's former owner is
    the sales users' next in turn, by its position in the load (as ``buyers_read``)."""
    from kehu.system.company import Buyers

    turn = (part.first + np.arange(part.n) + 1) % len(owner_ids)
    return Buyers(
        id=part.id,
        owner=np.where(part.pool, owner_ids[turn], part.owner),
        department=np.where(part.pool, departments[turn], part.department),
        created=part.created.copy(),
        contact=part.primary,
        name=part.name.tolist(),
        address=part.address.tolist(),
    )


def aggregates_rebuild() -> bool:
    """Hook: the stored aggregates (dashboard figures, aging) rebuilt from the generated rows,
    when the analytics module offers ``aggregates_rebuild``. Returns whether it ran."""
    from kehu.analytics import services

    rebuild = getattr(services, "aggregates_rebuild", None)
    if rebuild is None:
        return False
    rebuild()
    return True


@contextlib.contextmanager
def _load_settings(large: bool) -> Iterator[None]:
    """SQLite, for a large load: a big page cache, sorting in memory, and a rollback journal
    instead of the write-ahead log (this connection only; restored afterwards).

    The load is one transaction of many gigabytes: the WAL would hold a copy of every page
    until it commits (and every read would look it up there), then copy them all into the
    database. A rollback journal keeps only the pages that existed before the transaction,
    and a load appends new ones. Switching needs no other connection to the file; if there
    is one the log stays."""
    if not large or connection.vendor != "sqlite":
        yield
        return
    outside = not connection.in_atomic_block  # neither can change inside a transaction
    journal = None
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        cache = cursor.fetchone()[0]
        cursor.execute("PRAGMA cache_size = -2000000")  # 2 GB
        if outside:
            cursor.execute("PRAGMA temp_store = MEMORY")
            cursor.execute("PRAGMA journal_mode")
            journal = str(cursor.fetchone()[0]).lower()
            if journal == "wal":
                try:
                    cursor.execute("PRAGMA journal_mode = DELETE")
                except DatabaseError:
                    journal = None  # another connection has the file open: keep the log
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(cache)}")
            if outside:
                cursor.execute("PRAGMA temp_store = DEFAULT")
                if journal == "wal":
                    cursor.execute("PRAGMA journal_mode = WAL")
