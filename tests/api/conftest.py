import pytest
from django.core.cache import cache

from kehu.system.models import Role


@pytest.fixture(autouse=True)
def _fresh_throttle_state():
    """Throttle counters live in the cache; one test's logins must not throttle the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sub_admin(org):
    """salesmgr1 also holds a custom role granting system management in his own subtree."""
    role = Role.objects.create(
        code="dept_admin",
        name="部门管理员",
        data_scope="department_tree",
        permissions=["system.view", "system.change"],
    )
    org.salesmgr1.roles.add(role)
    return org.salesmgr1
