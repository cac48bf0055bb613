from kehu.core.permissions import user_permissions


def test_me_for_sales_manager(org, api_for, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        response = api_for(org.salesmgr1).get("/api/v1/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "salesmgr1"
    assert body["department"] == {"id": org.salesmgr1.department_id, "name": "销售一部"}
    assert [r["code"] for r in body["roles"]] == ["sales_manager"]
    assert body["data_scope"] == "department_tree"
    assert body["permissions"] == sorted(user_permissions(org.salesmgr1))
    assert "customers.view" in body["permissions"]
    assert "system.view" not in body["permissions"]
    # The caller sees his own contact details in full.
    assert body["phone"] == "13812345678"
    assert set(body) == {
        "id",
        "username",
        "display_name",
        "email",
        "phone",
        "department",
        "roles",
        "permissions",
        "data_scope",
        "language",
    }


def test_me_for_salesperson_is_own_scope(org, api_for):
    body = api_for(org.sales1).get("/api/v1/me/").json()
    assert body["data_scope"] == "own"


def test_me_is_read_only(org, api_for):
    assert api_for(org.sales1).post("/api/v1/me/", {}).status_code == 405
