from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FinanceConfig(AppConfig):
    name = "kehu.finance"
    label = "finance"
    verbose_name = _("Finance")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from kehu.core.permissions import MenuItem, register_menu

        from . import hooks

        hooks.register()
        post_migrate.connect(_seed_after_migrate, sender=self)
        register_menu(
            MenuItem("finance", _("Receivables"), "finance:reconciliation", "journal-check", 301),
            MenuItem("finance", _("Payments"), "finance:payment_list", "cash-stack", 302),
            MenuItem("finance", _("Invoices"), "finance:invoice_list", "receipt", 303),
            MenuItem("finance", _("Refunds"), "finance:refund_list", "arrow-counterclockwise", 304),
            MenuItem("finance", _("Expense claims"), "finance:expense_list", "wallet2", 305),
            MenuItem("finance", _("Receivables aging"), "finance:aging", "hourglass-split", 306),
            MenuItem("finance", _("Reports"), "finance:reports", "bar-chart", 307),
        )


def _seed_after_migrate(sender, using="default", **kwargs) -> None:
    from kehu.finance.defaults import finance_approval_rules_seed

    finance_approval_rules_seed()
