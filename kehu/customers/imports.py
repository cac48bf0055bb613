"""Customer import (through the customer services, so every rule applies) and export columns."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import CharField, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kehu.core.customfields import custom_field_definitions, definition_label
from kehu.core.exports import ExportColumn
from kehu.core.imports import ColumnType, ImportColumn, Importer, RowError, register_importer
from kehu.core.models import ImportJob
from kehu.core.permissions import has_perm
from kehu.core.scope import visible_to
from kehu.customers.models import Customer, CustomerKind, CustomerStage, CustomerTag
from kehu.customers.services import CUSTOMER_EDITABLE_FIELDS


def _label(name: str):
    """The model field's own (translated) name, so import, export and forms agree."""
    field = Customer._meta.get_field(name)
    return capfirst(getattr(field, "verbose_name", name))


def _max(name: str) -> int | None:
    return getattr(Customer._meta.get_field(name), "max_length", None)


TEXT_FIELDS = ("name", "short_name", "website", "province", "city", "district", "street", "notes")
FIELDS = CUSTOMER_EDITABLE_FIELDS
MATCH_COLUMN = {"name": "name", "phone": "phone", "email": "email"}
# Fields whose import column runs the model field's own validators (the e-mail column:
# Django's validate_email and the field's length), not checked twice by customer_draft.
PRECHECKED = frozenset({"email"})


@register_importer
class CustomerImporter(Importer):
    name = "customers"
    model = Customer
    module = "customers"
    list_url_name = "customers:customer_list"
    columns = [
        ImportColumn(
            "name",
            _label("name"),
            required=True,
            max_length=_max("name"),
            example="华为技术有限公司",
        ),
        ImportColumn("short_name", _label("short_name"), max_length=_max("short_name")),
        ImportColumn(
            "kind",
            _label("kind"),
            type=ColumnType.CHOICE,
            choices=CustomerKind.choices,
            example=CustomerKind.COMPANY.label,
        ),
        ImportColumn(
            "phone",
            _label("phone"),
            type=ColumnType.PHONE,
            max_length=_max("phone"),
            example="0755-28780808",
        ),
        ImportColumn(
            "mobile",
            _label("mobile"),
            type=ColumnType.PHONE,
            max_length=_max("mobile"),
            example="13800138000",
        ),
        ImportColumn(
            "email",
            _label("email"),
            type=ColumnType.EMAIL,
            max_length=254,
            example="info@example.com",
        ),
        ImportColumn("website", _label("website"), max_length=200),
        ImportColumn("province", _label("province"), max_length=_max("province"), example="广东省"),
        ImportColumn("city", _label("city"), max_length=_max("city"), example="深圳市"),
        ImportColumn("district", _label("district"), max_length=_max("district"), example="龙岗区"),
        ImportColumn("street", _label("street"), max_length=_max("street")),
        ImportColumn("industry", _label("industry"), dictionary="industry", example="信息技术"),
        ImportColumn("source", _label("source"), dictionary="customer_source", example="展会"),
        ImportColumn("level", _label("level"), dictionary="customer_level"),
        ImportColumn(
            "stage",
            _label("stage"),
            type=ColumnType.CHOICE,
            choices=CustomerStage.choices,
            example=CustomerStage.POTENTIAL.label,
        ),
        ImportColumn("tags", _label("tags"), many=True, example="重点, 华南"),
        ImportColumn("notes", _label("notes")),
        ImportColumn("owner", _label("owner"), max_length=150),
    ]
    # Read-only columns of the customer export, ignored when an export is imported again.
    ignored_headers = [
        "code",
        _label("code"),
        _label("department"),
        _label("in_pool"),
        _label("last_followup_at"),
        _label("next_followup_at"),
        _label("created_at"),
    ]

    def __init__(self, *, user, duplicate_policy: str = ImportJob.DuplicatePolicy.SKIP):
        from kehu.customers.services import CustomerDraftChecks

        super().__init__(user=user, duplicate_policy=duplicate_policy)
        self._owners: dict[str, Any] = {}
        self._checks = CustomerDraftChecks()

    def clean_row(self, row: dict[str, Any]) -> None:
        """The owner column names a user by username; naming someone else needs assign."""
        username = (row.get("owner") or "").strip()
        row["owner"] = None
        if not username:
            return  # the importer owns the customer
        key = username.casefold()
        if key not in self._owners:
            self._owners[key] = (
                get_user_model().objects.filter(username__iexact=username, is_active=True).first()
            )
        owner = self._owners[key]
        if owner is None:
            raise RowError(_("No active user “%(name)s”.") % {"name": username}, column="owner")
        if owner.pk != self.user.pk and not has_perm(self.user, "customers.assign"):
            raise RowError(
                _(
                    "You may not assign customers to other users; "
                    "leave the owner empty to own them yourself."
                ),
                column="owner",
            )
        row["owner"] = owner

    def find_duplicate(self, row: dict[str, Any]):
        """The in-scope customer the row matches. One the user cannot see is never updated:
        it is an error that says only who owns it."""
        from kehu.customers.services import customer_find_duplicates

        hits = customer_find_duplicates(
            actor=self.user,
            name=row.get("name") or "",
            phone=row.get("phone") or "",
            mobile=row.get("mobile") or "",
            email=row.get("email") or "",
        )
        if not hits:
            return None
        ids = [h.customer_id for h in hits if h.visible and h.customer_id]
        in_scope = visible_to(Customer.objects.filter(pk__in=ids), self.user).order_by("-id")
        found = in_scope.first()
        if found is not None:
            return found
        visible = next((h for h in hits if h.visible), None)
        if visible is not None:
            if self.duplicate_policy == ImportJob.DuplicatePolicy.UPDATE:
                raise RowError(
                    _("“%(name)s” is in the public pool; claim it before updating it.")
                    % {"name": visible.name},
                    column=MATCH_COLUMN[visible.matched_on],
                )
            return Customer.objects.get(pk=visible.customer_id)
        raise RowError(hits[0].message(), column=MATCH_COLUMN[hits[0].matched_on])

    def write_batch(self, rows: list[tuple[int, dict[str, Any]]]) -> list[str | Exception]:
        """The rows' outcomes as ``find_duplicate`` then ``create``/``update`` row after row
        would give them, in a few queries per batch.

        Every row is checked as ``customer_create`` checks it (no queries), the duplicates
        of the whole batch are found in two queries, and the new customers are written
        together by ``customer_create_many``. A row repeating an earlier row of the batch
        is skipped (that row is created first); rows whose outcome depends on a write made
        in this batch (updates, and rows matching what they changed) go through the
        row-by-row path after the pending customers are written, so the order of the file
        decides exactly as before.
        """
        from kehu.customers.services import (
            MATCH_FIELDS,
            customer_create_many,
            customer_find_duplicates_many,
        )

        policy = self.duplicate_policy
        measure = self.phases.measure
        with measure("validate"):
            drafts = [self._draft(row) for _line, row in rows]
        outcomes: list[str | Exception | None] = [None] * len(rows)
        if policy == ImportJob.DuplicatePolicy.CREATE:
            good = [d for d in drafts if not isinstance(d, Exception)]
            with measure("write"):
                customer_create_many(actor=self.user, drafts=good)  # type: ignore[arg-type]
            return [d if isinstance(d, Exception) else "created" for d in drafts]
        with measure("duplicates"):
            matches = customer_find_duplicates_many(
                actor=self.user,
                items=[{k: row.get(k) or "" for k in MATCH_FIELDS} for _line, row in rows],
            )
        pending: list[tuple[int, Any]] = []
        pending_keys: set = set()
        touched_keys: set = set()
        touched_ids: set[int] = set()

        def flush() -> None:
            with measure("write"):
                customer_create_many(actor=self.user, drafts=[d for _i, d in pending])
            for index, _draft in pending:
                outcomes[index] = "created"
            pending.clear()

        update = policy == ImportJob.DuplicatePolicy.UPDATE
        for index, (_line, row) in enumerate(rows):
            keys = matches.keys[index]
            hits = matches.hits[index]
            if not update and not keys.isdisjoint(pending_keys):
                outcomes[index] = "skipped"  # repeats an earlier row, created in scope
                continue
            # Matches what this batch wrote: the batch's hits are out of date.
            # (Two intersections: a union of the batch's key sets would be built per row.)
            stale = (
                not keys.isdisjoint(touched_keys)
                or not keys.isdisjoint(pending_keys)
                or any(h.customer_id in touched_ids for h in hits)
            )
            if hits and not stale:
                try:
                    self._duplicate_in_scope(hits, matches.in_scope_ids)
                except RowError as exc:
                    outcomes[index] = exc
                    continue
                if not update:
                    outcomes[index] = "skipped"
                    continue
            if stale or hits:
                flush()  # row by row from here, as the file's order has it
                with measure("write"):
                    outcomes[index], changed = self._write_one(row)
                if changed is not None:
                    touched_ids.add(changed)
                touched_keys |= keys
                continue
            draft = drafts[index]
            if isinstance(draft, Exception):
                outcomes[index] = draft
                continue
            pending.append((index, draft))
            pending_keys |= keys
        flush()
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]

    def _duplicate_in_scope(self, hits, in_scope_ids: set[int]):
        """``find_duplicate``'s decision from a batch's hits: the id of the newest in-scope
        match, None for a pool match (skipped), RowError otherwise."""
        for hit in hits:  # newest first
            if hit.visible and hit.customer_id in in_scope_ids:
                return hit.customer_id
        visible = next((h for h in hits if h.visible), None)
        if visible is not None:
            if self.duplicate_policy == ImportJob.DuplicatePolicy.UPDATE:
                raise RowError(
                    _("“%(name)s” is in the public pool; claim it before updating it.")
                    % {"name": visible.name},
                    column=MATCH_COLUMN[visible.matched_on],
                )
            return None
        raise RowError(hits[0].message(), column=MATCH_COLUMN[hits[0].matched_on])

    def _write_one(self, row: dict[str, Any]) -> tuple[str | Exception, int | None]:
        """One row the row-by-row way, in its own savepoint: (outcome, id it changed)."""
        from kehu.core.imports import ROW_EXCEPTIONS

        try:
            with transaction.atomic():
                duplicate = self.find_duplicate(row)
                if duplicate is None:
                    return "created", self.create(row, actor=self.user).pk
                if self.duplicate_policy == ImportJob.DuplicatePolicy.SKIP:
                    return "skipped", None
                self.update(duplicate, row, actor=self.user)
                return "updated", duplicate.pk
        except ROW_EXCEPTIONS as exc:
            return exc, None

    def _draft(self, row: dict[str, Any]):
        """The row checked as a new customer (a CustomerDraft), or the exception refusing it."""
        from kehu.core.imports import ROW_EXCEPTIONS
        from kehu.customers.services import customer_draft

        try:
            return customer_draft(
                actor=self.user,
                data=self._data(row, for_update=False),
                tags=row.get("tags") or (),
                custom_fields={
                    k: v for k, v in row["custom_fields"].items() if v not in (None, "")
                },
                owner=row.get("owner"),
                checks=self._checks,
                prechecked=PRECHECKED,
            )
        except ROW_EXCEPTIONS as exc:
            return exc

    @staticmethod
    def _data(row: dict[str, Any], *, for_update: bool) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in FIELDS:
            value = row.get(name)
            # Absent columns are left alone; on update, empty cells are too (an import
            # fills in, it does not wipe what users typed).
            if value is None or (for_update and value == ""):
                continue
            data[name] = value
        return data

    def create(self, row: dict[str, Any], *, actor):
        from kehu.customers.services import customer_create

        return customer_create(
            actor=actor,
            data=self._data(row, for_update=False),
            tags=row.get("tags") or (),
            custom_fields={k: v for k, v in row["custom_fields"].items() if v not in (None, "")},
            owner=row.get("owner"),
            allow_duplicate=self.duplicate_policy == ImportJob.DuplicatePolicy.CREATE,
        )

    def update(self, obj, row: dict[str, Any], *, actor):
        from kehu.customers.services import customer_update

        tags = row.get("tags")
        return customer_update(
            actor=actor,
            customer=obj,
            expected_version=obj.version,
            data=self._data(row, for_update=True),
            # New tags are added to the customer's; existing ones stay.
            tags=[*obj.tags.all(), *tags] if tags else None,
            custom_fields={k: v for k, v in row["custom_fields"].items() if v not in (None, "")},
        )


# --- export ---------------------------------------------------------------------------------


def _dictionary(name: str):
    def get(customer: Customer) -> str:
        item = getattr(customer, name)
        return item.display_label if item is not None else ""

    return get


def _tag_names(customer: Customer) -> str:
    names = getattr(customer, "export_tag_names", None)
    if names is None:  # a queryset without the annotation (prefetch "tags" there)
        return ", ".join(t.name for t in customer.tags.all())
    return names


def _with_tag_names(queryset):
    """The tags as one text column of the export's query, sorted by name like the tag
    list, so an export of any size costs the same queries (no prefetch per chunk)."""
    through = Customer.tags.through._meta.db_table
    tags = CustomerTag._meta.db_table
    customers = Customer._meta.db_table
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT STRING_AGG(t.name, ', ' ORDER BY t.name) FROM {through} ct "
            f"JOIN {tags} t ON t.id = ct.customertag_id WHERE ct.customer_id = {customers}.id"
        )
    else:
        sql = (
            f"SELECT GROUP_CONCAT(name, ', ') FROM (SELECT t.name FROM {through} ct "
            f"JOIN {tags} t ON t.id = ct.customertag_id WHERE ct.customer_id = {customers}.id "
            "ORDER BY t.name)"
        )
    return queryset.prefetch_related(None).annotate(
        export_tag_names=Coalesce(RawSQL(sql, ()), Value(""), output_field=CharField())
    )


BASE_EXPORT_COLUMNS = [
    ExportColumn("code", _label("code")),
    ExportColumn("name", _label("name")),
    ExportColumn("short_name", _label("short_name")),
    ExportColumn("kind", _label("kind"), lambda c: c.get_kind_display()),
    ExportColumn("phone", _label("phone")),
    ExportColumn("mobile", _label("mobile")),
    ExportColumn("email", _label("email")),
    ExportColumn("website", _label("website")),
    ExportColumn("province", _label("province")),
    ExportColumn("city", _label("city")),
    ExportColumn("district", _label("district")),
    ExportColumn("street", _label("street")),
    ExportColumn("industry", _label("industry"), _dictionary("industry")),
    ExportColumn("source", _label("source"), _dictionary("source")),
    ExportColumn("level", _label("level"), _dictionary("level")),
    ExportColumn("stage", _label("stage"), lambda c: c.get_stage_display()),
    ExportColumn("tags", _label("tags"), _tag_names, prepare=_with_tag_names),
    ExportColumn("notes", _label("notes")),
    ExportColumn("owner", _label("owner"), lambda c: c.owner.get_username() if c.owner else ""),
    ExportColumn(
        "department", _label("department"), lambda c: str(c.department) if c.department else ""
    ),
    ExportColumn("in_pool", _label("in_pool"), lambda c: _("Yes") if c.in_pool else _("No")),
    ExportColumn("last_followup_at", _label("last_followup_at")),
    ExportColumn("next_followup_at", _label("next_followup_at")),
    ExportColumn("created_at", _label("created_at")),
]


def _custom_column(definition) -> ExportColumn:
    return ExportColumn(
        f"cf_{definition.key}",
        definition_label(definition),
        lambda c: (c.custom_fields or {}).get(definition.key, ""),
    )


def customer_export_columns() -> list[ExportColumn]:
    """The export's columns now: the fixed ones plus every active custom field."""
    return [*BASE_EXPORT_COLUMNS, *(_custom_column(d) for d in custom_field_definitions(Customer))]


EXPORT_FILENAME = gettext_lazy("customers")
