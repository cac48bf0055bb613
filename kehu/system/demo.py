"""Demo company: departments, one user per default role, a few notifications.

Only for demo mode (``KEHU_DEMO=1``): the users share a published password. Idempotent:
everything is looked up by username or department code first, so running it again
creates nothing and leaves administrators' edits alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from kehu.hr.models import Department
from kehu.hr.services import department_create, department_update
from kehu.system.models import Notification, Role, User
from kehu.system.services import notification_send, system_settings_get, user_create

DEMO_PASSWORD = "kehu-demo-2026"
DEMO_COMPANY = "示例科技有限公司"
EMAIL_DOMAIN = "demo.kehu.cn"

# code, name, parent code
DEPARTMENTS: list[tuple[str, str, str | None]] = [
    ("gm-office", "总经办", None),
    ("sales-1", "销售一部", "gm-office"),
    ("sales-2", "销售二部", "gm-office"),
    ("finance", "财务部", "gm-office"),
    ("hr", "人事部", "gm-office"),
    ("warehouse", "仓库", "gm-office"),
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: str
    department: str
    phone: str
    manages: str | None = None  # department code this user heads


USERS: list[DemoUser] = [
    DemoUser("admin", "系统管理员", "admin", "gm-office", "13800000001"),
    DemoUser("manager", "王总", "general_manager", "gm-office", "13800000002", "gm-office"),
    DemoUser("salesmgr1", "李强", "sales_manager", "sales-1", "13800000003", "sales-1"),
    DemoUser("sales1", "张伟", "salesperson", "sales-1", "13800000004"),
    DemoUser("sales2", "刘洋", "salesperson", "sales-1", "13800000005"),
    DemoUser("sales3", "陈静", "salesperson", "sales-2", "13800000006"),
    DemoUser("salesmgr2", "吴磊", "sales_manager", "sales-2", "13800000010", "sales-2"),
    DemoUser("finance", "赵敏", "finance", "finance", "13800000007", "finance"),
    DemoUser("hr", "孙丽", "hr", "hr", "13800000008", "hr"),
    DemoUser("warehouse", "周杰", "warehouse", "warehouse", "13800000009", "warehouse"),
]


class DemoRefused(Exception):
    pass


def demo_data_load() -> dict[str, int]:
    """Create whatever part of the demo company is missing; returns counts of new rows."""
    if not settings.DEMO_MODE:
        raise DemoRefused(
            _(
                "Demo data is only loaded in demo mode (KEHU_DEMO=1): "
                "it creates users with a public password."
            )
        )
    created = {"departments": 0, "users": 0, "notifications": 0}
    # Stored names and notification texts are in the install's language, not the caller's.
    with translation.override(settings.LANGUAGE_CODE), transaction.atomic():
        admin = _admin_ensure(created)
        _company_ensure(admin)
        departments = _departments_ensure(admin, created)
        users = _users_ensure(admin, departments, created)
        _managers_ensure(admin, departments, users)
        _notifications_ensure(users, created)
        # Each business module adds its own demo rows (kehu/<app>/demo.py: demo_load).
        for module_name in DEMO_MODULES:
            module = import_module(module_name)
            for key, count in module.demo_load(admin=admin, users=users).items():
                created[key] = created.get(key, 0) + count
    return created


# In dependency order: HR (employees) before customers, products before sales.
DEMO_MODULES: list[str] = [
    "kehu.hr.demo",
    "kehu.products.demo",
    "kehu.customers.demo",
    "kehu.sales.demo",
    "kehu.finance.demo",
    "kehu.analytics.demo",  # last: history before the other modules' documents, then the jobs
]


def _admin_ensure(created: dict[str, int]) -> User:
    admin = User.objects.filter(username="admin").first()
    if admin is None:
        # Bootstrap: the first administrator cannot be created by a service that needs one.
        spec = USERS[0]
        admin = User.objects.create_superuser(
            username=spec.username,
            email=f"{spec.username}@{EMAIL_DOMAIN}",
            password=DEMO_PASSWORD,
            display_name=spec.display_name,
            phone=spec.phone,
        )
        admin.roles.set([Role.objects.get(code=spec.role)])
        created["users"] += 1
    return admin


def _company_ensure(admin: User) -> None:
    from kehu.system.services import system_settings_update

    row = system_settings_get()
    if row.company_name != DEMO_COMPANY and row.company_name == "Kehu":
        system_settings_update(
            actor=admin, expected_version=row.version, data={"company_name": DEMO_COMPANY}
        )


def _departments_ensure(admin: User, created: dict[str, int]) -> dict[str, Department]:
    departments: dict[str, Department] = {
        d.code or "": d
        for d in Department.objects.filter(code__in=[c for c, _n, _p in DEPARTMENTS])
    }
    for code, name, parent_code in DEPARTMENTS:
        if code in departments:
            continue
        parent = departments[parent_code] if parent_code else None
        departments[code] = department_create(
            actor=admin, data={"code": code, "name": name, "parent": parent}
        )
        created["departments"] += 1
    return departments


def _users_ensure(
    admin: User, departments: dict[str, Department], created: dict[str, int]
) -> dict[str, User]:
    users = {u.username: u for u in User.objects.filter(username__in=[s.username for s in USERS])}
    for spec in USERS:
        user = users.get(spec.username)
        if user is None:
            user = user_create(
                actor=admin,
                data={
                    "username": spec.username,
                    "display_name": spec.display_name,
                    "email": f"{spec.username}@{EMAIL_DOMAIN}",
                    "phone": spec.phone,
                    "department": departments[spec.department],
                },
                roles=[Role.objects.get(code=spec.role)],
                password=DEMO_PASSWORD,
            )
            users[spec.username] = user
            created["users"] += 1
        elif spec.username == "admin" and user.department_id is None:
            User.objects.filter(pk=user.pk).update(department=departments[spec.department])
    return users


def _managers_ensure(
    admin: User, departments: dict[str, Department], users: dict[str, User]
) -> None:
    for spec in USERS:
        if not spec.manages:
            continue
        department = departments[spec.manages]
        if department.manager_id is None:
            department_update(
                actor=admin,
                department=department,
                expected_version=department.version,
                data={"manager": users[spec.username]},
            )


def _notifications_ensure(users: dict[str, User], created: dict[str, int]) -> None:
    for user in users.values():
        title = _("Welcome to Kehu, %(name)s") % {"name": user.display_name or user.username}
        if Notification.objects.filter(recipient=user, title=title).exists():
            continue
        notes = notification_send(
            recipients=[user],
            title=title,
            body=_("This is a demo company. Every demo account uses the password %(password)s.")
            % {"password": DEMO_PASSWORD},
            url="/",
        )
        notes += notification_send(
            recipients=[user],
            title=_("Your to-do list lives on the home page"),
            body=_("Reminders and approvals from every module appear there and here."),
            level="todo",
            url="/",
        )
        created["notifications"] += len(notes)
