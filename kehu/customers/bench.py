"""Customer benchmark cases: list, search, 360° page, the API list, creating a customer.

Search terms come from the salesperson's oldest customer with a mobile number (a demo
company, the same at every generated size), so runs at different sizes search for the same
strings. The import and export cases of 100,000 customers register here too, from the
module that implements them (``kehu.core.bench.register``).
"""

from __future__ import annotations

import uuid

from django.utils.translation import gettext as _

from kehu.core.bench import BenchContext, Case, deep_page, register
from kehu.core.exceptions import ServiceError
from kehu.customers.bench_io import io_cases
from kehu.customers.models import Customer
from kehu.customers.selectors import customer_list_visible_to

TABLE = Customer._meta.db_table


def sample_customer(user) -> Customer:
    sample = (
        Customer.objects.filter(owner=user, in_pool=False)
        .exclude(mobile_digits="")
        .order_by("pk")
        .first()
    )
    if sample is None:
        raise ServiceError(_("%(user)s owns no customers to benchmark.") % {"user": user})
    return sample


def _new_customer(number: int) -> dict:
    # A name nobody else has: the duplicate check runs but finds nothing.
    return {"name": f"基准客户 {uuid.uuid4().hex[:12]} {number}", "kind": "company"}


@register
def customer_cases(ctx: BenchContext) -> list[Case]:
    user = ctx.user
    sample = sample_customer(user)
    name = sample.name_normalized or sample.name
    cn3 = name[2:5] if len(name) >= 5 else name[:3]
    cn2 = name[2:4] if len(name) >= 4 else name[:2]

    def page(key, label, who, url, *, listing=True):
        return Case(
            key, label, group="customers", user=who, url=url, bare_sql=TABLE if listing else ""
        )

    deep = deep_page(customer_list_visible_to(user=user), ctx.deep_page)
    cases = [
        page("list_first", _("Customer list, first page"), user, "/customers/"),
        page(
            "list_deep",
            _("Customer list, page %d") % deep,
            user,
            f"/customers/?page={deep}",
        ),
        page(
            "list_sorted",
            _("Customer list sorted by next follow-up"),
            user,
            "/customers/?sort=next_followup_at",
        ),
        page(
            "list_sorted_desc",
            _("Customer list sorted by next follow-up, descending"),
            user,
            "/customers/?sort=-next_followup_at",
        ),
        page("search_cn3", _("Search, Chinese substring (3 chars)"), user, f"/customers/?q={cn3}"),
        page("search_cn2", _("Search, Chinese substring (2 chars)"), user, f"/customers/?q={cn2}"),
        page(
            "search_initials",
            _("Search, pinyin initials"),
            user,
            f"/customers/?q={sample.name_initials[:4]}",
        ),
        page(
            "search_phone",
            _("Search, last 8 phone digits"),
            user,
            f"/customers/?q={sample.mobile_digits[-8:]}",
        ),
        page("detail", _("Customer 360° page"), user, f"/customers/{sample.pk}/", listing=False),
        Case(
            "api_customers",
            _("API customer list, first page"),
            group="customers",
            user=user,
            url="/api/v1/customers/",
            api=True,
            bare_sql=TABLE,
        ),
        Case(
            "api_customers_search",
            _("API customer search, Chinese substring"),
            group="customers",
            user=user,
            url=f"/api/v1/customers/?search={cn3}",
            api=True,
            bare_sql=TABLE,
        ),
        Case(
            "create_customer",
            _("Create a customer (API)"),
            group="customers",
            user=user,
            url="/api/v1/customers/",
            method="post",
            data=_new_customer,
            api=True,
        ),
    ]
    manager = ctx.manager
    if manager is not None:
        deep_all = deep_page(customer_list_visible_to(user=manager), ctx.deep_page_all)
        cases += [
            page("all_list_first", _("All customers, first page"), manager, "/customers/"),
            page(
                "all_list_deep",
                _("All customers, page %d") % deep_all,
                manager,
                f"/customers/?page={deep_all}",
            ),
            page(
                "all_list_owner",
                _("All customers filtered by owner"),
                manager,
                f"/customers/?owner={user.pk}",
            ),
            page(
                "all_list_sorted",
                _("All customers sorted by name"),
                manager,
                "/customers/?sort=name",
            ),
            page(
                "all_list_sorted_fu",
                _("All customers sorted by next follow-up"),
                manager,
                "/customers/?sort=next_followup_at",
            ),
            page(
                "all_search_cn3",
                _("All customers, Chinese substring"),
                manager,
                f"/customers/?q={cn3}",
            ),
            page(
                "all_detail",
                _("Customer 360° page"),
                manager,
                f"/customers/{sample.pk}/",
                listing=False,
            ),
            Case(
                "api_customers_all",
                _("API customer list, scope all"),
                group="customers",
                user=manager,
                url="/api/v1/customers/",
                api=True,
                bare_sql=TABLE,
            ),
        ]
    return cases


# The import and export cases live with their measurement code.
register(io_cases)
