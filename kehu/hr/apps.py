from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HrConfig(AppConfig):
    name = "kehu.hr"
    label = "hr"
    verbose_name = _("Human resources")

    def ready(self) -> None:
        from kehu.core.permissions import MenuItem, register_menu

        register_menu(
            MenuItem("hr", _("Departments"), "hr:department_list", "diagram-3", 701),
        )
