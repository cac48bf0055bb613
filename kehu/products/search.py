"""Global search provider for products: code, name, barcode or pinyin initials."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from kehu.core.search import SearchHit, SearchProvider, register_search
from kehu.products.selectors import product_list_for, product_search


def search_products(*, user, query: str, limit: int) -> list[SearchHit]:
    products = product_search(product_list_for(user=user), query).order_by("code")[:limit]
    return [
        SearchHit(
            title=p.name,
            subtitle=" · ".join(filter(None, [p.code, p.specification])),
            url=p.get_absolute_url(),
        )
        for p in products
    ]


def register() -> None:
    register_search(
        SearchProvider(label=_("Products"), permission="products.view", search=search_products)
    )
