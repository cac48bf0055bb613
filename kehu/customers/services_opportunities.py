"""Opportunity (商机) and pipeline-stage writes: create, edit, move on the board, win, lose.

Stage changes are recorded twice on purpose: the operation log (who changed which field,
before → after, like every write) and a ``CustomerEvent`` of kind ``stage`` with
``data = {"opportunity": id, "title", "from", "to", "kind"}`` so the customer's timeline
shows the pipeline moving without reading the operation log.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError
from kehu.core.permissions import has_perm, require_perm
from kehu.core.scope import visible_to
from kehu.core.services import model_create, soft_delete, versioned_update
from kehu.customers.models import (
    Customer,
    CustomerEvent,
    CustomerEventKind,
    Opportunity,
    PipelineStage,
    StageKind,
)
from kehu.customers.services import customer_deal_record, opportunities_tracked

# The default pipeline is seeded by services.customers_seed_defaults (after migrate).


# --- pipeline stages ------------------------------------------------------------------------


def _check_pipeline_complete(*, changed: PipelineStage | None = None) -> None:
    """The board needs at least one active open, won and lost stage to work."""
    stages = {s.pk: s for s in PipelineStage.objects.filter(is_active=True)}
    if changed is not None:
        if changed.is_active:
            stages[changed.pk] = changed
        else:
            stages.pop(changed.pk, None)
    kinds = {s.kind for s in stages.values()}
    for kind in StageKind:
        if kind not in kinds:
            raise ServiceError(
                _("The pipeline needs at least one active stage of the kind “%(kind)s”.")
                % {"kind": kind.label},
                field="is_active",
                code="pipeline_incomplete",
            )


def pipeline_stage_create(*, actor, data: dict[str, Any]) -> PipelineStage:
    require_perm(actor, "system.change")
    data = dict(data)
    if "sort_order" not in data or data["sort_order"] is None:
        top = PipelineStage.objects.aggregate(m=Max("sort_order"))["m"] or 0
        data["sort_order"] = top + 10
    return model_create(model=PipelineStage, user=actor, data=data)


def pipeline_stage_update(
    *, actor, stage: PipelineStage, expected_version: int, data: dict[str, Any]
) -> PipelineStage:
    require_perm(actor, "system.change")
    with transaction.atomic():
        preview = PipelineStage(**{**_stage_fields(stage), **data, "id": stage.pk})
        _check_pipeline_complete(changed=preview)
        kind_changes = "kind" in data and data["kind"] != stage.kind
        if kind_changes and Opportunity.all_objects.filter(stage=stage).exists():
            raise ServiceError(
                _("Opportunities are in this stage; its kind can no longer change."),
                field="kind",
                code="stage_in_use",
            )
        return versioned_update(
            instance=stage, user=actor, expected_version=expected_version, data=data
        )


def _stage_fields(stage: PipelineStage) -> dict[str, Any]:
    return {
        "name": stage.name,
        "name_en": stage.name_en,
        "kind": stage.kind,
        "probability": stage.probability,
        "sort_order": stage.sort_order,
        "is_active": stage.is_active,
    }


def pipeline_stage_reorder(*, actor, ordered_ids: list[int]) -> None:
    """Renumber the stages in the given order (10, 20, …); unknown ids are ignored."""
    require_perm(actor, "system.change")
    with transaction.atomic():
        known = set(PipelineStage.objects.values_list("pk", flat=True))
        position = 0
        for pk in ordered_ids:
            if pk in known:
                position += 10
                PipelineStage.objects.filter(pk=pk).update(
                    sort_order=position, version=F("version") + 1
                )
                known.discard(pk)
        from kehu.system.services import audit_log_record

        audit_log_record(
            user=actor,
            action="change",
            model=PipelineStage._meta.label_lower,
            note="reorder: " + ",".join(str(i) for i in ordered_ids)[:480],
        )


# --- opportunities --------------------------------------------------------------------------


def _first_stage(kind: str) -> PipelineStage:
    stage = PipelineStage.objects.filter(is_active=True, kind=kind).first()
    if stage is None:
        raise ServiceError(_("The pipeline has no active stage of this kind."), field="stage")
    return stage


def _check_stage(stage: PipelineStage) -> None:
    if not stage.is_active:
        raise ServiceError(_("This stage is no longer in use."), field="stage", code="inactive")


def _check_customer(*, actor, customer: Customer) -> None:
    """The customer must be in the actor's scope and owned (not in the pool)."""
    if customer.in_pool:
        raise ServiceError(
            _("This customer is in the public pool; claim it before opening an opportunity."),
            field="customer",
            code="in_pool",
        )
    if not visible_to(Customer.objects.filter(pk=customer.pk), actor).exists():
        raise ServiceError(_("Choose one of your customers."), field="customer", code="scope")


def _check_owner(*, actor, owner) -> None:
    if owner is not None and owner.pk != actor.pk:
        if not has_perm(actor, "customers.assign"):
            raise ServiceError(
                _("Only users who may assign customers can give an opportunity to someone else."),
                field="owner",
                code="permission_denied",
            )
        if not owner.is_active:
            raise ServiceError(_("This user is inactive."), field="owner", code="inactive")


def _closing_fields(*, stage: PipelineStage, lost_reason: str) -> dict:
    """closed_at and lost_reason as the target stage's kind dictates."""
    if stage.kind == StageKind.LOST:
        reason = (lost_reason or "").strip()
        if not reason:
            raise ServiceError(
                _("Say why the opportunity was lost."), field="lost_reason", code="reason_required"
            )
        return {"closed_at": timezone.now(), "lost_reason": reason[:300]}
    if stage.kind == StageKind.WON:
        return {"closed_at": timezone.now(), "lost_reason": ""}
    return {"closed_at": None, "lost_reason": ""}


def _next_position(stage: PipelineStage) -> int:
    top = Opportunity.objects.filter(stage=stage).aggregate(m=Max("board_position"))["m"]
    return 0 if top is None else top + 1


def _record_stage_change(*, actor, opportunity: Opportunity, old: PipelineStage | None) -> None:
    new = opportunity.stage
    CustomerEvent.objects.create(
        customer_id=opportunity.customer_id,
        kind=CustomerEventKind.STAGE,
        actor=actor,
        reason=opportunity.lost_reason if new.kind == StageKind.LOST else "",
        data={
            "opportunity": opportunity.pk,
            "title": opportunity.title,
            "from": old.name if old else "",
            "to": new.name,
            "to_en": new.name_en,
            "kind": new.kind,
            "amount": str(opportunity.amount),
        },
    )
    if new.kind == StageKind.WON:
        # A won deal makes the customer a won customer and restarts the "no deal" clock
        # of the pool rules; the version moves so an edit form opened before is stale.
        customer_deal_record(customer_id=opportunity.customer_id)


def opportunity_create(*, actor, data: dict[str, Any]) -> Opportunity:
    """Open an opportunity; owner is the actor unless they may assign, department follows."""
    require_perm(actor, "customers.add")
    data = dict(data)
    customer = data["customer"]
    _check_customer(actor=actor, customer=customer)
    owner = data.pop("owner", None) or actor
    _check_owner(actor=actor, owner=owner)
    stage = data.get("stage") or _first_stage(StageKind.OPEN)
    _check_stage(stage)
    if data.get("probability") is None:
        data["probability"] = stage.probability
    data.update(
        stage=stage,
        owner=owner,
        department_id=owner.department_id,
        board_position=_next_position(stage),
        **_closing_fields(stage=stage, lost_reason=data.get("lost_reason", "")),
    )
    # Opening is on the timeline as the opportunity itself; stage events start with moves.
    with transaction.atomic(), opportunities_tracked([]) as tracked:
        opportunity = model_create(model=Opportunity, user=actor, data=data)
        tracked.append(opportunity.pk)
        if stage.kind == StageKind.WON:  # opened as won: the customer becomes a won one
            _record_stage_change(actor=actor, opportunity=opportunity, old=None)
    return opportunity


def opportunity_update(
    *, actor, opportunity: Opportunity, expected_version: int, data: dict[str, Any]
) -> Opportunity:
    """Edit an opportunity; a stage change follows the same rules as a move on the board."""
    require_perm(actor, "customers.change")
    data = dict(data)
    if "customer" in data and data["customer"].pk != opportunity.customer_id:
        _check_customer(actor=actor, customer=data["customer"])
    if "owner" in data:
        owner = data["owner"] or opportunity.owner
        if owner.pk != opportunity.owner_id:
            _check_owner(actor=actor, owner=owner)
        data["owner"] = owner
        data["department_id"] = owner.department_id
    old_stage = opportunity.stage
    stage = data.get("stage") or old_stage
    stage_changed = stage.pk != old_stage.pk
    if stage_changed:
        _check_stage(stage)
        data["board_position"] = _next_position(stage)
        if data.get("probability") is None:
            data["probability"] = stage.probability
    if data.get("probability") is None:
        data.pop("probability", None)
    if stage_changed or stage.kind == StageKind.LOST:
        data.update(
            _closing_fields(
                stage=stage, lost_reason=data.get("lost_reason", opportunity.lost_reason)
            )
        )
        if not stage_changed and opportunity.closed_at:
            data["closed_at"] = opportunity.closed_at  # editing the reason keeps the date
    with transaction.atomic(), opportunities_tracked([opportunity.pk]):
        updated = versioned_update(
            instance=opportunity, user=actor, expected_version=expected_version, data=data
        )
        if stage_changed:
            _record_stage_change(actor=actor, opportunity=updated, old=old_stage)
    return updated


def opportunity_move(
    *,
    actor,
    opportunity: Opportunity,
    stage: PipelineStage,
    position: int,
    expected_version: int,
    lost_reason: str = "",
) -> Opportunity:
    """Drop a card on the board: into ``stage`` at ``position`` (0 = top).

    Won and lost stages close the opportunity; a lost stage needs a reason. Cards below the
    drop point in the target column shift down by one.
    """
    require_perm(actor, "customers.change")
    _check_stage(stage)
    position = max(0, int(position))
    old_stage = opportunity.stage
    stage_changed = stage.pk != old_stage.pk
    data: dict[str, Any] = {"stage": stage, "board_position": position}
    if stage_changed:
        data["probability"] = stage.probability
        data.update(_closing_fields(stage=stage, lost_reason=lost_reason))
    with transaction.atomic(), opportunities_tracked([opportunity.pk]):
        # Make room first; the versioned update below fails (and rolls this back) if stale.
        Opportunity.all_objects.filter(stage=stage, board_position__gte=position).exclude(
            pk=opportunity.pk
        ).update(board_position=F("board_position") + 1)
        updated = versioned_update(
            instance=opportunity,
            user=actor,
            expected_version=expected_version,
            data=data,
            action="status" if stage_changed else "change",
        )
        if stage_changed:
            _record_stage_change(actor=actor, opportunity=updated, old=old_stage)
    return updated


def opportunity_mark_won(*, actor, opportunity: Opportunity, expected_version: int) -> Opportunity:
    return opportunity_move(
        actor=actor,
        opportunity=opportunity,
        stage=_first_stage(StageKind.WON),
        position=0,
        expected_version=expected_version,
    )


def opportunity_mark_lost(
    *, actor, opportunity: Opportunity, expected_version: int, reason: str
) -> Opportunity:
    return opportunity_move(
        actor=actor,
        opportunity=opportunity,
        stage=_first_stage(StageKind.LOST),
        position=0,
        expected_version=expected_version,
        lost_reason=reason,
    )


def opportunity_delete(*, actor, opportunity: Opportunity) -> None:
    require_perm(actor, "customers.delete")
    with transaction.atomic(), opportunities_tracked([opportunity.pk]):
        soft_delete(instance=opportunity, user=actor)
