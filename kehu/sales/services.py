"""Every write on quotes, contracts, amendments, orders and shipments.

Permissions: ``sales.add`` / ``change`` / ``delete`` for the documents; approving goes
through the approval engine (``kehu.approvals``); moving goods (ship, return, cancelling
an order whose goods have left) needs ``products.change``, the warehouse's permission.
Statuses change only here, by a conditional UPDATE on (status, version), with a
``DocumentEvent`` row and an operation-log row for each change.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.approvals.services import approval_submit
from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import visible_to
from kehu.core.services import (
    _audit,
    document_number_next,
    model_create,
    soft_delete,
    versioned_update,
)
from kehu.customers.models import Customer, Opportunity
from kehu.products.models import MovementKind, Product
from kehu.sales.models import (
    AmendmentStatus,
    Contract,
    ContractAmendment,
    ContractLine,
    ContractStatus,
    DocumentEvent,
    Order,
    OrderLine,
    OrderStatus,
    Quote,
    QuoteLine,
    QuoteStatus,
    Shipment,
    ShipmentKind,
    ShipmentLine,
)
from kehu.sales.totals import document_amounts, line_amounts

QUOTE_PREFIX, CONTRACT_PREFIX, ORDER_PREFIX = "BJ", "HT", "DD"
SHIPMENT_PREFIX, RETURN_PREFIX = "FH", "TH"
CONTRACT_DOCUMENT_TYPE = "sales.contract"
AMENDMENT_DOCUMENT_TYPE = "sales.contract_amendment"
ZERO = Decimal("0")


# --- shared ---------------------------------------------------------------------------------


def _check_visible(actor, document) -> None:
    """Services get documents from scoped selectors; this guards callers that did not."""
    model = type(document)
    if not visible_to(model._base_manager.filter(pk=document.pk), actor).exists():
        raise PermissionRefused()


def _event(document, *, actor, from_status: str, to_status: str, note: str = "") -> None:
    DocumentEvent.objects.create(
        content_type=ContentType.objects.get_for_model(type(document)),
        object_id=document.pk,
        from_status=from_status,
        to_status=to_status,
        note=note[:500],
        actor=actor,
    )


def _transition(
    document,
    *,
    actor,
    allowed_from: Iterable[str],
    to_status: str,
    expected_version: int | None = None,
    note: str = "",
    **fields: Any,
):
    """Move ``document`` to ``to_status`` if it is in one of ``allowed_from``.

    One conditional UPDATE: a concurrent change makes it fail (409 when the version moved,
    a clear refusal when the status does not allow the step). Returns the fresh document.
    """
    model = type(document)
    allowed = list(allowed_from)
    current = model._base_manager.select_for_update().get(pk=document.pk)
    if expected_version is not None and current.version != expected_version:
        raise ConflictError()
    if current.status not in allowed:
        raise ServiceError(
            _("A %(document)s that is “%(status)s” cannot become “%(target)s”.")
            % {
                "document": model._meta.verbose_name,
                "status": current.get_status_display(),
                "target": dict(model._meta.get_field("status").choices)[to_status],
            },
            field="status",
            code="invalid_status",
        )
    updated = model._base_manager.filter(pk=current.pk, version=current.version).update(
        status=to_status,
        version=F("version") + 1,
        updated_at=timezone.now(),
        updated_by=actor if actor is not None and actor.is_authenticated else None,
        **fields,
    )
    if updated != 1:
        raise ConflictError()
    _event(current, actor=actor, from_status=current.status, to_status=to_status, note=note)
    _audit(
        user=actor,
        action="status",
        obj=current,
        changes={"status": [current.status, to_status]},
        note=note[:500],
    )
    current.refresh_from_db()
    return current


def _decimal(value, *, field: str, line: int) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ServiceError(
            _("Line %(line)s: enter a number.") % {"line": line}, field=field
        ) from exc


def _lines_build(line_model, lines: list[dict[str, Any]]) -> list:
    """Validated, priced, unsaved line instances from ``{"product", "quantity", ...}`` dicts.

    Unit price defaults to the product's list price and the tax rate to the product's.
    """
    if not lines:
        raise ServiceError(_("Add at least one line."), field="lines", code="no_lines")
    built = []
    for position, data in enumerate(lines, start=1):
        product = data.get("product")
        if not isinstance(product, Product) or product.deleted_at is not None:
            raise ServiceError(
                _("Line %(line)s: choose a product.") % {"line": position}, field="lines"
            )
        quantity = _decimal(data.get("quantity"), field="lines", line=position)
        price = data.get("unit_price")
        unit_price = (
            product.list_price
            if price in (None, "")
            else _decimal(price, field="lines", line=position)
        )
        discount = _decimal(data.get("discount_rate") or 0, field="lines", line=position)
        tax = data.get("tax_rate")
        tax_rate = (
            product.tax_rate if tax in (None, "") else _decimal(tax, field="lines", line=position)
        )
        if quantity <= 0:
            raise ServiceError(
                _("Line %(line)s: the quantity must be more than 0.") % {"line": position},
                field="lines",
            )
        if quantity != quantity.quantize(Decimal("0.001")):
            raise ServiceError(
                _("Line %(line)s: at most 3 decimal places in the quantity.") % {"line": position},
                field="lines",
            )
        if unit_price < 0 or unit_price != unit_price.quantize(Decimal("0.01")):
            raise ServiceError(
                _("Line %(line)s: the unit price must be 0 or more, in cents.")
                % {"line": position},
                field="lines",
            )
        for value in (discount, tax_rate):
            if not ZERO <= value <= Decimal("100") or value != value.quantize(Decimal("0.01")):
                raise ServiceError(
                    _("Line %(line)s: percentages are between 0 and 100.") % {"line": position},
                    field="lines",
                )
        amounts = line_amounts(
            quantity=quantity, unit_price=unit_price, discount_rate=discount, tax_rate=tax_rate
        )
        description = (data.get("description") or "").strip() or " ".join(
            part for part in (product.name, product.specification) if part
        )
        line = line_model(
            product=product,
            description=description[:300],
            unit=(data.get("unit") or (product.unit.label if product.unit else ""))[:20],
            quantity=quantity,
            unit_price=unit_price,
            discount_rate=discount,
            tax_rate=tax_rate,
            subtotal=amounts.subtotal,
            tax_amount=amounts.tax_amount,
            total_amount=amounts.total_amount,
            sort_order=position,
        )
        for key in ("contract_line", "id"):
            if data.get(key) is not None:
                setattr(line, key, data[key])
        built.append(line)
    return built


def _lines_save(document, parent_field: str, lines: list) -> None:
    """Replace the document's lines and store the totals they add up to."""
    model = type(lines[0])
    model.objects.filter(**{parent_field: document}).delete()
    for line in lines:
        line.pk = None
        setattr(line, parent_field, document)
    model.objects.bulk_create(lines)
    _totals_store(document, lines)


def _totals_store(document, lines) -> None:
    amounts = document_amounts(lines)
    type(document)._base_manager.filter(pk=document.pk).update(
        subtotal_amount=amounts.subtotal_amount,
        tax_amount=amounts.tax_amount,
        total_amount=amounts.total_amount,
    )
    document.subtotal_amount = amounts.subtotal_amount
    document.tax_amount = amounts.tax_amount
    document.total_amount = amounts.total_amount


def _header_clean(*, actor, data: dict[str, Any], instance=None) -> dict[str, Any]:
    """Customer, contact and opportunity must be the actor's to see and belong together;
    the owner is the actor unless they may assign; the department follows the owner."""
    data = dict(data)
    customer = data.get("customer", getattr(instance, "customer", None))
    if customer is not None:
        if not visible_to(Customer.objects.filter(pk=customer.pk), actor).exists():
            raise ServiceError(_("Choose one of your customers."), field="customer")
        if customer.in_pool:
            raise ServiceError(
                _("This customer is in the public pool; claim it first."), field="customer"
            )
    contact = data.get("contact")
    if contact is not None and (customer is None or contact.customer_id != customer.pk):
        raise ServiceError(_("This contact belongs to another customer."), field="contact")
    opportunity = data.get("opportunity")
    if opportunity is not None:
        if customer is None or opportunity.customer_id != customer.pk:
            raise ServiceError(
                _("This opportunity belongs to another customer."), field="opportunity"
            )
        if not visible_to(Opportunity.objects.filter(pk=opportunity.pk), actor).exists():
            raise ServiceError(_("Choose one of your opportunities."), field="opportunity")
    if "owner" in data:
        owner = data["owner"] or actor
        if (
            instance is None
            and owner.pk != actor.pk
            or (instance is not None and owner.pk != instance.owner_id)
        ):
            require_perm(actor, "sales.assign")
        if not owner.is_active:
            raise ServiceError(_("Choose an active user."), field="owner")
        data["owner"] = owner
        data["department"] = owner.department
    elif instance is None:
        data["owner"] = actor
        data["department"] = actor.department
    return data


def _check_editable(document, *, action: str = "edit") -> None:
    if not document.is_editable():
        raise ServiceError(
            _("A %(document)s that is “%(status)s” cannot be changed.")
            % {
                "document": type(document)._meta.verbose_name,
                "status": document.get_status_display(),
            },
            field="status",
            code="not_editable",
        )


def _create(
    model,
    *,
    actor,
    prefix: str,
    data: dict[str, Any],
    lines: list[dict[str, Any]],
    line_model,
    parent_field: str,
    initial_status: str,
):
    data = _header_clean(actor=actor, data=data)
    built = _lines_build(line_model, lines)
    with transaction.atomic():
        data["number"] = document_number_next(prefix=prefix)
        document = model_create(model=model, user=actor, data=data)
        _lines_save(document, parent_field, built)
        _event(document, actor=actor, from_status="", to_status=initial_status)
    return document


def _update(document, *, actor, expected_version, data, lines, line_model, parent_field: str):
    _check_visible(actor, document)
    _check_editable(document)
    data = _header_clean(actor=actor, data=data, instance=document)
    built = _lines_build(line_model, lines) if lines is not None else None
    with transaction.atomic():
        document = versioned_update(
            instance=document, user=actor, expected_version=expected_version, data=data
        )
        _check_editable(document)  # re-read under the row lock
        if built is not None:
            _lines_save(document, parent_field, built)
    return document


def _delete(document, *, actor) -> None:
    require_perm(actor, "sales.delete")
    _check_visible(actor, document)
    _check_editable(document)
    soft_delete(instance=document, user=actor)


# --- quotes ---------------------------------------------------------------------------------


def quote_create(*, actor, data: dict[str, Any], lines: list[dict[str, Any]]) -> Quote:
    require_perm(actor, "sales.add")
    data = dict(data)
    today = timezone.localdate()
    data.setdefault("quote_date", today)
    if not data.get("valid_until"):
        from kehu.system.services import system_settings_get

        data["valid_until"] = data["quote_date"] + datetime.timedelta(
            days=system_settings_get().quote_validity_days
        )
    return _create(
        Quote,
        actor=actor,
        prefix=QUOTE_PREFIX,
        data=data,
        lines=lines,
        line_model=QuoteLine,
        parent_field="quote",
        initial_status=QuoteStatus.DRAFT,
    )


def quote_update(
    *, actor, quote: Quote, expected_version: int | None, data: dict[str, Any], lines=None
) -> Quote:
    require_perm(actor, "sales.change")
    return _update(
        quote,
        actor=actor,
        expected_version=expected_version,
        data=data,
        lines=lines,
        line_model=QuoteLine,
        parent_field="quote",
    )


def quote_delete(*, actor, quote: Quote) -> None:
    _delete(quote, actor=actor)


def quote_send(*, actor, quote: Quote, expected_version: int | None = None) -> Quote:
    require_perm(actor, "sales.change")
    _check_visible(actor, quote)
    with transaction.atomic():
        return _transition(
            quote,
            actor=actor,
            allowed_from=[QuoteStatus.DRAFT],
            to_status=QuoteStatus.SENT,
            expected_version=expected_version,
        )


def quote_accept(*, actor, quote: Quote, expected_version: int | None = None) -> Quote:
    require_perm(actor, "sales.change")
    _check_visible(actor, quote)
    with transaction.atomic():
        return _transition(
            quote,
            actor=actor,
            allowed_from=[QuoteStatus.SENT],
            to_status=QuoteStatus.ACCEPTED,
            expected_version=expected_version,
        )


def quote_reject(
    *, actor, quote: Quote, reason: str = "", expected_version: int | None = None
) -> Quote:
    require_perm(actor, "sales.change")
    _check_visible(actor, quote)
    with transaction.atomic():
        return _transition(
            quote,
            actor=actor,
            allowed_from=[QuoteStatus.SENT],
            to_status=QuoteStatus.REJECTED,
            expected_version=expected_version,
            note=reason,
        )


def quote_convert_to_contract(
    *, actor, quote: Quote, data: dict[str, Any] | None = None, expected_version: int | None = None
) -> Contract:
    """Turn a sent or accepted quote into a draft contract with the same lines, in one step.

    A sent quote is marked accepted on the way (the customer said yes). The quote ends
    ``converted`` and points at its contract; converting twice is refused.
    """
    require_perm(actor, "sales.add")
    _check_visible(actor, quote)
    with transaction.atomic():
        current = Quote._base_manager.select_for_update().get(pk=quote.pk)
        if expected_version is not None and current.version != expected_version:
            raise ConflictError()
        if current.status == QuoteStatus.SENT:
            current = _transition(
                current,
                actor=actor,
                allowed_from=[QuoteStatus.SENT],
                to_status=QuoteStatus.ACCEPTED,
            )
        if current.status != QuoteStatus.ACCEPTED:
            raise ServiceError(
                _("Only a sent or accepted quote can become a contract; this one is “%(status)s”.")
                % {"status": current.get_status_display()},
                field="status",
                code="invalid_status",
            )
        header = {
            "customer": current.customer,
            "contact": current.contact,
            "opportunity": current.opportunity,
            "title": current.title,
            "currency": current.currency,
            "payment_terms": current.terms,
            "notes": current.notes,
            **(data or {}),
        }
        lines = [
            {
                "product": line.product,
                "description": line.description,
                "unit": line.unit,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount_rate": line.discount_rate,
                "tax_rate": line.tax_rate,
            }
            for line in current.lines.select_related("product").order_by("sort_order", "id")
        ]
        contract = contract_create(actor=actor, data=header, lines=lines)
        Contract._base_manager.filter(pk=contract.pk).update(quote=current)
        contract.quote = current
        _transition(
            current,
            actor=actor,
            allowed_from=[QuoteStatus.ACCEPTED],
            to_status=QuoteStatus.CONVERTED,
            note=contract.number,
        )
    return contract


def quotes_expire(*, today: datetime.date | None = None) -> int:
    """Draft and sent quotes past their validity become expired (a daily job)."""
    today = today or timezone.localdate()
    count = 0
    for quote in Quote.objects.filter(
        status__in=[QuoteStatus.DRAFT, QuoteStatus.SENT], valid_until__lt=today
    ).only("pk", "status", "version"):
        with transaction.atomic():
            try:
                _transition(
                    quote,
                    actor=None,
                    allowed_from=[QuoteStatus.DRAFT, QuoteStatus.SENT],
                    to_status=QuoteStatus.EXPIRED,
                )
                count += 1
            except ServiceError:
                continue  # changed meanwhile
    return count


# --- contracts ------------------------------------------------------------------------------


def contract_create(*, actor, data: dict[str, Any], lines: list[dict[str, Any]]) -> Contract:
    require_perm(actor, "sales.add")
    return _create(
        Contract,
        actor=actor,
        prefix=CONTRACT_PREFIX,
        data=data,
        lines=lines,
        line_model=ContractLine,
        parent_field="contract",
        initial_status=ContractStatus.DRAFT,
    )


def contract_update(
    *, actor, contract: Contract, expected_version: int | None, data: dict[str, Any], lines=None
) -> Contract:
    """Drafts and rejected contracts only; an active contract changes by amendment."""
    require_perm(actor, "sales.change")
    if contract.can_amend():
        raise ServiceError(
            _("An active contract is changed through an amendment, which keeps a record."),
            field="status",
            code="amend_instead",
        )
    return _update(
        contract,
        actor=actor,
        expected_version=expected_version,
        data=data,
        lines=lines,
        line_model=ContractLine,
        parent_field="contract",
    )


def contract_delete(*, actor, contract: Contract) -> None:
    _delete(contract, actor=actor)


def contract_submit(
    *, actor, contract: Contract, expected_version: int | None = None, comment: str = ""
) -> Contract:
    """Send a draft (or rejected) contract for approval; with no rule it is active at once."""
    require_perm(actor, "sales.change")
    _check_visible(actor, contract)
    with transaction.atomic():
        current = _transition(
            contract,
            actor=actor,
            allowed_from=[ContractStatus.DRAFT, ContractStatus.REJECTED],
            to_status=ContractStatus.PENDING,
            expected_version=expected_version,
            note=comment,
        )
        if current.total_amount <= 0:
            raise ServiceError(_("A contract needs an amount above 0."), field="lines")
        approval_submit(
            actor=actor, document_type=CONTRACT_DOCUMENT_TYPE, document=current, comment=comment
        )
        current.refresh_from_db()
    return current


def _contract_on_approved(contract: Contract, request, actor) -> None:
    now = timezone.now()
    _transition(
        contract,
        actor=actor,
        allowed_from=[ContractStatus.PENDING],
        to_status=ContractStatus.ACTIVE,
        approved_at=now,
    )
    from kehu.customers.services import customer_deal_record

    customer_deal_record(customer_id=contract.customer_id, at=now)
    _notify_owner(contract, _("Contract approved: %(document)s"), level="success")


def _contract_on_rejected(contract: Contract, request, actor) -> None:
    _transition(
        contract,
        actor=actor,
        allowed_from=[ContractStatus.PENDING],
        to_status=ContractStatus.REJECTED,
    )


def _contract_on_withdrawn(contract: Contract, request, actor) -> None:
    _transition(
        contract, actor=actor, allowed_from=[ContractStatus.PENDING], to_status=ContractStatus.DRAFT
    )


def _notify_owner(document, title: str, *, level: str = "info", body: str = "") -> None:
    from kehu.system.services import notification_send

    notification_send(
        recipients=[document.owner],
        title=title % {"document": document},
        body=body,
        url=document.get_absolute_url(),
        level=level,
    )


def contract_complete(
    *, actor, contract: Contract, expected_version: int | None = None
) -> Contract:
    require_perm(actor, "sales.change")
    _check_visible(actor, contract)
    with transaction.atomic():
        return _transition(
            contract,
            actor=actor,
            allowed_from=[ContractStatus.ACTIVE],
            to_status=ContractStatus.COMPLETED,
            expected_version=expected_version,
            completed_at=timezone.now(),
        )


def contract_terminate(
    *, actor, contract: Contract, reason: str, expected_version: int | None = None
) -> Contract:
    """End an active contract early; orders not yet shipped stay for the user to cancel."""
    require_perm(actor, "sales.change")
    _check_visible(actor, contract)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the contract is terminated."), field="reason")
    with transaction.atomic():
        return _transition(
            contract,
            actor=actor,
            allowed_from=[ContractStatus.ACTIVE],
            to_status=ContractStatus.TERMINATED,
            expected_version=expected_version,
            note=reason,
            terminated_at=timezone.now(),
            termination_reason=reason[:500],
        )


# --- amendments -----------------------------------------------------------------------------

AMENDABLE_FIELDS = (
    "title",
    "contact",
    "signed_on",
    "start_date",
    "end_date",
    "payment_terms",
    "notes",
)


def _field_json(value):
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _line_json(line) -> dict[str, Any]:
    return {
        "id": line.pk,
        "product": line.product_id,
        "description": line.description,
        "unit": line.unit,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "discount_rate": str(line.discount_rate),
        "tax_rate": str(line.tax_rate),
        "total_amount": str(line.total_amount),
    }


def _ordered_quantities(contract: Contract) -> dict[int, Decimal]:
    """Per contract line: the quantity on orders that are not cancelled."""
    rows = (
        OrderLine.objects.filter(contract_line__contract=contract, order__deleted_at__isnull=True)
        .exclude(order__status=OrderStatus.CANCELLED)
        .values("contract_line")
        .annotate(quantity=Sum("quantity"))
    )
    return {row["contract_line"]: row["quantity"] for row in rows}


def _check_amended_lines(contract: Contract, built: list) -> None:
    ordered = _ordered_quantities(contract)
    existing = {line.pk: line for line in contract.lines.all()}
    kept = {}
    for line in built:
        line_id = getattr(line, "id", None)
        if line_id is not None:
            if line_id not in existing:
                raise ServiceError(_("A line does not belong to this contract."), field="lines")
            if line.product_id != existing[line_id].product_id and ordered.get(line_id):
                raise ServiceError(
                    _("The product of a line already ordered cannot change."), field="lines"
                )
            kept[line_id] = line
    for line_id, quantity in ordered.items():
        if line_id not in kept:
            raise ServiceError(
                _("“%(line)s” has been ordered and cannot be removed.")
                % {"line": existing[line_id].description},
                field="lines",
            )
        if kept[line_id].quantity < quantity:
            raise ServiceError(
                _("“%(line)s”: %(ordered)s already ordered; the quantity cannot be less.")
                % {"line": existing[line_id].description, "ordered": quantity.normalize()},
                field="lines",
            )


def contract_amend(
    *,
    actor,
    contract: Contract,
    expected_version: int | None,
    reason: str,
    data: dict[str, Any],
    lines: list[dict[str, Any]] | None = None,
) -> ContractAmendment:
    """Propose a change to an active contract: header fields and/or lines, with a reason.

    The amendment keeps what the contract was and what it becomes. It goes through the
    approval rules for amendments and is applied when approved (at once with no rule).
    ``lines`` items may carry ``id`` of the contract line they change; lines already
    ordered cannot be removed or cut below the ordered quantity.
    """
    require_perm(actor, "sales.change")
    _check_visible(actor, contract)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the contract changes."), field="reason")
    unknown = set(data) - set(AMENDABLE_FIELDS)
    if unknown:
        raise ServiceError(
            _("These cannot be changed by an amendment: %(fields)s.")
            % {"fields": ", ".join(sorted(unknown))},
            field="data",
        )
    data = _header_clean(actor=actor, data=data, instance=contract)
    data.pop("owner", None), data.pop("department", None)
    with transaction.atomic():
        current = Contract._base_manager.select_for_update().get(pk=contract.pk)
        if expected_version is not None and current.version != expected_version:
            raise ConflictError()
        if not current.can_amend():
            raise ServiceError(
                _("Only an active contract is amended; this one is “%(status)s”.")
                % {"status": current.get_status_display()},
                field="status",
                code="invalid_status",
            )
        existing_lines = list(current.lines.order_by("sort_order", "id"))
        built = _lines_build(ContractLine, lines) if lines is not None else None
        if built is not None:
            _check_amended_lines(current, built)
        before = {name: _field_json(getattr(current, name)) for name in AMENDABLE_FIELDS}
        before["lines"] = [_line_json(line) for line in existing_lines]
        changed = {
            name: _field_json(value)
            for name, value in data.items()
            if name in AMENDABLE_FIELDS and _field_json(value) != before[name]
        }
        proposed: dict[str, Any] = {"fields": changed}
        total_after = current.total_amount
        if built is not None:
            proposed["lines"] = [_line_json(line) for line in built]
            total_after = document_amounts(built).total_amount
        if not changed and built is None:
            raise ServiceError(_("The amendment changes nothing."), code="no_change")
        sequence = (current.amendments.count() or 0) + 1
        amendment = ContractAmendment.objects.create(
            contract=current,
            sequence=sequence,
            reason=reason,
            before=before,
            proposed=proposed,
            total_before=current.total_amount,
            total_after=total_after,
            created_by=actor,
            updated_by=actor,
        )
        _audit(user=actor, action="create", obj=amendment, note=reason[:500])
        approval_submit(actor=actor, document_type=AMENDMENT_DOCUMENT_TYPE, document=amendment)
        amendment.refresh_from_db()
    return amendment


def _amendment_apply(amendment: ContractAmendment, request, actor) -> None:
    contract = Contract._base_manager.select_for_update().get(pk=amendment.contract_id)
    if contract.status != ContractStatus.ACTIVE:
        raise ServiceError(
            _("The contract is no longer active; the amendment cannot be applied."),
            code="invalid_status",
        )
    fields = dict(amendment.proposed.get("fields", {}))
    values: dict[str, Any] = {}
    for name, value in fields.items():
        field = Contract._meta.get_field(name)
        if field.is_relation:
            values[f"{name}_id"] = value
        elif value is not None and isinstance(field, models.DateField):
            values[name] = datetime.date.fromisoformat(value)
        else:
            values[name] = value
    if "lines" in amendment.proposed:
        products = Product.all_objects.in_bulk(
            [line["product"] for line in amendment.proposed["lines"]]
        )
        built = _lines_build(
            ContractLine,
            [
                {**line, "product": products.get(line["product"])}
                for line in amendment.proposed["lines"]
            ],
        )
        _check_amended_lines(contract, built)
        keep = [line.id for line in built if getattr(line, "id", None)]
        contract.lines.exclude(pk__in=keep).delete()
        for line in built:
            line.contract = contract
            if getattr(line, "id", None):
                line.save()
            else:
                line.pk = None
                line.save()
        _totals_store(contract, built)
    Contract._base_manager.filter(pk=contract.pk).update(
        version=F("version") + 1, updated_at=timezone.now(), updated_by=actor, **values
    )
    ContractAmendment.objects.filter(pk=amendment.pk).update(
        status=AmendmentStatus.APPLIED, applied_at=timezone.now()
    )
    _event(
        contract,
        actor=actor,
        from_status=contract.status,
        to_status=contract.status,
        note=_("Amendment %(number)s applied: %(reason)s")
        % {"number": amendment, "reason": amendment.reason},
    )
    _audit(
        user=actor,
        action="amend",
        obj=contract,
        changes={
            **{k: [amendment.before.get(k), v] for k, v in fields.items()},
            **(
                {"total_amount": [str(amendment.total_before), str(amendment.total_after)]}
                if "lines" in amendment.proposed
                else {}
            ),
        },
        note=str(amendment),
    )


def _amendment_close(status: str):
    def close(amendment: ContractAmendment, request, actor) -> None:
        ContractAmendment.objects.filter(pk=amendment.pk).update(status=status)

    return close


# --- orders ---------------------------------------------------------------------------------


def order_create(*, actor, data: dict[str, Any], lines: list[dict[str, Any]]) -> Order:
    """A standalone order; orders from a contract use ``order_create_from_contract``."""
    require_perm(actor, "sales.add")
    data = dict(data)
    data.setdefault("order_date", timezone.localdate())
    contract = data.get("contract")
    if contract is not None:
        return order_create_from_contract(actor=actor, contract=contract, data=data, lines=lines)
    return _create(
        Order,
        actor=actor,
        prefix=ORDER_PREFIX,
        data=data,
        lines=lines,
        line_model=OrderLine,
        parent_field="order",
        initial_status=OrderStatus.PENDING,
    )


def _contract_lines_for_order(
    contract: Contract, lines: list[dict[str, Any]] | None, ordered: dict[int, Decimal]
) -> list[dict]:
    """Order lines priced as on the contract, within what ``ordered`` leaves; by default
    everything not yet ordered."""
    contract_lines = {line.pk: line for line in contract.lines.select_related("product")}
    if lines is None:
        lines = [
            {"contract_line": line, "quantity": line.quantity - ordered.get(line.pk, ZERO)}
            for line in contract_lines.values()
            if line.quantity - ordered.get(line.pk, ZERO) > 0
        ]
        if not lines:
            raise ServiceError(
                _("Everything on this contract has been ordered already."), field="lines"
            )
    result = []
    for position, data in enumerate(lines, start=1):
        line_id = getattr(data.get("contract_line"), "pk", data.get("contract_line"))
        if line_id not in contract_lines:
            raise ServiceError(
                _("Line %(line)s: choose a line of this contract.") % {"line": position},
                field="lines",
            )
        source = contract_lines[line_id]
        quantity = _decimal(data.get("quantity"), field="lines", line=position)
        remaining = source.quantity - ordered.get(line_id, ZERO)
        if quantity > remaining:
            raise ServiceError(
                _("Line %(line)s: only %(remaining)s of “%(product)s” are left to order.")
                % {
                    "line": position,
                    "remaining": remaining.normalize(),
                    "product": source.description,
                },
                field="lines",
            )
        result.append(
            {
                "product": source.product,
                "description": source.description,
                "unit": source.unit,
                "quantity": quantity,
                "unit_price": source.unit_price,
                "discount_rate": source.discount_rate,
                "tax_rate": source.tax_rate,
                "contract_line": source,
            }
        )
    return result


def order_create_from_contract(
    *, actor, contract: Contract, data: dict[str, Any] | None = None, lines=None
) -> Order:
    """An order against an active contract; ``lines`` are ``{"contract_line", "quantity"}``."""
    require_perm(actor, "sales.add")
    _check_visible(actor, contract)
    with transaction.atomic():
        current = Contract._base_manager.select_for_update().get(pk=contract.pk)
        if current.status != ContractStatus.ACTIVE:
            raise ServiceError(
                _("Orders are placed against an active contract; this one is “%(status)s”.")
                % {"status": current.get_status_display()},
                field="contract",
                code="invalid_status",
            )
        header = {
            "title": current.title,
            "order_date": timezone.localdate(),
            **(data or {}),
            "contract": current,
            "customer": current.customer,
            "currency": current.currency,
        }
        # The order belongs to the contract's owner unless someone who may assign says so.
        owner = header.pop("owner", None) or current.owner
        cleaned = _header_clean(actor=actor, data=header)
        if owner.pk != current.owner_id:
            require_perm(actor, "sales.assign")
        cleaned["owner"], cleaned["department"] = owner, owner.department
        priced = _contract_lines_for_order(current, lines, _ordered_quantities(current))
        built = _lines_build(OrderLine, priced)
        cleaned["number"] = document_number_next(prefix=ORDER_PREFIX)
        order = model_create(model=Order, user=actor, data=cleaned)
        _lines_save(order, "order", built)
        _event(order, actor=actor, from_status="", to_status=OrderStatus.PENDING)
    return order


def order_update(
    *, actor, order: Order, expected_version: int | None, data: dict[str, Any], lines=None
) -> Order:
    require_perm(actor, "sales.change")
    data = dict(data)
    for fixed in ("contract", "customer", "currency"):
        if order.contract_id and fixed in data:
            data.pop(fixed)
    if order.contract_id and lines is not None:
        contract = order.contract
        assert contract is not None
        with transaction.atomic():
            # Free this order's quantities while checking what is left on the contract.
            others = _ordered_quantities(contract)
            for line in order.lines.all():
                if line.contract_line_id:
                    others[line.contract_line_id] = (
                        others.get(line.contract_line_id, ZERO) - line.quantity
                    )
            lines = _contract_lines_for_order(contract, lines, others)
    return _update(
        order,
        actor=actor,
        expected_version=expected_version,
        data=data,
        lines=lines,
        line_model=OrderLine,
        parent_field="order",
    )


def order_delete(*, actor, order: Order) -> None:
    _delete(order, actor=actor)


def order_confirm(*, actor, order: Order, expected_version: int | None = None) -> Order:
    require_perm(actor, "sales.change")
    _check_visible(actor, order)
    with transaction.atomic():
        return _transition(
            order,
            actor=actor,
            allowed_from=[OrderStatus.PENDING],
            to_status=OrderStatus.CONFIRMED,
            expected_version=expected_version,
            confirmed_at=timezone.now(),
        )


def order_complete(*, actor, order: Order, expected_version: int | None = None) -> Order:
    """The customer has everything: a shipped order is closed."""
    require_perm(actor, "sales.change")
    _check_visible(actor, order)
    with transaction.atomic():
        return _transition(
            order,
            actor=actor,
            allowed_from=[OrderStatus.SHIPPED],
            to_status=OrderStatus.COMPLETED,
            expected_version=expected_version,
            completed_at=timezone.now(),
        )


def _shipping_status(order: Order) -> str:
    lines = list(order.lines.all())
    net = sum((line.shipped_quantity - line.returned_quantity for line in lines), ZERO)
    if net <= 0:
        return OrderStatus.CONFIRMED
    if all(line.outstanding_quantity <= 0 for line in lines):
        return OrderStatus.SHIPPED
    return OrderStatus.PARTIALLY_SHIPPED


def _quantities_clean(order: Order, quantities, *, limit) -> list[tuple[OrderLine, Decimal]]:
    """``quantities`` maps order-line id → quantity (None: every line's full ``limit``)."""
    lines = {
        line.pk: line for line in order.lines.select_related("product").order_by("product_id", "pk")
    }
    if quantities is None:
        picked = [(line, limit(line)) for line in lines.values() if limit(line) > 0]
    else:
        picked = []
        for key, value in quantities.items():
            line = lines.get(int(key))
            if line is None:
                raise ServiceError(_("A line does not belong to this order."), field="lines")
            quantity = _decimal(value, field="lines", line=line.sort_order)
            if quantity < 0:
                raise ServiceError(_("Quantities cannot be negative."), field="lines")
            if quantity == 0:
                continue
            if quantity > limit(line):
                raise ServiceError(
                    _("“%(product)s”: at most %(limit)s.")
                    % {"product": line.description, "limit": limit(line).normalize()},
                    field="lines",
                    code="too_many",
                )
            picked.append((line, quantity))
    if not picked:
        raise ServiceError(
            _("Enter a quantity for at least one line."), field="lines", code="nothing"
        )
    # Product-id order: two shipments posting the same products cannot deadlock.
    return sorted(picked, key=lambda item: (item[0].product_id, item[0].pk))


def _goods_move(
    *,
    actor,
    order: Order,
    kind: str,
    picked,
    warehouse,
    shipped_on,
    carrier="",
    tracking_number="",
    note="",
) -> Shipment:
    from kehu.products.services import stock_movement_post, warehouse_default_ensure

    warehouse = warehouse or order.warehouse or warehouse_default_ensure()
    prefix = SHIPMENT_PREFIX if kind == ShipmentKind.SHIPMENT else RETURN_PREFIX
    shipment = Shipment.objects.create(
        number=document_number_next(prefix=prefix),
        order=order,
        kind=kind,
        warehouse=warehouse,
        shipped_on=shipped_on or timezone.localdate(),
        carrier=carrier,
        tracking_number=tracking_number,
        note=note[:500],
        created_by=actor,
        updated_by=actor,
    )
    movement_kind = (
        MovementKind.ORDER_SHIPMENT if kind == ShipmentKind.SHIPMENT else MovementKind.ORDER_RETURN
    )
    for line, quantity in picked:
        movement = stock_movement_post(
            actor=actor,
            product=line.product,
            warehouse=warehouse,
            kind=movement_kind,
            quantity=quantity,
            reason=note,
            reference=shipment.number,
            reference_object=order,
            check_permission=False,
        )
        ShipmentLine.objects.create(
            shipment=shipment, order_line=line, quantity=quantity, stock_movement=movement
        )
        counter = "shipped_quantity" if kind == ShipmentKind.SHIPMENT else "returned_quantity"
        OrderLine.objects.filter(pk=line.pk).update(**{counter: F(counter) + quantity})
    _audit(user=actor, action="create", obj=shipment, note=f"{order.number}: {note}"[:500])
    return shipment


def order_ship(
    *,
    actor,
    order: Order,
    quantities: dict | None = None,
    warehouse=None,
    shipped_on: datetime.date | None = None,
    carrier: str = "",
    tracking_number: str = "",
    note: str = "",
) -> Shipment:
    """Ship some or all of what is outstanding; posts stock movements in one transaction.

    The order row is locked first, so two people shipping the same order at once ship it
    once; the stock service refuses (and rolls everything back) when stock is short and
    negative stock is not allowed.
    """
    require_perm(actor, "products.change")
    _check_visible(actor, order)
    with transaction.atomic():
        current = Order._base_manager.select_for_update().get(pk=order.pk)
        if not current.can_ship():
            raise ServiceError(
                _("Only a confirmed order is shipped; this one is “%(status)s”.")
                % {"status": current.get_status_display()},
                field="status",
                code="invalid_status",
            )
        picked = _quantities_clean(
            current, quantities, limit=lambda line: line.outstanding_quantity
        )
        shipment = _goods_move(
            actor=actor,
            order=current,
            kind=ShipmentKind.SHIPMENT,
            picked=picked,
            warehouse=warehouse,
            shipped_on=shipped_on,
            carrier=carrier,
            tracking_number=tracking_number,
            note=note,
        )
        _transition(
            current,
            actor=actor,
            allowed_from=[OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_SHIPPED],
            to_status=_shipping_status(current),
            note=shipment.number,
        )
        transaction.on_commit(
            lambda: _notify_owner(current, _("Goods shipped: %(document)s"), body=shipment.number)
        )
    return shipment


def order_return(
    *, actor, order: Order, quantities: dict | None, reason: str, warehouse=None, returned_on=None
) -> Shipment:
    """Take goods back into stock; the order goes back to partly shipped or confirmed."""
    require_perm(actor, "products.change")
    _check_visible(actor, order)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the goods come back."), field="reason")
    with transaction.atomic():
        current = Order._base_manager.select_for_update().get(pk=order.pk)
        if current.status not in (
            OrderStatus.PARTIALLY_SHIPPED,
            OrderStatus.SHIPPED,
            OrderStatus.COMPLETED,
        ):
            raise ServiceError(
                _("Nothing has been shipped on this order."), field="status", code="invalid_status"
            )
        picked = _quantities_clean(
            current, quantities, limit=lambda line: line.shipped_quantity - line.returned_quantity
        )
        shipment = _goods_move(
            actor=actor,
            order=current,
            kind=ShipmentKind.RETURN,
            picked=picked,
            warehouse=warehouse,
            shipped_on=returned_on,
            note=reason,
        )
        _transition(
            current,
            actor=actor,
            allowed_from=[
                OrderStatus.PARTIALLY_SHIPPED,
                OrderStatus.SHIPPED,
                OrderStatus.COMPLETED,
            ],
            to_status=_shipping_status(current),
            note=f"{shipment.number}: {reason}",
            completed_at=None,
        )
    return shipment


def order_cancel(*, actor, order: Order, reason: str, expected_version: int | None = None) -> Order:
    """Cancel an order that is not completed (``sales.change``). When goods are out, they
    come back into stock first (a return), so only someone who moves stock
    (``products.change``, the warehouse) may cancel it."""
    _check_visible(actor, order)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the order is cancelled."), field="reason")
    with transaction.atomic():
        current = Order._base_manager.select_for_update().get(pk=order.pk)
        if expected_version is not None and current.version != expected_version:
            raise ConflictError()
        out = [
            (line, line.shipped_quantity - line.returned_quantity)
            for line in current.lines.select_related("product").order_by("product_id", "pk")
            if line.shipped_quantity - line.returned_quantity > 0
        ]
        if not out:
            require_perm(actor, "sales.change")
        elif current.status != OrderStatus.COMPLETED:
            if not has_perm(actor, "products.change"):
                raise PermissionRefused(
                    _(
                        "Goods of this order have left the warehouse: "
                        "the warehouse cancels it and takes them back."
                    )
                )
            _goods_move(
                actor=actor,
                order=current,
                kind=ShipmentKind.RETURN,
                picked=out,
                warehouse=None,
                shipped_on=None,
                note=reason,
            )
        return _transition(
            current,
            actor=actor,
            allowed_from=[
                OrderStatus.PENDING,
                OrderStatus.CONFIRMED,
                OrderStatus.PARTIALLY_SHIPPED,
                OrderStatus.SHIPPED,
            ],
            to_status=OrderStatus.CANCELLED,
            note=reason,
            cancelled_at=timezone.now(),
            cancel_reason=reason[:500],
        )
