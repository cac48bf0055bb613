from __future__ import annotations

from django.conf import settings
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
    # Language names stay in their own language ("English" is never "英语") so anyone can
    # find their way back.
    context: dict = {"language_choices": settings.LANGUAGES}
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return context
    from kehu.hr.selectors import department_names
    from kehu.system.selectors import notification_unread_count
    from kehu.system.services import system_settings_get

    context.update(
        {
            "sidebar": sidebar_for(user),
            "unread_notifications": notification_unread_count(user=user),
            "company": system_settings_get(),
            # Cached names: ``user.department`` would be a query on every page.
            "user_department": department_names().get(user.department_id, ""),
        }
    )
    return context
