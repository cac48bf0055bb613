"""Permissions are ``module.action`` codes granted to roles (``customers.export``).

Modules register themselves here with the actions that make sense for them, so that the
role editor, the sidebar and permission checks all read one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from kehu.core.exceptions import PermissionRefused


class Action(models.TextChoices):
    VIEW = "view", _("View")
    ADD = "add", _("Add")
    CHANGE = "change", _("Change")
    DELETE = "delete", _("Delete")
    EXPORT = "export", _("Export")
    APPROVE = "approve", _("Approve")
    ASSIGN = "assign", _("Assign")


@dataclass(frozen=True)
class Module:
    code: str
    label: str | Promise
    icon: str
    actions: tuple[str, ...] = tuple(Action.values)
    order: int = 100


@dataclass
class MenuItem:
    module: str
    label: str | Promise
    url_name: str
    icon: str
    order: int = 100
    action: str = Action.VIEW


@dataclass
class _Registry:
    modules: dict[str, Module] = field(default_factory=dict)
    menu: list[MenuItem] = field(default_factory=list)


registry = _Registry()


# The product's modules (DESIGN.md). Apps add their menu items with ``register_menu``.
MODULES = (
    Module("customers", _("Customers"), "people-fill", order=100),
    Module("sales", _("Contracts & orders"), "file-earmark-text", order=200),
    Module("finance", _("Finance"), "cash-coin", order=300),
    Module("products", _("Products"), "box-seam", order=400),
    Module("hr", _("HR"), "person-badge", order=500),
    Module("analytics", _("Analytics"), "graph-up", actions=("view", "export"), order=600),
    Module("system", _("System"), "gear", order=900),
)
for _module in MODULES:
    registry.modules[_module.code] = _module


def register_menu(*items: MenuItem) -> None:
    registry.menu.extend(items)


def all_permission_codes() -> list[str]:
    return [
        f"{module.code}.{action}"
        for module in sorted(registry.modules.values(), key=lambda m: m.order)
        for action in module.actions
    ]


def user_permissions(user) -> frozenset[str]:
    """Every ``module.action`` the user's roles grant.

    Cached across requests under the user's access stamp (kehu/system/access.py), which
    every change of roles or grants replaces."""
    if not user or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(all_permission_codes())
    from kehu.system.access import access_for

    return access_for(user)["permissions"]


def has_perm(user, code: str) -> bool:
    return code in user_permissions(user)


def require_perm(user, code: str) -> None:
    """Raise before anything is written when the user may not do ``code``."""
    if not has_perm(user, code):
        raise PermissionRefused()
