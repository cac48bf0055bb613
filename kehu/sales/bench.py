"""Sales benchmark cases: the contract list (salesperson and manager), a contract's page,
the API contract list, and searches of contracts, orders and the opportunity board by a
customer's name or a contract's number (kehu/customers/linked_search.py)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from kehu.core.bench import BenchContext, Case, deep_page, register
from kehu.sales.models import Contract, Order
from kehu.sales.selectors import contract_list_visible_to

TABLE = Contract._meta.db_table


def _page(key, label, user, url, *, listing=True) -> Case:
    return Case(key, label, group="sales", user=user, url=url, bare_sql=TABLE if listing else "")


@register
def contract_cases(ctx: BenchContext) -> list[Case]:
    user = ctx.user
    # The salesperson's first contract: a demo one, the same at every generated size.
    sample = contract_list_visible_to(user=user).filter(owner=user).order_by("pk").first()
    deep = deep_page(contract_list_visible_to(user=user), ctx.deep_page)
    cases = [
        _page("contract_list_first", _("Contract list, first page"), user, "/sales/contracts/"),
        _page(
            "contract_list_deep",
            _("Contract list, page %d") % deep,
            user,
            f"/sales/contracts/?page={deep}",
        ),
        Case(
            "api_contracts",
            _("API contract list, first page"),
            group="sales",
            user=user,
            url="/api/v1/contracts/",
            api=True,
            bare_sql=TABLE,
        ),
    ]
    if sample is not None:
        cases.append(
            _page(
                "contract_detail",
                _("Contract page"),
                user,
                f"/sales/contracts/{sample.pk}/",
                listing=False,
            )
        )
        cases += _search_cases(user, sample, "")
    manager = ctx.manager
    if manager is not None:
        deep_all = deep_page(contract_list_visible_to(user=manager), ctx.deep_page_all)
        cases += [
            _page(
                "all_contract_list_first",
                _("All contracts, first page"),
                manager,
                "/sales/contracts/",
            ),
            _page(
                "all_contract_list_deep",
                _("All contracts, page %d") % deep_all,
                manager,
                f"/sales/contracts/?page={deep_all}",
            ),
            _page(
                "all_contract_list_owner",
                _("All contracts filtered by owner"),
                manager,
                f"/sales/contracts/?owner={user.pk}",
            ),
            Case(
                "api_contracts_all",
                _("API contract list, scope all"),
                group="sales",
                user=manager,
                url="/api/v1/contracts/",
                api=True,
                bare_sql=TABLE,
            ),
        ]
        if sample is not None:
            cases.append(
                _page(
                    "all_contract_detail",
                    _("Contract page"),
                    manager,
                    f"/sales/contracts/{sample.pk}/",
                    listing=False,
                )
            )
            cases += _search_cases(manager, sample, "all_")
    return cases


def _search_cases(user, sample: Contract, prefix: str) -> list[Case]:
    """Searches for the sample contract's customer (four characters of its name: a few
    customers at any size) and for its number."""
    name = sample.customer.name
    term = name[2:6] if len(name) >= 6 else name
    return [
        _page(
            f"{prefix}contract_search_customer",
            _("Contracts, searched by customer"),
            user,
            f"/sales/contracts/?q={term}",
        ),
        _page(
            f"{prefix}contract_search_number",
            _("Contracts, searched by number"),
            user,
            f"/sales/contracts/?q={sample.number}",
        ),
        Case(
            f"{prefix}order_search_customer",
            _("Orders, searched by customer"),
            group="sales",
            user=user,
            url=f"/sales/orders/?q={term}",
            bare_sql=Order._meta.db_table,
        ),
        Case(
            f"{prefix}board_search_customer",
            _("Opportunity board, searched by customer"),
            group="sales",
            user=user,
            url=f"/customers/opportunities/?q={term}",
        ),
    ]
