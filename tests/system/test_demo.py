import pytest
from django.core.management import CommandError, call_command

from kehu.hr.models import Department
from kehu.system.models import AuditLog, Notification, SystemSettings, User

DEMO_USERNAMES = {
    "admin", "manager", "salesmgr1", "sales1", "sales2", "sales3", "salesmgr2", "finance", "hr",
    "warehouse",
}  # fmt: skip


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "departments": Department.objects.count(),
        "notifications": Notification.objects.count(),
        "audit": AuditLog.objects.count(),
    }


def test_demo_data_is_idempotent(db, settings):
    settings.DEMO_MODE = True
    call_command("demo_data", verbosity=0)
    first = counts()
    call_command("demo_data", verbosity=0)

    assert counts() == first
    assert set(User.objects.values_list("username", flat=True)) == DEMO_USERNAMES
    assert first["departments"] == 6
    assert first["notifications"] > 0


def test_demo_company_shape(db, settings):
    settings.DEMO_MODE = True
    call_command("demo_data", verbosity=0)

    head = Department.objects.get(code="gm-office")
    assert head.name == "总经办" and head.parent is None
    for code in ("sales-1", "sales-2", "finance", "hr", "warehouse"):
        department = Department.objects.get(code=code)
        assert department.parent == head
        assert department.path == f"{head.path}{department.pk:08d}/"

    users = {u.username: u for u in User.objects.prefetch_related("roles")}
    assert users["admin"].is_superuser
    assert [r.code for r in users["admin"].roles.all()] == ["admin"]
    assert [r.code for r in users["sales1"].roles.all()] == ["salesperson"]
    assert users["sales1"].display_name == "张伟"
    assert users["sales1"].department.code == "sales-1"
    assert users["sales2"].department.code == "sales-1"
    assert users["sales3"].department.code == "sales-2"
    assert Department.objects.get(code="sales-1").manager == users["salesmgr1"]
    assert Department.objects.get(code="sales-2").manager == users["salesmgr2"]
    for user in users.values():
        assert user.check_password("kehu-demo-2026")
        assert user.email.endswith("@demo.kehu.cn")
    assert SystemSettings.objects.get(pk=1).company_name == "示例科技有限公司"


def test_demo_data_refused_outside_demo_mode(db, settings):
    settings.DEMO_MODE = False
    with pytest.raises(CommandError, match="demo mode"):
        call_command("demo_data", verbosity=0)
    assert not User.objects.exists()
    assert not Department.objects.exists()
