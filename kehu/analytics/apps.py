from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _aggregates_fill(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """After an upgrade the stored aggregates start empty: fill them once from the
    documents (the services keep them from then on; ``manage.py aggregates_rebuild``)."""
    from kehu.analytics.aggregates import COUNTED_EXPENSE_STATUSES, aggregates_rebuild
    from kehu.analytics.models import (
        ExpenseFigure,
        OpportunityFigure,
        ProductFigure,
        ReceivableDay,
        SalesFigure,
    )
    from kehu.customers.models import Opportunity
    from kehu.finance.models import ExpenseClaim
    from kehu.sales.models import Contract, Order

    if using != DEFAULT_DB_ALIAS:
        return
    stored = any(model.objects.exists() for model in (SalesFigure, ProductFigure, ReceivableDay))
    documents = Contract._base_manager.exists() or Order._base_manager.exists()
    # Tables added by a later upgrade start empty while the others are filled.
    later = (not OpportunityFigure.objects.exists() and Opportunity.objects.exists()) or (
        not ExpenseFigure.objects.exists()
        and ExpenseClaim.objects.filter(status__in=COUNTED_EXPENSE_STATUSES).exists()
    )
    if (documents and not stored) or later:
        aggregates_rebuild()


class AnalyticsConfig(AppConfig):
    name = "kehu.analytics"
    label = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from kehu.analytics.aggregates import (
            aggregates_customers_tracked,
            aggregates_opportunities_tracked,
        )
        from kehu.analytics.selectors import achievement_stored
        from kehu.core.permissions import MenuItem, register_menu
        from kehu.customers.services import MERGE_TRACKERS, OPPORTUNITY_TRACKERS
        from kehu.hr.selectors import ACHIEVEMENT_STORED

        # The stored aggregates (kehu.analytics.aggregates) answer sales targets and move
        # with a customer merge.
        if achievement_stored not in ACHIEVEMENT_STORED:
            ACHIEVEMENT_STORED.append(achievement_stored)
        if aggregates_customers_tracked not in MERGE_TRACKERS:
            MERGE_TRACKERS.append(aggregates_customers_tracked)
        # The funnel's stored counts move with every change of an opportunity.
        if aggregates_opportunities_tracked not in OPPORTUNITY_TRACKERS:
            OPPORTUNITY_TRACKERS.append(aggregates_opportunities_tracked)
        post_migrate.connect(_aggregates_fill, sender=self)

        register_menu(
            MenuItem("analytics", _("Dashboard"), "analytics:dashboard", "speedometer2", 601),
            MenuItem("analytics", _("Customer value"), "analytics:customer_value", "gem", 602),
            MenuItem("analytics", _("RFM segments"), "analytics:rfm", "grid-3x3-gap", 603),
            MenuItem("analytics", _("Predictions"), "analytics:predictions", "activity", 604),
            MenuItem("analytics", _("Sales forecast"), "analytics:forecast", "graph-up-arrow", 605),
        )
