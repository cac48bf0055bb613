"""Home-page to-dos for HR: probation periods that have run their course."""

from __future__ import annotations

import datetime

from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from kehu.core.todos import TodoProvider, register_todo

PROBATION_MONTHS = 3
LIMIT = 10


def probation_due(user) -> list[dict]:
    from kehu.hr.models import EmployeeStatus
    from kehu.hr.selectors import employee_list_visible_to

    cutoff = timezone.localdate() - datetime.timedelta(days=PROBATION_MONTHS * 30)
    employees = (
        employee_list_visible_to(user=user)
        .filter(status=EmployeeStatus.PROBATION, hire_date__lte=cutoff)
        .order_by("hire_date")[:LIMIT]
    )
    return [
        {
            "title": _("%(name)s: probation since %(date)s")
            % {"name": e.name, "date": formats.date_format(e.hire_date, "SHORT_DATE_FORMAT")},
            "url": e.get_absolute_url(),
            "when": formats.date_format(e.hire_date, "SHORT_DATE_FORMAT"),
        }
        for e in employees
    ]


def register() -> None:
    register_todo(
        TodoProvider(
            label=_("Probation to confirm"),
            permission="hr.change",
            items=probation_due,
            empty_text=_("No probation period is due."),
        )
    )
