"""Search: Chinese substring, pinyin initials and full pinyin, phone, e-mail, contact name."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kehu.customers import selectors
from kehu.customers.normalize import name_initials, name_normalize, phone_normalize
from tests.customers.factories import ContactFactory, CustomerFactory


@pytest.fixture
def customers(org):
    return {
        "huawei": CustomerFactory(
            owner=org.sales1, name="华为技术有限公司", mobile="138-1234-5678", email="hr@huawei.com"
        ),
        "tencent": CustomerFactory(
            owner=org.sales1, name="深圳市腾讯计算机系统有限公司", short_name="腾讯"
        ),
        "acme": CustomerFactory(owner=org.sales1, name="Acme Trading Co., Ltd."),
    }


def found(user, query) -> set[str]:
    return set(selectors.customer_search(user=user, query=query).values_list("name", flat=True))


@pytest.mark.parametrize(
    "query, expected",
    [
        ("华为", {"华为技术有限公司"}),
        ("技术", {"华为技术有限公司"}),
        ("hwjs", {"华为技术有限公司"}),
        ("HWJS", {"华为技术有限公司"}),
        ("huawei", {"华为技术有限公司"}),
        ("txjsj", {"深圳市腾讯计算机系统有限公司"}),
        ("腾讯", {"深圳市腾讯计算机系统有限公司"}),
        ("acme", {"Acme Trading Co., Ltd."}),
        ("12345678", {"华为技术有限公司"}),
        ("138 1234", {"华为技术有限公司"}),
        ("hr@huawei.com", {"华为技术有限公司"}),
        ("不存在", set()),
    ],
)
def test_search(org, customers, query, expected):
    assert found(org.sales1, query) == expected


def test_search_by_contact_name(org, customers):
    ContactFactory(customer=customers["acme"], name="王小明")
    assert found(org.sales1, "小明") == {"Acme Trading Co., Ltd."}


def test_masked_phone_is_not_searchable(org, customers):
    # Finance sees phone numbers masked, so a number search must not confirm them.
    assert found(org.finance, "12345678") == set()
    assert found(org.finance, "华为") == {"华为技术有限公司"}


def test_api_search_parameter(org, customers, api_for):
    body = api_for(org.sales1).get("/api/v1/customers/?search=hwjs").json()
    assert [c["name"] for c in body["results"]] == ["华为技术有限公司"]


def test_global_search_finds_customers_and_contacts(org, customers):
    from kehu.core.search import search_all

    ContactFactory(customer=customers["huawei"], name="任先生")
    groups = {str(g["label"]): g["hits"] for g in search_all(user=org.sales1, query="任先生")}
    assert [h.title for h in groups["Contacts"]] == ["任先生"]
    groups = {str(g["label"]): g["hits"] for g in search_all(user=org.sales1, query="hwjs")}
    assert [h.title for h in groups["Customers"]] == ["华为技术有限公司"]


def test_initials_examples():
    assert name_initials("华为技术有限公司") == "hwjsyxgs"
    assert name_normalize("华为技术有限公司") == name_normalize("华为技术 (有限公司)")
    assert name_normalize("ＡＢＣ 股份有限公司") == "abc"
    assert name_normalize("Acme Co., Ltd.") == "acme"
    assert phone_normalize("+86 (138) 1234-5678") == "13812345678"
    assert phone_normalize("0086-13812345678") == "13812345678"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30))
def test_normalisers_never_fail(text):
    assert isinstance(name_normalize(text), str)
    assert phone_normalize(text).isdigit() or phone_normalize(text) == ""
    initials = name_initials(text)
    assert initials == initials.lower() or not initials.isascii()
