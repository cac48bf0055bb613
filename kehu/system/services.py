"""System management writes: operation log, notifications, users, roles, dictionaries, settings."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.forms import PasswordResetForm
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import send_mass_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.audit import current_ip, diff, snapshot
from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.core.fields import FieldAccess
from kehu.core.permissions import all_permission_codes, require_perm, user_permissions
from kehu.core.reference import reference_value
from kehu.core.scope import SCOPE_RANK, DataScope, scope_q, user_data_scope
from kehu.core.services import model_create, versioned_update
from kehu.system.access import access_changed
from kehu.system.models import (
    AuditLog,
    Dictionary,
    DictionaryItem,
    FieldPermission,
    Notification,
    Role,
    SystemSettings,
    User,
)

# --- operation log --------------------------------------------------------------------------


def audit_log_record(
    *,
    user,
    action: str,
    obj=None,
    changes: dict[str, Any] | None = None,
    note: str = "",
    username: str = "",
    model: str = "",
    ip_address: str | None = None,
) -> AuditLog:
    """Append one row to the operation log. The only way rows get there."""
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return AuditLog.objects.create(
        user=user if authenticated else None,
        username=username or (user.get_username() if authenticated else ""),
        action=action,
        model=obj._meta.label_lower if obj is not None else model,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=changes or {},
        ip_address=ip_address or current_ip.get(),
        note=note[:500],
    )


def audit_log_record_many(
    *, user, action: str, objects: Iterable[Any], changes: Iterable[dict[str, Any]] | None = None
) -> int:
    """One operation-log row per object, as ``audit_log_record`` writes them, in one insert.

    For bulk writers (imports): the same rows, without a query per object.
    """
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    username = user.get_username() if authenticated else ""
    address = current_ip.get()
    objects = list(objects)
    all_changes = list(changes) if changes is not None else [{} for _ in objects]
    rows = [
        AuditLog(
            user=user if authenticated else None,
            username=username,
            action=action,
            model=obj._meta.label_lower,
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            changes=change or {},
            ip_address=address,
        )
        for obj, change in zip(objects, all_changes, strict=True)
    ]
    AuditLog.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def audit_log_record_rows(
    *, user, action: str, model: str, rows: Iterable[tuple[str, str, dict[str, Any]]]
) -> int:
    """``audit_log_record_many`` for bulk writers that hold ids, not instances (imports of
    100,000 customers): one row per (object id, object text, changes), written as prepared
    tuples in one statement."""
    from kehu.core.imports import db_datetime, db_json, model_columns, table_rows_insert

    authenticated = user is not None and getattr(user, "is_authenticated", False)
    head = (
        db_datetime(timezone.now()),
        user.pk if authenticated else None,
        user.get_username() if authenticated else "",
        action,
        model,
    )
    tail = (current_ip.get(), "")
    names = ["at", "user", "username", "action", "model", "object_id", "object_repr"]
    return table_rows_insert(
        AuditLog._meta.db_table,
        model_columns(AuditLog, [*names, "changes", "ip_address", "note"]),
        [
            (*head, object_id, text[:200], db_json(changes or {}), *tail)
            for object_id, text, changes in rows
        ],
    )


# --- notifications --------------------------------------------------------------------------


def notification_send(
    *,
    recipients: Iterable[User],
    title: str,
    body: str = "",
    url: str = "",
    level: str = "info",
    email: bool = False,
) -> list[Notification]:
    """Notify users in the app and, when asked, by e-mail once the transaction commits."""
    recipients = [r for r in recipients if r is not None and r.is_active]
    notes = Notification.objects.bulk_create(
        [
            Notification(recipient=r, title=title, body=body, url=url, level=level)
            for r in recipients
        ]
    )
    if email:
        addresses = [r.email for r in recipients if r.email]
        if addresses:
            transaction.on_commit(
                # One message per recipient: a shared To line would show everyone's address.
                lambda: send_mass_mail(
                    [(title, body, None, [address]) for address in addresses], fail_silently=True
                )
            )
    return notes


def notification_mark_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (all of them when ``ids`` is None)."""
    queryset = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    return queryset.update(read_at=timezone.now())


# --- users ----------------------------------------------------------------------------------


def _check_grantable(*, actor: User, roles: Iterable[Role], department=None) -> None:
    """Nobody hands out more than they hold: no role with a permission or a data scope
    wider than the actor's own, no user placed in a department outside the actor's scope."""
    if actor.is_superuser:
        return
    held = user_permissions(actor)
    actor_scope = user_data_scope(actor)
    for role in roles:
        if not set(role.permissions or []) <= held or (
            SCOPE_RANK[DataScope(role.data_scope)] > SCOPE_RANK[actor_scope]
        ):
            raise ServiceError(
                _("You cannot grant the role “%(role)s”: it has rights you do not hold.")
                % {"role": role.name},
                field="roles",
            )
    if department is not None and actor_scope != DataScope.ALL:
        from kehu.hr.models import Department

        allowed = Department.objects.filter(scope_q(Department, actor, prefix=""))
        if actor_scope == DataScope.OWN or not allowed.filter(pk=department.pk).exists():
            raise ServiceError(
                _("You may only place users in departments within your data scope."),
                field="department",
            )


def _check_manageable(*, actor: User, user: User) -> None:
    """Nobody edits, or sets the password of, someone holding rights they do not hold:
    changing that person's e-mail or password would be a way into those rights."""
    if actor.is_superuser or user.pk == actor.pk:
        return
    if user.is_superuser:
        raise PermissionRefused(_("Only a superuser may change a superuser."))
    held = user_permissions(actor)
    wider = not user_permissions(user) <= held or (
        SCOPE_RANK[user_data_scope(user)] > SCOPE_RANK[user_data_scope(actor)]
    )
    if wider:
        raise PermissionRefused(
            _("%(user)s holds rights you do not hold; ask someone who holds them.") % {"user": user}
        )


def user_create(
    *, actor: User, data: dict[str, Any], roles: Iterable[Role], password: str | None = None
) -> User:
    require_perm(actor, "system.add")
    roles = list(roles)
    _check_grantable(actor=actor, roles=roles, department=data.get("department"))
    with transaction.atomic():
        user = model_create(
            model=User, user=actor, data={**data, "password": "!"}, m2m={"roles": roles}
        )
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def user_update(
    *, actor: User, user: User, expected_version: int, data: dict[str, Any], roles=None
) -> User:
    require_perm(actor, "system.change")
    if user.pk == actor.pk and data.get("is_active") is False:
        raise ServiceError(_("You cannot deactivate your own account."), field="is_active")
    _check_manageable(actor=actor, user=user)
    m2m = {"roles": list(roles)} if roles is not None else None
    added_roles = (
        [r for r in roles if r.pk not in {x.pk for x in user.roles.all()}] if roles else []
    )
    new_department = data.get("department", user.department)
    _check_grantable(
        actor=actor,
        roles=added_roles,
        department=new_department if new_department != user.department else None,
    )
    return versioned_update(
        instance=user, user=actor, expected_version=expected_version, data=data, m2m=m2m
    )


def user_set_active(
    *,
    actor: User,
    user: User,
    active: bool,
    expected_version: int,
    permission: str = "system.change",
) -> User:
    # ``permission``: another module's service that has already checked its own right
    # (HR's resignation handover deactivates the leaver's login with hr.assign).
    require_perm(actor, permission)
    if user.pk == actor.pk and not active:
        raise ServiceError(_("You cannot deactivate your own account."), field="is_active")
    return versioned_update(
        instance=user,
        user=actor,
        expected_version=expected_version,
        data={"is_active": active},
        action="status",
    )


def user_set_password(*, actor: User, user: User, password: str) -> None:
    """An administrator sets a user's password; validated by Django's validators."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    require_perm(actor, "system.change")
    _check_manageable(actor=actor, user=user)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ServiceError(" ".join(exc.messages), field="password") from exc
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_log_record(
            user=actor, action="change", obj=user, changes={"password": ["***", "***"]}
        )


def user_send_password_reset(*, actor: User, user: User, request=None) -> None:
    require_perm(actor, "system.change")
    if not user.email:
        raise ServiceError(_("This user has no e-mail address."), field="email")

    class _OneUserResetForm(PasswordResetForm):
        # Django's form skips users without a usable password, but a new user invited to
        # "set a password by e-mail" has none yet; and only this user should get the mail.
        def get_users(self, email):
            return [user] if user.is_active else []

    form = _OneUserResetForm({"email": user.email})
    form.is_valid()
    form.save(request=request, use_https=bool(request and request.is_secure()))


# --- roles ----------------------------------------------------------------------------------


def _clean_permissions(permissions: Iterable[str]) -> list[str]:
    known = set(all_permission_codes())
    chosen = sorted(set(permissions))
    unknown = [code for code in chosen if code not in known]
    if unknown:
        raise ServiceError(
            _("Unknown permission: %(codes)s") % {"codes": ", ".join(unknown)}, field="permissions"
        )
    return chosen


def role_create(*, actor: User, data: dict[str, Any]) -> Role:
    require_perm(actor, "system.add")
    data = {**data, "permissions": _clean_permissions(data.get("permissions", []))}
    _check_grantable(actor=actor, roles=[Role(**data)])
    return model_create(model=Role, user=actor, data=data)


def role_update(*, actor: User, role: Role, expected_version: int, data: dict[str, Any]) -> Role:
    require_perm(actor, "system.change")
    if "permissions" in data:
        data = {**data, "permissions": _clean_permissions(data["permissions"])}
    _check_grantable(
        actor=actor,
        roles=[
            Role(
                name=role.name,
                data_scope=data.get("data_scope", role.data_scope),
                permissions=data.get("permissions", role.permissions),
            )
        ],
    )
    with transaction.atomic():
        role = versioned_update(
            instance=role, user=actor, expected_version=expected_version, data=data
        )
        # versioned_update writes with UPDATE (no post_save): the holders' cached access goes.
        access_changed(roles=[role.pk])
    return role


def role_delete(*, actor: User, role: Role) -> None:
    require_perm(actor, "system.delete")
    if role.is_system:
        raise ServiceError(_("Built-in roles cannot be deleted."))
    if role.users.exists():
        raise ServiceError(_("This role is still held by users; remove it from them first."))
    with transaction.atomic():
        audit_log_record(user=actor, action="delete", obj=role, changes=diff(snapshot(role), {}))
        role.delete()


def _check_field_rules_grantable(*, actor: User, model: str, rules: dict[str, str]) -> None:
    """No role is given more of a field than the actor has: someone who sees salaries
    masked cannot unmask them for a role, their own included."""
    if actor.is_superuser:
        return
    from django.apps import apps

    from kehu.core.fields import ACCESS_RANK, field_policy_for

    try:
        model_class = apps.get_model(model)
    except (LookupError, ValueError) as exc:
        raise ServiceError(_("Unknown model."), field="model") from exc
    own = field_policy_for(actor, model_class)
    for field_name, access in rules.items():
        mine = own.get(field_name, FieldAccess.EDIT)
        if ACCESS_RANK[FieldAccess(access)] > ACCESS_RANK[FieldAccess(mine)]:
            raise ServiceError(
                _("You cannot grant more access to “%(field)s” than you have.")
                % {"field": field_name},
                field=field_name,
            )


def role_set_field_permissions(
    *, actor: User, role: Role, model: str, rules: dict[str, str]
) -> None:
    """Replace the role's field rules for one model; fields absent from ``rules`` revert."""
    require_perm(actor, "system.change")
    valid = set(FieldAccess.values)
    bad = [f for f, access in rules.items() if access not in valid]
    if bad:
        raise ServiceError(_("Unknown field access."), field=bad[0])
    _check_field_rules_grantable(actor=actor, model=model, rules=rules)
    with transaction.atomic():
        before = dict(
            FieldPermission.objects.filter(role=role, model=model).values_list("field", "access")
        )
        FieldPermission.objects.filter(role=role, model=model).delete()
        FieldPermission.objects.bulk_create(
            [FieldPermission(role=role, model=model, field=f, access=a) for f, a in rules.items()]
        )
        access_changed(roles=[role.pk])  # bulk_create sends no post_save
        changes = diff(
            {f"{model}.{k}": v for k, v in before.items()},
            {f"{model}.{k}": v for k, v in rules.items()},
        )
        if changes:
            audit_log_record(user=actor, action="change", obj=role, changes=changes)


# --- dictionaries ---------------------------------------------------------------------------


def dictionary_item_create(
    *, actor: User, dictionary: Dictionary, data: dict[str, Any]
) -> DictionaryItem:
    require_perm(actor, "system.change")
    return model_create(model=DictionaryItem, user=actor, data={**data, "dictionary": dictionary})


def dictionary_item_update(
    *, actor: User, item: DictionaryItem, expected_version: int, data: dict[str, Any]
) -> DictionaryItem:
    require_perm(actor, "system.change")
    data = {k: v for k, v in data.items() if k != "dictionary"}
    return versioned_update(instance=item, user=actor, expected_version=expected_version, data=data)


# --- settings -------------------------------------------------------------------------------


def system_settings_get() -> SystemSettings:
    """The company settings row: a copy of this process's cached one (kehu.core.reference)."""
    return copy.copy(reference_value("settings", "row", _system_settings_row))


def _system_settings_row() -> SystemSettings:
    settings_row, _created = SystemSettings.objects.get_or_create(pk=1)
    return settings_row


def system_settings_update(
    *, actor: User, expected_version: int, data: dict[str, Any]
) -> SystemSettings:
    require_perm(actor, "system.change")
    instance = system_settings_get()
    stored = None
    logo = data.get("logo")
    if logo is False:  # the "clear" box of the file input
        data = {**data, "logo": ""}
    elif isinstance(logo, UploadedFile):
        # versioned_update writes with UPDATE, which never stores files: store it first.
        field = SystemSettings._meta.get_field("logo")
        stored = field.storage.save(field.generate_filename(instance, logo.name or "logo"), logo)
        data = {**data, "logo": stored}
    elif "logo" in data:  # the file already stored (or none): unchanged
        data = {k: v for k, v in data.items() if k != "logo"}
    try:
        return versioned_update(
            instance=instance, user=actor, expected_version=expected_version, data=data
        )
    except Exception:
        if stored:
            SystemSettings._meta.get_field("logo").storage.delete(stored)
        raise


def user_bulk_set_active(*, actor: User, users: Iterable[User], active: bool) -> int:
    """Activate or deactivate several users at once; all or nothing."""
    require_perm(actor, "system.change")
    users = list(users)
    if not active and any(u.pk == actor.pk for u in users):
        raise ServiceError(_("You cannot deactivate your own account."), field="is_active")
    with transaction.atomic():
        for user in users:
            if user.is_active != active:
                user_set_active(
                    actor=actor, user=user, active=active, expected_version=user.version
                )
    return len(users)


def role_save(
    *,
    actor: User,
    data: dict[str, Any],
    field_rules: dict[str, dict[str, str]],
    role: Role | None = None,
    expected_version: int | None = None,
) -> Role:
    """Create or update a role together with its field rules (model label → field → access)."""
    with transaction.atomic():
        if role is None:
            role = role_create(actor=actor, data=data)
        else:
            role = role_update(
                actor=actor, role=role, expected_version=expected_version or 0, data=data
            )
        for model, rules in field_rules.items():
            role_set_field_permissions(actor=actor, role=role, model=model, rules=rules)
    return role
