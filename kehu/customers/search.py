"""Global search providers: customers and contacts, both through the user's data scope."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from kehu.core.search import SearchHit, SearchProvider, register_search
from kehu.customers.linked_search import linked_search_q
from kehu.customers.models import Contact
from kehu.customers.selectors import contact_list_visible_to, customer_search


def search_customers(*, user, query: str, limit: int) -> list[SearchHit]:
    customers = customer_search(user=user, query=query).order_by("-id")[:limit]
    return [
        SearchHit(
            title=c.name,
            subtitle=" · ".join(filter(None, [c.code, str(c.owner or "")])),
            url=c.get_absolute_url(),
        )
        for c in customers
    ]


def search_contacts(*, user, query: str, limit: int) -> list[SearchHit]:
    # Names only: matching numbers would reveal values a role sees masked, and a job title
    # (经理) is no one's name; names have a substring index (2,000,000 contacts: 0.5 s with
    # titles, which none has).
    contacts = (
        contact_list_visible_to(user=user)
        .filter(linked_search_q(Contact, query, fields=("name",), customer=None))
        .order_by("-id")[:limit]
    )
    return [
        SearchHit(
            title=c.name,
            subtitle=" · ".join(filter(None, [c.title, c.customer.name])),
            url=c.customer.get_absolute_url(),
        )
        for c in contacts
    ]


def register() -> None:
    register_search(
        SearchProvider(label=_("Customers"), permission="customers.view", search=search_customers)
    )
    register_search(
        SearchProvider(label=_("Contacts"), permission="customers.view", search=search_contacts)
    )
