"""Opportunity and pipeline reads, always through the data scope."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from kehu.core.permissions import require_perm
from kehu.core.scope import get_visible_or_404, visible_to
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


def opportunity_board(*, user, filters: Q | None = None) -> list[dict]:
    """Active stages as columns with their first cards (by board position) and totals: one
    query per stage for the cards plus one for the totals, however many cards there are.

    Closed (won/lost) columns show only the last 30 days so the board stays a working
    view; the list page has the full history.
    """
    import datetime

    from django.utils import timezone

    stages = list(pipeline_stages())
    queryset = opportunity_list_visible_to(user=user)
    if filters is not None:
        queryset = queryset.filter(filters)
    recent = timezone.now() - datetime.timedelta(days=30)
    on_board = queryset.filter(Q(stage__kind=StageKind.OPEN) | Q(closed_at__gte=recent))
    totals: dict[int, Any] = {
        row["stage"]: row
        for row in on_board.order_by().values("stage").annotate(n=Count("id"), total=Sum("amount"))
    }
    columns = []
    for stage in stages:
        # The same cards as ``on_board``, filtered on the stage id rather than through the
        # join, so the (stage, position) index reads just this column's first cards.
        column = queryset.filter(stage_id=stage.pk)
        if stage.kind != StageKind.OPEN:
            column = column.filter(closed_at__gte=recent)
        cards = list(
            column.select_related(None)
            .select_related("customer", "owner")
            .only(*BOARD_CARD_FIELDS)
            .order_by("board_position", "-id")[:BOARD_COLUMN_LIMIT]
        )
        count = totals.get(stage.pk, {}).get("n", 0)
        columns.append(
            {
                "stage": stage,
                "cards": cards,
                "count": count,
                "more": max(0, count - len(cards)),
                "total": totals.get(stage.pk, {}).get("total") or Decimal("0"),
            }
        )
    return columns
