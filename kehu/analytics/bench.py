"""Analytics benchmark cases: the dashboard for a sales manager and for scope all."""

from __future__ import annotations

from django.utils.translation import gettext as _

from kehu.core.bench import BenchContext, Case, register


@register
def dashboard_cases(ctx: BenchContext) -> list[Case]:
    # Salespeople have no analytics permission: a sales manager (department) and scope all.
    cases = []
    if ctx.dept_manager is not None:
        cases.append(
            Case(
                "dashboard",
                _("Dashboard, sales manager"),
                group="analytics",
                user=ctx.dept_manager,
                url="/analytics/",
            )
        )
    if ctx.manager is not None:
        cases.append(
            Case(
                "all_dashboard",
                _("Dashboard, scope all"),
                group="analytics",
                user=ctx.manager,
                url="/analytics/",
            )
        )
    return cases
