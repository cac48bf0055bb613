"""Opportunity and pipeline reads, always through the data scope."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from kehu.core import pagination
from kehu.core.permissions import require_perm
from kehu.core.scope import get_visible_or_404, visible_to
from kehu.customers.linked_search import linked_search_q
from kehu.customers.models import Opportunity, PipelineStage, StageKind


def pipeline_stages(*, active_only: bool = True) -> QuerySet[PipelineStage]:
    queryset = PipelineStage.objects.all()
    return queryset.filter(is_active=True) if active_only else queryset


def opportunity_list_visible_to(*, user) -> QuerySet[Opportunity]:
    require_perm(user, "customers.view")
    return visible_to(
        Opportunity.objects.select_related("customer", "stage", "owner", "department"), user
    )


def opportunity_get_for(*, user, pk) -> Opportunity:
    """Missing, deleted and out of scope are the same 404."""
    require_perm(user, "customers.view")
    return get_visible_or_404(
        Opportunity.objects.select_related("customer", "stage", "owner"), user, pk=pk
    )


# Cards a board column shows; the column's count and total still cover all its cards, and
# the list page (filtered by stage) has the rest.
BOARD_COLUMN_LIMIT = 20
# What a card shows: not the customer's or owner's whole rows.
BOARD_CARD_FIELDS = (
    "id",
    "title",
    "amount",
    "currency",
    "expected_close_date",
    "version",
    "stage_id",
    "board_position",
    "customer__id",
    "customer__name",
    "owner__id",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "owner__display_name",
)


def opportunity_board(*, user, owner_id: int | None = None, query: str = "") -> list[dict]:
    """Active stages as columns with their first cards (by board position) and totals: one
    query per stage for the cards plus two for the totals, however many cards there are.

    Closed (won/lost) columns show only the last 30 days so the board stays a working
    view; the list page has the full history. The open columns' counts and totals are the
    stored funnel figures unless a search narrows the board (1,000,000 customers: one sum
    over 700,000 open opportunities, 130-220 ms, before). A searched board sums its matches
    within the lists' count budget: a term in most customers' names (有限公司) took
    190-330 ms; over the budget the columns' ``count`` and ``total`` are None.
    """
    import datetime

    from django.utils import timezone

    from kehu.analytics.selectors import opportunities_by_stage_stored

    stages = list(pipeline_stages())
    queryset = opportunity_list_visible_to(user=user)
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    if query:
        queryset = queryset.filter(linked_search_q(Opportunity, query, fields=("title",)))
    recent = timezone.now() - datetime.timedelta(days=30)
    closed = Q(closed_at__gte=recent) & ~Q(stage__kind=StageKind.OPEN)
    sums = (
        queryset.filter(closed | Q(stage__kind=StageKind.OPEN) if query else closed)
        .order_by()
        .values("stage")
        .annotate(count=Count("id"), amount=Sum("amount"))
    )
    rows = (
        pagination.within_budget(lambda: list(sums), pagination.list_count_budget_ms())
        if query
        else list(sums)
    )
    counted = rows is not None
    totals: dict[int, Any] = {
        row["stage"]: {"count": row["count"], "amount": row["amount"]} for row in rows or ()
    }
    if not query:
        open_ids = {stage.pk for stage in stages if stage.kind == StageKind.OPEN}
        stored = opportunities_by_stage_stored(user=user, owner_id=owner_id)
        totals.update({pk: row for pk, row in stored.items() if pk in open_ids})
    columns = []
    for stage in stages:
        # The column's cards filtered on the stage id rather than through the join, so the
        # (stage, position) index reads just its first cards.
        column = queryset.filter(stage_id=stage.pk)
        if stage.kind != StageKind.OPEN:
            column = column.filter(closed_at__gte=recent)
        cards = list(
            column.select_related(None)
            .select_related("customer", "owner")
            .only(*BOARD_CARD_FIELDS)
            .order_by("board_position", "-id")[:BOARD_COLUMN_LIMIT]
        )
        count = totals.get(stage.pk, {}).get("count", 0)
        columns.append(
            {
                "stage": stage,
                "cards": cards,
                "count": count if counted else None,
                # Uncounted: whether the list has more (the column shows its first cards).
                "more": max(0, count - len(cards)) if counted else len(cards) == BOARD_COLUMN_LIMIT,
                "total": (totals.get(stage.pk, {}).get("amount") or Decimal("0"))
                if counted
                else None,
            }
        )
    return columns
