"""Customer reads: scoped lists, the pool, search, due follow-ups, the 360° timeline.

Everything goes through the one data-scope mechanism: an out-of-scope customer is a 404.
Pool customers are the exception on reads: anyone with customers.view may look at them
(that is how a salesperson decides to claim one), but they are listed separately.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import StrIndex, Upper
from django.db.models.lookups import GreaterThan
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.fields import FieldAccess, field_policy_for
from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import scope_q, visible_to
from kehu.customers.models import (
    Contact,
    Customer,
    CustomerEvent,
    FollowUp,
    Opportunity,
    StageKind,
)
from kehu.customers.normalize import name_normalize, phone_normalize

LIST_RELATED = ("owner", "department", "industry", "source", "level")


def _with_related(queryset: QuerySet[Customer]) -> QuerySet[Customer]:
    return queryset.select_related(*LIST_RELATED).prefetch_related("tags")


# What the customer list page shows of each row (its columns, the owner's and level's names);
# the page reads only these, the export and bulk actions the full rows.
LIST_PAGE_FIELDS = (
    "id",
    "name",
    "phone",
    "stage",
    "last_followup_at",
    "next_followup_at",
    "owner__id",
    "owner__username",
    "owner__display_name",
    "owner__first_name",
    "owner__last_name",
    "level__id",
    "level__label",
    "level__label_en",
)


def customer_list_page_rows(queryset: QuerySet[Customer]) -> QuerySet[Customer]:
    """A customer list queryset narrowed to what the list page shows: no other joins or
    columns (the tags: ``customer_tag_names_attach`` on the page's rows)."""
    return (
        queryset.select_related(None)
        .select_related("owner", "level")
        .prefetch_related(None)
        .only(*LIST_PAGE_FIELDS)
    )


def customer_tag_names_attach(customers: list[Customer]) -> None:
    """Set ``tag_names`` ("VIP, 华东"; None without tags) on each customer of a page: one
    query of (customer, tag name) pairs for the page's ids. Not a correlated subquery in
    the list query (PostgreSQL evaluates it for every row an OFFSET skips: page 400 of
    300,000 customers took 0.8 s), nor a prefetch (tag instances for two strings)."""
    names: dict[int, list[str]] = {}
    pairs = (
        Customer.tags.through.objects.filter(customer_id__in=[c.pk for c in customers])
        .order_by("customertag__name")
        .values_list("customer_id", "customertag__name")
    )
    for customer_id, name in pairs:
        names.setdefault(customer_id, []).append(name)
    for customer in customers:
        customer.tag_names = ", ".join(names.get(customer.pk, ())) or None  # type: ignore[attr-defined]


def customer_list_visible_to(*, user) -> QuerySet[Customer]:
    """Owned customers in the user's data scope (the pool is ``pool_list``)."""
    require_perm(user, "customers.view")
    return _with_related(visible_to(Customer.objects.filter(in_pool=False), user))


def pool_list(*, user) -> QuerySet[Customer]:
    """Every customer in the public pool, for anyone with customers.view."""
    require_perm(user, "customers.view")
    return _with_related(Customer.objects.filter(in_pool=True)).order_by("-pool_entered_at", "-id")


def _or_pool(scoped: Q, pool: Q) -> Q:
    # An empty Q means "everything"; OR-ing it would narrow the result to the pool alone.
    return scoped if not scoped else scoped | pool


def customer_readable_q(user) -> Q:
    """In the user's scope, or in the pool."""
    return _or_pool(scope_q(Customer, user), Q(in_pool=True))


def customer_get_for(*, user, pk) -> Customer:
    """One customer the user may read; out of scope and missing are the same 404."""
    require_perm(user, "customers.view")
    try:
        return _with_related(Customer.objects.filter(customer_readable_q(user))).get(pk=pk)
    except (Customer.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("Not found.")) from exc


def customer_get_for_change(*, user, pk) -> Customer:
    """One customer in the user's scope (not merely readable from the pool)."""
    require_perm(user, "customers.view")
    try:
        return _with_related(visible_to(Customer.objects.all(), user)).get(pk=pk)
    except (Customer.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("Not found.")) from exc


def pool_customer_get_for_claim(*, user, pk) -> Customer:
    """A pool customer by id, for claiming; anything else (owned by anyone) is a 404."""
    require_perm(user, "customers.view")
    try:
        return Customer.objects.get(pk=pk, in_pool=True)
    except (Customer.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("Not found.")) from exc


# --- search ---------------------------------------------------------------------------------

_LATIN = re.compile(r"^[a-z]+$")
# A one-character query has neither a trigram nor a bigram to look up: it matches name
# prefixes through B-trees everywhere, and substrings only among roughly the newest ids
# (the newest matches are the first page anyway). Below this many rows the scan covers all.
SHORT_QUERY_SCAN = 50_000


def _prefix_q(field: str, prefix: str) -> Q:
    if connection.vendor == "sqlite":
        # SQLite's LIKE folds case and cannot use the index; a range can.
        return Q(**{f"{field}__gte": prefix, f"{field}__lt": prefix + "\U0010ffff"})
    return Q(**{f"{field}__startswith": prefix})  # PostgreSQL: the varchar_pattern_ops index


def _sql(queryset: QuerySet) -> tuple[str, tuple]:
    sql, params = queryset.order_by().query.sql_with_params()
    return sql, tuple(params)


def _newest_bound(model) -> int:
    last = model._base_manager.aggregate(m=Max("pk"))["m"] or 0
    return last - SHORT_QUERY_SCAN


def _search_terms(*, user, query: str) -> tuple[str, bool, str, list[str], bool]:
    """The query lowered without spaces, whether it is latin letters, its phone digits,
    the digit fields the user may read (3+ digits) and whether e-mail is searched."""
    policy = field_policy_for(user, Customer)
    readable = (FieldAccess.READ, FieldAccess.EDIT)
    lowered = query.lower().replace(" ", "")
    digits = phone_normalize(query) if re.fullmatch(r"[\d\s+()\-]+", query) else ""
    digit_fields = [
        f"{name}_digits"
        for name in ("phone", "mobile")
        if len(digits) >= 3 and policy.get(name, FieldAccess.EDIT) in readable
    ]
    email = "@" in query and policy.get("email", FieldAccess.EDIT) in readable
    return lowered, bool(_LATIN.match(lowered)), digits, digit_fields, email


def _customer_search_parts(
    *, user, query: str, contacts_only: bool = False
) -> list[tuple[str, tuple]]:
    """SELECTs of matching customer ids, each served by an index; the caller unions them.
    ``contacts_only``: just the lookups of contact names."""
    from kehu.customers import textindex

    lowered, latin, digits, digit_fields, email = _search_terms(user=user, query=query)

    text_q = Q(name__icontains=query) | Q(short_name__icontains=query)
    if latin:
        text_q |= Q(name_initials__contains=lowered)
        if len(lowered) >= 2:
            text_q |= Q(name_pinyin__contains=lowered)
    digits_q = Q()
    for name in digit_fields:
        digits_q |= Q(**{f"{name}__contains": digits})
    if email:
        text_q |= Q(email__icontains=query)
    contact_q = Q(name__icontains=query)

    parts = [_sql(Customer.objects.filter(code=query.upper()).values("pk"))]
    contact_parts: list[tuple[str, tuple]] = []
    long_text = len(query) >= textindex.MIN_TRIGRAM
    if long_text and textindex.fts_available():
        fts = textindex.fts_table(textindex.CUSTOMER_TABLE)
        columns = ["name", "short_name"]
        if latin:
            columns += ["name_initials", "name_pinyin"]
        if email:
            columns.append("email")
        select = f"SELECT rowid FROM {fts} WHERE {fts} MATCH %s"
        parts.append((select, (textindex.fts_match(tuple(columns), query),)))
        contact_fts = textindex.fts_table(textindex.CONTACT_TABLE)
        contact_parts.append(
            (
                f"SELECT customer_id FROM {textindex.CONTACT_TABLE} WHERE deleted_at IS NULL "
                f"AND id IN (SELECT rowid FROM {contact_fts} WHERE {contact_fts} MATCH %s)",
                (textindex.fts_match(("name",), query),),
            )
        )
    elif long_text:
        # PostgreSQL: the trigram GIN indexes serve these lookups (3+ characters; a shorter
        # pattern has no trigram, and the GIN index would be read whole: the bounded scan
        # below instead, as on SQLite).
        parts.append(_sql(Customer.objects.filter(text_q).values("pk")))
        contact_parts.append(_sql(Contact.objects.filter(contact_q).values("customer_id")))
    if digit_fields:
        if textindex.fts_available():
            fts = textindex.fts_table(textindex.CUSTOMER_TABLE)
            parts.append(
                (
                    f"SELECT rowid FROM {fts} WHERE {fts} MATCH %s",
                    (textindex.fts_match(tuple(digit_fields), digits),),
                )
            )
        else:
            parts.append(_sql(Customer.objects.filter(digits_q).values("pk")))
    if not long_text:
        prefix_q = _prefix_q("name_normalized", name_normalize(query) or query)
        if latin:
            prefix_q |= _prefix_q("name_initials", lowered)
        parts.append(_sql(Customer.objects.filter(prefix_q).values("pk")))
    if len(query) == textindex.BIGRAM:
        # Name, short name and contact names from the bigram indexes; inside initials and
        # pinyin (two letters match a large share of everyone) among the newest only.
        parts.append(textindex.bigram_select(textindex.CUSTOMER_TABLE, query))
        contact_parts.append(
            textindex.bigram_select(textindex.CONTACT_TABLE, query, id_column="customer_id")
        )
        if latin:
            newest = Customer.objects.filter(
                Q(name_initials__contains=lowered) | Q(name_pinyin__contains=lowered),
                pk__gt=_newest_bound(Customer),
            )
            parts.append(_sql(newest.values("pk")))
    elif not long_text:
        parts.append(
            _sql(Customer.objects.filter(text_q, pk__gt=_newest_bound(Customer)).values("pk"))
        )
        contact_parts.append(
            _sql(
                Contact.objects.filter(contact_q, pk__gt=_newest_bound(Contact)).values(
                    "customer_id"
                )
            )
        )
    return contact_parts if contacts_only else parts + contact_parts


# A search matching at most this many customers hands the list their ids. As a subquery
# under a page's ORDER BY id LIMIT n, PostgreSQL's planner walks the whole primary key
# backwards expecting to meet the few matches early: 720 ms at 1,000,000 customers when
# they are old ones. Given the ids it reads just those rows. More matches become
# conditions on the customer's own fields (``_customer_search_dense_q``).
SEARCH_IDS_INLINE = 1000


def customer_search_q(*, user, query: str) -> Q:
    """Substring on name and short name, pinyin initials or full pinyin, phone digits,
    e-mail and contact name. Phone and e-mail only match for users who may see them, so
    a search cannot reveal a masked number.

    Indexed lookups (trigram indexes for 3+ characters, kehu/customers/textindex.py) read
    first, as ids, when the matches are few (``SEARCH_IDS_INLINE``): the cost follows the
    matches, not the table size. A term in many names becomes conditions instead.
    """
    query = (query or "").strip()
    if not query:
        return Q()
    # UNION ALL stops at the limit; UNION would first collect every match to drop repeats
    # (all the customers when the term is in every name, as 有限 is).
    probe, params = customer_search_sql(user=user, query=query, keep_repeats=True)
    with connection.cursor() as cursor:
        cursor.execute(f"{probe} LIMIT {SEARCH_IDS_INLINE + 1}", params)
        rows = [row[0] for row in cursor.fetchall()]
    if len(rows) <= SEARCH_IDS_INLINE:
        return Q(pk__in=sorted(set(rows)))
    return _customer_search_dense_q(user=user, query=query)


def _contains(field: str, text: str) -> Q:
    """``field`` contains ``text`` (letters in any case) by STRPOS / INSTR, which no text
    index serves."""
    return Q(GreaterThan(StrIndex(Upper(field), Value(text.upper())), 0))


def _customer_search_dense_q(*, user, query: str) -> Q:
    """``customer_search_q`` for a term in many customers' names (有限, 科技, kj): the
    customer's own fields as conditions no index serves, so a page ordered by the list's
    index walks it and stops after its rows, and the bounded count after its cap (dense
    matches are met at once). Through the trigram or bigram indexes the database first
    collected every match: 0.7-5 s a search at 1,000,000 customers, which filled the
    server's threads at 50 users. Contact names keep their indexed lookups (a company term
    is rarely in a person's name)."""
    lowered, latin, digits, digit_fields, email = _search_terms(user=user, query=query)
    found = Q(code=query.upper()) | _contains("name", query) | _contains("short_name", query)
    if latin:
        found |= _contains("name_initials", lowered)
        if len(lowered) >= 2:
            found |= _contains("name_pinyin", lowered)
    if email:
        found |= _contains("email", query)
    for name in digit_fields:
        found |= _contains(name, digits)
    contacts = _customer_search_parts(user=user, query=query, contacts_only=True)
    if contacts:
        sql = " UNION ".join(part[0] for part in contacts)
        found |= Q(pk__in=RawSQL(sql, tuple(p for part in contacts for p in part[1])))
    return found


def customer_search_sql(*, user, query: str, keep_repeats: bool = False) -> tuple[str, tuple]:
    """The ids of the customers ``query`` finds, by ``customer_search_q``'s lookups (with
    ``keep_repeats`` an id found by several lookups comes once per lookup)."""
    parts = _customer_search_parts(user=user, query=query)
    union = " UNION ALL " if keep_repeats else " UNION "
    return union.join(part[0] for part in parts), tuple(p for part in parts for p in part[1])


def customer_search(*, user, query: str) -> QuerySet[Customer]:
    return customer_list_visible_to(user=user).filter(customer_search_q(user=user, query=query))


# --- contacts and follow-ups ----------------------------------------------------------------


def _readable_related_q(user) -> Q:
    return _or_pool(scope_q(Contact, user), Q(customer__in_pool=True))


def contact_list_visible_to(*, user) -> QuerySet[Contact]:
    require_perm(user, "customers.view")
    return Contact.objects.filter(_readable_related_q(user)).select_related("customer")


def contact_get_for(*, user, pk) -> Contact:
    try:
        return contact_list_visible_to(user=user).get(pk=pk)
    except (Contact.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("Not found.")) from exc


def contacts_of(*, user, customer: Customer) -> QuerySet[Contact]:
    """A customer's contacts, primary first; ``customer`` came from ``customer_get_for``."""
    require_perm(user, "customers.view")
    return Contact.objects.filter(customer=customer).order_by("-is_primary", "id")


def followup_list_visible_to(*, user) -> QuerySet[FollowUp]:
    require_perm(user, "customers.view")
    return FollowUp.objects.filter(_readable_related_q(user)).select_related(
        "customer", "contact", "method", "author"
    )


def followup_get_for(*, user, pk) -> FollowUp:
    try:
        return followup_list_visible_to(user=user).get(pk=pk)
    except (FollowUp.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("Not found.")) from exc


def followups_of(*, user, customer: Customer) -> QuerySet[FollowUp]:
    require_perm(user, "customers.view")
    return FollowUp.objects.filter(customer=customer).select_related("contact", "method", "author")


def _day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    return start, start + datetime.timedelta(days=1)


# Plans a calendar day shows; a busier day links to the follow-up list for the rest.
CALENDAR_DAY_LIMIT = 8


def followup_plans_by_day(
    *, user, days: list[datetime.date], limit: int | None = None
) -> dict[datetime.date, tuple[list[FollowUp], bool]]:
    """Each day's first ``limit`` planned follow-ups (by time) in the user's scope, and
    whether the day has more: one small indexed read per day, so a month costs the same
    with a thousand plans a day as with one."""
    visible = (
        followup_list_visible_to(user=user)
        .select_related(None)
        .select_related("customer")
        .only(
            "id",
            "next_followup_at",
            "next_action",
            "customer__id",
            "customer__name",
            "customer__last_followup_at",
        )
    )
    limit = limit or CALENDAR_DAY_LIMIT
    plans: dict[datetime.date, tuple[list[FollowUp], bool]] = {}
    for day in days:
        start, end = _day_bounds(day)
        rows = list(
            visible.filter(next_followup_at__gte=start, next_followup_at__lt=end).order_by(
                "next_followup_at", "id"
            )[: limit + 1]
        )
        plans[day] = (rows[:limit], len(rows) > limit)
    return plans


def followups_due(*, user, day: datetime.date | None = None) -> QuerySet[Customer]:
    """The user's own customers whose next follow-up falls on ``day`` (default today)."""
    start, end = _day_bounds(day or timezone.localdate())
    return (
        Customer.objects.filter(
            owner=user, in_pool=False, next_followup_at__gte=start, next_followup_at__lt=end
        )
        .only("id", "name", "next_followup_at")
        .order_by("next_followup_at", "id")
    )


def followups_overdue(*, user, now: datetime.datetime | None = None) -> QuerySet[Customer]:
    """The user's own customers whose planned follow-up is before today and still open.

    A planned follow-up counts as done once a later follow-up was recorded.
    """
    start, _end = _day_bounds(timezone.localdate(now or timezone.now()))
    return (
        Customer.objects.filter(owner=user, in_pool=False, next_followup_at__lt=start)
        .filter(Q(last_followup_at__isnull=True) | Q(last_followup_at__lt=F("next_followup_at")))
        .only("id", "name", "next_followup_at")
        .order_by("next_followup_at", "id")
    )


# --- 360° view ------------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    kind: str  # "event", "followup" or "opportunity"
    at: datetime.datetime
    obj: Any
    attachments: list = field(default_factory=list)


def customer_timeline(*, customer: Customer, limit: int = 200) -> list[TimelineEntry]:
    """Events, follow-ups (with attachments) and opportunities, newest first; a fixed
    number of queries however long the history is."""
    from kehu.core.attachments import attachments_for

    events = list(
        CustomerEvent.objects.filter(customer=customer).select_related(
            "from_owner", "to_owner", "actor"
        )[:limit]
    )
    followups = list(
        FollowUp.objects.filter(customer=customer).select_related("contact", "method", "author")[
            :limit
        ]
    )
    opportunities = list(
        Opportunity.objects.filter(customer=customer)
        .select_related("stage", "owner")
        .order_by("-created_at")[:limit]
    )
    for row in (*events, *followups, *opportunities):
        row.customer = customer  # they all belong to it: no query per row for row.customer
    files = attachments_for(followups)
    entries = [TimelineEntry("event", e.at, e) for e in events]
    entries += [
        TimelineEntry("followup", f.happened_at, f, files.get(str(f.pk), [])) for f in followups
    ]
    entries += [TimelineEntry("opportunity", o.created_at, o) for o in opportunities]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def customer_key_figures(*, customer: Customer) -> dict[str, Any]:
    """Counts and sums for the 360° page header, in two queries."""
    opportunities = Opportunity.objects.filter(customer=customer).aggregate(
        open_count=Count("id", filter=Q(stage__kind=StageKind.OPEN)),
        open_amount=Sum("amount", filter=Q(stage__kind=StageKind.OPEN)),
        won_count=Count("id", filter=Q(stage__kind=StageKind.WON)),
        won_amount=Sum("amount", filter=Q(stage__kind=StageKind.WON)),
    )
    counts = Customer.objects.filter(pk=customer.pk).aggregate(
        contacts=Count("contacts", filter=Q(contacts__deleted_at__isnull=True), distinct=True),
        followups=Count("followups", filter=Q(followups__deleted_at__isnull=True), distinct=True),
    )
    days_since = None
    if customer.last_followup_at:
        days_since = (timezone.now() - customer.last_followup_at).days
    return {
        "contacts": counts["contacts"],
        "followups": counts["followups"],
        "open_opportunities": opportunities["open_count"],
        "open_amount": opportunities["open_amount"] or Decimal("0.00"),
        "won_opportunities": opportunities["won_count"],
        "won_amount": opportunities["won_amount"] or Decimal("0.00"),
        "days_since_followup": days_since,
    }


def customer_can_change(*, user, customer: Customer) -> bool:
    """Whether edit buttons should show (the services decide for real)."""
    return has_perm(user, "customers.change") and (
        Customer.objects.filter(scope_q(Customer, user), pk=customer.pk).exists()
    )
