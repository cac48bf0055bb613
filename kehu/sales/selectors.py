"""Scoped reads of sales documents: every list, detail and export starts here."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import get_visible_or_404, visible_to
from kehu.sales.models import (
    AmendmentStatus,
    Contract,
    ContractAmendment,
    ContractStatus,
    DocumentEvent,
    Order,
    OrderLine,
    OrderStatus,
    Quote,
    Shipment,
)

_HEADER = ("customer", "owner", "department")


def quote_list_visible_to(*, user) -> QuerySet[Quote]:
    require_perm(user, "sales.view")
    return visible_to(Quote.objects.select_related(*_HEADER, "contact", "opportunity"), user)


def quote_get_for(*, user, pk) -> Quote:
    return get_visible_or_404(quote_list_visible_to(user=user), user, pk=pk)


def contract_list_visible_to(*, user) -> QuerySet[Contract]:
    require_perm(user, "sales.view")
    return visible_to(
        Contract.objects.select_related(*_HEADER, "contact", "opportunity", "quote"), user
    )


# What the contract list page shows of each row: its columns, the customer's and owner's
# names (the full rows with every relation are for exports and the API).
CONTRACT_LIST_PAGE_FIELDS = (
    "id",
    "number",
    "title",
    "status",
    "total_amount",
    "currency",
    "signed_on",
    "end_date",
    "customer__id",
    "customer__name",
    "owner__id",
    "owner__username",
    "owner__display_name",
    "owner__first_name",
    "owner__last_name",
)


def contract_list_page_rows(queryset: QuerySet[Contract]) -> QuerySet[Contract]:
    """A contract list queryset narrowed to the list page's columns and two joins."""
    return (
        queryset.select_related(None)
        .select_related("customer", "owner")
        .only(*CONTRACT_LIST_PAGE_FIELDS)
    )


def contract_get_for(*, user, pk) -> Contract:
    return get_visible_or_404(contract_list_visible_to(user=user), user, pk=pk)


def order_list_visible_to(*, user) -> QuerySet[Order]:
    require_perm(user, "sales.view")
    return visible_to(Order.objects.select_related(*_HEADER, "contract", "warehouse"), user)


def order_get_for(*, user, pk) -> Order:
    return get_visible_or_404(order_list_visible_to(user=user), user, pk=pk)


def amendment_list_visible_to(*, user) -> QuerySet[ContractAmendment]:
    require_perm(user, "sales.view")
    return visible_to(ContractAmendment.objects.select_related("contract", "created_by"), user)


def amendment_get_for(*, user, pk) -> ContractAmendment:
    return get_visible_or_404(amendment_list_visible_to(user=user), user, pk=pk)


def shipment_list_visible_to(*, user) -> QuerySet[Shipment]:
    require_perm(user, "sales.view")
    return visible_to(
        Shipment.objects.select_related("order", "order__customer", "warehouse", "created_by"),
        user,
    )


def shipment_get_for(*, user, pk) -> Shipment:
    return get_visible_or_404(shipment_list_visible_to(user=user), user, pk=pk)


def amendment_pending_for(contract: Contract) -> ContractAmendment | None:
    """The amendment of ``contract`` awaiting approval, if any (there is at most one)."""
    return contract.amendments.filter(status=AmendmentStatus.PENDING).first()


def contract_line_usage(contract: Contract) -> dict[int, Decimal]:
    """Per contract line that any order line points at: the quantity on orders that count
    (not cancelled, not deleted); 0 for a line only cancelled or deleted orders used."""
    counted = ~Q(order__status=OrderStatus.CANCELLED) & Q(order__deleted_at__isnull=True)
    rows = (
        OrderLine.objects.filter(contract_line__contract=contract)
        .values("contract_line")
        .annotate(quantity=Coalesce(Sum("quantity", filter=counted), Decimal("0")))
        .order_by()
    )
    return {row["contract_line"]: row["quantity"] for row in rows}


def document_events_for(document) -> QuerySet[DocumentEvent]:
    return DocumentEvent.objects.filter(
        content_type=ContentType.objects.get_for_model(type(document)), object_id=document.pk
    ).select_related("actor")


def contracts_ending_soon(*, user, days: int, today: datetime.date | None = None):
    today = today or timezone.localdate()
    return contract_list_visible_to(user=user).filter(
        status=ContractStatus.ACTIVE,
        end_date__gte=today,
        end_date__lte=today + datetime.timedelta(days=days),
    )


OPEN_ORDER_STATUSES = (OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_SHIPPED)


def orders_overdue_for_shipment(*, user, today: datetime.date | None = None):
    today = today or timezone.localdate()
    return order_list_visible_to(user=user).filter(
        status__in=OPEN_ORDER_STATUSES, ship_by__lt=today
    )


def orders_to_ship(*, user):
    return order_list_visible_to(user=user).filter(
        status__in=(OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_SHIPPED)
    )


# --- reads for the pages (customer 360°, opportunity, ordering from a contract) ---------------


def customer_documents(*, user, customer, limit: int = 5) -> dict:
    """The customer's quotes, contracts and orders the user may see: counts and the newest.

    Six queries however many documents: a count and a bounded list per kind.
    """
    result = {}
    for key, queryset in (
        ("quotes", quote_list_visible_to(user=user)),
        ("contracts", contract_list_visible_to(user=user)),
        ("orders", order_list_visible_to(user=user)),
    ):
        mine = queryset.filter(customer=customer).select_related(None).select_related("owner")
        result[key] = {"count": mine.count(), "items": list(mine.order_by("-id")[:limit])}
    return result


def opportunity_documents(*, user, opportunity) -> dict | None:
    """The quotes and contracts made for an opportunity, within the user's scope (None for
    someone who may not see sales documents)."""
    if not has_perm(user, "sales.view"):
        return None
    return {
        "quotes": list(
            quote_list_visible_to(user=user)
            .filter(opportunity=opportunity)
            .select_related(None)
            .order_by("-id")[:50]
        ),
        "contracts": list(
            contract_list_visible_to(user=user)
            .filter(opportunity=opportunity)
            .select_related(None)
            .order_by("-id")[:50]
        ),
    }


def contract_lines_ordered(contract, *, exclude_order=None) -> list[tuple]:
    """``(line, ordered, remaining)`` per contract line: what orders that are not cancelled
    hold already (leaving out ``exclude_order``, the order being edited) and what is left."""
    from decimal import Decimal

    from django.db.models import Sum

    from kehu.sales.models import OrderLine

    rows = OrderLine.objects.filter(
        contract_line__contract=contract, order__deleted_at__isnull=True
    ).exclude(order__status=OrderStatus.CANCELLED)
    if exclude_order is not None:
        rows = rows.exclude(order=exclude_order)
    ordered = {
        row["contract_line"]: row["quantity"]
        for row in rows.values("contract_line").annotate(quantity=Sum("quantity")).order_by()
    }
    result = []
    for line in contract.lines.order_by("sort_order", "id"):
        done = ordered.get(line.pk, Decimal("0"))
        result.append((line, done, line.quantity - done))
    return result
