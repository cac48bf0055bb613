from kehu.system.models import AuditLog, Dictionary, DictionaryItem

URL = "/api/v1/dictionaries/"
ITEMS = "/api/v1/dictionary-items/"


def _item(code="customer_source", value="website"):
    return DictionaryItem.objects.get(dictionary__code=code, value=value)


def test_any_user_reads_dictionaries_with_active_items(org, api_for, django_assert_max_num_queries):
    item = _item()
    item.is_active = False
    item.save()
    with django_assert_max_num_queries(5):
        response = api_for(org.warehouse).get(URL, {"page_size": 100})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == Dictionary.objects.count()
    source = next(d for d in body["results"] if d["code"] == "customer_source")
    values = [i["value"] for i in source["items"]]
    assert "website" not in values and "referral" in values


def test_lookup_by_code(org, api_for):
    client = api_for(org.sales1)
    response = client.get(f"{URL}customer_source/")
    assert response.status_code == 200
    assert response.json()["code"] == "customer_source"
    assert client.get(f"{URL}no_such_dictionary/").status_code == 404


def test_dictionaries_are_read_only(org, api_for):
    client = api_for(org.admin)
    assert client.post(URL, {"code": "x", "name": "x"}).status_code == 405
    assert client.delete(f"{URL}customer_source/").status_code == 405


def test_item_writes_need_system_change(org, api_for):
    client = api_for(org.sales1)
    before = DictionaryItem.objects.count()
    response = client.post(
        ITEMS, {"dictionary": "customer_source", "value": "wechat", "label": "微信"}
    )
    assert response.status_code == 403
    item = _item()
    assert client.patch(f"{ITEMS}{item.id}/", {"label": "x", "version": 1}).status_code == 403
    assert DictionaryItem.objects.count() == before
    assert _item().label == item.label
    # Reading items is open to every signed-in user.
    assert client.get(ITEMS, {"dictionary": "customer_source"}).status_code == 200


def test_admin_creates_and_updates_items(org, api_for):
    client = api_for(org.admin)
    response = client.post(
        ITEMS,
        {"dictionary": "customer_source", "value": "wechat", "label": "微信", "label_en": "WeChat"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["dictionary"] == "customer_source" and body["version"] == 1
    url = f"{ITEMS}{body['id']}/"

    response = client.patch(
        url, {"label": "微信公众号", "is_active": False, "version": 1}, format="json"
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    stale = client.patch(url, {"label": "覆盖", "version": 1}, format="json")
    assert stale.status_code == 409
    item = DictionaryItem.objects.get(pk=body["id"])
    assert item.label == "微信公众号" and not item.is_active
    assert AuditLog.objects.filter(model="system.dictionaryitem", action="change").exists()
    assert client.delete(url).status_code == 405


def test_item_validation_writes_nothing(org, api_for):
    client = api_for(org.admin)
    before = DictionaryItem.objects.count()
    response = client.post(ITEMS, {"dictionary": "nope", "value": "bad value!"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"dictionary", "value", "label"}
    duplicate = client.post(
        ITEMS, {"dictionary": "customer_source", "value": "website", "label": "官网"}
    )
    assert duplicate.status_code == 400
    assert DictionaryItem.objects.count() == before


def test_item_filters(org, api_for):
    rows = api_for(org.admin).get(ITEMS, {"dictionary": "industry", "page_size": 100}).json()
    assert rows["count"] == DictionaryItem.objects.filter(dictionary__code="industry").count()
