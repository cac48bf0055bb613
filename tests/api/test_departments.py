from kehu.hr.models import Department

URL = "/api/v1/departments/"


def test_list_shows_whole_tree_to_hr_view(org, api_for, django_assert_max_num_queries):
    # salesmgr1 holds hr.view with a department-tree scope, yet sees the whole structure.
    with django_assert_max_num_queries(5):
        response = api_for(org.salesmgr1).get(URL)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == Department.objects.count()
    assert rows[0]["name"] == "总经办" and rows[0]["depth"] == 0 and rows[0]["parent"] is None
    sales1 = next(r for r in rows if r["name"] == "销售一部")
    assert sales1["depth"] == 2
    assert sales1["parent"] == Department.objects.get(name="销售部").id


def test_departments_refused_without_hr_view(org, api_for):
    assert api_for(org.sales1).get(URL).status_code == 403
    assert api_for(org.finance).get(URL).status_code == 403


def test_writes_refused_for_hr_viewers(org, api_for):
    dept = Department.objects.get(name="销售一部")
    for user in (org.sales1, org.salesmgr1):
        client = api_for(user)
        assert client.post(URL, {"name": "新部门"}, format="json").status_code == 403
        assert client.patch(f"{URL}{dept.id}/", {"name": "x", "version": 1}).status_code == 403
        assert client.delete(f"{URL}{dept.id}/").status_code == 403
    assert not Department.objects.filter(name="新部门").exists()
    assert Department.objects.get(pk=dept.pk).name == "销售一部"


def test_hr_creates_moves_and_deletes(org, api_for):
    client = api_for(org.hr)
    sales = Department.objects.get(name="销售部")
    response = client.post(
        URL, {"name": "销售三部", "parent": sales.id, "manager": org.sales3.id}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["depth"] == 2 and body["parent"] == sales.id and body["version"] == 1
    new_id = body["id"]

    head = Department.objects.get(name="总经办")
    response = client.patch(f"{URL}{new_id}/", {"parent": head.id, "version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["depth"] == 1
    assert response.json()["path"].startswith(head.path)

    stale = client.patch(f"{URL}{new_id}/", {"name": "旧", "version": 1}, format="json")
    assert stale.status_code == 409
    assert Department.objects.get(pk=new_id).name == "销售三部"

    assert client.delete(f"{URL}{new_id}/").status_code == 204
    assert not Department.objects.filter(pk=new_id).exists()


def test_moving_under_own_descendant_is_refused(org, api_for):
    sales = Department.objects.get(name="销售部")
    sales1 = Department.objects.get(name="销售一部")
    response = api_for(org.hr).patch(
        f"{URL}{sales.id}/", {"parent": sales1.id, "version": 1}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["parent"]
    sales.refresh_from_db()
    assert sales.parent.name == "总经办" and sales.version == 1


def test_delete_with_children_or_users_is_refused(org, api_for):
    client = api_for(org.hr)
    sales = Department.objects.get(name="销售部")
    response = client.delete(f"{URL}{sales.id}/")
    assert response.status_code == 400
    assert "sub-departments" in response.json()["non_field_errors"][0]
    sales2 = Department.objects.get(name="销售二部")
    assert client.delete(f"{URL}{sales2.id}/").status_code == 400
    assert Department.objects.filter(pk__in=[sales.pk, sales2.pk]).count() == 2


def test_create_validation(org, api_for):
    before = Department.objects.count()
    client = api_for(org.hr)
    response = client.post(URL, {"parent": 999999}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"name", "parent"}
    # A sibling with the same name is a clear error too.
    sales = Department.objects.get(name="销售部")
    response = client.post(URL, {"name": "销售一部", "parent": sales.id}, format="json")
    assert response.status_code == 400
    assert Department.objects.count() == before
