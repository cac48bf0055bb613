"""Department pages: an indented tree list and a form; writes go through hr.services."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import View

from kehu.core.exceptions import ServiceError
from kehu.core.exports import ExportColumn
from kehu.core.permissions import has_perm
from kehu.core.scope import visible_to
from kehu.core.views import Column, KehuFormView, KehuListView, ModulePermissionMixin
from kehu.hr import selectors, services
from kehu.hr.filters import DepartmentFilter
from kehu.hr.forms import DepartmentForm
from kehu.hr.models import Department


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
