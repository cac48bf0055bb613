from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "kehu.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from kehu.core.middleware import stamp_session

        user_logged_in.connect(stamp_session, dispatch_uid="kehu.core.stamp_session")

        from kehu.core.models import CustomFieldDefinition
        from kehu.core.reference import register_reference

        register_reference("custom_fields", CustomFieldDefinition)
