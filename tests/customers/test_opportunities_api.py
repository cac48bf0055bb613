"""/api/v1/opportunities/ and /api/v1/pipeline-stages/."""

from decimal import Decimal

from kehu.customers.models import Opportunity, PipelineStage, StageKind
from tests.customers.test_opportunities import customer_for, opportunity_for, stage


def test_list_is_scoped_and_filtered(org, api_for):
    mine = opportunity_for(org.sales1)
    theirs = opportunity_for(org.sales3)
    ids = {r["id"] for r in api_for(org.sales1).get("/api/v1/opportunities/").json()["results"]}
    assert ids == {mine.pk}
    ids = {r["id"] for r in api_for(org.manager).get("/api/v1/opportunities/").json()["results"]}
    assert ids == {mine.pk, theirs.pk}
    response = api_for(org.manager).get(f"/api/v1/opportunities/?owner={org.sales3.pk}")
    assert [r["id"] for r in response.json()["results"]] == [theirs.pk]
    response = api_for(org.manager).get("/api/v1/opportunities/?status=won")
    assert response.json()["results"] == []


def test_out_of_scope_is_404(org, api_for):
    theirs = opportunity_for(org.sales3)
    api = api_for(org.sales1)
    assert api.get(f"/api/v1/opportunities/{theirs.pk}/").status_code == 404
    response = api.post(
        f"/api/v1/opportunities/{theirs.pk}/move/",
        {"stage": stage(index=1).pk, "position": 0, "version": 1},
        format="json",
    )
    assert response.status_code == 404
    assert Opportunity.objects.get(pk=theirs.pk).stage == stage()


def test_create_sets_owner_and_refuses_other_customers(org, api_for):
    api = api_for(org.sales1)
    customer = customer_for(org.sales1)
    response = api.post(
        "/api/v1/opportunities/",
        {"customer": customer.pk, "title": "新项目", "amount": "88000.00", "owner": org.sales2.pk},
        format="json",
    )
    assert response.status_code == 400 and "owner" in response.json()
    response = api.post(
        "/api/v1/opportunities/",
        {"customer": customer.pk, "title": "新项目", "amount": "88000.00"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == org.sales1.pk and body["stage"] == stage().pk
    assert body["probability"] == stage().probability and body["version"] == 1
    other = customer_for(org.sales3)
    response = api.post(
        "/api/v1/opportunities/",
        {"customer": other.pk, "title": "x", "amount": "1.00"},
        format="json",
    )
    assert response.status_code == 400 and "customer" in response.json()


def test_finance_reads_but_cannot_write(org, api_for):
    opp = opportunity_for(org.sales1)
    api = api_for(org.finance)
    assert api.get(f"/api/v1/opportunities/{opp.pk}/").status_code == 200
    response = api.patch(
        f"/api/v1/opportunities/{opp.pk}/", {"title": "x", "version": 1}, format="json"
    )
    assert response.status_code == 403
    response = api.post(
        f"/api/v1/opportunities/{opp.pk}/move/",
        {"stage": stage(index=1).pk, "position": 0, "version": 1},
        format="json",
    )
    assert response.status_code == 403


def test_update_with_stale_version_is_409(org, api_for):
    opp = opportunity_for(org.sales1)
    api = api_for(org.sales1)
    response = api.patch(
        f"/api/v1/opportunities/{opp.pk}/", {"amount": "1.00", "version": 1}, format="json"
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    response = api.patch(
        f"/api/v1/opportunities/{opp.pk}/", {"amount": "2.00", "version": 1}, format="json"
    )
    assert response.status_code == 409
    assert Opportunity.objects.get(pk=opp.pk).amount == Decimal("1.00")
    response = api.patch(f"/api/v1/opportunities/{opp.pk}/", {"amount": "2.00"}, format="json")
    assert response.status_code == 400 and "version" in response.json()


def test_move_won_lost(org, api_for):
    opp = opportunity_for(org.sales1)
    api = api_for(org.sales1)
    lost = stage(StageKind.LOST)
    response = api.post(
        f"/api/v1/opportunities/{opp.pk}/move/",
        {"stage": lost.pk, "position": 0, "version": 1},
        format="json",
    )
    assert response.status_code == 400 and "lost_reason" in response.json()
    response = api.post(
        f"/api/v1/opportunities/{opp.pk}/move/",
        {"stage": lost.pk, "position": 0, "version": 1, "lost_reason": "预算取消"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["closed_at"] and response.json()["stage_kind"] == "lost"
    response = api.post(f"/api/v1/opportunities/{opp.pk}/won/", {"version": 1}, format="json")
    assert response.status_code == 409
    response = api.post(f"/api/v1/opportunities/{opp.pk}/won/", {"version": 2}, format="json")
    assert response.status_code == 200 and response.json()["stage_kind"] == "won"
    other = opportunity_for(org.sales1)
    response = api.post(f"/api/v1/opportunities/{other.pk}/lost/", {"version": 1}, format="json")
    assert response.status_code == 400


def test_delete_needs_permission(org, api_for):
    opp = opportunity_for(org.sales1)
    assert api_for(org.sales1).delete(f"/api/v1/opportunities/{opp.pk}/").status_code == 403
    assert api_for(org.salesmgr1).delete(f"/api/v1/opportunities/{opp.pk}/").status_code == 204
    assert not Opportunity.objects.filter(pk=opp.pk).exists()


def test_pipeline_stages(org, api_for):
    response = api_for(org.sales1).get("/api/v1/pipeline-stages/")
    assert response.status_code == 200
    assert [s["id"] for s in response.json()] == list(
        PipelineStage.objects.values_list("pk", flat=True)
    )
    assert api_for(org.hr).get("/api/v1/pipeline-stages/").status_code == 403
