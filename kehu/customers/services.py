"""Customer writes: create and edit, ownership and the public pool, merge, contacts, follow-ups.

Every service checks the actor's permission (and, for an existing record, that it is in
the actor's data scope) before it writes; a refused request changes nothing. Ownership
moves write a ``CustomerEvent`` row, an operation-log row and notify the new owner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import itertools
import json
import operator
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max, Model, Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kehu.core.audit import SKIPPED_FIELDS as AUDIT_SKIPPED_FIELDS
from kehu.core.audit import snapshot
from kehu.core.customfields import custom_values_clean
from kehu.core.exceptions import ServiceError
from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import scope_q
from kehu.core.services import (
    document_number_next,
    document_numbers_reserve,
    model_create,
    soft_delete,
    soft_restore,
    versioned_update,
)
from kehu.customers.models import (
    Contact,
    Customer,
    CustomerEvent,
    CustomerEventKind,
    CustomerMerge,
    CustomerStage,
    CustomerTag,
    FollowUp,
    Opportunity,
    PoolRule,
    StageKind,
)
from kehu.customers.normalize import name_normalize, name_pinyin_forms, phone_normalize
from kehu.customers.textindex import text_index_bulk_insert

CUSTOMER_CODE_PREFIX = "KH"

# Fields the server decides; never taken from a form or API payload.
CUSTOMER_PROTECTED = {
    "id",
    "code",
    "owner",
    "owner_id",
    "department",
    "department_id",
    "in_pool",
    "pool_entered_at",
    "assigned_at",
    "last_followup_at",
    "next_followup_at",
    "last_deal_at",
    "custom_fields",
    "tags",
    "version",
    "name_normalized",
    "name_initials",
    "name_pinyin",
    "phone_digits",
    "mobile_digits",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "deleted_at",
    "deleted_by",
}
# What a user may write on a customer (forms, API and import all offer exactly these);
# owner, department, pool state, code and the derived search fields are the server's.
CUSTOMER_EDITABLE_FIELDS = (
    "kind",
    "name",
    "short_name",
    "phone",
    "mobile",
    "email",
    "website",
    "province",
    "city",
    "district",
    "street",
    "industry",
    "source",
    "level",
    "stage",
    "notes",
)
_EDITABLE = frozenset(CUSTOMER_EDITABLE_FIELDS)
# Dictionary each dictionary field must come from.
DICTIONARY_FIELDS = {"industry": "industry", "source": "customer_source", "level": "customer_level"}

CONTACT_EDITABLE = {
    "name",
    "title",
    "phone",
    "mobile",
    "email",
    "wechat",
    "birthday",
    "is_primary",
    "notes",
}
FOLLOWUP_EDITABLE = {
    "contact",
    "method",
    "content",
    "happened_at",
    "next_followup_at",
    "next_action",
}


def _audit(**kwargs) -> None:
    from kehu.system.services import audit_log_record

    audit_log_record(**kwargs)


def _notify(*, recipient, title: str, body: str = "", url: str = "", level: str = "info") -> None:
    from kehu.system.services import notification_send

    if recipient is not None:
        notification_send(recipients=[recipient], title=title, body=body, url=url, level=level)


def _settings():
    from kehu.system.services import system_settings_get

    return system_settings_get()


def _ensure_visible(actor, customer: Customer) -> None:
    """Out of scope looks like missing (404), never like forbidden."""
    if not Customer.objects.filter(scope_q(Customer, actor), pk=customer.pk).exists():
        raise Http404(_("Not found."))


def _owner_display(user) -> str:
    return str(user) if user is not None else _("the public pool")


# --- derived fields and input ---------------------------------------------------------------


def _derive(values: dict[str, Any]) -> dict[str, Any]:
    derived: dict[str, Any] = {}
    if "name" in values:
        name = values["name"] or ""
        initials, pinyin = name_pinyin_forms(name)
        derived.update(
            name_normalized=name_normalize(name)[:200],
            name_initials=initials[:200],
            name_pinyin=pinyin[:600],
        )
    if "phone" in values:
        derived["phone_digits"] = phone_normalize(values["phone"] or "")[:30]
    if "mobile" in values:
        derived["mobile_digits"] = phone_normalize(values["mobile"] or "")[:30]
    return derived


def _customer_data_clean(data: dict[str, Any]) -> dict[str, Any]:
    """Only user-editable fields; dictionary values from the right dictionary."""
    cleaned = {k: v for k, v in data.items() if k in _EDITABLE}
    for name in ("name", "short_name", "phone", "mobile", "email", "website"):
        if isinstance(cleaned.get(name), str):
            cleaned[name] = cleaned[name].strip()
    if "email" in cleaned and cleaned["email"]:
        cleaned["email"] = cleaned["email"].lower()
    if "name" in cleaned and not cleaned["name"]:
        raise ServiceError(_("This field is required."), field="name")
    for field, code in DICTIONARY_FIELDS.items():
        item = cleaned.get(field)
        if item is not None and item.dictionary.code != code:
            raise ServiceError(_("Choose a value from the list."), field=field)
    return cleaned


def customer_tags_resolve(tags: Iterable[CustomerTag | str]) -> list[CustomerTag]:
    """Tags by object or by name; names that do not exist yet are created."""
    result: list[CustomerTag] = []
    names: list[str] = []
    for tag in tags:
        if isinstance(tag, CustomerTag):
            result.append(tag)
        elif str(tag).strip():
            names.append(str(tag).strip()[:50])
    if names:
        existing = {t.name: t for t in CustomerTag.objects.filter(name__in=names)}
        for name in dict.fromkeys(names):
            result.append(existing.get(name) or CustomerTag.objects.get_or_create(name=name)[0])
    return result


# --- duplicates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateHit:
    """A customer matching a new one; out-of-scope ones reveal only who owns them."""

    matched_on: str  # "name", "phone" or "email"
    visible: bool
    customer_id: int | None
    name: str | None
    owner: str  # display name of the owner, or "the public pool"

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched_on": self.matched_on,
            "visible": self.visible,
            "id": self.customer_id,
            "name": self.name,
            "owner": self.owner,
        }

    def message(self) -> str:
        if self.visible:
            return _("“%(name)s” (owned by %(owner)s) has the same %(what)s.") % {
                "name": self.name,
                "owner": self.owner,
                "what": MATCH_LABELS[self.matched_on],
            }
        return _("A customer with the same %(what)s exists, owned by %(owner)s.") % {
            "what": MATCH_LABELS[self.matched_on],
            "owner": self.owner,
        }


MATCH_LABELS = {
    "name": gettext_lazy("name"),
    "phone": gettext_lazy("phone number"),
    "email": gettext_lazy("e-mail"),
}


class DuplicateCustomerError(ServiceError):
    """A create or edit would duplicate existing customers; ``hits`` says which."""

    def __init__(self, hits: list[DuplicateHit]):
        self.hits = hits
        message = " ".join([_("This customer may already exist."), *(h.message() for h in hits)])
        super().__init__(message, field="name", code="duplicate")

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = super().as_dict()
        data["duplicates"] = [h.as_dict() for h in self.hits]
        return data


def customer_find_duplicates(
    *,
    actor,
    name: str = "",
    phone: str = "",
    mobile: str = "",
    email: str = "",
    exclude_id: int | None = None,
    limit: int = 10,
) -> list[DuplicateHit]:
    """Customers (all of them, pool included) matching the normalised name, a phone or
    mobile number in either field, or the e-mail. Out-of-scope matches reveal only
    "exists, owned by X"; in-scope and pool ones their id and name."""
    condition = Q()
    normalized = name_normalize(name) if name else ""
    if normalized:
        condition |= Q(name_normalized=normalized)
    numbers = [n for n in {phone_normalize(phone), phone_normalize(mobile)} if len(n) >= 5]
    if numbers:
        condition |= Q(phone_digits__in=numbers) | Q(mobile_digits__in=numbers)
    email = (email or "").strip().lower()
    if email:
        condition |= Q(email__iexact=email)
    if not condition:
        return []
    queryset = Customer.objects.filter(condition).select_related("owner")
    if exclude_id is not None:
        queryset = queryset.exclude(pk=exclude_id)
    candidates = list(queryset.order_by("-id")[:limit])
    visible_ids = set(
        Customer.objects.filter(
            scope_q(Customer, actor), pk__in=[c.pk for c in candidates]
        ).values_list("pk", flat=True)
    )
    return _duplicate_hits(
        actor=actor,
        candidates=candidates,
        normalized=normalized,
        numbers=numbers,
        visible_ids=visible_ids,
    )


def _duplicate_hits(
    *, actor, candidates: list[Customer], normalized: str, numbers: list[str], visible_ids: set
) -> list[DuplicateHit]:
    can_view = None
    hits = []
    for customer in candidates:
        if normalized and customer.name_normalized == normalized:
            matched = "name"
        elif numbers and (customer.phone_digits in numbers or customer.mobile_digits in numbers):
            matched = "phone"
        else:
            matched = "email"
        # Pool customers are open to everyone with customers.view, so they show in full.
        visible = customer.pk in visible_ids
        if not visible and customer.in_pool:
            if can_view is None:
                can_view = has_perm(actor, "customers.view")
            visible = can_view
        hits.append(
            DuplicateHit(
                matched_on=matched,
                visible=visible,
                customer_id=customer.pk if visible else None,
                name=customer.name if visible else None,
                owner=_owner_display(customer.owner),
            )
        )
    return hits


def duplicate_keys(*, name: str = "", phone: str = "", mobile: str = "", email: str = "") -> set:
    """What a customer is matched on: ("name", normalised name), ("phone", digits) for each
    number of five digits or more (phone and mobile match each other), ("email", lower case).
    Two customers sharing a key are duplicates, as ``customer_find_duplicates`` decides."""
    keys: set[tuple[str, str]] = set()
    normalized = name_normalize(name) if name else ""
    if normalized:
        keys.add(("name", normalized))
    for number in (phone_normalize(phone), phone_normalize(mobile)):
        if len(number) >= 5:
            keys.add(("phone", number))
    email = (email or "").strip().lower()
    if email:
        keys.add(("email", email))
    return keys


@dataclass
class DuplicateMatches:
    """Hits per item, which of the hit customers are in the actor's data scope, and each
    item's ``duplicate_keys``."""

    hits: list[list[DuplicateHit]]
    in_scope_ids: set[int]
    keys: list[set] = dataclasses.field(default_factory=list)


def customer_find_duplicates_many(
    *, actor, items: list[dict[str, str]], limit: int = 10
) -> DuplicateMatches:
    """``customer_find_duplicates`` for many would-be customers (``name``, ``phone``,
    ``mobile``, ``email`` each) in three indexed queries: the same hits, in the same order.

    E-mails are compared in lower case, as services store them.
    """
    wanted = [duplicate_keys(**{k: item.get(k) or "" for k in MATCH_FIELDS}) for item in items]
    lookups = [
        ("name_normalized", {v for keys in wanted for k, v in keys if k == "name"}),
        ("phone_digits", numbers := {v for keys in wanted for k, v in keys if k == "phone"}),
        ("mobile_digits", numbers),
        ("email", {v for keys in wanted for k, v in keys if k == "email"}),
    ]
    ids_sql, params = _ids_matching(lookups)
    if not ids_sql:
        return DuplicateMatches(hits=[[] for _ in items], in_scope_ids=set(), keys=wanted)
    from django.db import connection

    # The ids first: as a subquery of the customer query, PostgreSQL's planner expects
    # thousands of matches and scans the whole table to join them.
    with connection.cursor() as cursor:
        cursor.execute(ids_sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    candidates = (
        list(Customer.objects.filter(pk__in=ids).select_related("owner").order_by("-id"))
        if ids
        else []
    )
    by_key: dict[tuple[str, str], list[Customer]] = {}
    for customer in candidates:
        # The stored forms are normalised already (normalising digits twice could drop
        # a second "86").
        keys = {
            ("name", customer.name_normalized),
            ("phone", customer.phone_digits),
            ("phone", customer.mobile_digits),
            ("email", customer.email.lower()),
        }
        for key in keys:
            if key[1]:
                by_key.setdefault(key, []).append(customer)
    visible_ids = set(
        Customer.objects.filter(
            scope_q(Customer, actor), pk__in=[c.pk for c in candidates]
        ).values_list("pk", flat=True)
    )
    result: list[list[DuplicateHit]] = []
    for keys in wanted:
        found: dict[int, Customer] = {}
        for key in keys:
            for customer in by_key.get(key, ()):
                found[customer.pk] = customer
        if not found:
            result.append([])
            continue
        matched = sorted(found.values(), key=lambda c: -c.pk)[:limit]
        result.append(
            _duplicate_hits(
                actor=actor,
                candidates=matched,
                normalized=next((v for k, v in keys if k == "name"), ""),
                numbers=[v for k, v in keys if k == "phone"],
                visible_ids=visible_ids,
            )
        )
    return DuplicateMatches(hits=result, in_scope_ids=visible_ids, keys=wanted)


MATCH_FIELDS = ("name", "phone", "mobile", "email")


def _ids_matching(lookups: list[tuple[str, set[str]]]) -> tuple[str, list[Any]]:
    """SQL for the ids of customers whose column equals one of the values, per (column,
    values): one indexed lookup per column, each list one parameter (a JSON array on
    SQLite, an array on PostgreSQL), so a batch of any size costs the same to build and
    every lookup uses its index (an OR of the four would scan the table on SQLite)."""
    from django.db import connection

    qn = connection.ops.quote_name
    table = qn(Customer._meta.db_table)
    parts: list[str] = []
    params: list[Any] = []
    for column, values in lookups:
        if not values:
            continue
        if connection.vendor == "postgresql":
            parts.append(f"SELECT id FROM {table} WHERE {qn(column)} = ANY(%s)")
            params.append(sorted(values))
        else:
            parts.append(
                f"SELECT id FROM {table} WHERE {qn(column)} IN (SELECT value FROM json_each(%s))"
            )
            params.append(json.dumps(sorted(values)))
    return " UNION ".join(parts), params


# --- create, change, delete -----------------------------------------------------------------


def _owner_check(*, actor, owner) -> None:
    """Assigning to someone else needs customers.assign and a user inside the actor's scope."""
    from kehu.system.models import User

    if owner is None:
        raise ServiceError(_("Choose an owner."), field="owner")
    if not owner.is_active:
        raise ServiceError(_("This user is inactive."), field="owner")
    if owner.pk == actor.pk:
        return
    require_perm(actor, "customers.assign")
    if not User.objects.filter(scope_q(User, actor), pk=owner.pk).exists():
        raise ServiceError(
            _("You may only assign customers to users in your scope."), field="owner"
        )


def customer_create(
    *,
    actor,
    data: dict[str, Any],
    tags: Iterable[CustomerTag | str] = (),
    custom_fields: dict[str, Any] | None = None,
    owner=None,
    allow_duplicate: bool = False,
) -> Customer:
    """Create a customer owned by ``owner`` (default: the actor), with its code and event.

    Raises ``DuplicateCustomerError`` (a ServiceError, code "duplicate") when the name,
    a phone number or the e-mail matches an existing customer, unless ``allow_duplicate``.
    """
    require_perm(actor, "customers.add")
    owner = owner or actor
    _owner_check(actor=actor, owner=owner)
    values = _customer_data_clean(data)
    if not values.get("name"):
        raise ServiceError(_("This field is required."), field="name")
    cleaned_custom = custom_values_clean(model=Customer, values=custom_fields)
    if not allow_duplicate:
        hits = customer_find_duplicates(
            actor=actor,
            name=values.get("name", ""),
            phone=values.get("phone", ""),
            mobile=values.get("mobile", ""),
            email=values.get("email", ""),
        )
        if hits:
            raise DuplicateCustomerError(hits)
    now = timezone.now()
    with transaction.atomic():
        customer = model_create(
            model=Customer,
            user=actor,
            data={
                **_new_customer_values(values, owner=owner, custom=cleaned_custom),
                "code": document_number_next(prefix=CUSTOMER_CODE_PREFIX),
                "assigned_at": now,
            },
            m2m={"tags": customer_tags_resolve(tags)} if tags else None,
        )
        CustomerEvent.objects.create(
            customer=customer, kind=CustomerEventKind.CREATED, to_owner=owner, actor=actor
        )
        if owner.pk != actor.pk:
            _notify(
                recipient=owner,
                title=_("Customer assigned to you: %(name)s") % {"name": customer.name},
                url=customer.get_absolute_url(),
            )
    return customer


def _new_customer_values(values: dict[str, Any], *, owner, custom: dict[str, Any]):
    return {
        **values,
        **_derive({"name": "", "phone": "", "mobile": "", **values}),
        "owner": owner,
        "department_id": owner.department_id,
        "custom_fields": custom,
    }


# --- many new customers at once (imports) ---------------------------------------------------

# Foreign keys a draft holds as checked ids (owners by ``_owner_check``, dictionary items by
# ``_customer_data_clean``): Django's field check would cost a query each.
_DRAFT_UNCHECKED = frozenset(
    {"code", "owner", "department", "industry", "source", "level"}
    | {"created_by", "updated_by", "deleted_by"}
)


@dataclass
class CustomerDraft:
    """A new customer checked by ``customer_draft`` and not stored yet: its column values by
    attribute name (``owner_id``), its owner and its tag names."""

    values: dict[str, Any]
    owner: Any
    tags: list[str]


@dataclass
class CustomerDraftChecks:
    """What ``customer_draft`` reads once for many customers: the actor's permission, owners
    already checked and the custom field definitions."""

    owners: dict[int, Exception | None] = dataclasses.field(default_factory=dict)
    definitions: list | None = None
    may_add: bool = False


@functools.cache
def _draft_field_checks() -> dict[str, tuple[int, Any, bool, int | None, frozenset | None]]:
    """The fields ``Model.clean_fields`` checks on a new customer, by attribute name:
    (position, field, plain text field?, max length, choice values). A plain text field's
    checks (length, one of the choices) are simple enough to run inline."""
    from django.core.validators import MaxLengthValidator
    from django.db.models import CharField, TextField

    checks = {}
    for position, f in enumerate(Customer._meta.fields):
        if f.name in _DRAFT_UNCHECKED:
            continue
        plain = type(f) in (CharField, TextField) and all(
            type(v) is MaxLengthValidator for v in f.validators
        )
        limit = f.max_length if type(f) is CharField else None
        choices = frozenset(value for value, _label in f.flatchoices) if f.choices else None
        checks[f.attname] = (position, f, plain, limit, choices)
    return checks


def _draft_values_check(values: dict[str, Any], prechecked: Collection[str] = ()) -> None:
    """``Customer(**values).clean_fields(exclude=_DRAFT_UNCHECKED)`` without the instance:
    the same errors for the same values (Django's own check runs for anything the inline
    test does not pass), several times faster. Fields not in ``values`` keep their
    defaults, valid by construction."""
    checks = _draft_field_checks()
    errors: dict[str, tuple[int, Any]] = {}
    for attname, value in values.items():
        check = checks.get(attname)
        if check is None:
            continue
        position, f, plain, limit, choices = check
        if type(value) is str:
            if attname in prechecked and value.isascii():
                continue  # checked by the caller (lower case, as stored, keeps ASCII valid)
            if (
                plain
                and value
                and (limit is None or len(value) <= limit)
                and (choices is None or value in choices)
            ):
                continue
        elif attname in prechecked:
            continue
        if f.blank and value in f.empty_values:
            continue
        try:
            values[attname] = f.clean(value, None)
        except ValidationError as exc:
            errors[f.name] = (position, exc.error_list)
    if errors:
        # In the fields' order, as clean_fields reports them.
        raise ValidationError(
            {name: found for name, (_p, found) in sorted(errors.items(), key=lambda e: e[1][0])}
        )


def customer_draft(
    *,
    actor,
    data: dict[str, Any],
    tags: Iterable[str] = (),
    custom_fields: dict[str, Any] | None = None,
    owner=None,
    checks: CustomerDraftChecks,
    prechecked: Collection[str] = (),
) -> CustomerDraft:
    """Check a new customer as ``customer_create`` does (duplicates aside: the caller checks
    them for the whole batch) and return it unsaved, for ``customer_create_many``.

    ``prechecked`` names fields whose values the caller has already put through the model
    field's own validators (an import's e-mail column runs Django's ``validate_email`` and
    the field's length): they are not checked twice. Raises ServiceError or
    ValidationError with the field at fault; queries only the first time it meets an owner.
    """
    if not checks.may_add:
        require_perm(actor, "customers.add")
        checks.may_add = True
    owner = owner or actor
    if owner.pk not in checks.owners:
        try:
            _owner_check(actor=actor, owner=owner)
            checks.owners[owner.pk] = None
        except ServiceError as exc:
            checks.owners[owner.pk] = exc
    refused = checks.owners[owner.pk]
    if refused is not None:
        raise refused
    values = _customer_data_clean(data)
    if not values.get("name"):
        raise ServiceError(_("This field is required."), field="name")
    if checks.definitions is None:
        from kehu.core.customfields import custom_field_definitions

        checks.definitions = custom_field_definitions(Customer)
    custom = custom_values_clean(
        model=Customer, values=custom_fields, definitions=checks.definitions
    )
    for name in DICTIONARY_FIELDS:
        if name in values:
            item = values.pop(name)
            values[f"{name}_id"] = item.pk if item is not None else None
    values.update(_derive({"name": "", "phone": "", "mobile": "", **values}))
    values.update(owner_id=owner.pk, department_id=owner.department_id, custom_fields=custom)
    _draft_values_check(values, prechecked)
    if Customer.clean is not Model.clean:  # a model-wide rule: run it on an instance
        Customer(**values).clean()
    return CustomerDraft(
        values=values, owner=owner, tags=[str(t).strip()[:50] for t in tags if str(t).strip()]
    )


@functools.cache
def _customer_table() -> dict[str, Any]:
    """The customer table's columns for ``table_rows_insert``: attribute names, defaults,
    which hold timestamps or JSON, and the fields an operation-log snapshot lists (sorted
    by name, as ``diff`` sorts them)."""
    from django.db.models import (
        DateField,
        DateTimeField,
        DecimalField,
        FileField,
        JSONField,
        TimeField,
        UUIDField,
    )

    fields = Customer._meta.concrete_fields
    logged = sorted((f.name, f.attname) for f in fields if f.name not in AUDIT_SKIPPED_FIELDS)
    # Fields whose values ``snapshot`` turns into text (the rest it logs as they are).
    converting = (DateField, TimeField, DecimalField, UUIDField, FileField)
    return {
        "columns": [f.column for f in fields],
        "row": operator.itemgetter(*(f.attname for f in fields)),
        "defaults": {f.attname: f.get_default() for f in fields},
        "datetimes": [f.attname for f in fields if isinstance(f, DateTimeField)],
        "json": [f.attname for f in fields if isinstance(f, JSONField)],
        "logged_names": [name for name, _attname in logged],
        "logged_values": operator.itemgetter(*(attname for _name, attname in logged)),
        "logged_converted": [
            (f.name, f.attname)
            for f in fields
            if f.name not in AUDIT_SKIPPED_FIELDS and isinstance(f, converting)
        ],
    }


def _logged_value(value: Any) -> Any:
    """A value as ``snapshot`` writes it into the operation log."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    return value


def customer_create_many(*, actor, drafts: list[CustomerDraft]) -> list[int]:
    """Store checked drafts as ``customer_create`` stores one, in a few statements for all:
    codes from one reserved block, the rows, their tags, "created" events and operation-log
    rows (the same snapshot ``customer_create`` logs) written as prepared tuples. Each other
    owner is told once, with the count. Returns the new ids, in the drafts' order."""
    if not drafts:
        return []
    require_perm(actor, "customers.add")
    from kehu.core.imports import (
        db_datetime,
        db_json,
        model_columns,
        table_ids_reserve,
        table_rows_insert,
    )
    from kehu.system.services import audit_log_record_rows

    table = _customer_table()
    now = timezone.now()
    stamp = db_datetime(now)
    author = actor.pk if actor is not None and actor.is_authenticated else None
    with transaction.atomic():
        # The numbers first: their locked update also takes SQLite's write lock, which
        # ``table_ids_reserve`` needs.
        codes = document_numbers_reserve(prefix=CUSTOMER_CODE_PREFIX, count=len(drafts))
        ids = table_ids_reserve(Customer, len(drafts))
        names = sorted({name for draft in drafts for name in draft.tags})
        tags = _tags_by_name(names) if names else {}
        defaults = table["defaults"]
        logged_names, logged_values = table["logged_names"], table["logged_values"]
        now_logged = _logged_value(now)
        stamped = {"created_at": now, "updated_at": now, "assigned_at": now}
        # Timestamps and JSON as the database takes them: the ones every row sets, and any
        # a draft brings (none of the editable fields today).
        given = set().union(*(draft.values for draft in drafts))
        converted = [
            name for name, attname in table["logged_converted"] if attname in given | set(stamped)
        ]
        datetimes = [a for a in table["datetimes"] if a in given and a not in stamped]
        stamped_db = dict.fromkeys(stamped, stamp)
        json_columns = table["json"]
        no_json = db_json({})
        rows: list[tuple] = []
        log_rows: list[tuple[str, str, dict[str, Any]]] = []
        for draft, pk, code in zip(drafts, ids, codes, strict=True):
            values = {
                **defaults,
                **draft.values,
                "id": pk,
                "code": code,
                "created_at": now,
                "updated_at": now,
                "assigned_at": now,
                "created_by_id": author,
                "updated_by_id": author,
            }
            # What ``diff({}, snapshot(customer))`` gives once it is saved ([None, value]
            # pairs as tuples: the same JSON), built in C loops: 30 fields a row add up.
            logged = logged_values(values)
            kept = list(map(operator.is_not, logged, itertools.repeat(None)))
            changes: dict[str, Any] = dict(
                zip(
                    itertools.compress(logged_names, kept),
                    zip(itertools.repeat(None), itertools.compress(logged, kept)),
                    strict=True,
                )
            )
            for name in converted:
                pair = changes.get(name)
                if pair is not None:
                    changes[name] = (None, now_logged if pair[1] is now else _logged_value(pair[1]))
            if draft.tags:  # as ``model_create`` logs a many-to-many field
                changes["tags"] = [[], sorted(str(tags[name].pk) for name in set(draft.tags))]
            log_rows.append((str(pk), values["name"][:200], changes))
            values.update(stamped_db)
            for attname in datetimes:
                if values[attname] is not None:
                    values[attname] = db_datetime(values[attname])
            for attname in json_columns:
                value = values[attname]
                values[attname] = no_json if value == {} else db_json(value)
            rows.append(table["row"](values))
        # The search indexes filled once for the batch, not by a trigger per row.
        with text_index_bulk_insert(Customer._meta.db_table, ids):
            table_rows_insert(Customer._meta.db_table, table["columns"], rows)
        if names:
            through = Customer.tags.through
            table_rows_insert(
                through._meta.db_table,
                model_columns(through, ["customer", "customertag"]),
                [
                    (pk, tags[name].pk)
                    for draft, pk in zip(drafts, ids, strict=True)
                    for name in dict.fromkeys(draft.tags)
                ],
            )
        actor_id = actor.pk if actor is not None else None
        table_rows_insert(
            CustomerEvent._meta.db_table,
            model_columns(CustomerEvent, ["customer", "kind", "to_owner", "actor"])
            + model_columns(CustomerEvent, ["from_owner", "reason", "data", "at"]),
            [
                (pk, CustomerEventKind.CREATED.value, d.values["owner_id"], actor_id)
                + (None, "", no_json, stamp)
                for d, pk in zip(drafts, ids, strict=True)
            ],
        )
        audit_log_record_rows(
            user=actor, action="create", model=Customer._meta.label_lower, rows=log_rows
        )
        assigned: dict[int, list[tuple[int, CustomerDraft]]] = {}
        for draft, pk in zip(drafts, ids, strict=True):
            if draft.owner.pk != getattr(actor, "pk", None):
                assigned.setdefault(draft.owner.pk, []).append((pk, draft))
        for owned in assigned.values():
            first_pk, first = owned[0]
            if len(owned) == 1:
                _notify(
                    recipient=first.owner,
                    title=_("Customer assigned to you: %(name)s") % {"name": first.values["name"]},
                    url=reverse("customers:customer_detail", args=[first_pk]),
                )
            else:
                _notify(
                    recipient=first.owner,
                    title=_("%(count)d customers assigned to you, from %(first)s")
                    % {"count": len(owned), "first": first.values["name"]},
                    url=reverse("customers:customer_list"),
                )
    return ids


def _tags_by_name(names: list[str]) -> dict[str, CustomerTag]:
    """Tags by name, the missing ones created (also when created concurrently)."""
    tags = {t.name: t for t in CustomerTag.objects.filter(name__in=names)}
    missing = [name for name in names if name not in tags]
    if missing:
        CustomerTag.objects.bulk_create(
            [CustomerTag(name=name) for name in missing], ignore_conflicts=True
        )
        tags.update({t.name: t for t in CustomerTag.objects.filter(name__in=missing)})
    return tags


def customer_update(
    *,
    actor,
    customer: Customer,
    expected_version: int,
    data: dict[str, Any],
    tags: Iterable[CustomerTag | str] | None = None,
    custom_fields: dict[str, Any] | None = None,
    allow_duplicate: bool = False,
) -> Customer:
    """Edit a customer's details. Owner, department, pool state and code never change here.

    A stale ``expected_version`` raises ``ConflictError``; a changed name, number or e-mail
    matching another customer raises ``DuplicateCustomerError`` unless ``allow_duplicate``.
    """
    require_perm(actor, "customers.change")
    _ensure_visible(actor, customer)
    values = _customer_data_clean(data)
    changed = {k: v for k, v in values.items() if getattr(customer, k) != v}
    if not allow_duplicate and {"name", "phone", "mobile", "email"} & set(changed):
        hits = customer_find_duplicates(
            actor=actor,
            name=changed.get("name", ""),
            phone=changed.get("phone", ""),
            mobile=changed.get("mobile", ""),
            email=changed.get("email", ""),
            exclude_id=customer.pk,
        )
        if hits:
            raise DuplicateCustomerError(hits)
    update = {**values, **_derive(values)}
    if custom_fields is not None:
        update["custom_fields"] = custom_values_clean(
            model=Customer, values=custom_fields, existing=customer.custom_fields
        )
    old_stage = customer.stage
    with transaction.atomic():
        customer = versioned_update(
            instance=customer,
            user=actor,
            expected_version=expected_version,
            data=update,
            m2m={"tags": customer_tags_resolve(tags)} if tags is not None else None,
        )
        if customer.stage != old_stage:
            CustomerEvent.objects.create(
                customer=customer,
                kind=CustomerEventKind.STAGE,
                actor=actor,
                data={"from": old_stage, "to": customer.stage},
            )
    return customer


def customer_delete(*, actor, customer: Customer) -> None:
    require_perm(actor, "customers.delete")
    _ensure_visible(actor, customer)
    soft_delete(instance=customer, user=actor)


def customer_restore(*, actor, customer: Customer) -> None:
    """Bring back a soft-deleted customer (administrators: customers.delete and its scope)."""
    require_perm(actor, "customers.delete")
    if not Customer.all_objects.filter(scope_q(Customer, actor), pk=customer.pk).exists():
        raise Http404(_("Not found."))
    soft_restore(instance=customer, user=actor)


# --- ownership and the pool -----------------------------------------------------------------


def _move(
    *,
    actor,
    customer: Customer,
    kind: str,
    to_owner,
    reason: str = "",
    now: datetime.datetime | None = None,
    expect_in_pool: bool | None = None,
) -> Customer:
    """Move one customer to ``to_owner`` (None: the pool) inside the caller's transaction.

    The UPDATE is conditional on the state read under lock, so two concurrent moves of the
    same customer cannot both succeed; the loser gets a ServiceError.
    """
    now = now or timezone.now()
    current = (
        Customer.objects.select_for_update(of=("self",))
        .select_related("owner")
        .filter(pk=customer.pk)
        .first()
    )
    if current is None:
        raise Http404(_("Not found."))
    if expect_in_pool is not None and current.in_pool != expect_in_pool:
        if expect_in_pool:
            raise ServiceError(
                _("This customer is no longer in the public pool: someone claimed it first."),
                code="not_in_pool",
            )
        raise ServiceError(_("This customer is already in the public pool."), code="in_pool")
    from_owner = current.owner
    if to_owner is not None and from_owner is not None and from_owner.pk == to_owner.pk:
        raise ServiceError(_("This user already owns the customer."), field="owner")
    values: dict[str, Any] = {
        "owner": to_owner,
        "department_id": to_owner.department_id if to_owner is not None else None,
        "in_pool": to_owner is None,
        "pool_entered_at": now if to_owner is None else None,
        "assigned_at": now if to_owner is not None else None,
    }
    updated = Customer.objects.filter(
        pk=current.pk, owner_id=current.owner_id, in_pool=current.in_pool
    ).update(version=F("version") + 1, updated_at=now, updated_by=actor, **values)
    if updated != 1:
        raise ServiceError(
            _("Someone else moved this customer at the same moment. Reload and try again."),
            code="conflict",
        )
    CustomerEvent.objects.create(
        customer=current,
        kind=kind,
        from_owner=from_owner,
        to_owner=to_owner,
        reason=reason[:500],
        actor=actor,
    )
    _audit(
        user=actor,
        action="status",
        obj=current,
        changes={
            "owner": [getattr(from_owner, "pk", None), getattr(to_owner, "pk", None)],
            "in_pool": [current.in_pool, to_owner is None],
        },
        note=f"{kind}: {reason}"[:500],
    )
    if to_owner is not None and (actor is None or to_owner.pk != actor.pk):
        _notify(
            recipient=to_owner,
            title=_("Customer assigned to you: %(name)s") % {"name": current.name},
            body=reason,
            url=current.get_absolute_url(),
        )
    current.refresh_from_db()
    return current


def _reason_required(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason."), field="reason")
    return reason


def customer_assign(*, actor, customer: Customer, owner, reason: str = "") -> Customer:
    """Give a pool or unowned customer (or, as a transfer, an owned one) to ``owner``."""
    require_perm(actor, "customers.assign")
    if not customer.in_pool:
        _ensure_visible(actor, customer)
    _owner_check(actor=actor, owner=owner)
    kind = CustomerEventKind.TRANSFERRED if customer.owner_id else CustomerEventKind.ASSIGNED
    with transaction.atomic():
        return _move(actor=actor, customer=customer, kind=kind, to_owner=owner, reason=reason)


def customer_transfer(*, actor, customer: Customer, owner, reason: str) -> Customer:
    """Move an owned customer to another salesperson (managers; a reason is required)."""
    require_perm(actor, "customers.assign")
    _ensure_visible(actor, customer)
    reason = _reason_required(reason)
    _owner_check(actor=actor, owner=owner)
    with transaction.atomic():
        return _move(
            actor=actor,
            customer=customer,
            kind=CustomerEventKind.TRANSFERRED,
            to_owner=owner,
            reason=reason,
            expect_in_pool=False,
        )


def customer_return_allowed_check(*, actor, customer: Customer) -> None:
    """Raise PermissionRefused unless ``actor`` may return ``customer`` to the pool: its
    owner, or someone with customers.assign over it. Callers check this before the input,
    so a refusal reads as one whatever was sent."""
    if customer.owner_id != actor.pk:
        require_perm(actor, "customers.assign")
    require_perm(actor, "customers.view")
    _ensure_visible(actor, customer)


def customer_return_to_pool(*, actor, customer: Customer, reason: str) -> Customer:
    """The owner (or someone with customers.assign over it) gives the customer up."""
    customer_return_allowed_check(actor=actor, customer=customer)
    reason = _reason_required(reason)
    with transaction.atomic():
        return _move(
            actor=actor,
            customer=customer,
            kind=CustomerEventKind.RETURNED,
            to_owner=None,
            reason=reason,
            expect_in_pool=False,
        )


def _today_start(now: datetime.datetime) -> datetime.datetime:
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def customer_claim(*, actor, customer: Customer, now: datetime.datetime | None = None) -> Customer:
    """A salesperson takes a customer from the pool.

    Refused when the actor already owns ``pool_max_owned_customers``, has claimed
    ``pool_daily_claim_limit`` today, or returned this very customer less than
    ``pool_reclaim_block_days`` ago. Claims by one user are serialised on the user's row,
    and the customer row is locked, so two claimers never both win.
    """
    from kehu.system.models import User

    require_perm(actor, "customers.change")
    now = now or timezone.now()
    settings = _settings()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=actor.pk).first()
        current = Customer.objects.select_for_update().filter(pk=customer.pk).first()
        if current is None:
            raise Http404(_("Not found."))
        if not current.in_pool:
            raise ServiceError(
                _("This customer is no longer in the public pool: someone claimed it first."),
                code="not_in_pool",
            )
        owned = Customer.objects.filter(owner=actor).count()
        if owned >= settings.pool_max_owned_customers:
            raise ServiceError(
                _("You already own %(count)d customers, the most allowed.") % {"count": owned},
                code="max_owned",
            )
        claimed_today = CustomerEvent.objects.filter(
            to_owner=actor, kind=CustomerEventKind.CLAIMED, at__gte=_today_start(now)
        ).count()
        if claimed_today >= settings.pool_daily_claim_limit:
            raise ServiceError(
                _("You have reached today's limit of %(limit)d claims.")
                % {"limit": settings.pool_daily_claim_limit},
                code="daily_limit",
            )
        last_return = (
            CustomerEvent.objects.filter(
                customer=current,
                kind__in=[CustomerEventKind.RETURNED, CustomerEventKind.AUTO_RETURNED],
            )
            .order_by("-at", "-id")
            .first()
        )
        block = datetime.timedelta(days=settings.pool_reclaim_block_days)
        if (
            last_return is not None
            and last_return.from_owner_id == actor.pk
            and last_return.at > now - block
        ):
            raise ServiceError(
                _("You gave this customer up on %(date)s; you may claim it again from %(until)s.")
                % {
                    "date": timezone.localtime(last_return.at).date().isoformat(),
                    "until": timezone.localtime(last_return.at + block).date().isoformat(),
                },
                code="reclaim_blocked",
            )
        return _move(
            actor=actor,
            customer=current,
            kind=CustomerEventKind.CLAIMED,
            to_owner=actor,
            now=now,
            expect_in_pool=True,
        )


# Other modules' open documents follow the customers in a handover (the sales module moves
# open quotes, contracts and orders): functions (actor, from_user, to_user, reason) -> None,
# called inside the handover's transaction.
HANDOVER_SOURCES: list[Callable[..., None]] = []


def customer_handover(*, actor, from_user, to_user, reason: str) -> int:
    """Move all of ``from_user``'s customers, open opportunities and open documents of other
    modules (``HANDOVER_SOURCES``) to ``to_user``.

    Used when an employee leaves (HR) or a manager reorganises (customers.assign). One
    transaction: every customer gets its event and log row; ``to_user`` gets one notice.
    Returns the number of customers moved.
    """
    if not (has_perm(actor, "customers.assign") or has_perm(actor, "hr.change")):
        require_perm(actor, "customers.assign")
    reason = _reason_required(reason)
    if to_user is None or not to_user.is_active:
        raise ServiceError(_("Choose an active user to hand over to."), field="to_user")
    if from_user.pk == to_user.pk:
        raise ServiceError(_("Choose a different user."), field="to_user")
    now = timezone.now()
    with transaction.atomic():
        customers = list(
            Customer.objects.select_for_update().filter(owner=from_user).order_by("pk")
        )
        ids = [c.pk for c in customers]
        if ids:
            Customer.objects.filter(pk__in=ids).update(
                owner=to_user,
                department_id=to_user.department_id,
                assigned_at=now,
                version=F("version") + 1,
                updated_at=now,
                updated_by=actor,
            )
            CustomerEvent.objects.bulk_create(
                CustomerEvent(
                    customer=c,
                    kind=CustomerEventKind.TRANSFERRED,
                    from_owner=from_user,
                    to_owner=to_user,
                    reason=reason[:500],
                    actor=actor,
                    data={"handover": True},
                )
                for c in customers
            )
            for c in customers:
                _audit(
                    user=actor,
                    action="status",
                    obj=c,
                    changes={"owner": [from_user.pk, to_user.pk]},
                    note=f"handover: {reason}"[:500],
                )
        opportunities = Opportunity.objects.filter(owner=from_user).exclude(
            stage__kind__in=[StageKind.WON, StageKind.LOST]
        )
        # The funnel's stored counts move with them: exactly the tracked (locked) ones move,
        # so one opened or closed meanwhile by someone else is not moved uncounted.
        moving = list(opportunities.order_by("pk").values_list("pk", flat=True))
        with opportunities_tracked(moving):
            # A new version: an edit form opened before the handover cannot write the old
            # owner back.
            opportunity_count = opportunities.filter(pk__in=moving).update(
                owner=to_user,
                department_id=to_user.department_id,
                updated_at=now,
                version=F("version") + 1,
            )
        for move_open_documents in HANDOVER_SOURCES:
            move_open_documents(actor=actor, from_user=from_user, to_user=to_user, reason=reason)
        if ids or opportunity_count:
            _notify(
                recipient=to_user,
                title=_("%(count)d customers handed over to you from %(user)s")
                % {"count": len(ids), "user": from_user},
                body=reason,
            )
    return len(ids)


# --- automatic return to the pool -----------------------------------------------------------


# Functions (customer ids) -> ids of those with a contract in force; the sales module adds one.
ACTIVE_CONTRACT_SOURCES: list[Callable[[list[int]], set[int]]] = []


def has_active_contract(customer_ids: Iterable[int]) -> set[int]:
    """Ids among ``customer_ids`` with a contract in force; they never fall into the pool."""
    ids = list(customer_ids)
    found: set[int] = set()
    for source in ACTIVE_CONTRACT_SOURCES:
        found |= source(ids)
    return found


def customer_deal_record(*, customer_id: int, at: datetime.datetime | None = None) -> None:
    """A deal was won (opportunity won, contract in force): the customer becomes a won
    customer and the pool's "no deal" clock restarts. The version moves so an edit form
    opened before is stale."""
    Customer.objects.filter(pk=customer_id).update(
        stage=CustomerStage.WON, last_deal_at=at or timezone.now(), version=F("version") + 1
    )


def _pool_rule_q(at: datetime.datetime) -> Q:
    """Customers that the pool rules would return at time ``at``."""
    settings = _settings()
    rules = list(PoolRule.objects.all())
    default = next((r for r in rules if r.level_id is None), None)

    def days(value, fallback) -> int:
        return fallback if value is None else value

    def condition(followup_days: int, deal_days: int) -> Q:
        q = Q(pk__in=[])
        if followup_days:
            cutoff = at - datetime.timedelta(days=followup_days)
            # Measured from the later of the last follow-up and when the owner got it.
            q |= (
                (Q(last_followup_at__isnull=True) | Q(last_followup_at__lt=cutoff))
                & (Q(assigned_at__isnull=True) | Q(assigned_at__lt=cutoff))
                & Q(created_at__lt=cutoff)
            )
        if deal_days:
            cutoff = at - datetime.timedelta(days=deal_days)
            q |= (
                (Q(last_deal_at__isnull=True) | Q(last_deal_at__lt=cutoff))
                & (Q(assigned_at__isnull=True) | Q(assigned_at__lt=cutoff))
                & Q(created_at__lt=cutoff)
            )
        return q

    default_followup = days(default and default.no_followup_days, settings.pool_no_followup_days)
    default_deal = days(default and default.no_deal_days, settings.pool_no_deal_days)
    level_rules = [r for r in rules if r.level_id is not None]
    q = ~Q(level_id__in=[r.level_id for r in level_rules]) & condition(
        default_followup, default_deal
    )
    for rule in level_rules:
        q |= Q(level_id=rule.level_id) & condition(
            days(rule.no_followup_days, default_followup), days(rule.no_deal_days, default_deal)
        )
    return Q(owner__isnull=False, in_pool=False) & q


def _recycle_ids(at: datetime.datetime) -> list[int]:
    ids = list(Customer.objects.filter(_pool_rule_q(at)).values_list("pk", flat=True))
    protected = has_active_contract(ids)
    return [pk for pk in ids if pk not in protected]


def customers_recycle_to_pool(*, now: datetime.datetime | None = None) -> int:
    """Return unattended customers to the pool (the daily job); returns how many moved."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = _recycle_ids(now)
        if not ids:
            return 0
        customers = list(
            Customer.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, owner__isnull=False, in_pool=False)
            .select_related("owner")
        )
        ids = [c.pk for c in customers]
        Customer.objects.filter(pk__in=ids).update(
            owner=None,
            department=None,
            in_pool=True,
            pool_entered_at=now,
            assigned_at=None,
            version=F("version") + 1,
            updated_at=now,
        )
        reason = _("No follow-up or deal within the pool rules.")
        CustomerEvent.objects.bulk_create(
            CustomerEvent(
                customer=c,
                kind=CustomerEventKind.AUTO_RETURNED,
                from_owner=c.owner,
                reason=reason,
            )
            for c in customers
        )
        by_owner: dict[Any, list[Customer]] = {}
        for c in customers:
            _audit(
                user=None,
                action="status",
                obj=c,
                changes={"owner": [c.owner_id, None], "in_pool": [False, True]},
                note="auto_returned",
                username="system",
            )
            by_owner.setdefault(c.owner, []).append(c)
        for owner, lost in by_owner.items():
            _notify(
                recipient=owner,
                title=_("%(count)d of your customers returned to the public pool")
                % {"count": len(lost)},
                body=", ".join(c.name for c in lost[:20]),
                level="warning",
            )
    return len(ids)


def customers_warn_before_recycle(
    *, now: datetime.datetime | None = None, days_before: int = 3
) -> int:
    """Warn owners of customers that will return to the pool in ``days_before`` days.

    Each customer is warned once: on the day it enters the warning window (it would be
    returned at ``now + days_before`` but not a day earlier). Returns how many customers.
    """
    now = now or timezone.now()
    due = set(_recycle_ids(now + datetime.timedelta(days=days_before)))
    already = set(_recycle_ids(now + datetime.timedelta(days=days_before - 1)))
    ids = sorted(due - already)
    if not ids:
        return 0
    by_owner: dict[Any, list[Customer]] = {}
    for c in Customer.objects.filter(pk__in=ids).select_related("owner"):
        by_owner.setdefault(c.owner, []).append(c)
    with transaction.atomic():
        for owner, customers in by_owner.items():
            _notify(
                recipient=owner,
                title=_("%(count)d customers return to the public pool in %(days)d days")
                % {"count": len(customers), "days": days_before},
                body=_("Follow them up to keep them: %(names)s")
                % {"names": ", ".join(c.name for c in customers[:20])},
                level="warning",
            )
    return len(ids)


# --- merge ----------------------------------------------------------------------------------

# (model, foreign key to Customer) moved from the merged customer to the survivor. Later
# modules (contracts, orders, payments) add theirs with ``customer_merge_relation_register``.
MERGE_RELATIONS: list[tuple[Any, str]] = [
    (Contact, "customer"),
    (FollowUp, "customer"),
    (Opportunity, "customer"),
    (CustomerEvent, "customer"),
]


# Context managers (opportunity_ids=[…]) entered around a change of opportunities inside its
# transaction: the analytics module keeps the funnel's stored counts with them. The list is
# read again at the end, so the id of an opportunity created in the block is appended to it.
OPPORTUNITY_TRACKERS: list[Callable[..., Any]] = []


@contextlib.contextmanager
def opportunities_tracked(ids: list[int]) -> Iterator[list[int]]:
    """Every change of an opportunity's stage, owner, department, amount or deletion runs
    inside this (after its transaction has begun), with the ids it changes or creates."""
    with contextlib.ExitStack() as stack:
        for tracker in OPPORTUNITY_TRACKERS:
            stack.enter_context(tracker(opportunity_ids=ids))
        yield ids


# Context managers (customer_ids=…) entered around the move of a merged customer's records,
# inside the merge's transaction: the analytics module keeps what customers owe with them.
MERGE_TRACKERS: list[Callable[..., Any]] = []


def _merge_tracked(*customer_ids: int) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    for tracker in MERGE_TRACKERS:
        stack.enter_context(tracker(customer_ids=list(customer_ids)))
    return stack


def customer_merge_relation_register(model, field: str = "customer") -> None:
    if (model, field) not in MERGE_RELATIONS:
        MERGE_RELATIONS.append((model, field))


def _relation_key(model, field: str) -> str:
    return f"{model._meta.label_lower}.{field}"


def _base_manager(model):
    return getattr(model, "all_objects", model._base_manager)


def _require_merge(actor) -> None:
    if not actor.is_superuser:
        require_perm(actor, "customers.delete")


def customer_merge(*, actor, survivor: Customer, merged: Customer) -> CustomerMerge:
    """Fold ``merged`` into ``survivor``: its contacts, follow-ups, opportunities, events
    (and later documents) move over; it is soft-deleted. Reversible with the stored ids."""
    _require_merge(actor)
    if survivor.pk == merged.pk:
        raise ServiceError(_("Choose two different customers."), field="merged")
    _ensure_visible(actor, survivor)
    _ensure_visible(actor, merged)
    with transaction.atomic():
        locked = {
            c.pk: c
            for c in Customer.objects.select_for_update().filter(pk__in=[survivor.pk, merged.pk])
        }
        if len(locked) != 2:
            raise Http404(_("Not found."))
        survivor, merged = locked[survivor.pk], locked[merged.pk]
        moved: dict[str, Any] = {}
        with _merge_tracked(survivor.pk, merged.pk):
            for model, field in MERGE_RELATIONS:
                queryset = _base_manager(model).filter(**{field: merged.pk})
                ids = list(queryset.values_list("pk", flat=True))
                if ids:
                    _base_manager(model).filter(pk__in=ids).update(**{field: survivor.pk})
                moved[_relation_key(model, field)] = ids
        # One primary contact: the survivor's stays primary, the merged one's are demoted.
        demoted: list[int] = []
        if (
            Contact.objects.filter(customer=survivor, is_primary=True)
            .exclude(pk__in=moved[_relation_key(Contact, "customer")])
            .exists()
        ):
            demoted = list(
                Contact.objects.filter(
                    pk__in=moved[_relation_key(Contact, "customer")], is_primary=True
                ).values_list("pk", flat=True)
            )
            Contact.objects.filter(pk__in=demoted).update(is_primary=False)
        moved["demoted_primary_contacts"] = demoted
        moved["survivor_dates"] = {
            "last_followup_at": _iso(survivor.last_followup_at),
            "next_followup_at": _iso(survivor.next_followup_at),
            "last_deal_at": _iso(survivor.last_deal_at),
        }
        snap = snapshot(merged)
        snap["tags"] = list(merged.tags.values_list("pk", flat=True))
        merge = CustomerMerge.objects.create(
            survivor=survivor, merged=merged, moved=moved, merged_snapshot=snap, actor=actor
        )
        survivor.tags.add(*merged.tags.all())
        Customer.objects.filter(pk=survivor.pk).update(
            last_followup_at=_latest(survivor.last_followup_at, merged.last_followup_at),
            next_followup_at=survivor.next_followup_at or merged.next_followup_at,
            last_deal_at=_latest(survivor.last_deal_at, merged.last_deal_at),
            version=F("version") + 1,
        )
        CustomerEvent.objects.create(
            customer=survivor,
            kind=CustomerEventKind.MERGED,
            actor=actor,
            data={"merge_id": merge.pk, "merged_id": merged.pk, "merged_name": merged.name},
        )
        soft_delete(instance=merged, user=actor)
        _audit(
            user=actor,
            action="change",
            obj=survivor,
            changes={"merged": [merged.pk, survivor.pk]},
            note=f"merge {merge.pk}: {merged.code} {merged.name} → {survivor.code}"[:500],
        )
    return merge


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _latest(a, b):
    return max((v for v in (a, b) if v is not None), default=None)


def customer_merge_revert(*, actor, merge: CustomerMerge) -> CustomerMerge:
    """Undo a merge: the moved records go back and the merged customer is restored."""
    from django.utils.dateparse import parse_datetime

    _require_merge(actor)
    with transaction.atomic():
        merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
        if merge.reverted_at is not None:
            raise ServiceError(_("This merge has already been reverted."))
        _ensure_visible(actor, merge.survivor)
        with _merge_tracked(merge.survivor_id, merge.merged_id):
            for model, field in MERGE_RELATIONS:
                ids = merge.moved.get(_relation_key(model, field)) or []
                if ids:
                    _base_manager(model).filter(pk__in=ids).update(**{field: merge.merged_id})
        demoted = merge.moved.get("demoted_primary_contacts") or []
        if demoted:
            Contact.all_objects.filter(pk__in=demoted).update(is_primary=True)
        dates = merge.moved.get("survivor_dates") or {}
        Customer.all_objects.filter(pk=merge.survivor_id).update(
            **{key: parse_datetime(value) if value else None for key, value in dates.items()},
            version=F("version") + 1,
        )
        merged = Customer.all_objects.get(pk=merge.merged_id)
        soft_restore(instance=merged, user=actor)
        merge.reverted_at = timezone.now()
        merge.save(update_fields=["reverted_at"])
        CustomerEvent.objects.create(
            customer=merge.survivor,
            kind=CustomerEventKind.UNMERGED,
            actor=actor,
            data={"merge_id": merge.pk, "merged_id": merged.pk, "merged_name": merged.name},
        )
        _audit(
            user=actor,
            action="change",
            obj=merge.survivor,
            changes={"merged": [merge.survivor_id, merged.pk]},
            note=f"merge {merge.pk} reverted"[:500],
        )
    return merge


# --- contacts -------------------------------------------------------------------------------


def _contact_values(data: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in data.items() if k in CONTACT_EDITABLE}
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
        if not values["name"]:
            raise ServiceError(_("This field is required."), field="name")
    return values


def contact_create(*, actor, customer: Customer, data: dict[str, Any]) -> Contact:
    """Add a contact; the first one of a customer, or one marked primary, becomes primary."""
    require_perm(actor, "customers.change")
    _ensure_visible(actor, customer)
    values = _contact_values(data)
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        has_primary = Contact.objects.filter(customer=customer, is_primary=True).exists()
        if values.get("is_primary") and has_primary:
            Contact.objects.filter(customer=customer, is_primary=True).update(is_primary=False)
        elif not has_primary:
            values["is_primary"] = True
        return model_create(model=Contact, user=actor, data={**values, "customer": customer})


def contact_update(
    *, actor, contact: Contact, expected_version: int, data: dict[str, Any]
) -> Contact:
    require_perm(actor, "customers.change")
    _ensure_visible(actor, contact.customer)
    values = _contact_values(data)
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=contact.customer_id).first()
        if values.get("is_primary"):
            Contact.objects.filter(customer_id=contact.customer_id, is_primary=True).exclude(
                pk=contact.pk
            ).update(is_primary=False)
        elif values.get("is_primary") is False and contact.is_primary:
            # Unmarking the only primary contact would leave the customer without one.
            values.pop("is_primary")
        return versioned_update(
            instance=contact, user=actor, expected_version=expected_version, data=values
        )


def contact_delete(*, actor, contact: Contact) -> None:
    """Soft-delete a contact; if it was the primary one, the oldest remaining takes over."""
    require_perm(actor, "customers.change")
    _ensure_visible(actor, contact.customer)
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=contact.customer_id).first()
        soft_delete(instance=contact, user=actor)
        if contact.is_primary:
            successor = (
                Contact.objects.filter(customer_id=contact.customer_id).order_by("id").first()
            )
            if successor is not None:
                Contact.objects.filter(pk=successor.pk).update(is_primary=True)


# --- follow-ups -----------------------------------------------------------------------------


def _followup_values(customer_id: int, data: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in data.items() if k in FOLLOWUP_EDITABLE}
    contact = values.get("contact")
    if contact is not None and contact.customer_id != customer_id:
        raise ServiceError(_("This contact belongs to another customer."), field="contact")
    method = values.get("method")
    if method is not None and method.dictionary.code != "followup_method":
        raise ServiceError(_("Choose a value from the list."), field="method")
    if "content" in values and not (values["content"] or "").strip():
        raise ServiceError(_("This field is required."), field="content")
    happened = values.get("happened_at")
    following = values.get("next_followup_at")
    if happened and following and following < happened:
        raise ServiceError(
            _("The next follow-up must be after this one."), field="next_followup_at"
        )
    return values


def _customer_followup_dates_refresh(customer_id: int) -> None:
    """Recompute last/next follow-up from the customer's remaining follow-ups."""
    followups = FollowUp.objects.filter(customer_id=customer_id)
    latest = followups.order_by("-happened_at", "-id").first()
    Customer.all_objects.filter(pk=customer_id).update(
        last_followup_at=followups.aggregate(m=Max("happened_at"))["m"],
        next_followup_at=latest.next_followup_at if latest else None,
    )


def followup_create(
    *, actor, customer: Customer, data: dict[str, Any], files: Iterable = ()
) -> FollowUp:
    """Record a follow-up; the customer's last follow-up only moves forward, and the next
    one is taken from the latest follow-up. ``files`` are validated attachments."""
    from kehu.core.attachments import attachment_add, attachment_validate

    require_perm(actor, "customers.change")
    _ensure_visible(actor, customer)
    values = _followup_values(customer.pk, {"happened_at": timezone.now(), **data})
    files = list(files)
    for file in files:  # all checked before anything is written
        attachment_validate(file)
    with transaction.atomic():
        followup = model_create(
            model=FollowUp, user=actor, data={**values, "customer": customer, "author": actor}
        )
        update: dict[str, Any] = {"last_followup_at": followup.happened_at}
        if followup.next_followup_at:
            update["next_followup_at"] = followup.next_followup_at
        # Conditional: a back-dated follow-up never moves the dates backwards.
        moved = Customer.objects.filter(
            Q(last_followup_at__isnull=True) | Q(last_followup_at__lte=followup.happened_at),
            pk=customer.pk,
        ).update(**update)
        if not moved and followup.next_followup_at:
            Customer.objects.filter(pk=customer.pk, next_followup_at__isnull=True).update(
                next_followup_at=followup.next_followup_at
            )
        for file in files:
            attachment_add(actor=actor, obj=followup, file=file)
    return followup


def followup_update(
    *,
    actor,
    followup: FollowUp,
    expected_version: int,
    data: dict[str, Any],
    files: Iterable = (),
) -> FollowUp:
    from kehu.core.attachments import attachment_add, attachment_validate

    require_perm(actor, "customers.change")
    _ensure_visible(actor, followup.customer)
    merged = {
        "happened_at": followup.happened_at,
        "next_followup_at": followup.next_followup_at,
        **data,
    }
    values = _followup_values(followup.customer_id, merged)
    values = {k: v for k, v in values.items() if k in data}
    files = list(files)
    for file in files:
        attachment_validate(file)
    with transaction.atomic():
        followup = versioned_update(
            instance=followup, user=actor, expected_version=expected_version, data=values
        )
        _customer_followup_dates_refresh(followup.customer_id)
        for file in files:
            attachment_add(actor=actor, obj=followup, file=file)
    return followup


def followup_delete(*, actor, followup: FollowUp) -> None:
    require_perm(actor, "customers.change")
    _ensure_visible(actor, followup.customer)
    if followup.author_id != actor.pk:
        require_perm(actor, "customers.delete")
    with transaction.atomic():
        soft_delete(instance=followup, user=actor)
        _customer_followup_dates_refresh(followup.customer_id)


# --- seeds ----------------------------------------------------------------------------------

DEFAULT_PIPELINE = [
    # name, English name, kind, probability
    ("初步接触", "First contact", StageKind.OPEN, 10),
    ("需求确认", "Needs confirmed", StageKind.OPEN, 30),
    ("方案报价", "Proposal / quote", StageKind.OPEN, 50),
    ("谈判审核", "Negotiation", StageKind.OPEN, 70),
    ("赢单", "Won", StageKind.WON, 100),
    ("输单", "Lost", StageKind.LOST, 0),
]


def customers_seed_defaults() -> None:
    """Default pipeline stages and the default pool rule, only where missing."""
    from kehu.customers.models import PipelineStage

    with transaction.atomic():
        if not PipelineStage.objects.exists():
            PipelineStage.objects.bulk_create(
                PipelineStage(
                    name=name, name_en=name_en, kind=kind, probability=p, sort_order=i * 10
                )
                for i, (name, name_en, kind, p) in enumerate(DEFAULT_PIPELINE, start=1)
            )
        if not PoolRule.objects.filter(level__isnull=True).exists():
            # Empty day counts: the default follows the company settings page.
            PoolRule.objects.create(level=None)
