"""Sales targets: monthly values, versions, roll-ups, and the honest achievement hook."""

from decimal import Decimal

import pytest

from kehu.core.exceptions import ConflictError, PermissionRefused
from kehu.hr import selectors, services
from kehu.hr.models import SalesTarget, TargetKind


def _set(actor, month, amount, **kw):
    return services.sales_target_set(
        actor=actor, year=2026, month=month, contract_amount_target=Decimal(amount), **kw
    )


def test_person_and_department_targets(org, staff):
    target = _set(org.hr, 1, "100", kind=TargetKind.EMPLOYEE, user=org.sales1)
    assert target.department == org.sales1_dept  # for the managers' data scope
    dept = _set(org.hr, 1, "500", kind=TargetKind.DEPARTMENT, department=org.sales1_dept)
    assert dept.user is None


def test_update_needs_version_and_conflicts_when_stale(org, staff):
    target = _set(org.hr, 2, "100", kind=TargetKind.EMPLOYEE, user=org.sales1)
    with pytest.raises(ConflictError):  # creating the same month again
        _set(org.hr, 2, "200", kind=TargetKind.EMPLOYEE, user=org.sales1)
    updated = _set(org.hr, 2, "300", kind=TargetKind.EMPLOYEE, user=org.sales1,
                   expected_version=target.version)  # fmt: skip
    assert updated.contract_amount_target == Decimal("300.00") and updated.version == 2
    with pytest.raises(ConflictError):
        _set(org.hr, 2, "400", kind=TargetKind.EMPLOYEE, user=org.sales1, expected_version=1)
    assert SalesTarget.objects.get().contract_amount_target == Decimal("300.00")


def test_refused_without_change_permission(org, staff):
    with pytest.raises(PermissionRefused):
        _set(org.salesmgr1, 1, "1", kind=TargetKind.EMPLOYEE, user=org.sales1)
    assert not SalesTarget.objects.exists()


def test_grid_rolls_up_quarters_and_year(org, staff, django_assert_max_num_queries):
    for month, amount in [(1, "100"), (2, "200"), (3, "300"), (5, "50.5"), (12, "1000")]:
        _set(org.hr, month, amount, kind=TargetKind.EMPLOYEE, user=org.sales1)
    _set(org.hr, 1, "7", kind=TargetKind.EMPLOYEE, user=org.sales3)
    with django_assert_max_num_queries(8):
        grid = selectors.sales_target_grid(
            user=org.hr, year=2026, kind="employee", metric="contract"
        )
    row = next(r for r in grid["rows"] if r["owner_id"] == org.sales1.pk)
    assert row["quarters"] == [Decimal("600"), Decimal("50.5"), Decimal("0"), Decimal("1000")]
    assert row["year"] == Decimal("1650.50")
    assert len(row["cells"]) == 16
    # The sales module provides contract figures; nobody has signed anything yet.
    assert grid["source_available"] is True
    assert row["achieved"] == Decimal("0")
    # Salespeople only: the finance and HR users are not rows.
    owners = {r["owner_id"] for r in grid["rows"]}
    assert org.sales3.pk in owners and org.finance.pk not in owners


def test_grid_follows_scope(org, staff):
    _set(org.hr, 1, "7", kind=TargetKind.EMPLOYEE, user=org.sales3)
    grid = selectors.sales_target_grid(
        user=org.salesmgr1, year=2026, kind="employee", metric="contract"
    )
    owners = {r["owner_id"] for r in grid["rows"]}
    assert org.sales1.pk in owners and org.sales3.pk not in owners


def test_achievement_hook_uses_registered_sources(monkeypatch):
    def source(*, user_ids, department_ids, year, month):
        return {("user", uid): {"contract_amount": Decimal("5")} for uid in user_ids}

    monkeypatch.setattr(selectors, "ACHIEVEMENT_SOURCES", [source])
    monkeypatch.setattr(selectors, "ACHIEVEMENT_STORED", [])
    result = selectors.achievement_for(year=2026, user_ids=[1])
    assert result["source_available"] is True
    assert result["users"][1]["contract_amount"] == Decimal("5")
    monkeypatch.setattr(selectors, "ACHIEVEMENT_SOURCES", [])
    result = selectors.achievement_for(year=2026, department_ids=[3])
    assert result == {
        "source_available": False,
        "users": {},
        "departments": {3: {"contract_amount": Decimal("0.00"), "payment_amount": Decimal("0.00")}},
    }


def test_achievement_reads_the_stored_figures_when_registered(monkeypatch):
    """With the analytics module's stored sums registered, they answer instead of the live
    sources (which stay the definition, asked with ``live=True``)."""

    def live(*, user_ids, department_ids, year, month):
        return {("user", uid): {"contract_amount": Decimal("5")} for uid in user_ids}

    def stored(*, user_ids, department_ids, year, month):
        return {("user", uid): {"contract_amount": Decimal("7")} for uid in user_ids}

    monkeypatch.setattr(selectors, "ACHIEVEMENT_SOURCES", [live])
    monkeypatch.setattr(selectors, "ACHIEVEMENT_STORED", [stored])
    assert selectors.achievement_for(year=2026, user_ids=[1])["users"][1]["contract_amount"] == 7
    result = selectors.achievement_for(year=2026, user_ids=[1], live=True)
    assert result["users"][1]["contract_amount"] == 5
