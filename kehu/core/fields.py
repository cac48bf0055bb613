"""Field permissions: per role and field, hidden / masked / read / edit.

A model lists its sensitive fields and how they are masked; roles may narrow any field.
Pages, the API and exports all read ``field_policy_for`` so they can never disagree.
"""

from __future__ import annotations

import re

from django.db import models
from django.utils.translation import gettext_lazy as _


class FieldAccess(models.TextChoices):
    HIDDEN = "hidden", _("Hidden")
    MASKED = "masked", _("Masked")
    READ = "read", _("Read only")
    EDIT = "edit", _("Edit")


ACCESS_RANK: dict[str, int] = {
    FieldAccess.HIDDEN: 0,
    FieldAccess.MASKED: 1,
    FieldAccess.READ: 2,
    FieldAccess.EDIT: 3,
}


def mask_phone(value: str) -> str:
    """138****5678: keep the first three and last four digits."""
    if not value:
        return value
    digits = re.sub(r"\D", "", value)
    if len(digits) < 7:
        return "*" * len(value)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_email(value: str) -> str:
    if not value or "@" not in value:
        return value
    local, domain = value.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_id_number(value: str) -> str:
    if not value or len(value) < 8:
        return "*" * len(value or "")
    return f"{value[:4]}{'*' * (len(value) - 8)}{value[-4:]}"


def mask_text(value: str) -> str:
    return "****" if value else value


MASKERS = {"phone": mask_phone, "email": mask_email, "id_number": mask_id_number, "text": mask_text}


def model_label(model) -> str:
    return model._meta.label_lower


def _sensitive_spec(model, name: str) -> tuple[str, str]:
    """(masker, default access) of a sensitive field.

    ``sensitive_fields`` maps a field to its masker name (``"phone"``: masked by default)
    or to ``(masker, default_access)`` when the field needs another default, e.g.
    ``{"base_salary": ("text", "hidden")}`` for a value most roles must not see at all.
    """
    spec = getattr(model, "sensitive_fields", {}).get(name, "text")
    if isinstance(spec, tuple):
        return spec[0], spec[1]
    return spec, FieldAccess.MASKED


def sensitive_default_access(model, name: str) -> str:
    """What a role without a rule gets on ``name``: edit unless the field is sensitive."""
    if name not in getattr(model, "sensitive_fields", {}):
        return FieldAccess.EDIT
    return _sensitive_spec(model, name)[1]


def field_policy_for(user, model) -> dict[str, str]:
    """Field name → access for ``user`` on ``model``; fields not listed are editable.

    The model's ``sensitive_fields`` (``{"phone": "phone"}``: field → masker) are masked
    (or get the default they declare) unless a role grants more; role rules combine as
    the widest.
    """
    cache = getattr(user, "_kehu_field_policy", None)
    if cache is None:
        cache = {}
        if user is not None:
            user._kehu_field_policy = cache
    label = model_label(model)
    if label in cache:
        return cache[label]
    sensitive = getattr(model, "sensitive_fields", {})
    policy: dict[str, str] = {name: _sensitive_spec(model, name)[1] for name in sensitive}
    if user is not None and user.is_authenticated and not user.is_superuser:
        from kehu.system.access import access_for  # cached; see kehu/system/access.py

        access = access_for(user)
        rules: dict[str, dict[int, str]] = access["field_rules"].get(label, {})
        role_count = access["role_count"]
        for field_name, by_role in rules.items():
            candidates = list(by_role.values())
            if len(by_role) < role_count:
                # A role without a rule for this field grants the field's default access,
                # so one role hiding a field cannot narrow what another role shows.
                candidates.append(policy.get(field_name, FieldAccess.EDIT))
            policy[field_name] = max(candidates, key=lambda a: ACCESS_RANK[FieldAccess(a)])
    elif user is not None and user.is_superuser:
        policy = {}
    cache[label] = policy
    return policy


def apply_field_policy(model, policy: dict[str, str], field_name: str, value):
    """The value as this policy shows it: None when hidden, masked when masked."""
    access = policy.get(field_name, FieldAccess.EDIT)
    if access == FieldAccess.HIDDEN:
        return None
    if access == FieldAccess.MASKED and value not in (None, ""):
        masker = MASKERS[_sensitive_spec(model, field_name)[0]]
        return masker(str(value))
    return value


def editable_fields(policy: dict[str, str], fields) -> list[str]:
    return [f for f in fields if policy.get(f, FieldAccess.EDIT) == FieldAccess.EDIT]
