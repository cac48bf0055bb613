"""The one data-scope mechanism, over a department tree three levels deep."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from kehu.core.scope import DataScope, get_visible_or_404, user_data_scope, visible_to
from kehu.hr.services import department_update
from kehu.system.models import Role
from tests.factories import UserFactory
from tests.testapp.models import Widget


def seen(user) -> set[str]:
    return set(visible_to(Widget.objects.all(), user).values_list("name", flat=True))


def scoped_role(code: str, scope: str) -> Role:
    return Role.objects.create(code=code, name=code, data_scope=scope)


def test_own_scope_sees_only_own(org, widgets):
    assert user_data_scope(org.sales1) == DataScope.OWN
    assert seen(org.sales1) == {"w-sales1"}


def test_department_scope_sees_own_department_only(org, widgets):
    # sales2's colleague in 销售一部 with a department-wide role; not 销售二部, not below.
    user = UserFactory(
        department=org.sales1_dept, roles=[scoped_role("dept", DataScope.DEPARTMENT)]
    )
    assert seen(user) == {"w-sales1", "w-sales2", "w-salesmgr1"}


def test_department_scope_does_not_reach_sub_departments(org, widgets):
    user = UserFactory(department=org.sales, roles=[scoped_role("dept", DataScope.DEPARTMENT)])
    assert seen(user) == {"w-salesdirector"}


def test_department_tree_at_leaf(org, widgets):
    assert seen(org.salesmgr1) == {"w-sales1", "w-sales2", "w-salesmgr1"}


def test_department_tree_covers_every_level_below(org, widgets):
    assert seen(org.salesdirector) == {
        "w-salesdirector",
        "w-sales1",
        "w-sales2",
        "w-salesmgr1",
        "w-sales3",
    }


def test_all_scope_sees_everything(org, widgets):
    assert seen(org.manager) == set(Widget.objects.values_list("name", flat=True))
    assert len(seen(org.manager)) == 6


def test_superuser_sees_everything(org, widgets):
    root = UserFactory(is_superuser=True)
    assert len(seen(root)) == 6


def test_two_roles_combine_as_the_widest(org, widgets):
    user = UserFactory(
        department=org.sales2_dept,
        roles=[Role.objects.get(code="salesperson"), org.salesmgr1.roles.get()],
    )
    assert user_data_scope(user) == DataScope.DEPARTMENT_TREE
    assert seen(user) == {"w-sales3"}


def test_no_department_falls_back_to_own(org, widgets):
    user = UserFactory(department=None, roles=[Role.objects.get(code="sales_manager")])
    widget = Widget.objects.create(name="mine", owner=user)
    assert seen(user) == {widget.name}


def test_owner_moved_away_keeps_own_records(org, widgets):
    # Records filed under another department stay visible to their owner.
    Widget.objects.filter(pk=widgets["sales1"].pk).update(department=org.finance_dept)
    assert seen(org.sales1) == {"w-sales1"}


def test_inactive_user_sees_nothing(org, widgets):
    org.manager.is_active = False
    assert seen(org.manager) == set()
    org.sales1.is_active = False
    assert seen(org.sales1) == set()


def test_anonymous_and_none_see_nothing(org, widgets):
    assert seen(AnonymousUser()) == set()
    assert seen(None) == set()


def test_user_without_roles_sees_only_own(org, widgets):
    user = UserFactory(department=org.sales1_dept)
    Widget.objects.create(name="roleless", owner=user, department=org.sales1_dept)
    assert seen(user) == {"roleless"}


def test_get_visible_or_404_same_for_out_of_scope_and_missing(org, widgets):
    mine = widgets["sales1"]
    assert get_visible_or_404(Widget.objects.all(), org.sales1, pk=mine.pk) == mine
    with pytest.raises(Http404) as out_of_scope:
        get_visible_or_404(Widget.objects.all(), org.sales1, pk=widgets["sales2"].pk)
    with pytest.raises(Http404) as missing:
        get_visible_or_404(Widget.objects.all(), org.sales1, pk=999_999)
    with pytest.raises(Http404):
        get_visible_or_404(Widget.objects.all(), org.sales1, pk="not-a-number")
    # Nothing in the message tells the two apart.
    assert str(out_of_scope.value) == str(missing.value)


def test_soft_deleted_rows_stay_hidden_inside_scope(org, widgets):
    Widget.objects.filter(pk=widgets["sales1"].pk).update(deleted_at="2026-01-01T00:00Z")
    assert "w-sales1" not in seen(org.manager)
    assert len(seen(org.manager)) == 5


def test_user_list_goes_through_the_same_scope(org, widgets):
    # Users are scoped too (owner field "id"): a sales manager sees the people of 销售一部.
    from kehu.system.models import User

    visible_owners = visible_to(User.objects.all(), org.salesmgr1)
    assert set(visible_owners.values_list("username", flat=True)) == {
        "salesmgr1",
        "sales1",
        "sales2",
    }


def test_moving_a_department_changes_what_the_tree_covers(org, widgets):
    # 销售二部 moves from 销售部 to 财务部: the sales director loses it, a finance-tree
    # manager gains it.
    finance_head = UserFactory(
        department=org.finance_dept, roles=[Role.objects.get(code="sales_manager")]
    )
    assert "w-sales3" in seen(org.salesdirector)
    assert "w-sales3" not in seen(finance_head)

    department_update(
        actor=org.admin,
        department=org.sales2_dept,
        expected_version=org.sales2_dept.version,
        data={"parent": org.finance_dept},
    )

    assert "w-sales3" not in seen(org.salesdirector)
    assert seen(finance_head) == {"w-sales3", "w-finance"}
