from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApprovalsConfig(AppConfig):
    name = "kehu.approvals"
    label = "approvals"
    verbose_name = _("Approvals")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(_seed_after_migrate, sender=self)


def _seed_after_migrate(sender, using="default", **kwargs) -> None:
    from kehu.approvals.defaults import approval_rules_seed

    approval_rules_seed()
