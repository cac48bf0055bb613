"""Scoped reads and reports of the finance module.

Instalments are settled in due-date order by the money a contract has received (confirmed
payments minus approved refunds): an instalment's received and outstanding amounts and its
status follow from the ledger and are never stored, so they cannot disagree with it.
"""

from __future__ import annotations

import datetime
import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, overload

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from kehu.approvals.models import ApprovalRequest, ApprovalStatus
from kehu.core.dates import month_end, month_start
from kehu.core.money import MoneyField, from_cents, quantize_money
from kehu.core.permissions import require_perm
from kehu.core.scope import get_visible_or_404, visible_to
from kehu.finance.models import (
    ContractLedger,
    ExpenseClaim,
    ExpenseStatus,
    InstalmentStatus,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
    ReceivableInstalment,
    Refund,
    RefundStatus,
)
from kehu.sales.models import Contract

ZERO = Decimal("0.00")
ZERO_VALUE = Value(ZERO, output_field=MoneyField())
# Half a cent: on SQLite decimals are added as floats, so comparisons allow for it.
HALF_CENT = Decimal("0.005")


# --- lists ----------------------------------------------------------------------------------


def payment_list_visible_to(*, user) -> QuerySet[Payment]:
    require_perm(user, "finance.view")
    return visible_to(
        Payment.objects.select_related(
            "contract", "contract__customer", "owner", "instalment", "reverses", "confirmed_by"
        ),
        user,
    )


def payment_get_for(*, user, pk) -> Payment:
    return get_visible_or_404(payment_list_visible_to(user=user), user, pk=pk)


def invoice_list_visible_to(*, user) -> QuerySet[Invoice]:
    require_perm(user, "finance.view")
    return visible_to(
        Invoice.objects.select_related("contract", "contract__customer", "owner", "issued_by"),
        user,
    )


def invoice_get_for(*, user, pk) -> Invoice:
    return get_visible_or_404(invoice_list_visible_to(user=user), user, pk=pk)


def refund_list_visible_to(*, user) -> QuerySet[Refund]:
    require_perm(user, "finance.view")
    return visible_to(
        Refund.objects.select_related("contract", "contract__customer", "payment", "owner"), user
    )


def refund_get_for(*, user, pk) -> Refund:
    return get_visible_or_404(refund_list_visible_to(user=user), user, pk=pk)


def expense_list_visible_to(*, user) -> QuerySet[ExpenseClaim]:
    require_perm(user, "finance.view")
    return visible_to(
        ExpenseClaim.objects.select_related(
            "owner", "department", "category", "customer", "contract"
        ),
        user,
    )


def expense_get_for(*, user, pk) -> ExpenseClaim:
    return get_visible_or_404(expense_list_visible_to(user=user), user, pk=pk)


def contracts_visible_to(*, user) -> QuerySet[Contract]:
    require_perm(user, "finance.view")
    return visible_to(Contract.objects.all(), user)


# --- one contract ---------------------------------------------------------------------------


@dataclass
class InstalmentState:
    instalment: ReceivableInstalment
    received: Decimal
    outstanding: Decimal
    status: str
    days_overdue: int


@dataclass
class ContractMoney:
    total: Decimal
    confirmed: Decimal
    refunded: Decimal
    received: Decimal
    invoiced: Decimal
    outstanding: Decimal
    overdue: Decimal
    pending_payments: Decimal
    planned: Decimal
    instalments: list[InstalmentState] = field(default_factory=list)


def instalment_status(*, outstanding: Decimal, received: Decimal, days_past_due: int) -> str:
    """Received in full; else overdue once past its due date; else partly received or not."""
    if outstanding <= 0:
        return InstalmentStatus.RECEIVED
    if days_past_due > 0:
        return InstalmentStatus.OVERDUE
    if received > 0:
        return InstalmentStatus.PARTLY_RECEIVED
    return InstalmentStatus.PENDING


def _state(instalment, *, received_before: Decimal, received: Decimal, today) -> InstalmentState:
    """``instalment``'s share of ``received`` once earlier instalments took ``received_before``."""
    paid = min(max(received - received_before, ZERO), instalment.amount)
    outstanding = instalment.amount - paid
    days = (today - instalment.due_date).days
    status = instalment_status(outstanding=outstanding, received=paid, days_past_due=days)
    return InstalmentState(instalment, paid, outstanding, status, max(days, 0))


def _settle(instalments, received: Decimal, today: datetime.date) -> list[InstalmentState]:
    """Spread ``received`` over instalments in due-date order."""
    states = []
    before = ZERO
    for instalment in sorted(instalments, key=lambda i: (i.due_date, i.sequence)):
        states.append(_state(instalment, received_before=before, received=received, today=today))
        before += instalment.amount
    return states


def contract_money(*, contract: Contract, today: datetime.date | None = None) -> ContractMoney:
    """Everything finance knows about one contract (the caller has checked scope)."""
    return contracts_money(contracts=[contract], today=today)[0]


def contracts_money(
    *, contracts: Sequence[Contract], today: datetime.date | None = None
) -> list[ContractMoney]:
    """``ContractMoney`` of each of ``contracts`` (the caller has checked scope), in three
    queries however many: ledgers, instalments, pending payments."""
    today = today or timezone.localdate()
    ids = [c.pk for c in contracts]
    ledgers = {row.pk: row for row in ContractLedger.objects.filter(contract_id__in=ids)}
    instalments: dict[int, list[ReceivableInstalment]] = defaultdict(list)
    for row in ReceivableInstalment.objects.filter(contract_id__in=ids):
        instalments[row.contract_id].append(row)
    pending = dict(
        Payment.objects.filter(contract_id__in=ids, status=PaymentStatus.PENDING)
        .values("contract_id")
        .annotate(total=Sum("amount"))
        .values_list("contract_id", "total")
        .order_by()
    )
    summaries = []
    for contract in contracts:
        ledger = ledgers.get(contract.pk)
        confirmed = ledger.confirmed_amount if ledger else ZERO
        refunded = ledger.refunded_amount if ledger else ZERO
        received = confirmed - refunded
        states = _settle(instalments[contract.pk], received, today)
        summaries.append(
            ContractMoney(
                total=contract.total_amount,
                confirmed=confirmed,
                refunded=refunded,
                received=received,
                invoiced=ledger.invoiced_amount if ledger else ZERO,
                outstanding=contract.total_amount - received,
                overdue=sum(
                    (s.outstanding for s in states if s.status == InstalmentStatus.OVERDUE), ZERO
                ),
                pending_payments=pending.get(contract.pk) or ZERO,
                planned=sum((s.instalment.amount for s in states), ZERO),
                instalments=states,
            )
        )
    return summaries


# --- reports --------------------------------------------------------------------------------


def _instalment_states(
    *,
    contracts: QuerySet[Contract],
    today: datetime.date,
    due_before: datetime.date | None = None,
    with_contracts: bool = True,
):
    """(contract, InstalmentState) for every instalment of ``contracts``.

    One query: a running total per contract (window function) against the ledger's received
    amount gives each instalment's settled part without loading payments. ``due_before``
    keeps instalments due before that day; the running totals stay right because money
    settles instalments in due-date order, so the earlier ones are all kept. Without
    ``with_contracts`` the contract (and its customer, owner, department) is not read: the
    caller loads it for the few states it keeps, and the first item of each pair is None.
    """
    rows = ReceivableInstalment.objects.filter(contract__in=contracts)
    if due_before is not None:
        rows = rows.filter(due_date__lt=due_before)
    rows = rows.annotate(
        cumulative=Window(
            Sum("amount"),
            partition_by=[F("contract_id")],
            order_by=[F("due_date").asc(), F("sequence").asc()],
        ),
        confirmed=F("contract__ledger__confirmed_amount"),
        refunded=F("contract__ledger__refunded_amount"),
    ).order_by("due_date", "contract_id", "sequence")
    if with_contracts:
        rows = rows.select_related(
            "contract", "contract__customer", "contract__owner", "contract__department"
        )
    for row in rows:
        received = (row.confirmed or ZERO) - (row.refunded or ZERO)
        state = _state(
            row, received_before=row.cumulative - row.amount, received=received, today=today
        )
        yield (row.contract if with_contracts else None), state


AGING_BUCKETS = ("not_due", "d0_30", "d31_60", "d61_90", "d90_plus")


def aging_bucket(days_past_due: int) -> str:
    """Days past the due date → bucket; due today is 0 days (the 0–30 bucket)."""
    if days_past_due < 0:
        return "not_due"
    if days_past_due <= 30:
        return "d0_30"
    if days_past_due <= 60:
        return "d31_60"
    if days_past_due <= 90:
        return "d61_90"
    return "d90_plus"


AGING_GROUP_FIELDS = {
    "customer": "contract__customer",
    "owner": "contract__owner",
    "department": "contract__department",
}


def _aging_sql(
    *, user, group: str, today: datetime.date, customer_ids: list[int] | None = None
) -> tuple[str, list]:
    """SQL of one row per open instalment in scope: ``grp`` (the group's id), ``due`` and
    ``outstanding``. Received money (the ledger's) settles instalments in due-date order: a
    running total per contract (window function) says what the earlier ones took. Only
    contracts that still owe money are read."""
    contracts = _with_outstanding(contracts_visible_to(user=user))
    instalments = ReceivableInstalment.objects.all()
    if customer_ids is not None:
        # Also on the instalments' own join, so the plan starts from these customers.
        contracts = contracts.filter(customer_id__in=customer_ids)
        instalments = instalments.filter(contract__customer_id__in=customer_ids)
    inner = (
        instalments.filter(contract__in=contracts.values("pk"))
        .annotate(
            aging_group=F(group),
            aging_due=F("due_date"),
            aging_amount=F("amount"),
            aging_through=Window(
                Sum("amount"),
                partition_by=[F("contract_id")],
                order_by=[F("due_date").asc(), F("sequence").asc()],
            ),
            aging_received=Coalesce(F("contract__ledger__confirmed_amount"), ZERO_VALUE)
            - Coalesce(F("contract__ledger__refunded_amount"), ZERO_VALUE),
        )
        .order_by()
        .values("aging_group", "aging_due", "aging_amount", "aging_through", "aging_received")
    )
    sql, params = inner.query.sql_with_params()
    # left = money left for this instalment after the earlier ones took theirs. Amounts
    # are whole cents; half a cent of slack absorbs SQLite's floating-point sums.
    left = "(i.aging_received - (i.aging_through - i.aging_amount))"
    rows = f"""
        SELECT i.aging_group AS grp, i.aging_due AS due,
               CASE WHEN {left} < 0.005 THEN i.aging_amount
                    WHEN {left} > i.aging_amount - 0.005 THEN 0
                    ELSE i.aging_amount - {left} END AS outstanding
        FROM ({sql}) i"""
    return rows, list(params)


def _aging_columns(today: datetime.date) -> tuple[str, list]:
    """``SUM`` per bucket of ``AGING_BUCKETS`` by due date against ``today``, then total."""
    day = datetime.timedelta(days=1)
    adapt = connection.ops.adapt_datefield_value
    bounds = {
        "not_due": ("due > %s", [today]),
        "d0_30": ("due <= %s AND due >= %s", [today, today - 30 * day]),
        "d31_60": ("due < %s AND due >= %s", [today - 30 * day, today - 60 * day]),
        "d61_90": ("due < %s AND due >= %s", [today - 60 * day, today - 90 * day]),
        "d90_plus": ("due < %s", [today - 90 * day]),
    }
    columns, params = [], []
    for bucket in AGING_BUCKETS:
        condition, dates = bounds[bucket]
        columns.append(f"SUM(CASE WHEN {condition} THEN outstanding ELSE 0 END) AS {bucket}")
        params += [adapt(d) for d in dates]
    columns.append("SUM(outstanding) AS total")
    return ", ".join(columns), params


def _money(value) -> Decimal:
    # SQLite sums NUMERIC columns as floats: back to cents.
    return quantize_money(Decimal(str(value or 0)))


def receivables_aging(
    *,
    user,
    group_by: str = "customer",
    today: datetime.date | None = None,
    limit: int | None = None,
    offset: int = 0,
    live: bool = False,
) -> list[dict]:
    """Outstanding instalment amounts by age, per customer, owner or department.

    Each row: ``key``, ``label``, one amount per bucket of ``AGING_BUCKETS`` and ``total``.
    Sorted by total, largest first (customers tied by id, the stored index's order; owners
    and departments by name); ``offset`` skips rows and ``limit`` keeps the next ones (a
    page). Contracts without a plan are not aged (see ``contracts_without_plan``).

    Owners and departments, and the ``limit`` largest customers (the page, the dashboard),
    are read from the stored aggregates (``kehu.analytics.aggregates``): a bounded number
    of rows, then the few customers' own contracts. Every customer (the API, the export) or
    ``live`` is one query over the open instalments in scope.
    """
    if group_by not in AGING_GROUP_FIELDS:
        raise ValueError(group_by)
    today = today or timezone.localdate()
    if live or (group_by == "customer" and limit is None):
        return _receivables_aging_live(
            user=user, group_by=group_by, today=today, limit=limit, offset=offset
        )
    from kehu.analytics.selectors import (
        receivables_buckets_stored,
        receivables_top_customers_stored,
    )

    if group_by == "customer":
        top = receivables_top_customers_stored(user=user, limit=limit or 0, offset=offset)
        if not top:
            return []
        return _receivables_aging_live(
            user=user,
            group_by=group_by,
            today=today,
            limit=limit,
            customer_ids=[customer_id for customer_id, _cents in top],
        )
    sums = receivables_buckets_stored(user=user, today=today, group_by=GROUP_COLUMNS[group_by])
    found = [
        (key, *(values[b] for b in AGING_BUCKETS), values["total"])
        for key, values in sums.items()
        if values["total"] > 0
    ]
    found.sort(key=lambda row: (-row[-1], row[0] is None, row[0] or 0))
    rows = _aging_rows(group_by, found, None)
    return rows[offset:] if limit is None else rows[offset : offset + limit]


class _AgingCustomerRows(Sequence):
    """Every customer's aging row, as a paginator's object list: the length is the number of
    debtors in scope (given: the stored figures count them), and a slice reads only its own
    rows (``receivables_aging`` with that ``offset`` and ``limit``)."""

    def __init__(self, *, user, today: datetime.date, debtors: int):
        self.user, self.today, self.debtors = user, today, debtors

    def __len__(self) -> int:
        return self.debtors

    @overload
    def __getitem__(self, index: int) -> dict: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict]: ...

    def __getitem__(self, index):
        if not isinstance(index, slice):
            found = self[index : index + 1 or None]
            if not found:
                raise IndexError(index)
            return found[0]
        start, stop, step = index.indices(self.debtors)
        if step != 1:
            raise ValueError("step")
        if stop <= start:
            return []
        return receivables_aging(user=self.user, today=self.today, limit=stop - start, offset=start)


def receivables_aging_pageable(
    *, user, group_by: str, today: datetime.date, debtors: int
) -> Sequence[dict]:
    """The rows of ``receivables_aging`` for a paginator to slice. Customers (many) are
    read a slice at a time from the stored aggregates, so a page costs the same whatever
    the number of debtors (``debtors``: how many, ``receivables_aging_totals``' count);
    owners and departments are few and read whole."""
    if group_by == "customer":
        return _AgingCustomerRows(user=user, today=today, debtors=debtors)
    return receivables_aging(user=user, group_by=group_by, today=today)


GROUP_COLUMNS = {"owner": "owner", "department": "department"}


NAME_BATCH = 5000  # customer ids per name query (within SQLite's 32,766 parameters)


def _aging_rows(group_by: str, found: list, limit: int | None) -> list[dict]:
    from kehu.customers.models import Customer
    from kehu.hr.models import Department
    from kehu.system.models import User

    keys = [row[0] for row in found if row[0] is not None]
    names: dict[Any, str]
    if group_by == "customer":
        # Only the names: every debtor's whole row (the export: 490,000 customers at 1M)
        # cost half a minute of CPU and hundreds of MB.
        names = {}
        for start in range(0, len(keys), NAME_BATCH):
            names.update(
                Customer.all_objects.filter(pk__in=keys[start : start + NAME_BATCH])
                .order_by()
                .values_list("pk", "name")
            )
    else:
        model = User.objects if group_by == "owner" else Department.objects
        names = {pk: str(obj) for pk, obj in model.in_bulk(keys).items()}
    rows = []
    for grp, *amounts in found:
        values = [_money(a) for a in amounts]
        rows.append(
            {
                "key": grp,
                "label": names.get(grp, ""),
                **dict(zip(AGING_BUCKETS, values, strict=False)),
                "total": values[-1],
            }
        )
    if group_by == "customer":
        # As the SQL and the stored index order them, so that pages of customers read
        # either way meet without a gap or an overlap at a tie.
        rows.sort(key=lambda r: (-r["total"], r["key"]))
    else:
        rows.sort(key=lambda r: (-r["total"], r["label"]))
    return rows[:limit] if limit is not None else rows


def _aging_grouped_sql(
    *, user, group_by: str, today: datetime.date, customer_ids: list[int] | None = None
) -> tuple[str, list]:
    """``grp`` and its buckets, one row per group owing money, largest total first."""
    rows_sql, params = _aging_sql(
        user=user, group=AGING_GROUP_FIELDS[group_by], today=today, customer_ids=customer_ids
    )
    columns, column_params = _aging_columns(today)
    sql = (
        f"SELECT grp, {columns} FROM ({rows_sql}) o GROUP BY grp "
        "HAVING SUM(outstanding) > 0.005 ORDER BY ROUND(SUM(outstanding), 2) DESC, grp"
    )
    return sql, column_params + params


def receivables_aging_stream(
    *, user, group_by: str = "customer", today: datetime.date | None = None
) -> Iterator[dict]:
    """Every row of ``receivables_aging`` in its order, for a download: customers (half a
    million debtors at 1,000,000 customers) are fetched from a server-side cursor and named
    a batch at a time, so memory stays flat whatever their number."""
    if group_by not in AGING_GROUP_FIELDS:
        raise ValueError(group_by)
    today = today or timezone.localdate()
    if group_by != "customer":
        yield from receivables_aging(user=user, group_by=group_by, today=today)
        return
    sql, params = _aging_grouped_sql(user=user, group_by=group_by, today=today)
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while found := cursor.fetchmany(NAME_BATCH):
            yield from _aging_rows(group_by, found, None)


def _receivables_aging_live(
    *,
    user,
    group_by: str,
    today: datetime.date,
    limit: int | None,
    offset: int = 0,
    customer_ids: list[int] | None = None,
) -> list[dict]:
    """One query summed by the database: its work grows with the open instalments in
    scope (of ``customer_ids`` only, when given), Python's only with the rows returned."""
    sql, params = _aging_grouped_sql(
        user=user, group_by=group_by, today=today, customer_ids=customer_ids
    )
    if group_by == "customer" and limit is not None:
        # Customers are many: cut by the database (in the order the rows are sorted in).
        sql += " LIMIT %s OFFSET %s"
        params += [limit, offset]
        offset = 0
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    rows = _aging_rows(group_by, found, None)
    return rows[offset:] if limit is None else rows[offset : offset + limit]


def receivables_aging_totals(
    *, user, today: datetime.date | None = None, live: bool = False
) -> dict:
    """The whole scope's outstanding money by bucket and in total, and how many customers
    owe it: from the stored aggregates (a bounded number of rows), or ``live`` summed over
    the open instalments in scope."""
    today = today or timezone.localdate()
    if not live:
        from kehu.analytics.selectors import (
            receivables_buckets_stored,
            receivables_debtors_stored,
        )

        sums = receivables_buckets_stored(user=user, today=today).get(None)
        empty = dict.fromkeys([*AGING_BUCKETS, "total"], ZERO)
        return {**(sums or empty), "customers": receivables_debtors_stored(user=user)}
    rows_sql, params = _aging_sql(user=user, group="contract__customer", today=today)
    columns, column_params = _aging_columns(today)
    sql = (
        f"SELECT {columns}, COUNT(DISTINCT CASE WHEN outstanding > 0.005 THEN grp END) "
        f"FROM ({rows_sql}) o"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, column_params + params)
        *amounts, customers = cursor.fetchone()
    values = [_money(a) for a in amounts]
    return {
        **dict(zip(AGING_BUCKETS, values, strict=False)),
        "total": values[-1],
        "customers": customers or 0,
    }


def _with_outstanding(contracts: QuerySet[Contract]) -> QuerySet[Contract]:
    """Contracts that have not received their whole amount (the rest cannot owe anything)."""
    return contracts.filter(
        Q(ledger__isnull=True)
        | Q(
            total_amount__gt=F("ledger__confirmed_amount") - F("ledger__refunded_amount"),
        )
    )


def contracts_without_plan(*, user, newest: int | None = 1000) -> QuerySet[Contract]:
    """Contracts in force (or that were) in scope without a receivable plan: the ``newest``
    by signing date, from the stored list the services keep (an index read, however many
    contracts have a plan); ``newest=None``: all of them, looked up live."""
    from kehu.finance.services import BILLABLE_STATUSES

    if newest is None:
        return contracts_visible_to(user=user).filter(
            status__in=BILLABLE_STATUSES, instalments__isnull=True
        )
    from kehu.analytics.models import ContractWithoutPlan

    ids = list(
        visible_to(ContractWithoutPlan.objects.all(), user)
        .order_by("-signed_on", "-contract_id")
        .values_list("contract_id", flat=True)[:newest]
    )
    return contracts_visible_to(user=user).filter(pk__in=ids)


def contract_reconciliation(*, user, today: datetime.date | None = None) -> QuerySet[Contract]:
    """Contracts in force (or that were) in scope, newest signed first, each with its money
    as annotations: ``rec_received``, ``rec_invoiced``, ``rec_outstanding`` and
    ``rec_overdue``. A queryset, so a page reads its own rows and a download streams: at a
    million customers a finance clerk's scope holds two million contracts.

    Money settles instalments in due-date order, so what is overdue is what fell due before
    ``today`` less what was received (never below zero): the instalment states'
    (``_instalment_states``) sum, without reading the instalments one by one."""
    from kehu.finance.services import BILLABLE_STATUSES

    today = today or timezone.localdate()
    money = MoneyField()
    fell_due = (
        ReceivableInstalment.objects.filter(contract=OuterRef("pk"), due_date__lt=today)
        .order_by()
        .values("contract")
        .annotate(amount=Sum("amount"))
        .values("amount")
    )
    return (
        contracts_visible_to(user=user)
        .filter(status__in=BILLABLE_STATUSES)
        .annotate(
            rec_received=Coalesce(
                F("ledger__confirmed_amount") - F("ledger__refunded_amount"),
                ZERO_VALUE,
                output_field=money,
            ),
            rec_invoiced=Coalesce(F("ledger__invoiced_amount"), ZERO_VALUE, output_field=money),
            rec_outstanding=ExpressionWrapper(
                F("total_amount") - F("rec_received"), output_field=money
            ),
            rec_fell_due=Coalesce(Subquery(fell_due), ZERO_VALUE, output_field=money),
            rec_overdue=Greatest(
                ExpressionWrapper(F("rec_fell_due") - F("rec_received"), output_field=money),
                ZERO_VALUE,
                output_field=money,
            ),
        )
        .select_related("customer", "owner")
        .order_by("-signed_on", "-id")
    )


RECONCILIATION_SUMS = {
    "total": "total_amount",
    "received": "rec_received",
    "invoiced": "rec_invoiced",
    "outstanding": "rec_outstanding",
    "overdue": "rec_overdue",
}


def reconciliation_row(contract: Contract) -> dict:
    """One contract of ``contract_reconciliation`` as the report shows it."""
    return {"contract": contract} | {
        key: _money(getattr(contract, name)) for key, name in RECONCILIATION_SUMS.items()
    }


def reconciliation_download(contracts: QuerySet[Contract]) -> QuerySet[Contract]:
    """``contracts`` reading only what a download writes: a whole customer, owner and
    contract per row was most of the time of a download of hundreds of thousands."""
    return contracts.only(
        "number",
        "title",
        "signed_on",
        "status",
        "currency",
        "total_amount",
        "customer__name",
        "owner__display_name",
        "owner__first_name",
        "owner__last_name",
        "owner__username",
    )


def reconciliation_totals(contracts: QuerySet[Contract]) -> dict[str, Decimal]:
    """The sums of ``contract_reconciliation`` (filtered or not) over all its contracts: one
    query whose work grows with them (callers bound it by counting first)."""
    sums = contracts.order_by().aggregate(
        **{key: Sum(name) for key, name in RECONCILIATION_SUMS.items()}
    )
    return {key: _money(value) for key, value in sums.items()}


def collections_by_month(*, user, start: datetime.date, end: datetime.date) -> list[dict]:
    """Net money received per month: confirmed payments (reversals negative) less refunds.

    Read from the stored sales figures: a month's ``collected`` is these payments less these
    refunds, by the same owner, department and month (``kehu.analytics.aggregates``), so
    received = collected + the month's refunds (few: summed live, per day). A month the
    period cuts (it may start or end mid-month) sums live whichever part of its payments
    spans fewer days up to today: the days inside, or the days outside taken from the whole
    month (for a period ending today, the rest of the month: no payment is dated in the
    future). At 1,000,000 customers this year's payments are 1.6 million rows: 0.5-0.6 s
    summed live.
    """
    from kehu.analytics.models import SalesFigure

    require_perm(user, "finance.view")
    first, last = month_start(start), month_start(end)
    after_last = month_start(last, -1)
    refunds_by_day: dict[datetime.date, Decimal] = {
        refunded_on: amount
        for refunded_on, amount in refund_list_visible_to(user=user)
        .filter(
            status=RefundStatus.APPROVED,
            refunded_on__gte=first,
            refunded_on__lt=after_last,
        )
        .values("refunded_on")
        .annotate(amount=Sum("amount"))
        .order_by()
        .values_list("refunded_on", "amount")
        if refunded_on is not None
    }
    collected = dict(
        visible_to(SalesFigure.objects.all(), user)
        .filter(month__gte=first, month__lt=after_last)
        .values("month")
        .annotate(cents=Sum("collected_cents"))
        .order_by()
        .values_list("month", "cents")
    )
    confirmed = payment_list_visible_to(user=user).filter(status=PaymentStatus.CONFIRMED)

    def paid(since: datetime.date, until: datetime.date) -> Decimal:
        if since > until:
            return ZERO
        total = confirmed.filter(received_on__gte=since, received_on__lte=until).aggregate(
            total=Sum("amount")
        )["total"]
        return quantize_money(total or ZERO)

    def refunds(since: datetime.date, until: datetime.date) -> Decimal:
        return sum((a for day, a in refunds_by_day.items() if since <= day <= until), ZERO)

    day = datetime.timedelta(days=1)
    today = timezone.localdate()

    def past_days(since: datetime.date, until: datetime.date) -> int:
        """The days that can hold payments (none is dated after today)."""
        return max(0, (min(until, today) - since).days + 1)

    rows = []
    month = first
    while month <= last:
        last_day = month_end(month)
        inside_from, inside_to = max(start, month), min(end, last_day)
        whole = from_cents(collected.get(month)) + refunds(month, last_day)
        outside_days = past_days(month, inside_from - day) + past_days(inside_to + day, last_day)
        if inside_from == month and inside_to == last_day:
            received = whole
        elif past_days(inside_from, inside_to) <= outside_days:
            received = paid(inside_from, inside_to)
        else:
            received = whole - paid(month, inside_from - day) - paid(inside_to + day, last_day)
        refunded = quantize_money(refunds(inside_from, inside_to))
        if received or refunded:
            received = quantize_money(received)
            net = received - refunded
            rows.append({"month": month, "received": received, "refunded": refunded, "net": net})
        month = month_start(month, -1)
    return rows


def expenses_by_category(*, user, start: datetime.date, end: datetime.date) -> list[dict]:
    """Approved and paid expense claims by category and department, in category order."""
    from kehu.system.models import DictionaryItem

    rows = list(
        expense_list_visible_to(user=user)
        .filter(
            status__in=[ExpenseStatus.APPROVED, ExpenseStatus.PAID],
            spent_on__gte=start,
            spent_on__lte=end,
        )
        .values("category_id", "department__name")
        .annotate(amount=Sum("amount"), count=Count("id"))
        .order_by()
    )
    categories = DictionaryItem.objects.in_bulk({row["category_id"] for row in rows})
    result = [
        {
            "category": categories[row["category_id"]].display_label,
            "category_id": row["category_id"],
            "department": row["department__name"] or "",
            "amount": quantize_money(row["amount"]),
            "count": row["count"],
        }
        for row in rows
    ]
    order = {pk: (item.sort_order, pk) for pk, item in categories.items()}
    return sorted(result, key=lambda r: (order[r["category_id"]], r["department"]))


# --- integrity, reminders and to-dos --------------------------------------------------------


def ledger_from_rows(*, contract: Contract) -> dict[str, Decimal]:
    """The contract's figures recomputed from the money rows, to check ``ContractLedger``:
    confirmed payments (reversals negative), approved refunds, issued invoices."""

    def total(queryset) -> Decimal:
        return queryset.aggregate(total=Sum("amount"))["total"] or ZERO

    confirmed = total(Payment.objects.filter(contract=contract, status=PaymentStatus.CONFIRMED))
    refunded = total(Refund.objects.filter(contract=contract, status=RefundStatus.APPROVED))
    invoiced = total(Invoice.objects.filter(contract=contract, status=InvoiceStatus.ISSUED))
    return {
        "confirmed_amount": confirmed,
        "refunded_amount": refunded,
        "received_amount": confirmed - refunded,
        "invoiced_amount": invoiced,
    }


def contract_amount_minimum(*, contract: Contract) -> Decimal:
    """The least a contract's amount may become (by an amendment) without breaking the
    finance invariants: what was received or awaits confirmation, and what was invoiced or
    requested."""
    from kehu.finance.services import _invoice_committed, _pending_payments

    ledger = ContractLedger.objects.filter(contract=contract).first()
    received = ledger.received_amount if ledger else ZERO
    return max(received + _pending_payments(contract), _invoice_committed(contract))


def instalments_due_on(*, day: datetime.date, today: datetime.date) -> list[tuple]:
    """(contract, InstalmentState) of instalments due on ``day`` and not received in full,
    on contracts in force, all scopes (for reminders)."""
    from kehu.finance.services import BILLABLE_STATUSES

    contracts = Contract.objects.filter(
        status__in=BILLABLE_STATUSES, instalments__due_date=day
    ).distinct()
    return [
        (contract, state)
        for contract, state in _instalment_states(
            contracts=contracts, today=today, due_before=day + datetime.timedelta(days=1)
        )
        if state.instalment.due_date == day and state.outstanding > 0
    ]


def instalments_overdue(
    *, user, today: datetime.date | None = None, limit: int | None = None
) -> list[InstalmentState]:
    """Overdue instalments of contracts in the user's scope, longest overdue first (then
    the largest outstanding).

    With ``limit``, the first ``limit`` of them: the days that still owe money come oldest
    first from the stored receivables by due date, and only those days' contracts are
    settled, until ``limit`` instalments are found (all of the last day's, so the order
    holds). Without it every open instalment in scope is settled (88 s for a manager's
    home page at 1,000,000 customers)."""
    from kehu.finance.services import BILLABLE_STATUSES

    today = today or timezone.localdate()
    contracts = _with_outstanding(
        contracts_visible_to(user=user).filter(status__in=BILLABLE_STATUSES)
    )

    def overdue_on(days: Q, due_before: datetime.date) -> list[InstalmentState]:
        return [
            state
            for _contract, state in _instalment_states(
                contracts=contracts.filter(days).distinct(),
                today=today,
                due_before=due_before,
                with_contracts=False,
            )
            if state.status == InstalmentStatus.OVERDUE
        ]

    def with_contracts(states: list[InstalmentState]) -> list[InstalmentState]:
        loaded = Contract.objects.select_related("customer", "owner", "department").in_bulk(
            {s.instalment.contract_id for s in states}
        )
        for state in states:
            state.instalment.contract = loaded[state.instalment.contract_id]
        return states

    def order(states: list[InstalmentState]) -> list[InstalmentState]:
        return sorted(states, key=lambda s: (-s.days_overdue, -s.outstanding))

    if limit is None:
        return with_contracts(order(overdue_on(Q(instalments__due_date__lt=today), today)))
    from kehu.analytics.selectors import receivable_days_overdue_stored

    found: list[InstalmentState] = []
    days_owing = receivable_days_overdue_stored(user=user, today=today)
    batch = 1
    while len(found) < limit:
        # Each stored day owes on at least one instalment in scope: a manager's first day
        # fills the list, a salesperson's few instalments take a day each, so batches of
        # days double (1, 2, 4 ...) up to what could still be missing.
        days = set(itertools.islice(days_owing, min(batch, limit - len(found))))
        if not days:
            break
        found += [
            state
            for state in overdue_on(
                Q(instalments__due_date__in=days), max(days) + datetime.timedelta(days=1)
            )
            if state.instalment.due_date in days
        ]
        batch *= 2
    return with_contracts(order(found)[:limit])


def payments_to_confirm(*, user) -> QuerySet[Payment]:
    """Payments awaiting finance's confirmation (those in an approval are decided there)."""
    pending_approval = ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(Payment),
        object_id=OuterRef("pk"),
        status=ApprovalStatus.PENDING,
    )
    return (
        payment_list_visible_to(user=user)
        .filter(status=PaymentStatus.PENDING)
        .exclude(Exists(pending_approval))
        .order_by("received_on", "id")
    )


def invoices_to_issue(*, user) -> QuerySet[Invoice]:
    return (
        invoice_list_visible_to(user=user)
        .filter(status=InvoiceStatus.APPROVED)
        .order_by("updated_at", "id")
    )
