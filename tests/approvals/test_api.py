"""/api/v1/approvals/ and /api/v1/approval-rules/."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kehu.approvals import services
from kehu.approvals.models import ApprovalRule, ApprovalStatus
from kehu.sales.models import ContractStatus
from kehu.system.models import Role
from tests.approvals.conftest import submit

pytestmark = pytest.mark.django_db

URL = "/api/v1/approvals/"
RULES = "/api/v1/approval-rules/"


def test_needs_authentication(org, client):
    assert client.get(URL).status_code in (401, 403)


def test_list_and_retrieve(org, api_for):
    contract, request = submit(org.sales1, amount="150000.00")
    services.approval_approve(actor=org.salesmgr1, request=request, comment="ok")
    data = api_for(org.manager).get(f"{URL}{request.pk}/").json()
    assert data["id"] == request.pk
    assert data["document_type"] == "sales.contract"
    assert data["document_type_label"] == "Contract"
    assert data["document_id"] == contract.pk
    assert data["document_url"] == contract.get_absolute_url()
    assert data["title"] == request.title
    assert data["amount"] == "150000.00" and data["currency"] == "CNY"
    assert data["status"] == "pending" and data["version"] == 2
    assert data["submitter"] == {"id": org.sales1.pk, "name": str(org.sales1)}
    first, second = data["steps"]
    assert first["order"] == 1 and first["status"] == "approved"
    assert first["decided_by"]["id"] == org.salesmgr1.pk and first["comment"] == "ok"
    assert {c["id"] for c in first["candidates"]} == {org.salesmgr1.pk, org.salesdirector.pk}
    assert second["status"] == "pending" and second["decided_by"] is None
    assert [c["id"] for c in second["candidates"]] == [org.manager.pk]
    assert [a["kind"] for a in data["actions"]] == ["submit", "approve"]
    assert data["can_decide"] is True and data["can_withdraw"] is False
    assert api_for(org.sales1).get(f"{URL}{request.pk}/").json()["can_withdraw"] is True


def test_out_of_scope_is_404(org, api_for):
    _, request = submit(org.sales1)
    for user in (org.sales2, org.sales3, org.hr):
        assert api_for(user).get(f"{URL}{request.pk}/").status_code == 404
        assert api_for(user).post(f"{URL}{request.pk}/approve/", {}).status_code == 404
    assert api_for(org.sales2).get(URL).json()["count"] == 0


def test_filters_and_inbox(org, api_for):
    _, pending = submit(org.sales1)
    _, approved = submit(org.sales2)
    services.approval_approve(actor=org.salesdirector, request=approved)
    api = api_for(org.salesmgr1)
    assert [r["id"] for r in api.get(URL, {"inbox": "true"}).json()["results"]] == [pending.pk]
    assert {r["id"] for r in api.get(URL).json()["results"]} == {pending.pk, approved.pk}
    assert [r["id"] for r in api.get(URL, {"status": "approved"}).json()["results"]] == [
        approved.pk
    ]
    assert api.get(URL, {"document_type": "sales.contract_amendment"}).json()["count"] == 0
    assert api.get(URL, {"status": "nonsense"}).status_code == 400


def test_the_list_does_not_grow_with_rows(org, api_for):
    from kehu.system.models import User

    submit(org.sales1, amount="150000.00")

    def count():
        # A fresh user each time: force_authenticate would keep its cached permissions.
        api = api_for(User.objects.get(pk=org.salesdirector.pk))
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(URL).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for index in range(5):
        submit(org.sales2, amount="150000.00" if index % 2 else "10.00")
    assert count() == few <= 12


def test_approve_then_approve(org, api_for):
    contract, request = submit(org.sales1, amount="150000.00")
    response = api_for(org.salesmgr1).post(
        f"{URL}{request.pk}/approve/", {"comment": "好", "version": 1}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2 and response.json()["status"] == "pending"
    response = api_for(org.manager).post(f"{URL}{request.pk}/approve/", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE


def test_self_approval_is_403_and_changes_nothing(org, api_for):
    contract, request = submit(org.salesmgr1)
    api = api_for(org.salesmgr1)
    response = api.post(f"{URL}{request.pk}/approve/", {}, format="json")
    assert response.status_code == 403
    assert "own submission" in response.json()["non_field_errors"][0]
    assert (
        api.post(f"{URL}{request.pk}/reject/", {"comment": "x"}, format="json").status_code == 403
    )
    request.refresh_from_db()
    contract.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING and request.version == 1
    assert request.actions.count() == 1 and contract.status == ContractStatus.PENDING


def test_not_your_step_is_403(org, api_for):
    _, request = submit(org.sales1, amount="150000.00")
    response = api_for(org.manager).post(f"{URL}{request.pk}/approve/", {}, format="json")
    assert response.status_code == 403


def test_reject_requires_a_comment_400(org, api_for):
    _, request = submit(org.sales1)
    api = api_for(org.salesmgr1)
    response = api.post(f"{URL}{request.pk}/reject/", {}, format="json")
    assert response.status_code == 400 and "comment" in response.json()
    response = api.post(f"{URL}{request.pk}/reject/", {"comment": "  "}, format="json")
    assert response.status_code == 400
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING
    response = api.post(f"{URL}{request.pk}/reject/", {"comment": "价格不对"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert response.json()["steps"][0]["comment"] == "价格不对"


def test_stale_and_decided_are_409(org, api_for):
    _, request = submit(org.sales1, amount="150000.00")
    services.approval_approve(actor=org.salesmgr1, request=request)
    api = api_for(org.manager)
    response = api.post(f"{URL}{request.pk}/approve/", {"version": 1}, format="json")
    assert response.status_code == 409
    assert api.post(f"{URL}{request.pk}/approve/", {"version": 2}, format="json").status_code == 200
    again = api.post(f"{URL}{request.pk}/approve/", {}, format="json")
    assert (
        again.status_code == 409 and "already been approved" in again.json()["non_field_errors"][0]
    )


def test_withdraw(org, api_for):
    contract, request = submit(org.sales1)
    assert (
        api_for(org.salesmgr1).post(f"{URL}{request.pk}/withdraw/", {}, format="json").status_code
        == 403
    )
    response = api_for(org.sales1).post(
        f"{URL}{request.pk}/withdraw/", {"comment": "改"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT


def test_bad_input_is_400(org, api_for):
    _, request = submit(org.sales1)
    api = api_for(org.salesmgr1)
    assert (
        api.post(f"{URL}{request.pk}/approve/", {"version": "x"}, format="json").status_code == 400
    )
    assert (
        api.post(f"{URL}{request.pk}/approve/", {"comment": "x" * 2001}, format="json").status_code
        == 400
    )
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


def test_the_list_is_read_only(org, api_for):
    _, request = submit(org.sales1)
    api = api_for(org.admin)
    assert api.post(URL, {}, format="json").status_code == 405
    assert api.delete(f"{URL}{request.pk}/").status_code == 405


# --- rules ------------------------------------------------------------------------------------


def rule_payload(**overrides) -> dict:
    data = {
        "document_type": "sales.contract",
        "name": "销售二部",
        "amount_over": None,
        "amount_up_to": "50000.00",
        "sort_order": 0,
        "is_active": True,
        "steps": [
            {"approver_kind": "role", "role": Role.objects.get(code="sales_manager").pk},
            {"approver_kind": "department_manager"},
        ],
    }
    data.update(overrides)
    return data


def test_rules_read_needs_system_view(org, api_for):
    assert api_for(org.manager).get(RULES).status_code == 403
    data = api_for(org.admin).get(RULES).json()
    large = next(r for r in data["results"] if r["name"] == "大额合同（10万元以上）")
    assert large["document_type_label"] == "Contract"
    assert [s["approver_label"] for s in large["steps"]] == ["销售经理", "总经理"]
    assert large["amount_over"] == "100000.00" and large["amount_up_to"] is None


def test_rules_write_needs_system_change(org, api_for):
    viewer = Role.objects.create(code="sysview", name="只读", permissions=["system.view"])
    org.hr.roles.set([viewer])
    api = api_for(org.hr)
    assert api.get(RULES).status_code == 200
    assert api.post(RULES, rule_payload(), format="json").status_code == 403
    rule = ApprovalRule.objects.first()
    assert (
        api.patch(
            f"{RULES}{rule.pk}/", {"name": "x", "version": rule.version}, format="json"
        ).status_code
        == 403
    )
    assert api.delete(f"{RULES}{rule.pk}/").status_code == 403
    assert not ApprovalRule.objects.filter(name__in=["x", "销售二部"]).exists()


def test_rule_crud(org, api_for):
    api = api_for(org.admin)
    response = api.post(RULES, rule_payload(departments=[org.sales2_dept.pk]), format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["departments"] == [org.sales2_dept.pk] and created["version"] == 1
    assert [s["approver_kind"] for s in created["steps"]] == ["role", "department_manager"]
    url = f"{RULES}{created['id']}/"
    response = api.patch(url, {"name": "改名", "version": 1}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "改名" and len(response.json()["steps"]) == 2
    assert response.json()["departments"] == [org.sales2_dept.pk]
    assert api.patch(url, {"name": "stale", "version": 1}, format="json").status_code == 409
    assert api.patch(url, {"name": "no version"}, format="json").status_code == 400
    response = api.put(
        url,
        rule_payload(
            name="全部", version=2, steps=[{"approver_kind": "user", "user": org.manager.pk}]
        ),
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["steps"] == [
        {
            "approver_kind": "user",
            "role": None,
            "user": org.manager.pk,
            "approver_label": str(org.manager),
        }
    ]
    assert api.delete(url).status_code == 204
    assert not ApprovalRule.objects.filter(pk=created["id"]).exists()


def test_rule_bad_input_is_400_on_the_field(org, api_for):
    api = api_for(org.admin)
    before = ApprovalRule.objects.count()
    cases = [
        (rule_payload(amount_over="100", amount_up_to="50"), "amount_up_to"),
        (rule_payload(steps=[]), "steps"),
        (rule_payload(steps=[{"approver_kind": "role"}]), "steps"),
        (rule_payload(document_type="nope"), "document_type"),
    ]
    for payload, field in cases:
        response = api.post(RULES, payload, format="json")
        assert response.status_code == 400, payload
        assert field in response.json(), response.json()
    assert ApprovalRule.objects.count() == before


def test_a_rule_that_routed_requests_cannot_be_deleted(org, api_for):
    submit(org.sales1)
    used = ApprovalRule.objects.get(name="合同（10万元及以下）")
    response = api_for(org.admin).delete(f"{RULES}{used.pk}/")
    assert response.status_code == 400 and "Deactivate" in response.json()["non_field_errors"][0]
    assert ApprovalRule.objects.filter(pk=used.pk).exists()
