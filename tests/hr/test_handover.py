"""Resignation handover: nothing the leaver owned is left without an owner."""

import pytest

from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.customers.models import Customer, Opportunity, PipelineStage
from kehu.hr import services
from kehu.hr.models import EmployeeHistory, EmployeeStatus, Handover
from kehu.hr.selectors import handover_preview
from kehu.system.models import User


@pytest.fixture
def book(org):
    """sales2 owns three customers and two opportunities (one open, one won)."""
    open_stage = PipelineStage.objects.create(name="初步接触", kind="open")
    won_stage = PipelineStage.objects.create(name="赢单", kind="won", probability=100)
    customers = [
        Customer.objects.create(
            code=f"KH-{n}", name=f"客户{n}", owner=org.sales2, department=org.sales1_dept
        )
        for n in range(3)
    ]
    Customer.objects.create(
        code="KH-other", name="别人的", owner=org.sales1, department=org.sales1_dept
    )
    Opportunity.objects.create(
        customer=customers[0], title="开放", stage=open_stage, owner=org.sales2
    )
    Opportunity.objects.create(
        customer=customers[1], title="已赢", stage=won_stage, owner=org.sales2
    )
    return customers


def _require_customer_handover():
    from kehu.customers import services as customer_services

    if not hasattr(customer_services, "customer_handover"):
        pytest.skip("kehu.customers.services.customer_handover is not there yet")


def test_preview_counts(org, staff, book):
    assert handover_preview(user_id=org.sales2.pk) == {"customers": 3, "opportunities": 1}


def test_handover_moves_everything_and_deactivates(org, staff, book):
    _require_customer_handover()
    handover = services.employee_handover(
        actor=org.hr, employee=staff.sales2, successor=org.sales1, reason="离职"
    )
    # Nothing is left with the leaver.
    assert Customer.objects.filter(owner=org.sales2).count() == 0
    assert Opportunity.objects.filter(owner=org.sales2, stage__kind="open").count() == 0
    assert Customer.objects.filter(owner=org.sales1).count() == 4
    assert handover.counts == {"customers": 3, "opportunities": 1, "login_deactivated": 1}
    assert (handover.by, handover.successor, handover.reason) == (org.hr, org.sales1, "离职")
    staff.sales2.refresh_from_db()
    assert staff.sales2.status == EmployeeStatus.RESIGNED
    assert staff.sales2.resign_reason == "离职" and staff.sales2.resign_date is not None
    assert EmployeeHistory.objects.filter(employee=staff.sales2, kind="resign").count() == 1
    assert User.objects.get(pk=org.sales2.pk).is_active is False


@pytest.mark.parametrize("who", ["leaver", "inactive"])
def test_handover_refuses_bad_successor(org, staff, book, who):
    successor = org.sales2
    if who == "inactive":
        successor = org.sales3
        User.objects.filter(pk=successor.pk).update(is_active=False)
        successor.refresh_from_db()
    with pytest.raises(ServiceError) as exc:
        services.employee_handover(
            actor=org.hr, employee=staff.sales2, successor=successor, reason="离职"
        )
    assert exc.value.field == "successor"
    assert Customer.objects.filter(owner=org.sales2).count() == 3
    assert not Handover.objects.exists()


def test_handover_needs_hr_assign(org, staff, book):
    with pytest.raises(PermissionRefused):
        services.employee_handover(
            actor=org.salesmgr1, employee=staff.sales2, successor=org.sales1, reason="离职"
        )
    assert Customer.objects.filter(owner=org.sales2).count() == 3


def test_handover_refused_when_customers_module_cannot_hand_over(org, staff, book, monkeypatch):
    from kehu.customers import services as customer_services

    monkeypatch.delattr(customer_services, "customer_handover", raising=False)
    with pytest.raises(ServiceError, match="customers module"):
        services.employee_handover(
            actor=org.hr, employee=staff.sales2, successor=org.sales1, reason="离职"
        )
    staff.sales2.refresh_from_db()
    assert staff.sales2.status == EmployeeStatus.ACTIVE
    assert User.objects.get(pk=org.sales2.pk).is_active
    assert not Handover.objects.exists()


def test_handover_rolls_back_when_something_is_left(org, staff, book, monkeypatch):
    # A customers service that forgets records must not leave a half-done handover.
    from kehu.customers import services as customer_services

    monkeypatch.setattr(customer_services, "customer_handover", lambda **kw: 0, raising=False)
    with pytest.raises(ServiceError):
        services.employee_handover(
            actor=org.hr, employee=staff.sales2, successor=org.sales1, reason="离职"
        )
    assert User.objects.get(pk=org.sales2.pk).is_active
    staff.sales2.refresh_from_db()
    assert staff.sales2.status == EmployeeStatus.ACTIVE


def test_handover_of_employee_without_login(org, staff):
    staff.sales3.user = None
    staff.sales3.save()
    handover = services.employee_handover(
        actor=org.hr, employee=staff.sales3, successor=org.sales1, reason="合同到期"
    )
    assert handover.counts == {}
    staff.sales3.refresh_from_db()
    assert staff.sales3.status == EmployeeStatus.RESIGNED
