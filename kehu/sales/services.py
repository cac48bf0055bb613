"""Every write on quotes, contracts, amendments, orders and shipments.

Permissions: ``sales.add`` / ``change`` / ``delete`` for the documents, ``sales.assign`` to
give a document to another owner; approving goes through the approval engine
(``kehu.approvals``); moving goods (ship, return, cancelling an order whose goods have left)
needs ``products.change``, the warehouse's permission.

Each service checks the permission and the actor's data scope (out of scope is a 404, as
for a missing document) before it writes, and runs in one transaction: a refused request
leaves the database as it was. Statuses change only here, under the document's row lock by
a conditional UPDATE on (status, version), with a ``DocumentEvent`` row and an
operation-log row for each change.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.approvals.services import (
    approval_pending_for_document,
    approval_submit,
    approval_withdraw,
)
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
from kehu.customers.models import Contact, Customer, Opportunity
from kehu.products.models import (
    QUANTITY_DIGITS,
    QUANTITY_PLACES,
    MovementKind,
    Product,
    Warehouse,
)
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
from kehu.sales.selectors import contract_line_usage
from kehu.sales.totals import document_amounts, line_amounts

QUOTE_PREFIX, CONTRACT_PREFIX, ORDER_PREFIX = "BJ", "HT", "DD"
SHIPMENT_PREFIX, RETURN_PREFIX = "FH", "TH"
CONTRACT_DOCUMENT_TYPE = "sales.contract"
AMENDMENT_DOCUMENT_TYPE = "sales.contract_amendment"
ZERO = Decimal("0")
HUNDRED = Decimal("100")
CENT = Decimal("0.01")
QUANTITY_STEP = Decimal(1).scaleb(-QUANTITY_PLACES)  # 0.001
MAX_QUANTITY = Decimal(10) ** (QUANTITY_DIGITS - QUANTITY_PLACES)
MAX_AMOUNT = Decimal(10) ** 16  # MoneyField: 18 digits, 2 of them cents

# What users write on a document's header (forms, API and demo data offer these). Number,
# status, amounts, the dates of status changes and the department (it follows the owner)
# are the server's: anything else in ``data`` is ignored.
QUOTE_EDITABLE_FIELDS = (
    "customer",
    "contact",
    "opportunity",
    "title",
    "quote_date",
    "valid_until",
    "currency",
    "terms",
    "notes",
    "owner",
)
CONTRACT_EDITABLE_FIELDS = (
    "customer",
    "contact",
    "opportunity",
    "title",
    "signed_on",
    "start_date",
    "end_date",
    "payment_terms",
    "currency",
    "notes",
    "owner",
)
ORDER_EDITABLE_FIELDS = (
    "customer",
    "title",
    "order_date",
    "ship_by",
    "warehouse",
    "receiver_name",
    "receiver_phone",
    "shipping_address",
    "currency",
    "notes",
    "owner",
)
_EDITABLE: dict[type, tuple[str, ...]] = {
    Quote: QUOTE_EDITABLE_FIELDS,
    Contract: CONTRACT_EDITABLE_FIELDS,
    Order: ORDER_EDITABLE_FIELDS,
}


# --- shared ---------------------------------------------------------------------------------


def _check_visible(actor, document) -> None:
    """Services get documents from scoped selectors; this guards callers that did not.
    Out of scope, deleted and missing look the same: 404, as on every page."""
    model = type(document)
    if not visible_to(model._default_manager.filter(pk=document.pk), actor).exists():
        raise Http404(_("Not found."))


def _locked(document):
    """The document re-read under a row lock (held until the transaction ends)."""
    model = type(document)
    current = model._default_manager.select_for_update().filter(pk=document.pk).first()
    if current is None:  # deleted meanwhile
        raise Http404(_("Not found."))
    return current


def _check_version(current, expected_version: int | None) -> None:
    if expected_version is not None and current.version != expected_version:
        raise ConflictError()


@contextlib.contextmanager
def _as_service_error() -> Iterator[None]:
    """Model validation speaks the one error type services raise, on the field concerned."""
    try:
        yield
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            field, messages = next(iter(exc.message_dict.items()))
            raise ServiceError(
                messages[0], field=None if field == NON_FIELD_ERRORS else field
            ) from exc
        raise ServiceError(exc.messages[0]) from exc


def _status_label(model, status: str) -> str:
    return str(dict(model._meta.get_field("status").choices).get(status, status))


def _status_refused(document, to_status: str) -> ServiceError:
    model = type(document)
    return ServiceError(
        _("This %(document)s is “%(status)s” and cannot become “%(target)s”.")
        % {
            "document": model._meta.verbose_name,
            "status": _status_label(model, document.status),
            "target": _status_label(model, to_status),
        },
        field="status",
        code="invalid_status",
    )


def _event(document, *, actor, from_status: str, to_status: str, note: str = "") -> None:
    DocumentEvent.objects.create(
        content_type=ContentType.objects.get_for_model(type(document)),
        object_id=document.pk,
        from_status=from_status,
        to_status=to_status,
        note=note[:500],
        actor=actor if actor is not None and actor.is_authenticated else None,
    )


def _tracked(document, *, to_status: str | None = None, fields: Iterable[str] = ()):
    """Keep the stored aggregates (dashboard, targets, aging: ``kehu.analytics.aggregates``)
    right across a change of ``document``, in the same transaction; quotes count in none.
    With ``to_status``, only if the status change can change what it counts for."""
    from kehu.analytics.aggregates import aggregates_tracked, aggregates_transition

    if to_status is not None and isinstance(document, Contract | Order):
        return aggregates_transition(
            contract_id=document.pk if isinstance(document, Contract) else None,
            order_id=document.pk if isinstance(document, Order) else None,
            before=document.status,
            after=to_status,
            fields=fields,
        )
    if isinstance(document, Contract):
        return aggregates_tracked(contracts=[document.pk])
    if isinstance(document, Order):
        return aggregates_tracked(orders=[document.pk])
    return contextlib.nullcontext()


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
    """Move ``document`` to ``to_status`` if it is in one of ``allowed_from``; run it inside
    the caller's transaction.

    The row is locked and changed by one conditional UPDATE on its version: a concurrent
    change waits, then finds the new status (a clear refusal) or version (409). Writes the
    event and the operation-log row; returns the fresh document.
    """
    model = type(document)
    current = _locked(document)
    _check_version(current, expected_version)
    if current.status not in set(allowed_from):
        raise _status_refused(current, to_status)
    with _tracked(current, to_status=to_status, fields=fields):
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


def _line_error(position: int | None, message: str) -> str:
    if position is None:
        return message
    return _("Line %(line)s: %(message)s") % {"line": position, "message": message}


def _decimal(value, *, field: str, line: int | None = None) -> Decimal:
    """A finite Decimal from user input, or a clear error naming the line."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        number = None
    if number is None or not number.is_finite():
        raise ServiceError(_line_error(line, _("enter a number.")), field=field, code="invalid")
    return number


def _quantity(value, *, line: int | None, field: str = "lines") -> Decimal:
    quantity = _decimal(value, field=field, line=line)
    if quantity <= 0:
        raise ServiceError(
            _line_error(line, _("the quantity must be more than 0.")), field=field, code="invalid"
        )
    if quantity != quantity.quantize(QUANTITY_STEP) or quantity >= MAX_QUANTITY:
        message = _("the quantity is below %(max)s, with at most 3 decimal places.") % {
            "max": f"{MAX_QUANTITY:,}"
        }
        raise ServiceError(_line_error(line, message), field=field, code="invalid")
    return quantity.quantize(QUANTITY_STEP)


def _lines_build(
    line_model,
    lines: list[dict[str, Any]] | None,
    *,
    links: tuple[str, ...] = (),
    keeps_product: Callable[[dict[str, Any]], bool] | None = None,
) -> list:
    """Validated, priced, unsaved line instances from ``{"product", "quantity", ...}`` dicts.

    Unit price defaults to the product's list price and the tax rate to the product's.
    ``links`` names the keys the caller vouches for and copies onto the lines (``id`` of an
    amended contract line, ``contract_line`` of an order from a contract); user input never
    carries them. ``keeps_product(data)`` says a line keeps the product it already had (an
    amended contract line, an order line from a contract): that product may have been
    deleted since; any other line needs a product that exists.
    """
    if not lines:
        raise ServiceError(_("Add at least one line."), field="lines", code="no_lines")
    product_ids = {getattr(data.get("product"), "pk", None) for data in lines}
    alive = set(
        Product.objects.filter(pk__in=[pk for pk in product_ids if pk]).values_list("pk", flat=True)
    )
    units = _product_units(
        [data["product"] for data in lines if isinstance(data.get("product"), Product)]
    )
    built = []
    for position, data in enumerate(lines, start=1):
        product = data.get("product")
        if not isinstance(product, Product) or (
            product.pk not in alive and not (keeps_product and keeps_product(data))
        ):
            raise ServiceError(_line_error(position, _("choose a product.")), field="lines")
        if "contract_line" not in links and data.get("contract_line") is not None:
            raise ServiceError(
                _line_error(
                    position, _("a contract's lines are ordered from the contract itself.")
                ),
                field="lines",
            )
        quantity = _quantity(data.get("quantity"), line=position)
        price = data.get("unit_price")
        unit_price = (
            product.list_price
            if price in (None, "")
            else _decimal(price, field="lines", line=position)
        )
        if unit_price < 0 or unit_price != unit_price.quantize(CENT) or unit_price >= MAX_AMOUNT:
            raise ServiceError(
                _line_error(position, _("the unit price must be 0 or more, in cents.")),
                field="lines",
            )
        discount = _decimal(data.get("discount_rate") or 0, field="lines", line=position)
        tax = data.get("tax_rate")
        tax_rate = (
            product.tax_rate if tax in (None, "") else _decimal(tax, field="lines", line=position)
        )
        for value in (discount, tax_rate):
            if not ZERO <= value <= HUNDRED or value != value.quantize(CENT):
                raise ServiceError(
                    _line_error(
                        position,
                        _("percentages are between 0 and 100, with at most 2 decimal places."),
                    ),
                    field="lines",
                )
        amounts = line_amounts(
            quantity=quantity, unit_price=unit_price, discount_rate=discount, tax_rate=tax_rate
        )
        if amounts.total_amount >= MAX_AMOUNT:
            raise ServiceError(_line_error(position, _("the amount is too large.")), field="lines")
        description = str(data.get("description") or "").strip() or " ".join(
            part for part in (product.name, product.specification) if part
        )
        unit = str(data.get("unit") or "").strip() or units.get(product.pk, "")
        line = line_model(
            product=product,
            description=description[:300],
            unit=unit[:20],
            quantity=quantity,
            unit_price=unit_price.quantize(CENT),
            discount_rate=discount.quantize(CENT),
            tax_rate=tax_rate.quantize(CENT),
            subtotal=amounts.subtotal,
            tax_amount=amounts.tax_amount,
            total_amount=amounts.total_amount,
            sort_order=position,
        )
        for key in links:
            if data.get(key) is not None:
                setattr(line, key, data[key])
        built.append(line)
    if document_amounts(built).total_amount >= MAX_AMOUNT:
        raise ServiceError(_("The document's total is too large."), field="lines")
    return built


def _product_units(products: list[Product]) -> dict[int, str]:
    """Each product's unit label, in one query for the units not loaded with the product."""
    from kehu.system.models import DictionaryItem

    cached = {p.pk: p.unit for p in products if p.unit_id and Product.unit.is_cached(p)}
    missing = {p.unit_id for p in products if p.unit_id and p.pk not in cached}
    loaded = DictionaryItem.objects.in_bulk(missing) if missing else {}
    labels = {}
    for product in products:
        if product.unit_id:
            unit = cached.get(product.pk) or loaded.get(product.unit_id)
            labels[product.pk] = unit.label if unit is not None else ""
    return labels


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


def _owner_clean(*, actor, owner, current_owner_id: int | None):
    """``owner`` if it changes the owner (the actor needs ``sales.assign``), else None."""
    if owner is None or owner.pk == current_owner_id:
        return None
    require_perm(actor, "sales.assign")
    if not owner.is_active:
        raise ServiceError(_("Choose an active user."), field="owner")
    return owner


def _customer_check(actor, customer) -> None:
    """A new document's customer: one the actor sees, not in the public pool."""
    row = visible_to(Customer.objects.filter(pk=customer.pk), actor).values("in_pool").first()
    if row is None:
        raise ServiceError(_("Choose one of your customers."), field="customer")
    if row["in_pool"]:
        raise ServiceError(
            _("This customer is in the public pool; claim it first."), field="customer"
        )


def _header_clean(*, actor, model, data: dict[str, Any], instance=None) -> dict[str, Any]:
    """The user-editable header fields of ``data``, checked.

    The customer (when set or changed) must be the actor's to see and not in the pool; the
    contact and opportunity belong to the customer; the opportunity is the actor's to see.
    The owner is the actor on a new document, or the current owner, unless someone who may
    assign names another; the department follows the owner.
    """
    data = {key: value for key, value in data.items() if key in _EDITABLE[model]}
    customer_id = instance.customer_id if instance is not None else None
    customer_changed = False
    if "customer" in data or instance is None:
        customer = data.get("customer")
        if customer is None:
            raise ServiceError(_("Choose a customer."), field="customer")
        if customer.pk != customer_id:
            _customer_check(actor, customer)
            customer_id, customer_changed = customer.pk, True
    if "contact" in _EDITABLE[model]:
        contact = data["contact"] if "contact" in data else getattr(instance, "contact", None)
        if (
            contact is not None
            and (customer_changed or "contact" in data)
            and not Contact.objects.filter(pk=contact.pk, customer_id=customer_id).exists()
        ):
            raise ServiceError(_("This contact belongs to another customer."), field="contact")
    if "opportunity" in _EDITABLE[model]:
        opportunity = (
            data["opportunity"] if "opportunity" in data else getattr(instance, "opportunity", None)
        )
        if opportunity is not None and (customer_changed or "opportunity" in data):
            if opportunity.customer_id != customer_id:
                raise ServiceError(
                    _("This opportunity belongs to another customer."), field="opportunity"
                )
            if not visible_to(Opportunity.objects.filter(pk=opportunity.pk), actor).exists():
                raise ServiceError(_("Choose one of your opportunities."), field="opportunity")
    owner = _owner_clean(
        actor=actor,
        owner=data.pop("owner", None),
        current_owner_id=instance.owner_id if instance is not None else actor.pk,
    )
    if owner is not None:
        data["owner"], data["department"] = owner, owner.department
    elif instance is None:
        data["owner"], data["department"] = actor, actor.department
    _dates_check(model, data, instance)
    return data


def _dates_check(model, data: dict[str, Any], instance=None) -> None:
    """The date pairs the model constrains, with a message on the later field."""
    pairs = {
        Quote: [("quote_date", "valid_until", _("The quote cannot expire before its date."))],
        Contract: [("start_date", "end_date", _("The contract cannot end before it starts."))],
    }.get(model, [])
    for first, last, message in pairs:
        start = data[first] if first in data else getattr(instance, first, None)
        end = data[last] if last in data else getattr(instance, last, None)
        if isinstance(start, datetime.date) and isinstance(end, datetime.date) and end < start:
            raise ServiceError(message, field=last)


def _check_editable(document) -> None:
    if isinstance(document, Contract) and document.can_amend():
        raise ServiceError(
            _("An active contract is changed through an amendment, which keeps a record."),
            field="status",
            code="amend_instead",
        )
    if not document.is_editable():
        raise ServiceError(
            _("This %(document)s is “%(status)s” and can no longer be changed.")
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
    data = _header_clean(actor=actor, model=model, data=data)
    built = _lines_build(line_model, lines)
    with transaction.atomic(), _as_service_error():
        data["number"] = document_number_next(prefix=prefix)
        document = model_create(model=model, user=actor, data=data)
        with _tracked(document):
            _lines_save(document, parent_field, built)
        _event(document, actor=actor, from_status="", to_status=initial_status)
    return document


def _update(
    document,
    *,
    actor,
    expected_version,
    data,
    lines,
    line_model,
    parent_field: str,
    links: tuple[str, ...] = (),
    keeps_product: Callable[[dict[str, Any]], bool] | None = None,
    lines_prepare: Callable[[Any], list[dict[str, Any]]] | None = None,
):
    """Header and (when ``lines`` is not None) lines of an editable document.

    ``lines_prepare(current)`` turns ``lines`` into line dicts under the document's lock;
    ``links`` and ``keeps_product`` are passed on to ``_lines_build``.
    """
    _check_visible(actor, document)
    if expected_version is None:
        raise ServiceError(field="version", code="required")
    with transaction.atomic(), _as_service_error():
        current = _locked(document)
        _check_version(current, expected_version)
        _check_editable(current)
        data = _header_clean(actor=actor, model=type(current), data=data, instance=current)
        built = None
        if lines is not None:
            line_data = lines_prepare(current) if lines_prepare is not None else lines
            built = _lines_build(line_model, line_data, links=links, keeps_product=keeps_product)
        total_before = current.total_amount
        with _tracked(current):
            current = versioned_update(
                instance=current, user=actor, expected_version=expected_version, data=data
            )
            if built is not None:
                _lines_save(current, parent_field, built)
        if built is not None:
            _audit(
                user=actor,
                action="change",
                obj=current,
                changes={"total_amount": [str(total_before), str(current.total_amount)]},
                note=_("Lines replaced: %(count)s.") % {"count": len(built)},
            )
    return current


def _delete(document, *, actor, on_delete: Callable[[Any], None] | None = None) -> None:
    require_perm(actor, "sales.delete")
    _check_visible(actor, document)
    with transaction.atomic():
        current = _locked(document)
        _check_editable(current)
        if on_delete is not None:
            on_delete(current)
        with _tracked(current):
            soft_delete(instance=current, user=actor)
    document.deleted_at = current.deleted_at


def _notify_owner(document, title: str, *, level: str = "info", body: str = "") -> None:
    from kehu.system.services import notification_send

    notification_send(
        recipients=[document.owner],
        title=title % {"document": document},
        body=body,
        url=document.get_absolute_url(),
        level=level,
    )


# --- quotes ---------------------------------------------------------------------------------


def quote_create(*, actor, data: dict[str, Any], lines: list[dict[str, Any]]) -> Quote:
    """A draft quote; the validity date defaults to the settings' number of days."""
    require_perm(actor, "sales.add")
    data = dict(data)
    if not data.get("quote_date"):
        data["quote_date"] = timezone.localdate()
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
    """Draft and sent quotes; ``lines`` None keeps the lines."""
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
    """The customer said no to a sent quote."""
    require_perm(actor, "sales.change")
    _check_visible(actor, quote)
    with transaction.atomic():
        return _transition(
            quote,
            actor=actor,
            allowed_from=[QuoteStatus.SENT],
            to_status=QuoteStatus.REJECTED,
            expected_version=expected_version,
            note=(reason or "").strip(),
        )


def quote_convert_to_contract(
    *, actor, quote: Quote, data: dict[str, Any] | None = None, expected_version: int | None = None
) -> Contract:
    """Turn a sent or accepted quote into a draft contract with the same lines, in one step.

    A sent quote is marked accepted on the way (the customer said yes). The quote ends
    ``converted`` and points at its contract; converting twice is refused. ``data`` may set
    the contract's other header fields (dates, terms, owner); customer and currency are the
    quote's.
    """
    require_perm(actor, "sales.add")
    require_perm(actor, "sales.change")
    _check_visible(actor, quote)
    with transaction.atomic():
        current = _locked(quote)
        _check_version(current, expected_version)
        if current.status not in (QuoteStatus.SENT, QuoteStatus.ACCEPTED):
            raise ServiceError(
                _("Only a sent or accepted quote can become a contract; this one is “%(status)s”.")
                % {"status": current.get_status_display()},
                field="status",
                code="invalid_status",
            )
        if current.status == QuoteStatus.SENT:
            current = _transition(
                current,
                actor=actor,
                allowed_from=[QuoteStatus.SENT],
                to_status=QuoteStatus.ACCEPTED,
            )
        overrides = {k: v for k, v in (data or {}).items() if k not in ("customer", "currency")}
        header = {
            "customer": current.customer,
            "contact": current.contact,
            "opportunity": current.opportunity,
            "title": current.title,
            "currency": current.currency,
            "payment_terms": current.terms,
            "notes": current.notes,
            **overrides,
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
        try:
            with transaction.atomic():
                _transition(
                    quote,
                    actor=None,
                    allowed_from=[QuoteStatus.DRAFT, QuoteStatus.SENT],
                    to_status=QuoteStatus.EXPIRED,
                )
            count += 1
        except (ServiceError, Http404):
            continue  # changed or deleted meanwhile
    return count


# --- contracts ------------------------------------------------------------------------------


def contract_create(*, actor, data: dict[str, Any], lines: list[dict[str, Any]]) -> Contract:
    """A draft contract with its number (HT-<year>-<n>, gap-free) and priced lines."""
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
    """Drafts and rejected contracts only; an active contract changes by amendment
    (refused with ``code="amend_instead"``)."""
    require_perm(actor, "sales.change")
    return _update(
        contract,
        actor=actor,
        expected_version=expected_version,
        data=data,
        lines=lines,
        line_model=ContractLine,
        parent_field="contract",
    )


def _contract_release_quote(contract: Contract, *, actor) -> None:
    """A deleted contract gives its quote back (accepted again, free to convert anew)."""
    if contract.quote_id is None:
        return
    quote = Quote._base_manager.get(pk=contract.quote_id)
    Contract._base_manager.filter(pk=contract.pk).update(quote=None)
    if quote.status == QuoteStatus.CONVERTED:
        _transition(
            quote,
            actor=actor,
            allowed_from=[QuoteStatus.CONVERTED],
            to_status=QuoteStatus.ACCEPTED,
            note=_("Contract %(number)s deleted") % {"number": contract.number},
        )


def contract_delete(*, actor, contract: Contract) -> None:
    """Drafts and rejected contracts; a quote it came from becomes convertible again."""
    _delete(
        contract,
        actor=actor,
        on_delete=lambda current: _contract_release_quote(current, actor=actor),
    )


def contract_submit(
    *, actor, contract: Contract, expected_version: int | None = None, comment: str = ""
) -> Contract:
    """Send a draft (or rejected) contract for approval; with no rule it is active at once.

    The approval engine routes it by amount and department; a rule step with nobody to
    decide it refuses the submission (and nothing is written).
    """
    require_perm(actor, "sales.change")
    _check_visible(actor, contract)
    comment = (comment or "").strip()
    with transaction.atomic():
        current = _locked(contract)
        _check_version(current, expected_version)
        if not current.can_submit():
            raise _status_refused(current, ContractStatus.PENDING)
        if current.total_amount <= 0:
            raise ServiceError(_("A contract needs an amount above 0."), field="lines")
        current = _transition(
            current,
            actor=actor,
            allowed_from=[ContractStatus.DRAFT, ContractStatus.REJECTED],
            to_status=ContractStatus.PENDING,
            note=comment,
        )
        approval_submit(
            actor=actor, document_type=CONTRACT_DOCUMENT_TYPE, document=current, comment=comment
        )
        current.refresh_from_db()
    return current


def contract_withdraw(*, actor, contract: Contract, comment: str = "") -> Contract:
    """Take a contract awaiting approval back to draft (its submitter or an administrator)."""
    require_perm(actor, "sales.change")
    _check_visible(actor, contract)
    with transaction.atomic():
        current = _locked(contract)
        request = approval_pending_for_document(current)
        if current.status != ContractStatus.PENDING or request is None:
            raise _status_refused(current, ContractStatus.DRAFT)
        approval_withdraw(actor=actor, request=request, comment=comment)
        current.refresh_from_db()
    return current


def _contract_on_approved(contract: Contract, request, actor) -> None:
    """Approval callback: the contract takes effect and its customer becomes a won one.

    A contract with no signing date is taken as signed the day it takes effect, so it
    counts towards that month's sales targets.
    """
    now = timezone.now()
    extra: dict[str, Any] = {} if contract.signed_on else {"signed_on": timezone.localdate()}
    contract = _transition(
        contract,
        actor=actor,
        allowed_from=[ContractStatus.PENDING],
        to_status=ContractStatus.ACTIVE,
        approved_at=now,
        **extra,
    )
    from kehu.customers.services import customer_deal_record

    customer_deal_record(customer_id=contract.customer_id, at=now)
    _notify_owner(contract, _("Contract approved: %(document)s"))


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


def _check_no_pending_amendment(contract: Contract) -> None:
    if contract.amendments.filter(status=AmendmentStatus.PENDING).exists():
        raise ServiceError(
            _(
                "An amendment of this contract is awaiting approval; "
                "have it decided or withdrawn first."
            ),
            field="status",
            code="amendment_pending",
        )


def contract_complete(
    *, actor, contract: Contract, expected_version: int | None = None
) -> Contract:
    require_perm(actor, "sales.change")
    _check_visible(actor, contract)
    with transaction.atomic():
        current = _locked(contract)
        if current.can_complete():
            _check_no_pending_amendment(current)
        return _transition(
            current,
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
        current = _locked(contract)
        if current.can_terminate():
            _check_no_pending_amendment(current)
        return _transition(
            current,
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
    """Per contract line: the quantity on orders that count (0 for lines that only
    cancelled or deleted orders point at)."""
    return contract_line_usage(contract)


# The least a contract's amount may become, by module (finance: what was received or
# invoiced). Registered at start-up so sales does not read other modules' tables.
CONTRACT_AMOUNT_FLOORS: list[Callable[[Contract], Decimal]] = []


def _check_amount_floor(contract: Contract, total_after: Decimal) -> None:
    if total_after >= contract.total_amount:
        return
    floor = max((source(contract) for source in CONTRACT_AMOUNT_FLOORS), default=ZERO)
    if total_after < floor:
        raise ServiceError(
            _(
                "The new total %(total)s is less than the %(floor)s already received or "
                "invoiced on this contract."
            )
            % {"total": f"{total_after:,.2f}", "floor": f"{floor:,.2f}"},
            field="lines",
            code="below_money",
        )


def _check_amended_lines(contract: Contract, existing_lines: list, built: list) -> None:
    """Amended lines keep what orders hold: a line any order points at stays (with its
    product), and never drops below the quantity ordered."""
    usage = _ordered_quantities(contract)
    existing = {line.pk: line for line in existing_lines}
    kept: dict[int, Any] = {}
    for position, line in enumerate(built, start=1):
        if line.id is None:
            continue
        if line.id not in existing:
            raise ServiceError(
                _line_error(position, _("this line is not on the contract.")), field="lines"
            )
        if line.id in kept:
            raise ServiceError(
                _line_error(position, _("a contract line is listed twice.")), field="lines"
            )
        if line.id in usage and line.product_id != existing[line.id].product_id:
            raise ServiceError(
                _("“%(line)s” has been ordered: its product cannot change.")
                % {"line": existing[line.id].description},
                field="lines",
            )
        kept[line.id] = line
    for line_id, ordered in usage.items():
        if line_id not in kept:
            raise ServiceError(
                _("“%(line)s” has been ordered and cannot be removed.")
                % {"line": existing[line_id].description},
                field="lines",
                code="line_ordered",
            )
        if kept[line_id].quantity < ordered:
            raise ServiceError(
                _("“%(line)s”: %(ordered)s already ordered; the quantity cannot be less.")
                % {"line": existing[line_id].description, "ordered": _number(ordered)},
                field="lines",
                code="below_ordered",
            )


def _number(value: Decimal) -> str:
    """A quantity as people write it: 3, 2.5 (never 3.000 or 3E+1)."""
    text = format(value.normalize(), "f")
    return text


def _amendment_line_ids(lines: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """``id`` of each amended line as an int (or None for a new line)."""
    if lines is None:
        return None
    result = []
    for position, data in enumerate(lines, start=1):
        data = dict(data)
        line_id = getattr(data.get("id"), "pk", data.get("id"))
        if line_id in (None, ""):
            data["id"] = None
        else:
            try:
                data["id"] = int(line_id)
            except (TypeError, ValueError):
                raise ServiceError(
                    _line_error(position, _("this line is not on the contract.")), field="lines"
                ) from None
        result.append(data)
    return result


def _keeps(existing_lines: list[ContractLine]) -> Callable[[dict[str, Any]], bool]:
    """For ``_lines_build``: an amended line that keeps its contract line's product."""
    products = {line.pk: line.product_id for line in existing_lines}

    def keeps(data: dict[str, Any]) -> bool:
        product = data.get("product")
        return data.get("id") in products and products[data["id"]] == getattr(product, "pk", None)

    return keeps


def _contract_field(name: str) -> models.Field:
    field = Contract._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _contract_header_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Proposed header fields (as stored in JSON) as attribute values of a contract."""
    values: dict[str, Any] = {}
    for name, value in fields.items():
        field = _contract_field(name)
        values[field.attname] = value if field.is_relation else field.to_python(value)
    return values


def _contract_header_validate(contract: Contract, values: dict[str, Any]) -> None:
    """The contract with ``values`` (attribute names) applied would be valid."""
    candidate = copy.copy(contract)
    for attname, value in values.items():
        setattr(candidate, attname, value)
    names = {_contract_field(name).attname: name for name in AMENDABLE_FIELDS}
    exclude = [f.name for f in Contract._meta.fields if names.get(f.attname) is None]
    exclude += [names[a] for a in names if a not in values]
    candidate.clean_fields(exclude=exclude)
    _dates_check(
        Contract,
        {"start_date": candidate.start_date, "end_date": candidate.end_date},
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
    ``lines`` (None: unchanged) is the complete new list; items carry ``id`` of the
    contract line they change, lines left out are removed. Lines already ordered cannot be
    removed, change product or drop below the ordered quantity. One amendment at a time.
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
    line_data = _amendment_line_ids(lines)
    with transaction.atomic(), _as_service_error():
        current = _locked(contract)
        _check_version(current, expected_version)
        if not current.can_amend():
            raise ServiceError(
                _("Only an active contract is amended; this one is “%(status)s”.")
                % {"status": current.get_status_display()},
                field="status",
                code="invalid_status",
            )
        _check_no_pending_amendment(current)
        data = _header_clean(actor=actor, model=Contract, data=data, instance=current)
        existing_lines = list(current.lines.order_by("sort_order", "id"))
        built = None
        if line_data is not None:
            built = _lines_build(
                ContractLine, line_data, links=("id",), keeps_product=_keeps(existing_lines)
            )
            _check_amended_lines(current, existing_lines, built)
        before = {name: _field_json(getattr(current, name)) for name in AMENDABLE_FIELDS}
        before["lines"] = [_line_json(line) for line in existing_lines]
        changed = {
            name: _field_json(value)
            for name, value in data.items()
            if name in AMENDABLE_FIELDS and _field_json(value) != before[name]
        }
        _contract_header_validate(current, _contract_header_values(changed))
        proposed: dict[str, Any] = {"fields": changed}
        total_after = current.total_amount
        if built is not None:
            new_lines = [_line_json(line) for line in built]
            if new_lines != before["lines"]:
                proposed["lines"] = new_lines
                total_after = document_amounts(built).total_amount
                _check_amount_floor(current, total_after)
        if not changed and "lines" not in proposed:
            raise ServiceError(_("The amendment changes nothing."), code="no_change")
        amendment = ContractAmendment.objects.create(
            contract=current,
            sequence=current.amendments.count() + 1,
            reason=reason,
            before=before,
            proposed=proposed,
            total_before=current.total_amount,
            total_after=total_after,
            created_by=actor,
            updated_by=actor,
        )
        _audit(user=actor, action="create", obj=amendment, note=reason[:500])
        approval_submit(
            actor=actor, document_type=AMENDMENT_DOCUMENT_TYPE, document=amendment, comment=reason
        )
        amendment.refresh_from_db()
    return amendment


def amendment_withdraw(
    *, actor, amendment: ContractAmendment, comment: str = ""
) -> ContractAmendment:
    """Take back an amendment awaiting approval (its submitter or an administrator)."""
    require_perm(actor, "sales.change")
    _check_visible(actor, amendment)
    with transaction.atomic():
        request = approval_pending_for_document(amendment)
        if request is None:
            raise ServiceError(
                _("This amendment is not awaiting approval."),
                field="status",
                code="invalid_status",
            )
        approval_withdraw(actor=actor, request=request, comment=comment)
        amendment.refresh_from_db()
    return amendment


def _amendment_apply(amendment: ContractAmendment, request, actor) -> None:
    """Approval callback: the proposed fields and lines become the contract's."""
    contract = _locked(Contract(pk=amendment.contract_id))
    with _tracked(contract):
        _amendment_apply_locked(amendment, contract, actor)


def _amendment_apply_locked(amendment: ContractAmendment, contract: Contract, actor) -> None:
    if contract.status != ContractStatus.ACTIVE:
        raise ServiceError(
            _("The contract is no longer active; the amendment cannot be applied."),
            code="invalid_status",
        )
    fields = dict(amendment.proposed.get("fields", {}))
    with _as_service_error():
        values = _contract_header_values(fields)
        _contract_header_validate(contract, values)
    if "lines" in amendment.proposed:
        existing_lines = list(contract.lines.all())
        proposed_lines = amendment.proposed["lines"]
        products = Product.all_objects.in_bulk([line["product"] for line in proposed_lines])
        built = _lines_build(
            ContractLine,
            [{**line, "product": products.get(line["product"])} for line in proposed_lines],
            links=("id",),
            keeps_product=_keeps(existing_lines),
        )
        _check_amended_lines(contract, existing_lines, built)
        # Money may have arrived since the amendment was proposed.
        _check_amount_floor(contract, document_amounts(built).total_amount)
        for line in built:
            line.contract = contract
        kept = [line for line in built if line.id is not None]
        contract.lines.exclude(pk__in=[line.id for line in kept]).delete()
        ContractLine.objects.bulk_update(
            kept,
            [
                "product",
                "description",
                "unit",
                "quantity",
                "unit_price",
                "discount_rate",
                "tax_rate",
                "subtotal",
                "tax_amount",
                "total_amount",
                "sort_order",
            ],
        )
        ContractLine.objects.bulk_create([line for line in built if line.id is None])
        _totals_store(contract, built)
    now = timezone.now()
    Contract._base_manager.filter(pk=contract.pk).update(
        version=F("version") + 1,
        updated_at=now,
        updated_by=actor if actor is not None and actor.is_authenticated else None,
        **values,
    )
    ContractAmendment.objects.filter(pk=amendment.pk).update(
        status=AmendmentStatus.APPLIED, applied_at=now, updated_at=now
    )
    _event(
        contract,
        actor=actor,
        from_status=contract.status,
        to_status=contract.status,
        note=_("Amendment %(number)s applied: %(reason)s")
        % {"number": amendment, "reason": amendment.reason},
    )
    changes = {name: [amendment.before.get(name), value] for name, value in fields.items()}
    if "lines" in amendment.proposed:
        changes["total_amount"] = [str(amendment.total_before), str(amendment.total_after)]
    _audit(user=actor, action="amend", obj=contract, changes=changes, note=str(amendment))


def _amendment_close(status: str):
    """Approval callback for a rejected or withdrawn amendment: the contract stays as is."""

    def close(amendment: ContractAmendment, request, actor) -> None:
        ContractAmendment.objects.filter(pk=amendment.pk).update(
            status=status, updated_at=timezone.now()
        )
        _audit(
            user=actor,
            action="status",
            obj=amendment,
            changes={"status": [amendment.status, status]},
        )

    return close


# --- orders ---------------------------------------------------------------------------------


def order_create(*, actor, data: dict[str, Any], lines: list[dict[str, Any]]) -> Order:
    """A standalone order; with ``data["contract"]`` it is an order from that contract
    (see ``order_create_from_contract``: then ``lines`` are contract lines and quantities)."""
    require_perm(actor, "sales.add")
    data = dict(data)
    contract = data.pop("contract", None)
    if contract is not None:
        return order_create_from_contract(actor=actor, contract=contract, data=data, lines=lines)
    if not data.get("order_date"):
        data["order_date"] = timezone.localdate()
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
    everything not yet ordered. A contract line listed twice counts once, in total."""
    contract_lines = {line.pk: line for line in contract.lines.select_related("product")}
    if lines is None:
        lines = [
            {"contract_line": line, "quantity": line.quantity - ordered.get(line.pk, ZERO)}
            for line in sorted(contract_lines.values(), key=lambda item: (item.sort_order, item.pk))
            if line.quantity - ordered.get(line.pk, ZERO) > 0
        ]
        if not lines:
            raise ServiceError(
                _("Everything on this contract has been ordered already."),
                field="lines",
                code="nothing_left",
            )
    result = []
    requested: dict[int, Decimal] = {}
    for position, data in enumerate(lines, start=1):
        line_id = getattr(data.get("contract_line"), "pk", data.get("contract_line"))
        try:
            source = contract_lines[int(line_id or 0)]
        except (KeyError, TypeError, ValueError):
            raise ServiceError(
                _line_error(position, _("choose a line of this contract.")), field="lines"
            ) from None
        quantity = _quantity(data.get("quantity"), line=position)
        requested[source.pk] = requested.get(source.pk, ZERO) + quantity
        remaining = source.quantity - ordered.get(source.pk, ZERO)
        if requested[source.pk] > remaining:
            raise ServiceError(
                _line_error(
                    position,
                    _("only %(remaining)s of “%(product)s” are left to order.")
                    % {"remaining": _number(max(remaining, ZERO)), "product": source.description},
                ),
                field="lines",
                code="over_contract",
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
    """An order against an active contract, priced as the contract.

    ``lines`` are ``{"contract_line", "quantity"}`` (None: everything not yet ordered);
    what orders that count (not cancelled) already hold is not offered again. The order
    belongs to the contract's owner unless someone who may assign names another.
    """
    require_perm(actor, "sales.add")
    _check_visible(actor, contract)
    data = {
        key: value
        for key, value in (data or {}).items()
        if key in ORDER_EDITABLE_FIELDS and key not in ("customer", "currency")
    }
    with transaction.atomic(), _as_service_error():
        current = _locked(contract)
        if current.status != ContractStatus.ACTIVE:
            raise ServiceError(
                _("Orders are placed against an active contract; this one is “%(status)s”.")
                % {"status": current.get_status_display()},
                field="contract",
                code="invalid_status",
            )
        owner = _owner_clean(
            actor=actor, owner=data.pop("owner", None), current_owner_id=current.owner_id
        )
        owner = owner or current.owner
        header = {
            "title": current.title,
            **data,
            "order_date": data.get("order_date") or timezone.localdate(),
            "contract": current,
            "customer": current.customer,
            "currency": current.currency,
            "owner": owner,
            "department": owner.department,
        }
        priced = _contract_lines_for_order(current, lines, _ordered_quantities(current))
        built = _lines_build(
            OrderLine, priced, links=("contract_line",), keeps_product=lambda data: True
        )
        header["number"] = document_number_next(prefix=ORDER_PREFIX)
        order = model_create(model=Order, user=actor, data=header)
        with _tracked(order):
            _lines_save(order, "order", built)
        _event(order, actor=actor, from_status="", to_status=OrderStatus.PENDING)
    return order


def order_update(
    *, actor, order: Order, expected_version: int | None, data: dict[str, Any], lines=None
) -> Order:
    """A pending order. An order from a contract keeps its contract, customer and currency;
    its ``lines`` are ``{"contract_line", "quantity"}`` within what the contract leaves."""
    require_perm(actor, "sales.change")
    data = dict(data)
    data.pop("contract", None)
    if order.contract_id:
        data.pop("customer", None)
        data.pop("currency", None)

    def contract_lines(current: Order) -> list[dict[str, Any]]:
        # Under the order's lock; the contract is locked too, as when an order is created
        # from it, so two edits cannot both take the last quantities.
        contract = _locked(Contract(pk=current.contract_id))
        ordered = _ordered_quantities(contract)
        if current.status != OrderStatus.CANCELLED:  # this order's own lines are given back
            for line in current.lines.all():
                if line.contract_line_id:
                    ordered[line.contract_line_id] -= line.quantity
        return _contract_lines_for_order(contract, lines, ordered)

    return _update(
        order,
        actor=actor,
        expected_version=expected_version,
        data=data,
        lines=lines,
        line_model=OrderLine,
        parent_field="order",
        links=("contract_line",) if order.contract_id else (),
        keeps_product=(lambda data: True) if order.contract_id else None,
        lines_prepare=contract_lines if order.contract_id else None,
    )


def order_delete(*, actor, order: Order) -> None:
    """A pending order; what it held of a contract is free to order again."""
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


def _shipping_status(lines: Iterable[OrderLine]) -> str:
    lines = list(lines)
    net = sum((line.shipped_quantity - line.returned_quantity for line in lines), ZERO)
    if net <= 0:
        return OrderStatus.CONFIRMED
    if all(line.outstanding_quantity <= 0 for line in lines):
        return OrderStatus.SHIPPED
    return OrderStatus.PARTIALLY_SHIPPED


def _order_lines_locked(order: Order) -> dict[int, OrderLine]:
    """The order's lines with their products; call with the order row locked (only
    services holding that lock change the shipped and returned counters)."""
    return {line.pk: line for line in order.lines.select_related("product").order_by("pk")}


def _quantities_clean(
    lines: dict[int, OrderLine], quantities, *, limit: Callable[[OrderLine], Decimal]
) -> list[tuple[OrderLine, Decimal]]:
    """``quantities`` maps order-line id → quantity (None: every line's full ``limit``).

    A line named twice counts once, in total. Sorted by product id, so that two transactions
    posting stock of the same products lock them in the same order and cannot deadlock.
    """
    picked: dict[int, Decimal] = {}
    if quantities is None:
        picked = {pk: limit(line) for pk, line in lines.items() if limit(line) > 0}
    else:
        for key, value in quantities.items():
            try:
                line = lines[int(getattr(key, "pk", key))]
            except (KeyError, TypeError, ValueError):
                raise ServiceError(
                    _("A line does not belong to this order."), field="lines"
                ) from None
            quantity = _decimal(value, field="lines", line=line.sort_order)
            if quantity < 0 or quantity != quantity.quantize(QUANTITY_STEP):
                raise ServiceError(
                    _line_error(
                        line.sort_order,
                        _("enter a quantity of 0 or more, with at most 3 decimal places."),
                    ),
                    field="lines",
                )
            if quantity:
                picked[line.pk] = picked.get(line.pk, ZERO) + quantity
        for pk, quantity in picked.items():
            line = lines[pk]
            if quantity > limit(line):
                raise ServiceError(
                    _("“%(product)s”: at most %(limit)s.")
                    % {"product": line.description, "limit": _number(max(limit(line), ZERO))},
                    field="lines",
                    code="too_many",
                )
    if not picked:
        raise ServiceError(
            _("Enter a quantity for at least one line."), field="lines", code="nothing"
        )
    return sorted(
        ((lines[pk], quantity) for pk, quantity in picked.items()),
        key=lambda item: (item[0].product_id, item[0].pk),
    )


def _goods_out_by_warehouse(order: Order) -> dict[tuple[int, int], Decimal]:
    """(order line id, warehouse id) → quantity shipped from there and not yet returned."""
    out: dict[tuple[int, int], Decimal] = {}
    rows = ShipmentLine.objects.filter(shipment__order=order).values_list(
        "order_line_id", "shipment__warehouse_id", "shipment__kind", "quantity"
    )
    for line_id, warehouse_id, kind, quantity in rows:
        sign = 1 if kind == ShipmentKind.SHIPMENT else -1
        key = (line_id, warehouse_id)
        out[key] = out.get(key, ZERO) + sign * quantity
    return {key: quantity for key, quantity in out.items() if quantity > 0}


def _goods_move(
    *,
    actor,
    order: Order,
    kind: str,
    picked: list[tuple[OrderLine, Decimal]],
    warehouse,
    shipped_on,
    carrier="",
    tracking_number="",
    note="",
) -> Shipment:
    """One shipment (FH-) or return (TH-) with its lines and stock movements; updates the
    order lines' counters (the objects in ``picked`` too). Inside the caller's transaction,
    with the order row locked; a movement the stock refuses rolls everything back."""
    from kehu.products.services import stock_movement_post, warehouse_default_ensure

    warehouse = warehouse or order.warehouse or warehouse_default_ensure()
    prefix = SHIPMENT_PREFIX if kind == ShipmentKind.SHIPMENT else RETURN_PREFIX
    shipment = Shipment.objects.create(
        number=document_number_next(prefix=prefix),
        order=order,
        kind=kind,
        warehouse=warehouse,
        shipped_on=shipped_on or timezone.localdate(),
        carrier=(carrier or "")[:100],
        tracking_number=(tracking_number or "")[:100],
        note=(note or "")[:500],
        created_by=actor,
        updated_by=actor,
    )
    movement_kind = (
        MovementKind.ORDER_SHIPMENT if kind == ShipmentKind.SHIPMENT else MovementKind.ORDER_RETURN
    )
    counter = "shipped_quantity" if kind == ShipmentKind.SHIPMENT else "returned_quantity"
    shipment_lines = []
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
        shipment_lines.append(
            ShipmentLine(
                shipment=shipment, order_line=line, quantity=quantity, stock_movement=movement
            )
        )
        setattr(line, counter, getattr(line, counter) + quantity)
    ShipmentLine.objects.bulk_create(shipment_lines)
    OrderLine.objects.bulk_update([line for line, _quantity in picked], [counter])
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
    """Ship some or all of what is outstanding (``products.change``, the warehouse).

    ``quantities`` maps order-line id → quantity (None: everything outstanding); the goods
    leave ``warehouse`` (default: the order's, else the default warehouse). The order row
    is locked first, so two people shipping the same order at once ship it once; the stock
    service refuses when stock is short and negative stock is not allowed, and then
    nothing is written: no shipment, no movement, no line change.
    """
    require_perm(actor, "products.change")
    _check_visible(actor, order)
    with transaction.atomic():
        current = _locked(order)
        if not current.can_ship():
            raise ServiceError(
                _("Only a confirmed order is shipped; this one is “%(status)s”.")
                % {"status": current.get_status_display()},
                field="status",
                code="invalid_status",
            )
        lines = _order_lines_locked(current)
        picked = _quantities_clean(lines, quantities, limit=lambda line: line.outstanding_quantity)
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
        current = _transition(
            current,
            actor=actor,
            allowed_from=[OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_SHIPPED],
            to_status=_shipping_status(lines.values()),
            note=shipment.number,
        )
        transaction.on_commit(
            lambda: _notify_owner(current, _("Goods shipped: %(document)s"), body=shipment.number)
        )
    return shipment


def order_return(
    *, actor, order: Order, quantities: dict | None, reason: str, warehouse=None, returned_on=None
) -> Shipment:
    """Take goods back into stock (``products.change``); the order goes back to partly
    shipped or confirmed (a completed order reopens).

    ``quantities`` maps order-line id → quantity (None: everything out). The goods go back
    to ``warehouse``, by default the one they left from; when they left from several, the
    caller must choose.
    """
    require_perm(actor, "products.change")
    _check_visible(actor, order)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the goods come back."), field="reason")
    with transaction.atomic():
        current = _locked(order)
        returnable = [OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.COMPLETED]
        if current.status not in returnable:
            raise ServiceError(
                _("Nothing has been shipped on this order."), field="status", code="invalid_status"
            )
        lines = _order_lines_locked(current)
        picked = _quantities_clean(
            lines, quantities, limit=lambda line: line.shipped_quantity - line.returned_quantity
        )
        if warehouse is None:
            picked_ids = {line.pk for line, _quantity in picked}
            sources = {
                warehouse_id
                for (line_id, warehouse_id) in _goods_out_by_warehouse(current)
                if line_id in picked_ids
            }
            if len(sources) > 1:
                raise ServiceError(
                    _("These goods left from several warehouses; choose where they come back to."),
                    field="warehouse",
                    code="choose_warehouse",
                )
            if sources:
                warehouse = Warehouse.objects.get(pk=sources.pop())
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
            allowed_from=returnable,
            to_status=_shipping_status(lines.values()),
            note=f"{shipment.number}: {reason}",
            completed_at=None,
        )
    return shipment


CANCELLABLE_ORDER_STATUSES = (
    OrderStatus.PENDING,
    OrderStatus.CONFIRMED,
    OrderStatus.PARTIALLY_SHIPPED,
    OrderStatus.SHIPPED,
)


def order_cancel(*, actor, order: Order, reason: str, expected_version: int | None = None) -> Order:
    """Cancel an order that is not completed (``sales.change``), with a reason.

    When goods are out, they come back into stock first, to the warehouses they left from
    (one return each), so only someone who moves stock (``products.change``, the warehouse)
    may cancel it. A cancelled order no longer holds quantities of its contract.
    """
    _check_visible(actor, order)
    reason = (reason or "").strip()
    with transaction.atomic():
        current = _locked(order)
        _check_version(current, expected_version)
        if current.status not in CANCELLABLE_ORDER_STATUSES:
            raise _status_refused(current, OrderStatus.CANCELLED)
        out = _goods_out_by_warehouse(current)
        if not out:
            require_perm(actor, "sales.change")
        elif not has_perm(actor, "products.change"):
            raise PermissionRefused(
                _(
                    "Goods of this order have left the warehouse: "
                    "the warehouse cancels it and takes them back."
                )
            )
        # The reason is asked for once the actor may cancel, so a refusal reads as one.
        if not reason:
            raise ServiceError(_("Say why the order is cancelled."), field="reason")
        lines = _order_lines_locked(current) if out else {}
        for warehouse_id in sorted({warehouse_id for (_line, warehouse_id) in out}):
            picked = sorted(
                (
                    (lines[line_id], quantity)
                    for (line_id, source), quantity in out.items()
                    if source == warehouse_id
                ),
                key=lambda item: (item[0].product_id, item[0].pk),
            )
            _goods_move(
                actor=actor,
                order=current,
                kind=ShipmentKind.RETURN,
                picked=picked,
                warehouse=Warehouse.objects.get(pk=warehouse_id),
                shipped_on=None,
                note=reason,
            )
        return _transition(
            current,
            actor=actor,
            allowed_from=CANCELLABLE_ORDER_STATUSES,
            to_status=OrderStatus.CANCELLED,
            note=reason,
            cancelled_at=timezone.now(),
            cancel_reason=reason[:500],
        )
