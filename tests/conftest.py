import pytest
from django.test import Client

from kehu.core.reference import forget_reference_rows
from kehu.system.models import Role
from tests import figures
from tests.factories import DepartmentFactory, UserFactory

DEMO_PASSWORD = "kehu-demo-2026"


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller, before xdist starts workers
        figures.start()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    sums = figures.totals()
    if sums:
        terminalreporter.section("Kehu figures")
        for name, count in sorted(sums.items()):
            terminalreporter.write_line(f"{name}: {count:,}")


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    """Tests read English messages unless they switch language on purpose."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def _reference_rows_cold():
    """Each test starts without the previous tests' cached reference rows (their stamps
    were rolled back with them)."""
    forget_reference_rows()


def role(code: str) -> Role:
    return Role.objects.get(code=code)


@pytest.fixture
def org(db):
    """A company three levels deep: 总经办 → 销售部 → 销售一部 / 销售二部, plus 财务部.

    Returns a namespace with departments and one user per default role.
    """
    return make_org()


def make_org():
    """The ``org`` fixture's company as a plain function: for fixtures of a wider scope
    (tests/security) and for a database "default" points at for a while (the concurrency
    tests build it in a SQLite file shared by threads and processes)."""
    head = DepartmentFactory(name="总经办")
    sales = DepartmentFactory(name="销售部", parent=head)
    sales1 = DepartmentFactory(name="销售一部", parent=sales)
    sales2 = DepartmentFactory(name="销售二部", parent=sales)
    finance_dept = DepartmentFactory(name="财务部", parent=head)

    class Org:
        pass

    o = Org()
    o.head, o.sales, o.finance_dept = head, sales, finance_dept
    # ``o.sales1`` / ``o.sales2`` are the users below; their departments are these two.
    o.sales1_dept, o.sales2_dept = sales1, sales2
    o.admin = UserFactory(username="admin", department=head, roles=[role("admin")])
    o.manager = UserFactory(username="manager", department=head, roles=[role("general_manager")])
    o.salesdirector = UserFactory(
        username="salesdirector", department=sales, roles=[role("sales_manager")]
    )
    o.salesmgr1 = UserFactory(
        username="salesmgr1", department=sales1, roles=[role("sales_manager")]
    )
    o.sales1 = UserFactory(username="sales1", department=sales1, roles=[role("salesperson")])
    o.sales2 = UserFactory(username="sales2", department=sales1, roles=[role("salesperson")])
    o.sales3 = UserFactory(username="sales3", department=sales2, roles=[role("salesperson")])
    o.finance = UserFactory(username="finance", department=finance_dept, roles=[role("finance")])
    o.hr = UserFactory(username="hr", department=head, roles=[role("hr")])
    o.warehouse = UserFactory(username="warehouse", department=head, roles=[role("warehouse")])
    return o


@pytest.fixture
def client_for():
    """``client_for(user)``: a test client logged in as ``user``."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def api_for():
    """``api_for(user)``: a DRF API client authenticated as ``user``."""
    from rest_framework.test import APIClient

    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make
