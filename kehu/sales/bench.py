"""Sales benchmark cases: the contract list (salesperson and manager), a contract's page,
the API contract list."""

from __future__ import annotations

from django.utils.translation import gettext as _

from kehu.core.bench import BenchContext, Case, deep_page, register
from kehu.sales.models import Contract
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
    return cases
