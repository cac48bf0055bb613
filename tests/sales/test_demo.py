"""The sales demo: every status, real approval histories and stock, dated over a year, once."""

import datetime
import time

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db.models import Sum
from django.utils import timezone

from kehu.approvals.models import (
    ApprovalAction,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalStep,
    StepStatus,
)
from kehu.products.models import Product, StockLevel, StockMovement
from kehu.sales.models import (
    AmendmentStatus,
    Contract,
    ContractAmendment,
    ContractStatus,
    DocumentEvent,
    Order,
    OrderStatus,
    Quote,
    QuoteStatus,
    Shipment,
    ShipmentKind,
)
from kehu.sales.pdf import contract_pdf
from kehu.system import demo as demo_modules
from kehu.system.demo import DEMO_MODULES, demo_data_load
from kehu.system.models import Notification, SystemSettings

pytestmark = pytest.mark.django_db


def test_sales_demo(settings, django_user_model, monkeypatch):
    """One load of the whole demo company (it takes a while), then every check on it."""
    settings.DEMO_MODE = True
    # The analytics demo's bulk history is checked in tests/analytics/test_demo.py.
    monkeypatch.setattr(
        demo_modules, "DEMO_MODULES", [m for m in DEMO_MODULES if "analytics" not in m]
    )
    started = time.process_time()
    created = demo_data_load()
    # CPU time, so a busy machine does not fail it: the whole company, sales included.
    assert time.process_time() - started < 60
    users = {u.username: u for u in django_user_model.objects.all()}
    _every_status_and_idempotent(created)
    _approval_histories(users)
    _dates_spread_over_the_year_in_story_order()
    _stock_and_shipments_add_up()
    _demo_contract_prints()


def _statuses(model) -> set[str]:
    return set(model.objects.values_list("status", flat=True))


def _every_status_and_idempotent(created):
    assert created["quotes"] == Quote.objects.count() > 0
    assert created["contracts"] == Contract.objects.count()
    assert created["orders"] == Order.objects.count()
    assert created["shipments"] == Shipment.objects.filter(kind=ShipmentKind.SHIPMENT).count()
    assert _statuses(Quote) == set(QuoteStatus.values)
    assert _statuses(Contract) == set(ContractStatus.values)
    assert _statuses(Order) == set(OrderStatus.values)

    before = {
        model.__name__: model._base_manager.count()
        for model in (Quote, Contract, Order, Shipment, DocumentEvent, ApprovalRequest)
    }
    notifications = Notification.objects.count()
    again = demo_data_load()
    assert not {key: again.get(key) for key in ("quotes", "contracts", "orders") if again.get(key)}
    after = {
        model.__name__: model._base_manager.count()
        for model in (Quote, Contract, Order, Shipment, DocumentEvent, ApprovalRequest)
    }
    assert after == before
    assert Notification.objects.count() == notifications


def _approval_histories(users):
    contract_type = ContentType.objects.get_for_model(Contract)
    requests = ApprovalRequest.objects.filter(content_type=contract_type)
    # A large contract half-way: salesmgr1 approved, the general manager is next.
    half_way = [
        r
        for r in requests.filter(status=ApprovalStatus.PENDING)
        if [s.status for s in r.steps.order_by("sort_order")]
        == [StepStatus.APPROVED, StepStatus.PENDING]
    ]
    assert len(half_way) == 1
    step = half_way[0].steps.get(status=StepStatus.PENDING)
    assert list(step.candidates.all()) == [users["manager"]]
    assert half_way[0].steps.get(status=StepStatus.APPROVED).decided_by == users["salesmgr1"]
    # Contracts waiting for salesmgr1 at the first step.
    waiting = ApprovalStep.objects.filter(
        request__content_type=contract_type,
        status=StepStatus.PENDING,
        candidates=users["salesmgr1"],
    )
    assert waiting.count() == 2
    # Rejections carry their comment, by the sales manager and by the general manager.
    rejections = ApprovalAction.objects.filter(kind="reject", request__content_type=contract_type)
    assert {a.actor.username for a in rejections} == {"salesmgr1", "manager"}
    assert all(a.comment for a in rejections)
    # Every active or completed contract went through approval, large ones in two steps.
    for contract in Contract.objects.filter(
        status__in=[ContractStatus.ACTIVE, ContractStatus.COMPLETED, ContractStatus.TERMINATED]
    ):
        approved = requests.get(object_id=contract.pk, status=ApprovalStatus.APPROVED)
        deciders = [s.decided_by.username for s in approved.steps.order_by("sort_order")]
        expected = ["salesmgr1", "manager"] if approved.amount > 100000 else ["salesmgr1"]
        assert deciders == expected, contract.number
        assert contract.signed_on is not None and contract.approved_at is not None
    # One contract was rejected, fixed and approved on resubmission.
    resubmitted = [
        c
        for c in Contract.objects.filter(status=ContractStatus.ACTIVE)
        if requests.filter(object_id=c.pk).count() == 2
    ]
    assert len(resubmitted) == 1
    assert ContractAmendment.objects.filter(status=AmendmentStatus.APPLIED).count() >= 1


def _dates_spread_over_the_year_in_story_order():
    now = timezone.now()
    oldest = Contract.objects.order_by("created_at").first().created_at
    assert now - oldest > datetime.timedelta(days=330)
    assert not Contract.objects.filter(created_at__gt=now).exists()
    months = {(c.year, c.month) for c in Contract.objects.values_list("created_at", flat=True)}
    assert len(months) >= 9
    # Each document's events are in the order they happened.
    for contract in Contract.objects.all():
        events = list(
            DocumentEvent.objects.filter(
                content_type=ContentType.objects.get_for_model(Contract), object_id=contract.pk
            ).order_by("at", "id")
        )
        assert [e.id for e in events] == sorted(e.id for e in events), contract.number
        assert events[0].at >= contract.created_at - datetime.timedelta(minutes=1)
    # Reminders and to-dos have something to show.
    today = timezone.localdate()
    ending = Contract.objects.filter(
        status=ContractStatus.ACTIVE,
        end_date__gte=today,
        end_date__lte=today + datetime.timedelta(days=30),
    )
    assert ending.count() >= 2
    assert Order.objects.filter(
        status__in=[OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_SHIPPED], ship_by__lt=today
    ).exists()


def _stock_and_shipments_add_up():
    assert Shipment.objects.filter(kind=ShipmentKind.RETURN).exists()
    total = StockMovement.objects.aggregate(s=Sum("quantity"))["s"]
    assert total == StockLevel.objects.aggregate(s=Sum("quantity"))["s"]
    assert total == Product.objects.aggregate(s=Sum("stock_quantity"))["s"]
    assert not Product.objects.filter(stock_quantity__lt=0).exists()
    for order in Order.objects.filter(status=OrderStatus.COMPLETED):
        assert all(line.outstanding_quantity == 0 for line in order.lines.all())
    for order in Order.objects.filter(status=OrderStatus.CANCELLED):
        assert all(line.shipped_quantity == line.returned_quantity for line in order.lines.all())


def _demo_contract_prints():
    company = SystemSettings.objects.get(pk=1)
    assert company.company_tax_number and company.company_address
    contract = Contract.objects.filter(status=ContractStatus.ACTIVE).first()
    assert contract_pdf(contract=contract, language="zh-hans").startswith(b"%PDF-")
