"""Global search provider for sales documents: number, title or customer, within the scope."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from kehu.core.search import SearchHit, SearchProvider, register_search
from kehu.customers.linked_search import linked_search_q


def search_documents(*, user, query: str, limit: int) -> list[SearchHit]:
    from kehu.sales import selectors

    query = query.strip()
    customer = "customer" if len(query) >= 2 else None
    hits: list[SearchHit] = []
    for kind, queryset in (
        (_("Quote"), selectors.quote_list_visible_to(user=user)),
        (_("Contract"), selectors.contract_list_visible_to(user=user)),
        (_("Sales order"), selectors.order_list_visible_to(user=user)),
    ):
        if len(hits) >= limit:
            break
        match = linked_search_q(
            queryset.model, query, fields=("title",), codes=("number",), customer=customer
        )
        for document in queryset.filter(match).order_by("-id")[: limit - len(hits)]:
            hits.append(
                SearchHit(
                    title=f"{document.number} {document.title}".strip(),
                    subtitle=" · ".join(
                        [str(kind), document.customer.name, document.get_status_display()]
                    ),
                    url=document.get_absolute_url(),
                )
            )
    return hits


def register() -> None:
    register_search(
        SearchProvider(
            label=_("Quotes, contracts and orders"),
            permission="sales.view",
            search=search_documents,
        )
    )
