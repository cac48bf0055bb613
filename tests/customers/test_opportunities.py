"""Opportunity services and API: stages, board moves, won/lost, scope, versions."""

from decimal import Decimal
from itertools import count

import pytest

from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.customers import services_opportunities as services
from kehu.customers.models import (
    Customer,
    CustomerEvent,
    CustomerEventKind,
    CustomerStage,
    Opportunity,
    PipelineStage,
    StageKind,
)
from kehu.system.models import AuditLog

_codes = count(1)


def customer_for(owner, **kwargs) -> Customer:
    """A bare customer row; the customer services are tested elsewhere."""
    n = next(_codes)
    defaults = {
        "code": f"T{n:06d}",
        "name": f"测试客户{n}有限公司",
        "owner": owner,
        "department_id": owner.department_id if owner else None,
        "in_pool": owner is None,
    }
    defaults.update(kwargs)
    return Customer.objects.create(**defaults)


def stage(kind=StageKind.OPEN, index=0) -> PipelineStage:
    return list(PipelineStage.objects.filter(kind=kind, is_active=True))[index]


def opportunity_for(user, customer=None, **data) -> Opportunity:
    customer = customer or customer_for(user)
    payload = {"customer": customer, "title": "ERP 项目", "amount": Decimal("120000.00")}
    payload.update(data)
    return services.opportunity_create(actor=user, data=payload)


def test_default_pipeline_is_seeded(db):
    kinds = list(PipelineStage.objects.values_list("kind", flat=True))
    assert kinds.count(StageKind.OPEN) >= 3
    assert StageKind.WON in kinds and StageKind.LOST in kinds


def test_create_defaults_owner_department_stage_and_probability(org):
    opp = opportunity_for(org.sales1)
    assert opp.owner == org.sales1
    assert opp.department_id == org.sales1_dept.pk
    assert opp.stage == stage()
    assert opp.probability == stage().probability
    assert opp.closed_at is None
    # Opening shows on the timeline as the opportunity; stage events start with moves.
    assert not CustomerEvent.objects.filter(customer=opp.customer, kind=CustomerEventKind.STAGE)
    assert AuditLog.objects.filter(model="customers.opportunity", action="create").exists()


def test_create_with_other_owner_needs_assign(org):
    with pytest.raises(ServiceError) as exc:
        opportunity_for(org.sales1, owner=org.sales2)
    assert exc.value.field == "owner"
    customer = customer_for(org.sales2)
    opp = opportunity_for(org.salesmgr1, customer=customer, owner=org.sales2)
    assert opp.owner == org.sales2 and opp.department_id == org.sales1_dept.pk


def test_create_refuses_out_of_scope_and_pool_customers(org):
    with pytest.raises(ServiceError) as exc:
        opportunity_for(org.sales1, customer=customer_for(org.sales3))
    assert exc.value.field == "customer"
    with pytest.raises(ServiceError) as exc:
        opportunity_for(org.salesmgr1, customer=customer_for(None))
    assert exc.value.code == "in_pool"


def test_finance_cannot_create(org):
    with pytest.raises(PermissionRefused):
        opportunity_for(org.finance, customer=customer_for(org.sales1))
    assert not Opportunity.objects.exists()


def test_move_within_and_between_columns(org):
    first = opportunity_for(org.sales1)
    second = opportunity_for(org.sales1)
    assert (first.board_position, second.board_position) == (0, 1)
    target = stage(index=1)
    moved = services.opportunity_move(
        actor=org.sales1, opportunity=second, stage=target, position=0, expected_version=1
    )
    assert moved.stage == target and moved.probability == target.probability
    assert moved.version == 2
    # Dropping first on top of the same column pushes second down.
    services.opportunity_move(
        actor=org.sales1, opportunity=first, stage=target, position=0, expected_version=1
    )
    second.refresh_from_db()
    assert second.board_position == 1
    events = CustomerEvent.objects.filter(kind=CustomerEventKind.STAGE, data__opportunity=first.pk)
    assert events.count() == 1 and events.get().data["to"] == target.name
    assert AuditLog.objects.filter(model="customers.opportunity", action="status").count() == 2


def test_move_with_stale_version_conflicts_and_changes_nothing(org):
    opp = opportunity_for(org.sales1)
    other = opportunity_for(org.sales1, customer=opp.customer)
    with pytest.raises(ConflictError):
        services.opportunity_move(
            actor=org.sales1, opportunity=opp, stage=stage(index=1), position=0, expected_version=7
        )
    opp.refresh_from_db()
    other.refresh_from_db()
    assert opp.stage == stage() and other.board_position == 1


def test_lost_needs_a_reason_and_closes(org):
    opp = opportunity_for(org.sales1)
    with pytest.raises(ServiceError) as exc:
        services.opportunity_move(
            actor=org.sales1,
            opportunity=opp,
            stage=stage(StageKind.LOST),
            position=0,
            expected_version=1,
        )
    assert exc.value.field == "lost_reason"
    with pytest.raises(ServiceError):
        services.opportunity_mark_lost(
            actor=org.sales1, opportunity=opp, expected_version=1, reason="   "
        )
    lost = services.opportunity_mark_lost(
        actor=org.sales1, opportunity=opp, expected_version=1, reason="价格太高"
    )
    assert lost.closed_at is not None and lost.lost_reason == "价格太高"
    assert lost.probability == 0


def test_won_closes_and_marks_the_customer_won(org):
    opp = opportunity_for(org.sales1)
    won = services.opportunity_mark_won(actor=org.sales1, opportunity=opp, expected_version=1)
    assert won.closed_at is not None and won.probability == 100
    customer = Customer.objects.get(pk=opp.customer_id)
    assert customer.stage == CustomerStage.WON and customer.last_deal_at is not None
    assert customer.version == 2
    # Reopening clears the close date.
    reopened = services.opportunity_move(
        actor=org.sales1, opportunity=won, stage=stage(), position=0, expected_version=won.version
    )
    assert reopened.closed_at is None


def test_update_keeps_rules_and_versions(org):
    opp = opportunity_for(org.sales1)
    updated = services.opportunity_update(
        actor=org.sales1,
        opportunity=opp,
        expected_version=1,
        data={"title": "CRM 项目", "amount": Decimal("5.00"), "probability": None},
    )
    assert updated.title == "CRM 项目" and updated.probability == stage().probability
    with pytest.raises(ConflictError):
        services.opportunity_update(
            actor=org.sales1, opportunity=opp, expected_version=1, data={"title": "x"}
        )
    with pytest.raises(ServiceError):
        services.opportunity_update(
            actor=org.sales1,
            opportunity=updated,
            expected_version=2,
            data={"stage": stage(StageKind.LOST)},
        )


def test_delete_needs_delete_permission(org):
    opp = opportunity_for(org.sales1)
    with pytest.raises(PermissionRefused):
        services.opportunity_delete(actor=org.sales1, opportunity=opp)
    services.opportunity_delete(actor=org.salesmgr1, opportunity=opp)
    assert not Opportunity.objects.filter(pk=opp.pk).exists()


def test_stage_configuration_needs_system_change_and_keeps_the_pipeline_whole(org):
    with pytest.raises(PermissionRefused):
        services.pipeline_stage_create(actor=org.salesmgr1, data={"name": "x"})
    new = services.pipeline_stage_create(
        actor=org.admin, data={"name": "试用", "name_en": "Trial", "probability": 60}
    )
    assert new.sort_order > stage(StageKind.LOST).sort_order
    won = stage(StageKind.WON)
    with pytest.raises(ServiceError) as exc:
        services.pipeline_stage_update(
            actor=org.admin, stage=won, expected_version=won.version, data={"is_active": False}
        )
    assert exc.value.code == "pipeline_incomplete"
    ids = list(PipelineStage.objects.order_by("-sort_order").values_list("pk", flat=True))
    services.pipeline_stage_reorder(actor=org.admin, ordered_ids=ids)
    assert list(PipelineStage.objects.values_list("pk", flat=True)) == ids


def test_stage_kind_cannot_change_once_used(org):
    opp = opportunity_for(org.sales1)
    with pytest.raises(ServiceError) as exc:
        services.pipeline_stage_update(
            actor=org.admin, stage=opp.stage, expected_version=1, data={"kind": StageKind.WON}
        )
    assert exc.value.code == "stage_in_use"
