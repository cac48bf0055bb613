from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kehu.core.models import BusinessModel, TimeStampedModel, VersionedModel
from kehu.core.money import CurrencyField, MoneyField
from kehu.core.reference import ReferenceManager


class Department(TimeStampedModel, VersionedModel):
    """A node of the company's department tree.

    ``path`` is the materialised path of ids ("/1/4/9/"), so "this department and every
    department below it" is one indexed prefix query. Services keep it in step with parent.
    """

    scope_owner_field = "manager"
    scope_department_field = "id"

    name = models.CharField(_("name"), max_length=100)
    code = models.SlugField(_("code"), max_length=50, unique=True, null=True, blank=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("manager"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="managed_departments",
    )
    path = models.CharField(_("path"), max_length=500, editable=False, db_index=True, default="")
    sort_order = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    objects = ReferenceManager()

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["path", "sort_order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "name"], name="hr_department_sibling_name_uniq"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("hr:department_edit", args=[self.pk])

    @property
    def depth(self) -> int:
        return max(self.path.count("/") - 2, 0)


class Position(TimeStampedModel, VersionedModel):
    """A job title within a department (销售代表, 销售经理 …); ``level`` orders promotions."""

    name = models.CharField(_("name"), max_length=100)
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="positions",
        help_text=_("Leave empty for a position used across departments."),
    )
    level = models.PositiveSmallIntegerField(
        _("level"), default=1, help_text=_("Higher is more senior.")
    )
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("position")
        verbose_name_plural = _("positions")
        ordering = ["department__path", "-level", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["department", "name"], name="hr_position_dept_name_uniq"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("hr:position_edit", args=[self.pk])


class EmployeeStatus(models.TextChoices):
    # Contexts: "Active" elsewhere means "enabled" (启用); an employee is 在职.
    PROBATION = "probation", pgettext_lazy("employee status", "Probation")
    ACTIVE = "active", pgettext_lazy("employee status", "Active")
    RESIGNED = "resigned", pgettext_lazy("employee status", "Resigned")


class Gender(models.TextChoices):
    MALE = "male", _("Male")
    FEMALE = "female", _("Female")


class Employee(BusinessModel):
    """A member of staff; ``user`` is their login, if they have one.

    Scope: the employee sees themself (owner field ``user``); managers see their
    department tree. ID number and salary are sensitive (see ``sensitive_fields``).
    """

    scope_owner_field = "user"
    scope_department_field = "department"
    # Masked ID numbers, hidden salaries unless a role grants more (HR and admin do).
    sensitive_fields = {"id_number": "id_number", "base_salary": ("text", "hidden")}

    employee_no = models.CharField(
        _("employee number"),
        max_length=32,
        unique=True,
        blank=True,
        help_text=_("Leave empty to number automatically."),
    )
    name = models.CharField(_("name"), max_length=100, db_index=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    id_number = models.CharField(_("ID number"), max_length=32, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        related_name="employees",
    )
    position = models.ForeignKey(
        Position,
        verbose_name=_("position"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="employees",
    )
    manager = models.ForeignKey(
        "self",
        verbose_name=_("manager"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reports",
    )
    hire_date = models.DateField(_("hire date"))
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=EmployeeStatus.choices,
        default=EmployeeStatus.PROBATION,
        db_index=True,
    )
    resign_date = models.DateField(_("resign date"), null=True, blank=True)
    resign_reason = models.CharField(_("reason for leaving"), max_length=300, blank=True)
    base_salary = MoneyField(_("base salary"), null=True, blank=True)
    salary_currency = CurrencyField(verbose_name=_("salary currency"))
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("login"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="employee",
    )

    class Meta(BusinessModel.Meta):
        verbose_name = _("employee")
        verbose_name_plural = _("employees")
        ordering = ["employee_no"]
        indexes = [
            models.Index(fields=["department", "status"], name="hr_emp_dept_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="resigned") | models.Q(resign_date__isnull=False),
                name="hr_emp_resigned_has_date",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.employee_no})" if self.employee_no else self.name

    def get_absolute_url(self) -> str:
        return reverse("hr:employee_detail", args=[self.pk])

    @property
    def is_resigned(self) -> bool:
        return self.status == EmployeeStatus.RESIGNED


class HistoryKind(models.TextChoices):
    HIRE = "hire", _("Hired")
    TRANSFER = "transfer", pgettext_lazy("employee", "Transfer")
    PROMOTION = "promotion", _("Position change")
    STATUS = "status", _("Status change")
    RESIGN = "resign", _("Resigned")


class EmployeeHistory(models.Model):
    """One event in an employee's career, written by the HR services (append-only)."""

    employee = models.ForeignKey(
        Employee, verbose_name=_("employee"), on_delete=models.PROTECT, related_name="history"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=HistoryKind.choices)
    from_department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_position = models.ForeignKey(
        Position, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_position = models.ForeignKey(
        Position, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_status = models.CharField(max_length=10, choices=EmployeeStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=EmployeeStatus.choices, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    effective_date = models.DateField(_("effective date"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("employee history entry")
        verbose_name_plural = _("employee history")
        ordering = ["-effective_date", "-id"]
        indexes = [models.Index(fields=["employee", "-effective_date"], name="hr_emphist_idx")]

    def __str__(self) -> str:
        return f"{self.employee_id} {self.kind} {self.effective_date}"


class Handover(models.Model):
    """A leaver's work handed to a successor: what moved, by whom, when."""

    employee = models.ForeignKey(
        Employee, verbose_name=_("leaver"), on_delete=models.PROTECT, related_name="handovers"
    )
    successor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("successor"),
        on_delete=models.PROTECT,
        related_name="handovers_received",
    )
    reason = models.CharField(_("reason"), max_length=300)
    counts = models.JSONField(_("moved"), default=dict, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("handover")
        verbose_name_plural = _("handovers")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.employee} → {self.successor}"

    def get_absolute_url(self) -> str:
        return reverse("hr:handover_detail", args=[self.pk])


class TargetKind(models.TextChoices):
    EMPLOYEE = "employee", _("Employee")
    DEPARTMENT = "department", _("Department")


class SalesTarget(TimeStampedModel, VersionedModel):
    """A monthly target for a salesperson (``user``) or a whole department.

    Person targets also store the person's department so managers' data scope
    (department and below) reaches them.
    """

    scope_owner_field = "user"
    scope_department_field = "department"

    kind = models.CharField(_("for"), max_length=10, choices=TargetKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("salesperson"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sales_targets",
    )
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        on_delete=models.PROTECT,
        related_name="sales_targets",
    )
    year = models.PositiveSmallIntegerField(_("year"))
    month = models.PositiveSmallIntegerField(_("month"))
    contract_amount_target = MoneyField(_("contract amount target"), default=0)
    payment_target = MoneyField(_("payment target"), default=0)
    currency = CurrencyField()

    class Meta:
        verbose_name = _("sales target")
        verbose_name_plural = _("sales targets")
        ordering = ["year", "month", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(month__gte=1, month__lte=12), name="hr_target_month_range"
            ),
            models.CheckConstraint(
                condition=(models.Q(kind="employee", user__isnull=False))
                | models.Q(kind="department", user__isnull=True),
                name="hr_target_kind_owner",
            ),
            models.UniqueConstraint(
                fields=["user", "year", "month"],
                condition=models.Q(kind="employee"),
                name="hr_target_user_month_uniq",
            ),
            models.UniqueConstraint(
                fields=["department", "year", "month"],
                condition=models.Q(kind="department"),
                name="hr_target_dept_month_uniq",
            ),
        ]

    def __str__(self) -> str:
        owner = self.user if self.kind == TargetKind.EMPLOYEE else self.department
        return f"{owner} {self.year}-{self.month:02d}"
