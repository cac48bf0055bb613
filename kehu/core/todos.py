"""The home page's to-do lists: modules register providers (due follow-ups, approvals …)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kehu.core.permissions import has_perm


@dataclass
class TodoProvider:
    label: Any
    permission: str | None
    items: Callable[..., list[dict]]  # (user) -> [{"title", "url", "when"}], already scoped
    empty_text: Any = ""


_providers: list[TodoProvider] = []


def register_todo(provider: TodoProvider) -> None:
    _providers.append(provider)


def todos_for(user) -> list[dict]:
    groups = []
    for provider in _providers:
        if provider.permission and not has_perm(user, provider.permission):
            continue
        groups.append(
            {"label": provider.label, "items": provider.items(user), "empty": provider.empty_text}
        )
    return groups
