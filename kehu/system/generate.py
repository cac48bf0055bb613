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
import time
from collections.abc import Callable, Iterator

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.bulk import (
    GenerateResult,
    foreign_keys_off,
    foreign_keys_verify,
    indexes_deferred,
    next_id,
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
        customer_tables,
        customers_generate,
        sales_users,
        text_indexes_drop,
        text_indexes_ensure,
    )
    from kehu.customers.models import Customer
    from kehu.finance.models import ContractLedger
    from kehu.sales.models import Contract
    from kehu.system.company import TABLES, company_history_generate

    if customers < 1:
        raise ServiceError(_("Generate at least one customer."), field="customers")
    if not 0 < orders_per <= 50:
        raise ServiceError(_("Orders per customer must be above 0 and at most 50."))
    started = time.monotonic()
    result = GenerateResult()

    def clock() -> tuple[float, float]:
        return time.monotonic(), time.process_time()

    def phase(name: str, begun: tuple[float, float]) -> None:
        # CPU time of this process too: on a shared machine wall time says little (the
        # SQLite work is in it; PostgreSQL's server is a process of its own).
        result.phases[name] = time.monotonic() - begun[0]
        result.cpu[name] = time.process_time() - begun[1]
        if progress:
            progress(f"{name}: {result.phases[name]:.1f} s, CPU {result.cpu[name]:.1f} s")

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
    first_customer = next_id(Customer)
    history_models = [model for model, _columns in TABLES.values()]
    # The customers' indexes stay dropped until the history has set their last deals: an
    # UPDATE of most customers would otherwise rewrite every index entry (the trigram GIN
    # index on PostgreSQL, the FTS triggers on SQLite) row by row.
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
        ),
    ):
        begun = clock()
        part = customers_generate(
            customers=customers,
            seed=seed,
            defer_indexes=False,  # dropped here, for the whole load
            unchecked=defer_indexes,
            deals=False,  # the sales history sets last deal and stage
            analyze=False,
            progress=progress,
        )
        result.counts.update(part.counts)
        phase("customers", begun)

        end = timezone.localdate() - datetime.timedelta(days=1)
        begun = clock()
        with foreign_keys_off(defer_indexes) as unchecked:
            history, firsts = company_history_generate(
                customers=Customer.all_objects.filter(pk__gte=first_customer),
                products=goods,
                start=end - datetime.timedelta(days=HISTORY_DAYS),
                end=end,
                orders_per=orders_per,
                seed=seed,
                pool_owners=sales_users(),
                shipper=_user("warehouse"),
                confirmer=_user("finance"),
                batch=batch,
                progress=progress,
            )
            for name, seconds in history.phases.items():
                result.phases[f"history {name}"] = seconds
            for name, seconds in history.cpu.items():
                result.cpu[f"history {name}"] = seconds
            if unchecked:
                checking = time.monotonic()
                firsts[ContractLedger] = firsts[Contract]  # its key is the contract's
                checked = foreign_keys_verify(firsts)
                result.phases["foreign keys"] = time.monotonic() - checking
                if progress:
                    progress(
                        f"{checked} foreign keys verified in {result.phases['foreign keys']:.1f} s"
                    )
        result.counts.update(history.counts)
        phase("history", begun)
    begun = clock()
    tables_analyze([Customer, *history_models])
    phase("analyze", begun)
    begun = clock()
    if aggregates_rebuild():
        phase("aggregates", begun)
    result.seconds = time.monotonic() - started
    return result


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
    """SQLite, for a large load: a big page cache, sorting in memory and with a helper thread
    when the indexes are built (this connection only; restored afterwards)."""
    if not large or connection.vendor != "sqlite":
        yield
        return
    outside = not connection.in_atomic_block  # temp_store cannot change inside one
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        cache = cursor.fetchone()[0]
        cursor.execute("PRAGMA cache_size = -2000000")  # 2 GB
        if outside:
            cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.execute("PRAGMA threads = 2")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(cache)}")
            if outside:
                cursor.execute("PRAGMA temp_store = DEFAULT")
            cursor.execute("PRAGMA threads = 0")
