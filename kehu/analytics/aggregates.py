"""Stored aggregates behind the dashboard, sales targets and the receivables aging report.

Each document contributes to a few rows (``kehu.analytics.models``: SalesFigure,
ProductFigure, ReceivableDay/Month, CustomerReceivable, ReceivableGroup). The services that
change a document call ``aggregates_tracked`` around the change, in their transaction: the
document's contribution is read before (under its row lock) and after, and the difference is
added to the rows with one upsert per table (``INSERT … ON CONFLICT … DO UPDATE SET x = x +
excluded.x``: an atomic increment that also creates a missing row, so two writers cannot both
create it). Money received is counted where a payment is confirmed or a refund approved
(``collections_count``). ``aggregates_rebuild`` recomputes every row set-based, as a repair
and after bulk loads; it gives the same rows as the incremental path.

What counts is what the live queries count (they stay as the reference, see the tests):
- contract amount: contracts not deleted, in force or completed, by signing month
  (``kehu.sales.hooks._contract_achievement``);
- collections: confirmed payments (reversals negative) less approved refunds, by the
  payment's owner and month (``kehu.finance.hooks._payment_achievement``);
- products: lines of orders not deleted nor cancelled, by order month;
- receivables: instalments of contracts not deleted that have not received their whole
  amount, settled in due-date order by the money received
  (``kehu.finance.selectors.receivables_aging``);
- the funnel: opportunities not deleted, by stage (``kehu.analytics.selectors.funnel``);
- expenses: claims approved or paid, by category and month of the expense
  (``kehu.analytics.selectors.expenses_summary``).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction

ZERO = Decimal("0.00")
COUNTED_CONTRACT_STATUSES = ("active", "completed")
BILLABLE_CONTRACT_STATUSES = ("active", "completed", "terminated")  # finance.BILLABLE_STATUSES
CHUNK = 500


def cents(amount: Decimal | None) -> int:
    return int((amount or ZERO) * 100)


def _milli(quantity: Decimal | None) -> int:
    return int((quantity or ZERO) * 1000)


def _month(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


# --- the tables and their keys --------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    model_name: str
    keys: tuple[str, ...]  # columns of the unique constraint
    values: tuple[str, ...]  # columns that are added up
    constants: tuple[tuple[str, object], ...] = ()  # other columns of a new row

    @property
    def model(self):
        from django.apps import apps

        return apps.get_model("analytics", self.model_name)

    @property
    def db_table(self) -> str:
        return self.model._meta.db_table


SALES = _Table(
    "SalesFigure", ("owner_id", "department_key", "month"), ("contract_cents", "collected_cents")
)
PRODUCTS = _Table(
    "ProductFigure",
    ("product_id", "owner_id", "department_key", "month"),
    ("amount_cents", "quantity_milli", "orders"),
)
DAYS = _Table("ReceivableDay", ("owner_id", "department_key", "due_date"), ("cents",))
MONTHS = _Table("ReceivableMonth", ("owner_id", "department_key", "month"), ("cents",))
CUSTOMERS = _Table(
    "CustomerReceivable",
    ("customer_id", "owner_id", "department_key"),
    ("cents",),
    (("split", False),),
)
GROUPS = _Table("ReceivableGroup", ("owner_id", "department_key"), ("debtors",))
OPPORTUNITIES = _Table(
    "OpportunityFigure",
    ("stage_id", "owner_id", "department_key"),
    ("opportunities", "amount_cents"),
)
EXPENSES = _Table(
    "ExpenseFigure",
    ("category_id", "owner_id", "department_key", "month"),
    ("claims", "amount_cents"),
)
COUNTED_EXPENSE_STATUSES = ("approved", "paid")
TABLES = (SALES, PRODUCTS, DAYS, MONTHS, CUSTOMERS, GROUPS, OPPORTUNITIES, EXPENSES)


class Deltas:
    """Amounts to add, per table and key; ``+``/``-`` combine two sets."""

    def __init__(self) -> None:
        self.rows: dict[_Table, dict[tuple, list[int]]] = {t: {} for t in TABLES}

    def add(self, table: _Table, key: tuple, *values: int) -> None:
        row = self.rows[table].setdefault(key, [0] * len(table.values))
        for i, value in enumerate(values):
            row[i] += value

    def combine(self, other: Deltas, sign: int) -> Deltas:
        result = Deltas()
        for source, factor in ((self, 1), (other, sign)):
            for table, rows in source.rows.items():
                for key, values in rows.items():
                    result.add(table, key, *(factor * v for v in values))
        return result

    def __sub__(self, other: Deltas) -> Deltas:
        return self.combine(other, -1)

    def nonzero(self, table: _Table) -> dict[tuple, list[int]]:
        return {k: v for k, v in self.rows[table].items() if any(v)}


# --- what one document contributes ----------------------------------------------------------


def _contract_contributions(
    contract_ids: Iterable[int], *, lock: bool, unplanned: dict | None = None
) -> Deltas:
    """The rows the contracts add to (sales figures and receivables), read now; with
    ``unplanned``, also each contract's row of ``ContractWithoutPlan`` (or None) into it."""
    from kehu.finance.models import ContractLedger, ReceivableInstalment
    from kehu.sales.models import Contract

    deltas = Deltas()
    ids = sorted(set(contract_ids))
    if not ids:
        return deltas
    contracts = Contract._base_manager.filter(pk__in=ids).order_by("pk")
    if lock:
        # Serialises the trackers of one contract: sales changes hold it already; finance
        # changes hold the ledger first and take it here (always in that order).
        contracts = contracts.select_for_update()
    rows = list(
        contracts.values(
            "pk",
            "customer_id",
            "owner_id",
            "department_id",
            "status",
            "deleted_at",
            "signed_on",
            "total_amount",
        )
    )
    ledgers = {
        row["contract_id"]: row["confirmed_amount"] - row["refunded_amount"]
        for row in ContractLedger.objects.filter(contract_id__in=ids).values(
            "contract_id", "confirmed_amount", "refunded_amount"
        )
    }
    instalments: dict[int, list[tuple]] = defaultdict(list)
    for row in (
        ReceivableInstalment.objects.filter(contract_id__in=ids)
        .order_by("contract_id", "due_date", "sequence")
        .values_list("contract_id", "due_date", "amount")
    ):
        instalments[row[0]].append((row[1], row[2]))
    if unplanned is not None:
        for c in rows:
            without = (
                c["deleted_at"] is None
                and c["status"] in BILLABLE_CONTRACT_STATUSES
                and not instalments.get(c["pk"])
            )
            unplanned[c["pk"]] = (
                (c["owner_id"], c["department_id"], c["signed_on"]) if without else None
            )
    for c in rows:
        if c["deleted_at"] is not None:
            continue
        department = c["department_id"] or 0
        if c["status"] in COUNTED_CONTRACT_STATUSES and c["signed_on"] is not None:
            deltas.add(
                SALES,
                (c["owner_id"], department, _month(c["signed_on"])),
                cents(c["total_amount"]),
                0,
            )
        received = ledgers.get(c["pk"])
        if received is not None and c["total_amount"] <= received:
            continue  # paid up: owes nothing, whatever the plan says
        received = received or ZERO
        before = ZERO
        owed = 0
        for due, amount in instalments.get(c["pk"], []):
            paid = min(max(received - before, ZERO), amount)
            before += amount
            outstanding = cents(amount - paid)
            if outstanding:
                deltas.add(DAYS, (c["owner_id"], department, due), outstanding)
                deltas.add(MONTHS, (c["owner_id"], department, _month(due)), outstanding)
                owed += outstanding
        if owed:
            deltas.add(CUSTOMERS, (c["customer_id"], c["owner_id"], department), owed)
    return deltas


def _order_contributions(order_ids: Iterable[int], *, lock: bool) -> Deltas:
    """The product figures the orders add to, read now."""
    from kehu.sales.models import Order, OrderLine

    deltas = Deltas()
    ids = sorted(set(order_ids))
    if not ids:
        return deltas
    orders = Order._base_manager.filter(pk__in=ids).order_by("pk")
    if lock:
        orders = orders.select_for_update()
    counted = {
        row["pk"]: row
        for row in orders.values(
            "pk", "owner_id", "department_id", "status", "deleted_at", "order_date"
        )
        if row["deleted_at"] is None and row["status"] != "cancelled"
    }
    if not counted:
        return deltas
    seen: set[tuple[int, int]] = set()
    for order_id, product_id, subtotal, quantity in (
        OrderLine.objects.filter(order_id__in=list(counted))
        .order_by("order_id", "id")
        .values_list("order_id", "product_id", "subtotal", "quantity")
    ):
        o = counted[order_id]
        first = (order_id, product_id) not in seen
        seen.add((order_id, product_id))
        deltas.add(
            PRODUCTS,
            (product_id, o["owner_id"], o["department_id"] or 0, _month(o["order_date"])),
            cents(subtotal),
            _milli(quantity),
            1 if first else 0,
        )
    return deltas


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _opportunity_contributions(opportunity_ids: Iterable[int], *, lock: bool) -> Deltas:
    """The funnel rows the opportunities add to, read now."""
    from kehu.customers.models import Opportunity

    deltas = Deltas()
    for ids in _chunks(opportunity_ids):
        rows = Opportunity._base_manager.filter(pk__in=ids).order_by("pk")
        if lock:
            rows = rows.select_for_update()
        for stage, owner, department, amount, deleted_at in rows.values_list(
            "stage_id", "owner_id", "department_id", "amount", "deleted_at"
        ):
            if deleted_at is None:
                deltas.add(OPPORTUNITIES, (stage, owner, department or 0), 1, cents(amount))
    return deltas


def _expense_contributions(claim_ids: Iterable[int], *, lock: bool) -> Deltas:
    """The expense rows the claims add to, read now."""
    from kehu.finance.models import ExpenseClaim

    deltas = Deltas()
    for ids in _chunks(claim_ids):
        rows = ExpenseClaim._base_manager.filter(pk__in=ids).order_by("pk")
        if lock:
            rows = rows.select_for_update()
        for category, owner, department, spent_on, amount, status in rows.values_list(
            "category_id", "owner_id", "department_id", "spent_on", "amount", "status"
        ):
            if status in COUNTED_EXPENSE_STATUSES:
                key = (category, owner, department or 0, _month(spent_on))
                deltas.add(EXPENSES, key, 1, cents(amount))
    return deltas


# --- writing --------------------------------------------------------------------------------


def _upsert(table: _Table, rows: dict[tuple, list[int]], *, returning: bool = False) -> list:
    """Add ``rows`` (key → values) to ``table``, creating missing rows; with ``returning``
    the rows' keys and new values."""
    if not rows:
        return []
    extra = ["department_id"] if "department_key" in table.keys else []
    extra += [column for column, _value in table.constants]
    columns = [*table.keys, *extra, *table.values]
    quote = connection.ops.quote_name
    name = quote(table.db_table)
    updates = ", ".join(
        f"{quote(c)} = {name}.{quote(c)} + excluded.{quote(c)}" for c in table.values
    )
    tail = ""
    if returning:
        tail = " RETURNING " + ", ".join(quote(c) for c in [*table.keys, *table.values])
    found = []
    items = sorted(rows.items())  # one order for every writer: no deadlock between them
    with connection.cursor() as cursor:
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(chunk))
            params: list = []
            for key, values in chunk:
                record = dict(zip(table.keys, key, strict=True))
                record["department_id"] = record.get("department_key") or None
                record.update(table.constants)
                params += [record[c] for c in [*table.keys, *extra]] + list(values)
            cursor.execute(
                f"INSERT INTO {name} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES {placeholders} "
                f"ON CONFLICT ({', '.join(quote(c) for c in table.keys)}) DO UPDATE SET {updates}"
                f"{tail}",
                params,
            )
            if returning:
                found += cursor.fetchall()
    return found


def _upsert_dropping_empty(table: _Table, rows: dict[tuple, list[int]]) -> None:
    """``_upsert``, then the rows left counting nothing are deleted: opportunities move
    between stages, owners and departments all the time, and an empty row would only keep
    a department or stage from being deleted (``PROTECT``) and the table growing."""
    quote = connection.ops.quote_name
    empty = [key for *key, count, _amount in _upsert(table, rows, returning=True) if not count]
    if not empty:
        return
    columns = ", ".join(quote(c) for c in table.keys)
    count_column = quote(table.values[0])
    with connection.cursor() as cursor:
        for start in range(0, len(empty), CHUNK):
            chunk = empty[start : start + CHUNK]
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(table.keys)) + ")"] * len(chunk))
            cursor.execute(
                f"DELETE FROM {quote(table.db_table)} WHERE {count_column} = 0 "
                f"AND ({columns}) IN (VALUES {placeholders})",
                [value for key in chunk for value in key],
            )


def _lock_customers(customer_ids: Iterable[int]) -> None:
    """One writer at a time per customer's receivable rows (whether a customer is split
    depends on all of them); SQLite has one writer anyway."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for customer_id in sorted(set(customer_ids)):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7131, customer_id])


def aggregates_apply(deltas: Deltas) -> None:
    """Add ``deltas`` to the stored rows, in the caller's transaction."""
    from kehu.analytics.models import CustomerReceivable

    with transaction.atomic(savepoint=False):
        for table in (SALES, PRODUCTS, DAYS, MONTHS):
            _upsert(table, deltas.nonzero(table))
        for table in (OPPORTUNITIES, EXPENSES):
            _upsert_dropping_empty(table, deltas.nonzero(table))
        customer_rows = deltas.nonzero(CUSTOMERS)
        if not customer_rows:
            return
        _lock_customers(key[0] for key in customer_rows)
        debtors: dict[tuple, list[int]] = defaultdict(lambda: [0])
        changed: set[int] = set()
        gone: list[tuple] = []
        for customer_id, owner_id, department, amount in _upsert(
            CUSTOMERS, customer_rows, returning=True
        ):
            before = amount - customer_rows[(customer_id, owner_id, department)][0]
            if before == 0 and amount != 0:
                debtors[(owner_id, department)][0] += 1
                changed.add(customer_id)
            elif amount == 0:
                debtors[(owner_id, department)][0] -= 1
                changed.add(customer_id)
                gone.append((customer_id, owner_id, department))
        for customer_id, owner_id, department in gone:
            CustomerReceivable.objects.filter(
                customer_id=customer_id, owner_id=owner_id, department_key=department, cents=0
            ).delete()
        _upsert(GROUPS, {k: v for k, v in debtors.items() if v[0]})
        if changed:
            _split_refresh(changed)


def _split_refresh(customer_ids: Iterable[int]) -> None:
    """Mark the customers that now have several rows (or no longer have)."""
    from django.db.models import Count

    from kehu.analytics.models import CustomerReceivable

    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        several = list(
            CustomerReceivable.objects.filter(customer_id__in=chunk)
            .values("customer_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .values_list("customer_id", flat=True)
        )
        CustomerReceivable.objects.filter(customer_id__in=several, split=False).update(split=True)
        CustomerReceivable.objects.filter(customer_id__in=chunk, split=True).exclude(
            customer_id__in=several
        ).update(split=False)


# --- the services' side ---------------------------------------------------------------------


@dataclass
class Tracked:
    """The documents whose contributions are compared before and after the change; a
    document created inside the block is added to these lists."""

    contracts: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    opportunities: list[int] = field(default_factory=list)
    expenses: list[int] = field(default_factory=list)

    def contributions(self, *, unplanned: dict | None = None) -> Deltas:
        deltas = _contract_contributions(self.contracts, lock=True, unplanned=unplanned)
        for other in (
            _order_contributions(self.orders, lock=True),
            _opportunity_contributions(self.opportunities, lock=True),
            _expense_contributions(self.expenses, lock=True),
        ):
            deltas = deltas.combine(other, 1)
        return deltas


@contextmanager
def aggregates_tracked(
    *,
    contracts: Iterable[int] = (),
    orders: Iterable[int] = (),
    opportunities: Iterable[int] = (),
    expenses: Iterable[int] = (),
) -> Iterator[Tracked]:
    """Keep the aggregates right across a change of these contracts, orders, opportunities
    and expense claims.

    Call it inside the service's transaction after the documents are locked (they are
    locked here too). Nothing is written if the block raises.
    """
    tracked = Tracked(list(contracts), list(orders), list(opportunities), list(expenses))
    before = tracked.contributions()
    yield tracked
    unplanned: dict[int, tuple | None] = {}
    after = tracked.contributions(unplanned=unplanned)
    aggregates_apply(after - before)
    _unplanned_store(unplanned)


@contextmanager
def aggregates_opportunities_tracked(*, opportunity_ids: list[int]) -> Iterator[None]:
    """``aggregates_tracked`` for the opportunity services
    (``kehu.customers.services.OPPORTUNITY_TRACKERS``): ``opportunity_ids`` is read again at
    the end, so an opportunity created inside the block is counted once its id is appended."""
    with aggregates_tracked(opportunities=opportunity_ids) as tracked:
        yield
        tracked.opportunities = list(opportunity_ids)


def _unplanned_store(states: dict[int, tuple | None]) -> None:
    """Each contract's ``ContractWithoutPlan`` row as it is now (the contracts are locked)."""
    from kehu.analytics.models import ContractWithoutPlan

    if not states:
        return
    gone = [pk for pk, state in states.items() if state is None]
    if gone:
        ContractWithoutPlan.objects.filter(contract_id__in=gone).delete()
    rows = [
        ContractWithoutPlan(
            contract_id=pk, owner_id=state[0], department_id=state[1], signed_on=state[2]
        )
        for pk, state in sorted(states.items())
        if state is not None
    ]
    if rows:
        ContractWithoutPlan.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["contract"],
            update_fields=["owner", "department", "signed_on"],
        )


def aggregates_transition(
    *,
    contract_id: int | None = None,
    order_id: int | None = None,
    before: str,
    after: str,
    fields: Iterable[str] = (),
):
    """``aggregates_tracked`` for a status change that can change what the document counts
    for, else a no-op: an order counts unless cancelled; a contract's amount counts in
    force or completed, its plan matters in force, completed or terminated, its month is
    the signing date."""
    if order_id is not None and "cancelled" in (before, after):
        return aggregates_tracked(orders=[order_id])
    if contract_id is not None and (
        "signed_on" in fields
        or (before in COUNTED_CONTRACT_STATUSES) != (after in COUNTED_CONTRACT_STATUSES)
        or (before in BILLABLE_CONTRACT_STATUSES) != (after in BILLABLE_CONTRACT_STATUSES)
    ):
        return aggregates_tracked(contracts=[contract_id])
    return nullcontext()


@contextmanager
def aggregates_customers_tracked(*, customer_ids: Iterable[int]) -> Iterator[Tracked]:
    """``aggregates_tracked`` for every contract of these customers (a merge moves them
    from one customer to the other: what each customer owes moves with them)."""
    from kehu.sales.models import Contract

    ids = list(
        Contract._base_manager.filter(customer_id__in=list(customer_ids))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    with aggregates_tracked(contracts=ids) as tracked:
        yield tracked


def collections_count(
    *,
    amount: Decimal,
    on: datetime.date,
    owner_id: int,
    department_id: int | None,
) -> None:
    """Money received (a confirmed payment or reversal) or paid back (a refund: negative)."""
    deltas = Deltas()
    deltas.add(SALES, (owner_id, department_id or 0, _month(on)), 0, cents(amount))
    aggregates_apply(deltas)


# --- the set-based rebuild ------------------------------------------------------------------


def _sql(queryset) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def _money_cents(column: str) -> str:
    # SQLite sums NUMERIC columns as floating point: round back to whole cents.
    return f"CAST(ROUND({column} * 100) AS BIGINT)"


def _insert(table: _Table, select_sql: str, params: list, *, add: bool = False) -> None:
    """Rows of ``select_sql`` (the keys, the department, the sums, the constants, in the
    order of ``table``'s columns) into ``table``; ``add`` adds to rows that exist (SQLite
    needs the WHERE to read ON CONFLICT as the upsert clause)."""
    quote = connection.ops.quote_name
    extra = ["department_id"] if "department_key" in table.keys else []
    constants = [column for column, _value in table.constants]
    columns = ", ".join(quote(c) for c in [*table.keys, *extra, *table.values, *constants])
    conflict = ""
    if add:
        updates = ", ".join(
            f"{quote(c)} = {quote(table.db_table)}.{quote(c)} + excluded.{quote(c)}"
            for c in table.values
        )
        keys = ", ".join(quote(c) for c in table.keys)
        conflict = f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(table.db_table)} ({columns}) "
            f"SELECT * FROM ({select_sql}) s WHERE 1 = 1{conflict}",
            params,
        )


def _opportunities_insert() -> None:
    """The funnel: opportunities not deleted, by stage, owner and department."""
    from django.db.models import Count, F, Sum

    from kehu.customers.models import Opportunity

    sql, params = _sql(
        Opportunity.objects.annotate(
            g_stage=F("stage_id"), g_owner=F("owner_id"), g_department=F("department_id")
        )
        .order_by()
        .values("g_stage", "g_owner", "g_department")
        .annotate(s_count=Count("id"), s_amount=Sum("amount"))
    )
    _insert(
        OPPORTUNITIES,
        "SELECT g_stage, g_owner, COALESCE(g_department, 0), g_department, s_count, "
        f"{_money_cents('s_amount')} FROM ({sql}) g",
        params,
    )


def _expenses_insert() -> None:
    """Expenses: claims approved or paid, by category, claimant, department and month of
    the expense."""
    from django.db.models import Count, F, Sum
    from django.db.models.functions import TruncMonth

    from kehu.finance.models import ExpenseClaim

    sql, params = _sql(
        ExpenseClaim.objects.filter(status__in=COUNTED_EXPENSE_STATUSES)
        .annotate(
            g_category=F("category_id"),
            g_owner=F("owner_id"),
            g_department=F("department_id"),
            g_month=TruncMonth("spent_on"),
        )
        .order_by()
        .values("g_category", "g_owner", "g_department", "g_month")
        .annotate(s_count=Count("id"), s_amount=Sum("amount"))
    )
    _insert(
        EXPENSES,
        "SELECT g_category, g_owner, COALESCE(g_department, 0), g_month, g_department, "
        f"s_count, {_money_cents('s_amount')} FROM ({sql}) g",
        params,
    )


def aggregates_funnel_rebuild() -> int:
    """Recompute only the funnel's rows (``OpportunityFigure``) from the opportunities: for
    bulk loads of customers and opportunities (``manage.py generate_customers``), which
    write no contracts, orders or claims. Returns the number of rows."""
    from kehu.analytics.models import OpportunityFigure

    quote = connection.ops.quote_name
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"LOCK TABLE {quote(OPPORTUNITIES.db_table)} IN EXCLUSIVE MODE")
            cursor.execute(f"DELETE FROM {quote(OPPORTUNITIES.db_table)}")
        _opportunities_insert()
        return OpportunityFigure.objects.count()


def aggregates_rebuild() -> dict[str, int]:
    """Recompute every stored aggregate from the documents, in one transaction.

    A few INSERT … SELECT statements (the documents are summed by the database, nothing is
    loaded into Python), so it runs in minutes at millions of documents. Used as a repair
    (``manage.py aggregates_rebuild``, the daily analytics refresh), after the demo loads
    and after ``manage.py generate``. Returns the number of rows per table.
    """
    from django.db.models import Count, F, Q, Sum, Value, Window
    from django.db.models.functions import Coalesce, TruncMonth

    from kehu.core.money import MoneyField
    from kehu.finance.models import (
        Payment,
        PaymentStatus,
        ReceivableInstalment,
        Refund,
        RefundStatus,
    )
    from kehu.sales.models import Contract, OrderLine

    quote = connection.ops.quote_name
    zero = Value(ZERO, output_field=MoneyField())

    def grouped(queryset, *, month: str, amount: str) -> tuple[str, list]:
        """g0…g4: owner, department key, department, month, the amount in cents."""
        inner = (
            queryset.annotate(
                g_owner=F("owner_id"), g_department=F("department_id"), g_month=TruncMonth(month)
            )
            .order_by()
            .values("g_owner", "g_department", "g_month")
            .annotate(s_amount=Sum(amount))
        )
        sql, params = _sql(inner)
        return (
            "SELECT g_owner AS g0, COALESCE(g_department, 0) AS g1, g_department AS g2, "
            f"g_month AS g3, {_money_cents('s_amount')} AS g4 FROM ({sql}) g",
            params,
        )

    with transaction.atomic():
        from kehu.analytics.models import ContractWithoutPlan

        unplanned_table = quote(ContractWithoutPlan._meta.db_table)
        tables = [quote(t.db_table) for t in TABLES] + [unplanned_table]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Services wait for the rebuild instead of adding to rows it replaces.
                cursor.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")

        # Sales figures: contracts signed, then payments and refunds added to them.
        contracts = Contract.objects.filter(
            status__in=COUNTED_CONTRACT_STATUSES, signed_on__isnull=False
        )
        sql, params = grouped(contracts, month="signed_on", amount="total_amount")
        _insert(SALES, f"SELECT g0, g1, g3, g2, g4, 0 FROM ({sql}) s0", params)
        for queryset, date_field, sign in (
            (Payment.objects.filter(status=PaymentStatus.CONFIRMED), "received_on", 1),
            (Refund.objects.filter(status=RefundStatus.APPROVED), "refunded_on", -1),
        ):
            sql, params = grouped(queryset, month=date_field, amount="amount")
            _insert(
                SALES, f"SELECT g0, g1, g3, g2, 0, {sign} * g4 FROM ({sql}) s0", params, add=True
            )

        # Contracts in force (or that were) without a plan.
        sql, params = _sql(
            Contract.objects.filter(
                status__in=BILLABLE_CONTRACT_STATUSES, instalments__isnull=True
            ).values_list("pk", "owner_id", "department_id", "signed_on")
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {unplanned_table} "
                "(contract_id, owner_id, department_id, signed_on) "
                f"SELECT * FROM ({sql}) s",
                params,
            )

        _opportunities_insert()
        _expenses_insert()

        # Product figures: lines of orders that count.
        lines = (
            OrderLine.objects.filter(order__deleted_at__isnull=True)
            .exclude(order__status="cancelled")
            .annotate(
                g_product=F("product_id"),
                g_owner=F("order__owner_id"),
                g_department=F("order__department_id"),
                g_month=TruncMonth("order__order_date"),
            )
            .order_by()
            .values("g_product", "g_owner", "g_department", "g_month")
            .annotate(
                s_amount=Sum("subtotal"),
                s_quantity=Sum("quantity"),
                s_orders=Count("order_id", distinct=True),
            )
        )
        sql, params = _sql(lines)
        _insert(
            PRODUCTS,
            f"SELECT g_product, g_owner, COALESCE(g_department, 0), g_month, g_department, "
            f"{_money_cents('s_amount')}, CAST(ROUND(s_quantity * 1000) AS BIGINT), s_orders "
            f"FROM ({sql}) g",
            params,
        )

        # Receivables: every open instalment's outstanding part, settled in due-date order
        # by the contract's money received (a running total per contract), in a scratch
        # table that the four receivable tables are summed from.
        open_contracts = Contract.objects.filter(
            Q(ledger__isnull=True)
            | Q(total_amount__gt=F("ledger__confirmed_amount") - F("ledger__refunded_amount"))
        )
        instalments = (
            ReceivableInstalment.objects.filter(contract__in=open_contracts.values("pk"))
            .annotate(
                r_owner=F("contract__owner_id"),
                r_department=F("contract__department_id"),
                r_customer=F("contract__customer_id"),
                r_due=F("due_date"),
                r_month=TruncMonth("due_date"),
                r_amount=F("amount"),
                r_through=Window(
                    Sum("amount"),
                    partition_by=[F("contract_id")],
                    order_by=[F("due_date").asc(), F("sequence").asc()],
                ),
                r_received=Coalesce(F("contract__ledger__confirmed_amount"), zero)
                - Coalesce(F("contract__ledger__refunded_amount"), zero),
            )
            .order_by()
            .values(
                "r_owner",
                "r_department",
                "r_customer",
                "r_due",
                "r_month",
                "r_amount",
                "r_through",
                "r_received",
            )
        )
        sql, params = _sql(instalments)
        left = "(i.r_received - (i.r_through - i.r_amount))"
        scratch = quote("analytics_rebuild_dues")
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {scratch}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {scratch} AS SELECT * FROM ("
                f"SELECT i.r_owner AS o, COALESCE(i.r_department, 0) AS k, i.r_department AS d, "
                f"i.r_customer AS cu, i.r_due AS due, i.r_month AS m, "
                f"CAST(ROUND((CASE WHEN {left} < 0.005 THEN i.r_amount "
                f"WHEN {left} > i.r_amount - 0.005 THEN 0 "
                f"ELSE i.r_amount - {left} END) * 100) AS BIGINT) AS c "
                f"FROM ({sql}) i) x WHERE c > 0",
                params,
            )
        _insert(DAYS, f"SELECT o, k, due, d, SUM(c) FROM {scratch} GROUP BY o, k, due, d", [])
        _insert(MONTHS, f"SELECT o, k, m, d, SUM(c) FROM {scratch} GROUP BY o, k, m, d", [])
        _insert(
            CUSTOMERS,
            f"SELECT cu, o, k, d, SUM(c), FALSE FROM {scratch} GROUP BY cu, o, k, d",
            [],
        )
        customers = quote(CUSTOMERS.db_table)
        groups_sql = (
            f"SELECT owner_id, department_key, department_id, COUNT(*) FROM {customers} "
            "GROUP BY owner_id, department_key, department_id"
        )
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {scratch}")
            cursor.execute(
                f"UPDATE {customers} SET split = TRUE WHERE customer_id IN ("
                f"SELECT customer_id FROM {customers} GROUP BY customer_id HAVING COUNT(*) > 1)"
            )
        _insert(GROUPS, groups_sql, [])
        counts: dict[str, int] = {}
        with connection.cursor() as cursor:
            for each in TABLES:
                cursor.execute(f"SELECT COUNT(*) FROM {quote(each.db_table)}")
                counts[each.model_name] = cursor.fetchone()[0]
            cursor.execute(f"SELECT COUNT(*) FROM {unplanned_table}")
            counts["ContractWithoutPlan"] = cursor.fetchone()[0]
    with connection.cursor() as cursor:
        # Fresh statistics, so the planners pick the tables' indexes (SQLite has none
        # until ANALYZE runs).
        for table in tables:
            cursor.execute(f"ANALYZE {table}")
    return counts
