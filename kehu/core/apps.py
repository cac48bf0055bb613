from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "kehu.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        from kehu.core.middleware import stamp_session

        user_logged_in.connect(stamp_session, dispatch_uid="kehu.core.stamp_session")

        from kehu.core.models import CustomFieldDefinition
        from kehu.core.reference import register_reference

        register_reference("custom_fields", CustomFieldDefinition)
        # Data migrations write through historical models, past ReferenceManager.
        post_migrate.connect(_reference_renew, sender=self)


def _reference_renew(sender, **kwargs) -> None:
    from kehu.core.reference import reference_changed_all

    reference_changed_all()
