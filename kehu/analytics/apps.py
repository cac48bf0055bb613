from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "kehu.analytics"
    label = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from kehu.core.permissions import MenuItem, register_menu

        register_menu(
            MenuItem("analytics", _("Dashboard"), "analytics:dashboard", "speedometer2", 601),
            MenuItem("analytics", _("Customer value"), "analytics:customer_value", "gem", 602),
            MenuItem("analytics", _("RFM segments"), "analytics:rfm", "grid-3x3-gap", 603),
            MenuItem("analytics", _("Predictions"), "analytics:predictions", "activity", 604),
            MenuItem("analytics", _("Sales forecast"), "analytics:forecast", "graph-up-arrow", 605),
        )
