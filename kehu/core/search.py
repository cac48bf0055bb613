"""Global search: modules register providers; each searches only what the user may see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kehu.core.permissions import has_perm


@dataclass
class SearchHit:
    title: str
    subtitle: str
    url: str


@dataclass
class SearchProvider:
    label: Any
    permission: str
    search: Callable[..., list[SearchHit]]  # (user, query, limit) -> hits, already scoped


_providers: list[SearchProvider] = []


def register_search(provider: SearchProvider) -> None:
    _providers.append(provider)


def search_all(*, user, query: str, limit: int = 8) -> list[dict]:
    groups = []
    for provider in _providers:
        if not has_perm(user, provider.permission):
            continue
        hits = provider.search(user=user, query=query, limit=limit)
        if hits:
            groups.append({"label": provider.label, "hits": hits})
    return groups
