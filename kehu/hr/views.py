"""HR pages: departments, positions, employees, org chart, handover and sales targets.

Thin: parse, call a selector or service, render. Writes go through kehu.hr.services.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS_AP
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views import View
from django.views.generic import TemplateView

from kehu.core.exceptions import ServiceError
from kehu.core.exports import ExportColumn
from kehu.core.fields import apply_field_policy, field_policy_for
from kehu.core.filters import is_id
from kehu.core.permissions import has_perm
from kehu.core.scope import visible_to
from kehu.core.views import Column, KehuFormView, KehuListView, ModulePermissionMixin
from kehu.hr import selectors, services
from kehu.hr.filters import DepartmentFilter, EmployeeFilter, PositionFilter
from kehu.hr.forms import (
    DepartmentForm,
    EmployeeForm,
    HandoverForm,
    PositionForm,
    PromoteForm,
    StatusForm,
    TargetCellForm,
    TransferForm,
)
from kehu.hr.models import Department, Employee, TargetKind
from kehu.system.models import User


class DepartmentListView(KehuListView):
    module = "hr"
    title = _("Departments")
    filterset_class = DepartmentFilter
    create_url_name = "hr:department_create"
    default_sort = "path"  # tree order; the columns are not sortable so the tree stays whole
    paginate_by = 200
    columns = [
        Column("name", _("Name"), template="hr/_department_name.html"),
        Column("code", _("Code")),
        Column("manager", _("Manager")),
        Column("head_count", _("Head count")),
        Column("sort_order", _("Order")),
        Column("is_active", _("Active")),
    ]
    export_columns = [
        ExportColumn("name", _("Name")),
        ExportColumn("code", _("Code")),
        ExportColumn("parent", _("Parent department"), lambda d: str(d.parent or "")),
        ExportColumn("manager", _("Manager"), lambda d: str(d.manager or "")),
        ExportColumn("head_count", _("Head count")),
        ExportColumn("is_active", _("Active"), lambda d: str(_("Yes") if d.is_active else _("No"))),
    ]

    def selector(self, user):
        return selectors.department_list_for(user=user)


class DepartmentFormView(KehuFormView):
    module = "hr"
    form_class = DepartmentForm
    template_name = "hr/department_form.html"
    success_url_name = "hr:department_list"
    title = _("New department")

    def get_object(self):
        if self.creating:
            return None
        return selectors.department_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_form_kwargs(self, obj) -> dict:
        kwargs = super().get_form_kwargs(obj)
        kwargs["parents"] = visible_to(Department.objects.order_by("path"), self.request.user)
        return kwargs

    def get_title(self, obj):
        return _("Department %(name)s") % {"name": obj.name} if obj else self.title

    def extra_context(self, obj) -> dict:
        return {"can_delete": obj is not None and has_perm(self.request.user, "hr.delete")}

    def save(self, form, obj):
        if obj is None:
            return services.department_create(actor=self.request.user, data=form.service_data())
        return services.department_update(
            actor=self.request.user,
            department=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
        )


class DepartmentDeleteView(ModulePermissionMixin, View):
    module = "hr"
    perm_action = "delete"
    http_method_names = ["post"]

    def post(self, request, pk):
        department = selectors.department_get_for(user=request.user, pk=pk)
        try:
            services.department_delete(actor=request.user, department=department)
        except ServiceError as exc:
            messages.error(request, str(exc.message))
            return HttpResponseRedirect(reverse("hr:department_edit", args=[department.pk]))
        messages.success(request, _("The department was deleted."))
        return HttpResponseRedirect(reverse("hr:department_list"))


# --- positions ------------------------------------------------------------------------------


class PositionListView(KehuListView):
    module = "hr"
    title = _("Positions")
    filterset_class = PositionFilter
    create_url_name = "hr:position_create"
    default_sort = "department__path"
    columns = [
        Column("name", _("Name"), sort="name", link=True),
        Column("department", _("Department")),
        Column("level", _("Level"), sort="level"),
        Column("head_count", _("Head count")),
        Column("is_active", _("Active")),
    ]
    export_columns = [
        ExportColumn("name", _("Name")),
        ExportColumn("department", _("Department"), lambda p: str(p.department or "")),
        ExportColumn("level", _("Level")),
        ExportColumn("head_count", _("Head count")),
    ]

    def selector(self, user):
        return selectors.position_list_for(user=user)


class PositionFormView(KehuFormView):
    module = "hr"
    form_class = PositionForm
    success_url_name = "hr:position_list"
    title = _("New position")

    def get_object(self):
        if self.creating:
            return None
        return selectors.position_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Position %(name)s") % {"name": obj.name} if obj else self.title

    def save(self, form, obj):
        try:
            if obj is None:
                return services.position_create(actor=self.request.user, data=form.service_data())
            return services.position_update(
                actor=self.request.user,
                position=obj,
                expected_version=form.cleaned_data["version"],
                data=form.service_data(),
            )
        except ValidationError as exc:
            raise _as_service_error(exc) from exc


def _as_service_error(exc: ValidationError) -> ServiceError:
    """A model constraint the form could not see (unique name …) as a field error."""
    if hasattr(exc, "error_dict"):
        field, messages_ = next(iter(exc.message_dict.items()))
        return ServiceError(messages_[0], field=None if field == "__all__" else field)
    return ServiceError(exc.messages[0])


# --- employees ------------------------------------------------------------------------------


class EmployeeListView(KehuListView):
    module = "hr"
    title = _("Employees")
    filterset_class = EmployeeFilter
    create_url_name = "hr:employee_create"
    default_sort = "employee_no"
    columns = [
        Column("employee_no", _("Employee number"), sort="employee_no", link=True),
        Column("name", pgettext_lazy("person", "Name"), sort="name", link=True),
        Column("department", _("Department"), sort="department__path"),
        Column("position", _("Position")),
        Column("status", _("Status"), template="hr/_employee_status.html"),
        Column("phone", _("Phone")),
        Column("id_number", _("ID number")),
        Column("base_salary", _("Base salary"), sort="base_salary"),
        Column("hire_date", _("Hire date"), sort="hire_date"),
    ]
    export_columns = [
        ExportColumn("employee_no", _("Employee number")),
        ExportColumn("name", _("Name")),
        ExportColumn("gender", _("Gender"), lambda e: e.get_gender_display()),
        ExportColumn("department", _("Department"), lambda e: str(e.department)),
        ExportColumn("position", _("Position"), lambda e: str(e.position or "")),
        ExportColumn("status", _("Status"), lambda e: e.get_status_display()),
        ExportColumn("phone", _("Phone")),
        ExportColumn("email", _("E-mail")),
        ExportColumn("id_number", _("ID number")),
        ExportColumn("base_salary", _("Base salary")),
        ExportColumn("hire_date", _("Hire date")),
        ExportColumn("resign_date", _("Resign date")),
    ]

    def selector(self, user):
        return selectors.employee_list_visible_to(user=user)

    def sort_options(self) -> dict[str, str]:
        options = super().sort_options()
        # Sorting by a hidden salary would leak its order.
        if field_policy_for(self.request.user, Employee).get("base_salary") == "hidden":
            options.pop("base_salary", None)
        return options


class EmployeeDetailView(ModulePermissionMixin, TemplateView):
    module = "hr"
    template_name = "hr/employee_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        employee = selectors.employee_get_for(user=user, pk=kwargs["pk"])
        policy = field_policy_for(user, Employee)

        def shown(name):
            return apply_field_policy(Employee, policy, name, getattr(employee, name))

        profile = [
            (_("Employee number"), employee.employee_no),
            (_("Gender"), employee.get_gender_display()),
            (_("Birth date"), employee.birth_date),
            (_("Phone"), employee.phone),
            (_("E-mail"), employee.email),
            (_("Department"), employee.department),
            (_("Position"), employee.position),
            (_("Manager"), employee.manager),
            (_("Hire date"), employee.hire_date),
        ]
        if policy.get("id_number") != "hidden":
            profile.append((_("ID number"), shown("id_number")))
        if policy.get("base_salary") != "hidden":
            salary = shown("base_salary")
            profile.append(
                (_("Base salary"), f"{salary} {employee.salary_currency}" if salary else "")
            )
        if employee.is_resigned:
            profile += [
                (_("Resign date"), employee.resign_date),
                (_("Reason for leaving"), employee.resign_reason),
            ]
        can_change = has_perm(user, "hr.change")
        context.update(
            {
                "employee": employee,
                "title": employee.name,
                "profile": profile,
                "history": selectors.employee_history_for(employee=employee),
                "handovers": list(selectors.handover_list_for(user=user).filter(employee=employee)),
                "can_change": can_change and not employee.is_resigned,
                "can_handover": has_perm(user, "hr.assign"),
            }
        )
        return context


class EmployeeFormView(KehuFormView):
    module = "hr"
    form_class = EmployeeForm
    title = _("New employee")
    success_url_name = "hr:employee_list"

    def get_object(self):
        if self.creating:
            return None
        return selectors.employee_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_form_kwargs(self, obj) -> dict:
        kwargs = super().get_form_kwargs(obj)
        kwargs["actor"] = self.request.user
        return kwargs

    def get_title(self, obj):
        return _("Edit %(name)s") % {"name": obj.name} if obj else self.title

    def get_success_url(self, obj) -> str:
        return obj.get_absolute_url()

    def save(self, form, obj):
        data = form.service_data()
        try:
            if obj is None:
                return services.employee_create(actor=self.request.user, data=data)
            return services.employee_update(
                actor=self.request.user,
                employee=obj,
                expected_version=form.cleaned_data["version"],
                data=data,
            )
        except ValidationError as exc:
            raise _as_service_error(exc) from exc


class EmployeeActionView(ModulePermissionMixin, View):
    """Transfer, promote or change status: a small form page, then the service."""

    module = "hr"
    perm_action = "change"
    template_name = "hr/employee_action.html"
    action = ""

    def form_for(self, employee, data=None):
        initial = {"version": employee.version, "effective_date": timezone.localdate()}
        if self.action == "transfer":
            initial.update(department=employee.department_id, position=employee.position_id)
            return TransferForm(data, initial=initial)
        if self.action == "promote":
            return PromoteForm(data, initial=initial, department=employee.department)
        return StatusForm(data, initial=initial)

    def titles(self):
        return {
            "transfer": pgettext_lazy("employee", "Transfer"),
            "promote": _("Change position"),
            "status": _("Change status"),
        }

    def render_page(self, employee, form, status=200):
        return render(
            self.request,
            self.template_name,
            {
                "employee": employee,
                "form": form,
                "title": self.titles()[self.action],
                "action": self.action,
            },
            status=status,
        )

    def get(self, request, pk):
        employee = selectors.employee_get_for(user=request.user, pk=pk)
        return self.render_page(employee, self.form_for(employee))

    def post(self, request, pk):
        employee = selectors.employee_get_for(user=request.user, pk=pk)
        form = self.form_for(employee, request.POST)
        if form.is_valid():
            data = form.cleaned_data
            common = {
                "actor": request.user,
                "employee": employee,
                "effective_date": data["effective_date"],
                "note": data.get("note") or "",
                "expected_version": data["version"],
            }
            try:
                if self.action == "transfer":
                    services.employee_transfer(
                        department=data["department"], position=data["position"], **common
                    )
                elif self.action == "promote":
                    services.employee_promote(position=data["position"], **common)
                else:
                    services.employee_set_status(
                        status=data["status"],
                        resign_date=data["effective_date"],
                        resign_reason=data.get("resign_reason") or "",
                        **common,
                    )
            except ServiceError as exc:
                field = {"resign_date": "effective_date"}.get(exc.field or "", exc.field)
                form.add_error(field if field in form.fields else None, str(exc.message))
            else:
                messages.success(request, _("Saved."))
                return HttpResponseRedirect(employee.get_absolute_url())
        return self.render_page(employee, form, status=400)


# --- org chart ------------------------------------------------------------------------------


class OrgChartView(ModulePermissionMixin, TemplateView):
    module = "hr"
    template_name = "hr/org_chart.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            {
                "title": _("Organisation chart"),
                "roots": selectors.org_chart_for(user=self.request.user),
            }
        )
        return context


# --- handover -------------------------------------------------------------------------------


class HandoverWizardView(ModulePermissionMixin, View):
    """Step 1: leaver and successor; step 2: preview what moves; step 3: confirm."""

    module = "hr"
    perm_action = "assign"
    template_name = "hr/handover_wizard.html"

    def employees(self):
        return selectors.employee_list_visible_to(user=self.request.user).order_by("name")

    def render_step(self, step, form, preview=None, status=200):
        return render(
            self.request,
            self.template_name,
            {
                "title": _("Resignation handover"),
                "step": step,
                "form": form,
                "preview": preview,
            },
            status=status,
        )

    def get(self, request):
        initial = {}
        if is_id(request.GET.get("employee", "")):
            initial["employee"] = int(request.GET["employee"])
        return self.render_step(1, HandoverForm(initial=initial, employees=self.employees()))

    def post(self, request):
        form = HandoverForm(request.POST, employees=self.employees())
        if not form.is_valid():
            return self.render_step(1, form, status=400)
        employee = form.cleaned_data["employee"]
        if request.POST.get("step") != "confirm":
            preview = selectors.handover_preview(user_id=employee.user_id)
            return self.render_step(
                2, form, preview={"employee": employee, **preview, "login": employee.user}
            )
        try:
            handover = services.employee_handover(
                actor=request.user,
                employee=employee,
                successor=form.cleaned_data["successor"],
                reason=form.cleaned_data["reason"],
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            return self.render_step(1, form, status=400)
        messages.success(request, _("The handover is done."))
        return HttpResponseRedirect(handover.get_absolute_url())


class HandoverDetailView(ModulePermissionMixin, TemplateView):
    module = "hr"
    template_name = "hr/handover_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        handover = get_object_or_404(
            selectors.handover_list_for(user=self.request.user).filter(
                employee__in=selectors.employee_list_visible_to(user=self.request.user)
            ),
            pk=kwargs["pk"],
        )
        labels = {
            "customers": pgettext_lazy("records", "Customers"),
            "opportunities": _("Open opportunities"),
            "login_deactivated": _("Login deactivated"),
        }
        context.update(
            {
                "title": _("Handover"),
                "handover": handover,
                "counts": [(labels.get(k, k), v) for k, v in handover.counts.items()],
            }
        )
        return context


# --- sales targets --------------------------------------------------------------------------


def _target_params(request) -> dict:
    today = timezone.localdate()
    year = request.GET.get("year", "")
    kind = request.GET.get("kind", TargetKind.EMPLOYEE)
    metric = request.GET.get("metric", "contract")
    return {
        "year": int(year) if is_id(year) and 2000 <= int(year) <= 2100 else today.year,
        "kind": kind if kind in TargetKind.values else TargetKind.EMPLOYEE,
        "metric": metric if metric in ("contract", "payment") else "contract",
    }


class SalesTargetView(ModulePermissionMixin, TemplateView):
    module = "hr"
    template_name = "hr/target_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = _target_params(self.request)
        grid = selectors.sales_target_grid(user=self.request.user, **params)
        context.update(
            {
                "title": _("Sales targets"),
                **params,
                **grid,
                "month_labels": [(m, MONTHS_AP[m]) for m in range(1, 13)],
                "years": range(params["year"] - 2, params["year"] + 3),
                "kinds": TargetKind.choices,
                "metrics": (
                    ("contract", _("Contract amount")),
                    ("payment", _("Payments received")),
                ),
                "can_edit": has_perm(self.request.user, "hr.change"),
            }
        )
        return context


class SalesTargetCellView(ModulePermissionMixin, View):
    """htmx: save one month's target, answer with the re-rendered row (totals updated)."""

    module = "hr"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request):
        form = TargetCellForm(request.POST)
        if not form.is_valid():
            return HttpResponse(_("Enter an amount of zero or more."), status=400)
        data = form.cleaned_data
        kind, owner_id = data["kind"], data["owner"]
        owner = {}
        if kind == TargetKind.EMPLOYEE:
            owner["user"] = get_object_or_404(
                visible_to(User.objects.all(), request.user), pk=owner_id
            )
        else:
            owner["department"] = get_object_or_404(
                visible_to(Department.objects.all(), request.user), pk=owner_id
            )
        field = "payment_target" if data["metric"] == "payment" else "contract_amount_target"
        error = ""
        try:
            services.sales_target_set(
                actor=request.user,
                kind=kind,
                year=data["year"],
                month=data["month"],
                expected_version=data.get("version"),
                **owner,
                **{field: data["value"] if data["value"] is not None else Decimal("0")},
            )
        except ServiceError as exc:
            error = str(exc.message)
        grid = selectors.sales_target_grid(
            user=request.user, year=data["year"], kind=kind, metric=data["metric"]
        )
        row = next((r for r in grid["rows"] if r["owner_id"] == owner_id), None)
        if row is None:
            raise Http404
        return render(
            request,
            "hr/_target_row.html",
            {
                "row": row,
                "year": data["year"],
                "kind": kind,
                "metric": data["metric"],
                "field": grid["field"],
                "source_available": grid["source_available"],
                "can_edit": True,
                "months": range(1, 13),
                "row_error": error,
            },
            # 200 even on a refusal: htmx swaps only successful answers, and the row
            # must come back with its error and the current values.
        )
