from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HrConfig(AppConfig):
    name = "kehu.hr"
    label = "hr"
    verbose_name = _("Human resources")

    def ready(self) -> None:
        from kehu.core.permissions import MenuItem, register_menu
        from kehu.hr import search, todos

        register_menu(
            MenuItem("hr", _("Employees"), "hr:employee_list", "person-vcard", 700),
            MenuItem("hr", _("Departments"), "hr:department_list", "diagram-3", 701),
            MenuItem("hr", _("Positions"), "hr:position_list", "briefcase", 702),
            MenuItem("hr", _("Organisation chart"), "hr:org_chart", "diagram-2", 703),
            MenuItem("hr", _("Sales targets"), "hr:target_list", "bullseye", 704),
            MenuItem(
                "hr", _("Resignation handover"), "hr:handover", "arrow-left-right", 705, "assign"
            ),
        )
        search.register()
        todos.register()

        from kehu.core.reference import register_reference
        from kehu.hr.models import Department

        register_reference("departments", Department)
