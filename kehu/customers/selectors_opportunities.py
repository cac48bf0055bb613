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


def opportunity_board(*, user, filters: Q | None = None) -> list[dict]:
    """Active stages as columns with their cards and totals: three queries in all.

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
    queryset = queryset.filter(Q(stage__kind=StageKind.OPEN) | Q(closed_at__gte=recent)).order_by(
        "board_position", "-id"
    )
    totals: dict[int, Any] = {
        row["stage"]: row
        for row in queryset.order_by().values("stage").annotate(n=Count("id"), total=Sum("amount"))
    }
    cards: dict[int, list[Opportunity]] = {s.pk: [] for s in stages}
    for opportunity in queryset.filter(stage__in=stages)[:2000]:
        cards[opportunity.stage_id].append(opportunity)
    return [
        {
            "stage": stage,
            "cards": cards[stage.pk],
            "count": totals.get(stage.pk, {}).get("n", 0),
            "total": totals.get(stage.pk, {}).get("total") or Decimal("0"),
        }
        for stage in stages
    ]
