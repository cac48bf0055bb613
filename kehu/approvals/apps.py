from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApprovalsConfig(AppConfig):
    name = "kehu.approvals"
    label = "approvals"
    verbose_name = _("Approvals")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from kehu.core.permissions import MenuItem, register_menu

        from . import todos

        todos.register()
        post_migrate.connect(_seed_after_migrate, sender=self)
        # The inbox sits with the documents it approves; everyone who may approve sales
        # documents sees it. Finance documents will want the same entry under "finance"
        # (the top-bar icon already shows for anyone holding an approve permission).
        register_menu(
            MenuItem(
                "sales",
                _("Awaiting my approval"),
                "approvals:inbox",
                "check2-square",
                205,
                "approve",
            ),
            MenuItem("sales", _("Approval requests"), "approvals:request_list", "list-check", 206),
            MenuItem("system", _("Approval rules"), "approvals:rule_list", "signpost-split", 907),
        )


def _seed_after_migrate(sender, using="default", **kwargs) -> None:
    from kehu.approvals.defaults import approval_rules_seed

    approval_rules_seed()
