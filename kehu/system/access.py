"""Each user's permissions, data scopes and field rules, cached across requests.

Every page and API call needs them; read from the database they are four queries a
request. They are cached (Redis when ``REDIS_URL`` is set, local memory otherwise) under the
user's ``access_stamp``, a column of the user row that the session middleware loads anyway.
Every change that can alter them replaces the stamp of the users concerned inside the same
transaction: the next request of such a user, in whichever process, looks for a key that
does not exist and reads the database. Nothing is ever served from a stale key, so local
memory is safe with several processes too; old keys simply expire.

Changes covered (receivers below, plus the services that write with UPDATE/bulk_create):
a role saved or deleted, roles added to or taken from a user (either side of the relation),
field rules saved or deleted. A user's own department, active flag and superuser flag are
read from the user row on every request and are not cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver

from kehu.system.models import FieldPermission, Role, User, new_access_stamp

CACHE_SECONDS = 3600


def _key(user) -> str:
    return f"kehu:access:{user.pk}:{user.access_stamp}"


def _load(user) -> dict[str, Any]:
    roles = list(user.roles.values_list("id", "permissions", "data_scope"))
    permissions: set[str] = set()
    for _id, codes, _scope in roles:
        permissions.update(codes or [])
    rules: dict[str, dict[str, dict[int, str]]] = {}
    if roles:
        for role_id, model, field_name, access in FieldPermission.objects.filter(
            role_id__in=[r[0] for r in roles]
        ).values_list("role_id", "model", "field", "access"):
            rules.setdefault(model, {}).setdefault(field_name, {})[role_id] = access
    return {
        "permissions": frozenset(permissions),
        "scopes": [scope for _id, _codes, scope in roles],
        "role_count": len(roles),
        "field_rules": rules,
    }


def access_for(user) -> dict[str, Any]:
    """``permissions`` (frozenset of codes), ``scopes`` (one per role), ``role_count`` and
    ``field_rules`` (model label → field → role id → access) of an authenticated user."""
    data = getattr(user, "_kehu_access", None)
    if data is not None:
        return data
    stamp = getattr(user, "access_stamp", "")
    data = cache.get(_key(user)) if stamp and user.pk else None
    if data is None:
        data = _load(user)
        if stamp and user.pk:
            cache.set(_key(user), data, CACHE_SECONDS)
    user._kehu_access = data  # and for the rest of this request
    return data


def access_changed(*, users: Iterable[int] | None = None, roles: Iterable[int] | None = None):
    """Give the users concerned a new stamp: their next request reads their access afresh."""
    user_ids = set(users or ())
    role_ids = set(roles or ())
    if role_ids:
        user_ids.update(
            User.roles.through.objects.filter(role_id__in=role_ids).values_list(
                "user_id", flat=True
            )
        )
    if user_ids:
        User.objects.filter(pk__in=user_ids).update(access_stamp=new_access_stamp())


def forget_cached_access(user) -> None:
    """Make a user object held across a change read its access afresh (a request always
    loads its user anew; this is for code and tests that keep one object)."""
    for name in ("_kehu_access", "_kehu_field_policy"):
        user.__dict__.pop(name, None)
    if user.pk:
        stamp = User.objects.filter(pk=user.pk).values_list("access_stamp", flat=True).first()
        user.access_stamp = stamp or new_access_stamp()


@receiver(post_save, sender=Role)
def _role_saved(sender, instance, created, **kwargs):
    if not created:
        access_changed(roles=[instance.pk])


@receiver(pre_delete, sender=Role)
def _role_deleted(sender, instance, **kwargs):
    access_changed(roles=[instance.pk])


@receiver(post_save, sender=FieldPermission)
@receiver(post_delete, sender=FieldPermission)
def _field_rule_changed(sender, instance, **kwargs):
    access_changed(roles=[instance.role_id])


@receiver(m2m_changed, sender=User.roles.through)
def _user_roles_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:  # user.roles.add/remove/clear/set
        access_changed(users=[instance.pk])
        if isinstance(instance, User):
            # The caller's own object (a service holding it) sees the change at once too.
            forget_cached_access(instance)
    elif action == "pre_clear":  # role.users.clear()
        access_changed(roles=[instance.pk])
    else:  # role.users.add/remove
        access_changed(users=pk_set or ())
