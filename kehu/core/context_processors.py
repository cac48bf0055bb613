from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from kehu.core.permissions import has_perm, registry


def sidebar_for(user) -> list[dict]:
    """The modules and pages ``user`` may see, in menu order; nothing else is shown."""
    groups: dict[str, dict] = {}
    for item in sorted(registry.menu, key=lambda i: i.order):
        if not has_perm(user, f"{item.module}.{item.action}"):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        module = registry.modules[item.module]
        group = groups.setdefault(
            module.code,
            {
                "code": module.code,
                "label": module.label,
                "icon": module.icon,
                "order": module.order,
                "items": [],
            },
        )
        group["items"].append({"label": item.label, "url": url, "icon": item.icon})
    return sorted(groups.values(), key=lambda g: g["order"])


def shell(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from kehu.system.selectors import notification_unread_count
    from kehu.system.services import system_settings_get

    return {
        "sidebar": sidebar_for(user),
        "unread_notifications": notification_unread_count(user=user),
        "company": system_settings_get(),
    }
