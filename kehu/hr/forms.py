from __future__ import annotations

from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kehu.core.fields import FieldAccess, field_policy_for
from kehu.core.forms import KehuForm, KehuModelForm
from kehu.hr.models import Department, Employee, EmployeeStatus, Position, TargetKind
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


class PositionForm(KehuModelForm):
    class Meta:
        model = Position
        fields = ["name", "department", "level", "description", "is_active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        department = self.fields["department"]
        department.queryset = Department.objects.filter(is_active=True).order_by("path")
        department.label_from_instance = lambda d: f"{'— ' * d.depth}{d.name}"


def _department_field(field) -> None:
    field.queryset = Department.objects.filter(is_active=True).order_by("path")
    field.label_from_instance = lambda d: f"{'— ' * d.depth}{d.name}"


class EmployeeForm(KehuModelForm):
    """Fields the actor may not edit (policy: hidden, masked, read) are left out."""

    class Meta:
        model = Employee
        fields = [
            "employee_no",
            "name",
            "gender",
            "birth_date",
            "id_number",
            "phone",
            "email",
            "department",
            "position",
            "manager",
            "hire_date",
            "status",
            "base_salary",
            "salary_currency",
            "user",
        ]
        widgets = {
            "birth_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "hire_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        _department_field(self.fields["department"])
        self.fields["position"].queryset = Position.objects.filter(is_active=True).select_related(
            "department"
        )
        self.fields["position"].label_from_instance = lambda p: (
            f"{p.name} · {p.department}" if p.department_id else p.name
        )
        managers = Employee.objects.exclude(status=EmployeeStatus.RESIGNED).order_by("name")
        if self.instance.pk:
            managers = managers.exclude(pk=self.instance.pk)
            # Status moves have their own action (with dates and reasons) on the detail page.
            del self.fields["status"]
        else:
            self.fields["status"].choices = [
                c for c in EmployeeStatus.choices if c[0] != EmployeeStatus.RESIGNED
            ]
        self.fields["manager"].queryset = managers
        linked = Employee.objects.filter(user__isnull=False)
        if self.instance.pk:
            linked = linked.exclude(pk=self.instance.pk)
        self.fields["user"].queryset = (
            User.objects.filter(is_active=True)
            .exclude(pk__in=linked.values("user_id"))
            .order_by("username")
        )
        self.fields["employee_no"].required = False
        if actor is not None:
            policy = field_policy_for(actor, Employee)
            for name, access in policy.items():
                if name in self.fields and access != FieldAccess.EDIT:
                    del self.fields[name]


class TransferForm(KehuForm):
    department = forms.ModelChoiceField(
        label=pgettext_lazy("after the move", "New department"), queryset=Department.objects.none()
    )
    position = forms.ModelChoiceField(
        label=pgettext_lazy("after the move", "New position"),
        queryset=Position.objects.none(),
        required=False,
    )
    effective_date = forms.DateField(
        label=_("Effective date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    note = forms.CharField(label=_("Note"), max_length=300, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _department_field(self.fields["department"])
        self.fields["position"].queryset = Position.objects.filter(is_active=True).select_related(
            "department"
        )


class PromoteForm(KehuForm):
    position = forms.ModelChoiceField(
        label=pgettext_lazy("after the move", "New position"), queryset=Position.objects.none()
    )
    effective_date = forms.DateField(
        label=_("Effective date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    note = forms.CharField(label=_("Note"), max_length=300, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, department=None, **kwargs):
        super().__init__(*args, **kwargs)
        positions = Position.objects.filter(is_active=True)
        if department is not None:
            positions = positions.filter(
                models.Q(department=department) | models.Q(department__isnull=True)
            )
        self.fields["position"].queryset = positions.order_by("-level", "name")


class StatusForm(KehuForm):
    status = forms.ChoiceField(label=_("New status"), choices=EmployeeStatus.choices)
    effective_date = forms.DateField(
        label=_("Effective date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    resign_reason = forms.CharField(
        label=_("Reason for leaving"),
        max_length=300,
        required=False,
        help_text=_("Required when the employee leaves."),
    )
    note = forms.CharField(label=_("Note"), max_length=300, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)


class HandoverForm(KehuForm):
    employee = forms.ModelChoiceField(label=_("Leaver"), queryset=Employee.objects.none())
    successor = forms.ModelChoiceField(label=_("Successor"), queryset=User.objects.none())
    reason = forms.CharField(label=_("Reason"), max_length=300)

    def __init__(self, *args, employees=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["employee"].queryset = (
            employees if employees is not None else Employee.objects.none()
        )
        self.fields["employee"].label_from_instance = lambda e: (
            f"{e.name} · {e.employee_no} · {e.department}"
        )
        self.fields["successor"].queryset = User.objects.filter(is_active=True).order_by("username")
        self.fields["successor"].label_from_instance = lambda u: f"{u} ({u.username})"

    def clean(self):
        cleaned = super().clean()
        employee, successor = cleaned.get("employee"), cleaned.get("successor")
        if employee and successor and employee.user_id == successor.pk:
            self.add_error("successor", _("The successor cannot be the leaver."))
        return cleaned


class TargetCellForm(KehuForm):
    kind = forms.ChoiceField(choices=TargetKind.choices)
    owner = forms.IntegerField(min_value=1)
    year = forms.IntegerField(min_value=2000, max_value=2100)
    month = forms.IntegerField(min_value=1, max_value=12)
    metric = forms.ChoiceField(choices=(("contract", "contract"), ("payment", "payment")))
    value = forms.DecimalField(min_value=0, max_digits=18, decimal_places=2, required=False)
    version = forms.IntegerField(min_value=1, required=False)
