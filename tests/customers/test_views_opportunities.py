"""Opportunity pages: board moves (JSON), won/lost, the form, pipeline stage settings;
plus merge and custom-field pages."""

import pytest
from django.urls import reverse

from kehu.core.models import CustomFieldDefinition
from kehu.customers.models import Customer, Opportunity, PipelineStage, StageKind
from tests.customers.factories import CustomerFactory
from tests.customers.test_opportunities import opportunity_for, stage


def url(name, *args):
    return reverse(f"customers:{name}", args=args)


def test_board_shows_scoped_cards_with_totals(org, client_for):
    mine = opportunity_for(org.sales1, title="我的项目")
    opportunity_for(org.sales3, title="别人的项目")
    response = client_for(org.sales1).get(url("opportunity_board"))
    body = response.content.decode()
    assert "我的项目" in body and "别人的项目" not in body
    assert f'data-id="{mine.pk}"' in body and 'draggable="true"' in body
    # Finance reads the board but gets no drag handles.
    body = client_for(org.finance).get(url("opportunity_board")).content.decode()
    assert "我的项目" in body and 'draggable="true"' not in body


def test_move_view_json(org, client_for):
    opp = opportunity_for(org.sales1)
    client = client_for(org.sales1)
    target = stage(index=1)
    response = client.post(
        url("opportunity_move", opp.pk), {"stage": target.pk, "position": 0, "version": 1}
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    response = client.post(
        url("opportunity_move", opp.pk), {"stage": stage().pk, "position": 0, "version": 1}
    )
    assert response.status_code == 409 and "changed by someone else" in response.json()["error"]
    lost = stage(StageKind.LOST)
    response = client.post(
        url("opportunity_move", opp.pk), {"stage": lost.pk, "position": 0, "version": 2}
    )
    assert response.status_code == 400 and response.json()["field"] == "lost_reason"
    response = client.post(
        url("opportunity_move", opp.pk),
        {"stage": lost.pk, "position": 0, "version": 2, "lost_reason": "预算不足"},
    )
    assert response.status_code == 200 and response.json()["closed"]
    response = client.post(url("opportunity_move", opp.pk), {"stage": "x", "version": 3})
    assert response.status_code == 400
    assert (
        client_for(org.finance)
        .post(url("opportunity_move", opp.pk), {"stage": target.pk, "version": 3})
        .status_code
        == 403
    )


def test_won_and_lost_buttons(org, client_for):
    opp = opportunity_for(org.sales1)
    client = client_for(org.sales1)
    response = client.post(url("opportunity_lost", opp.pk), {"version": 1, "reason": ""})
    assert response.status_code == 302 and response["Location"] == url("opportunity_edit", opp.pk)
    assert Opportunity.objects.get(pk=opp.pk).closed_at is None
    client.post(url("opportunity_won", opp.pk), {"version": 1})
    opp.refresh_from_db()
    assert opp.stage.kind == StageKind.WON and opp.closed_at
    assert Customer.objects.get(pk=opp.customer_id).stage == "won"


def test_opportunity_form_create_and_edit(org, client_for):
    customer = CustomerFactory(owner=org.sales1)
    client = client_for(org.sales1)
    body = client.get(url("opportunity_create"), {"customer": customer.pk}).content.decode()
    assert f'<option value="{customer.pk}" selected>' in body
    assert 'name="owner"' not in body  # salespeople own what they open
    response = client.post(
        url("opportunity_create"),
        {"customer": customer.pk, "title": "新项目", "amount": "50000", "currency": "CNY"},
    )
    assert response.status_code == 302
    opp = Opportunity.objects.get(title="新项目")
    assert opp.owner == org.sales1 and opp.probability == opp.stage.probability
    data = {
        "customer": customer.pk,
        "title": "新项目二期",
        "amount": "60000",
        "currency": "CNY",
        "stage": opp.stage_id,
        "version": 1,
    }
    assert client.post(url("opportunity_edit", opp.pk), data).status_code == 302
    response = client.post(url("opportunity_edit", opp.pk), data)
    assert response.status_code == 400 and "changed by someone else" in response.content.decode()
    other = CustomerFactory(owner=org.sales3)
    response = client.post(url("opportunity_create"), {**data, "customer": other.pk})
    assert response.status_code == 400
    assert client_for(org.sales3).get(url("opportunity_edit", opp.pk)).status_code == 404


def test_stage_settings(org, client_for):
    assert client_for(org.salesmgr1).get(url("stage_list")).status_code == 403
    client = client_for(org.admin)
    assert client.get(url("stage_list")).status_code == 200
    response = client.post(
        url("stage_create"),
        {"name": "样品测试", "name_en": "Trial", "kind": "open", "probability": 60},
    )
    assert response.status_code == 302
    new = PipelineStage.objects.get(name="样品测试")
    client.post(url("stage_move", new.pk), {"direction": "up"})
    ids = list(PipelineStage.objects.values_list("pk", flat=True))
    assert ids.index(new.pk) == len(ids) - 2
    won = PipelineStage.objects.get(kind="won")
    response = client.post(
        url("stage_edit", won.pk),
        {"name": won.name, "kind": "won", "probability": 100, "version": won.version},
    )  # is_active unticked: the last won stage cannot be retired
    assert response.status_code == 400
    assert PipelineStage.objects.get(pk=won.pk).is_active


def test_merge_page(org, client_for):
    survivor = CustomerFactory(owner=org.sales1, name="合并保留公司")
    merged = CustomerFactory(owner=org.sales1, name="合并移除公司")
    assert client_for(org.sales1).get(url("customer_merge", merged.pk)).status_code == 403
    client = client_for(org.admin)
    assert client.get(url("customer_merge", merged.pk)).status_code == 200
    response = client.post(url("customer_merge", merged.pk), {"other": survivor.pk})
    assert response.status_code == 302 and response["Location"] == url(
        "customer_detail", survivor.pk
    )
    assert not Customer.objects.filter(pk=merged.pk).exists()


@pytest.fixture
def budget_field(db):
    return CustomFieldDefinition.objects.create(
        model="customers.customer",
        key="budget",
        label="预算",
        label_en="Budget",
        field_type="number",
    )


def test_custom_fields_in_form_list_filter_and_detail(org, client_for, budget_field):
    client = client_for(org.sales1)
    body = client.get(url("customer_create")).content.decode()
    assert 'name="cf_budget"' in body
    response = client.post(
        url("customer_create"),
        {"kind": "company", "name": "预算客户有限公司", "stage": "potential", "cf_budget": "1200"},
    )
    assert response.status_code == 302
    customer = Customer.objects.get(name="预算客户有限公司")
    assert customer.custom_fields == {"budget": "1200"}
    CustomerFactory(owner=org.sales1, name="无预算客户有限公司")
    body = client.get(url("customer_list"), {"cf_budget": "1200"}).content.decode()
    assert "预算客户有限公司" in body and "无预算客户有限公司" not in body
    assert "1200" in client.get(url("customer_detail", customer.pk)).content.decode()
