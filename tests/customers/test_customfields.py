"""Custom fields: value checks, list filters, form fields and the administrators' page."""

import datetime

import pytest
from django import forms

from kehu.core.customfields import (
    custom_filter_q,
    custom_form_fields,
    custom_values_clean,
    customfield_definition_create,
    customfield_definition_update,
)
from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.core.models import CustomFieldDefinition
from kehu.customers.models import Customer
from tests.customers.factories import CustomerFactory


@pytest.fixture
def definitions(db):
    make = CustomFieldDefinition.objects.create
    return [
        make(
            model="customers.customer",
            key="region",
            label="区域",
            field_type="choice",
            choices=["华东", "华南"],
            sort_order=1,
        ),
        make(
            model="customers.customer", key="staff", label="人数", field_type="number", sort_order=2
        ),
        make(
            model="customers.customer",
            key="founded",
            label="成立日期",
            field_type="date",
            sort_order=3,
        ),
        make(
            model="customers.customer",
            key="remark",
            label="备注",
            field_type="text",
            required=True,
            sort_order=4,
        ),
        make(model="customers.customer", key="old", label="旧", field_type="text", is_active=False),
    ]


def test_clean_types(definitions):
    cleaned = custom_values_clean(
        model=Customer,
        values={
            "region": "华东",
            "staff": "1,200",
            "founded": datetime.date(2020, 1, 2),
            "remark": " ok ",
        },
    )
    assert cleaned == {"region": "华东", "staff": "1200", "founded": "2020-01-02", "remark": "ok"}


@pytest.mark.parametrize(
    "values, field",
    [
        ({"region": "西北", "remark": "x"}, "region"),
        ({"staff": "abc", "remark": "x"}, "staff"),
        ({"staff": "NaN", "remark": "x"}, "staff"),
        ({"founded": "2020-13-01", "remark": "x"}, "founded"),
        ({"remark": ""}, "remark"),
        ({"remark": "x", "nope": 1}, "nope"),
        ({"remark": "x", "old": "y"}, "old"),
    ],
)
def test_clean_refusals_name_the_field(definitions, values, field):
    with pytest.raises(ServiceError) as info:
        custom_values_clean(model=Customer, values=values)
    assert info.value.field == field


def test_partial_update_keeps_other_values(definitions):
    cleaned = custom_values_clean(
        model=Customer, values={"staff": "5"}, existing={"remark": "keep", "old": "legacy"}
    )
    assert cleaned == {"remark": "keep", "old": "legacy", "staff": "5"}


def test_form_fields(definitions):
    fields = custom_form_fields(Customer)
    assert list(fields) == ["cf_region", "cf_staff", "cf_founded", "cf_remark"]
    assert isinstance(fields["cf_staff"], forms.DecimalField)
    assert isinstance(fields["cf_founded"], forms.DateField)
    assert fields["cf_remark"].required


def test_filter_q_on_both_databases(org, definitions):
    a = CustomerFactory(owner=org.sales1, custom_fields={"region": "华东", "remark": "大客户A"})
    CustomerFactory(owner=org.sales1, custom_fields={"region": "华南", "remark": "小客户"})
    CustomerFactory(owner=org.sales1, custom_fields={})

    def ids(key, value):
        return list(
            Customer.objects.filter(custom_filter_q(Customer, key, value)).values_list(
                "pk", flat=True
            )
        )

    assert ids("region", "华东") == [a.pk]
    assert ids("remark", "大客户") == [a.pk]
    assert ids("unknown", "x") == []
    assert ids("staff", "not a number") == []


def test_definition_services(org):
    with pytest.raises(PermissionRefused):
        customfield_definition_create(
            actor=org.sales1, model="customers.customer", data={"key": "a", "label": "A"}
        )
    with pytest.raises(ServiceError) as info:
        customfield_definition_create(
            actor=org.admin,
            model="customers.customer",
            data={"key": "c", "label": "C", "field_type": "choice", "choices": []},
        )
    assert info.value.field == "choices"
    d = customfield_definition_create(
        actor=org.admin,
        model="customers.customer",
        data={"key": "c", "label": "C", "field_type": "choice", "choices": "x\ny\nx"},
    )
    assert d.choices == ["x", "y"]
    with pytest.raises(ServiceError):
        customfield_definition_create(
            actor=org.admin, model="customers.customer", data={"key": "c", "label": "again"}
        )
    with pytest.raises(ServiceError) as info:
        customfield_definition_update(
            actor=org.admin, definition=d, expected_version=1, data={"field_type": "text"}
        )
    assert info.value.field == "field_type"
    d = customfield_definition_update(
        actor=org.admin, definition=d, expected_version=1, data={"label": "新"}
    )
    assert d.label == "新" and d.version == 2


def test_admin_page_lists_adds_and_edits(org, client_for):
    client = client_for(org.admin)
    assert client.get("/system/custom-fields/").status_code == 200
    response = client.post(
        "/system/custom-fields/new/",
        {
            "label": "区域",
            "key": "region",
            "field_type": "choice",
            "choices": "华东\n华南",
            "sort_order": 1,
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    d = CustomFieldDefinition.objects.get(key="region")
    assert d.model == "customers.customer" and d.choices == ["华东", "华南"]
    page = client.get("/system/custom-fields/")
    assert "区域" in page.content.decode()
    response = client.post(
        f"/system/custom-fields/{d.pk}/",
        {
            "label": "地区",
            "key": "hack",
            "field_type": "text",
            "choices": "华东\n华南\n华北",
            "sort_order": 1,
            "is_active": "on",
            "version": 1,
        },
    )
    assert response.status_code == 302
    d.refresh_from_db()
    assert (d.label, d.key, d.field_type) == ("地区", "region", "choice")
    assert d.choices == ["华东", "华南", "华北"]
    stale = client.post(
        f"/system/custom-fields/{d.pk}/",
        {"label": "x", "sort_order": 1, "version": 1},
    )
    assert stale.status_code == 400


def test_admin_page_refused_without_system_change(org, client_for):
    assert client_for(org.sales1).get("/system/custom-fields/").status_code == 403
    assert client_for(org.sales1).get("/system/custom-fields/new/").status_code == 403
    assert (
        client_for(org.sales1)
        .post("/system/custom-fields/new/", {"label": "x", "key": "x", "field_type": "text"})
        .status_code
        == 403
    )
    assert not CustomFieldDefinition.objects.exists()
