from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from kehu.core.forms import KehuModelForm
from kehu.hr.models import Department
from kehu.system.models import User


class DepartmentForm(KehuModelForm):
    class Meta:
        model = Department
        fields = ["name", "code", "parent", "manager", "sort_order", "is_active"]

    def __init__(self, *args, parents=None, **kwargs):
        super().__init__(*args, **kwargs)
        parent = self.fields["parent"]
        parent.queryset = parents if parents is not None else Department.objects.order_by("path")
        parent.label_from_instance = lambda d: f"{'— ' * d.depth}{d.name}"
        parent.empty_label = _("(top level)")
        self.fields["manager"].queryset = User.objects.filter(is_active=True).order_by("username")
