"""System management pages: thin views over the system services and selectors."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views import View

from kehu.core.exceptions import ServiceError
from kehu.core.exports import ExportColumn
from kehu.core.fields import field_policy_for
from kehu.core.permissions import has_perm
from kehu.core.views import Column, KehuFormView, KehuListView, ModulePermissionMixin, is_htmx
from kehu.system import selectors, services
from kehu.system.filters import AuditLogFilter, UserFilter
from kehu.system.forms import (
    DictionaryItemForm,
    RoleForm,
    SetPasswordForm,
    SystemSettingsForm,
    UserCreateForm,
    UserForm,
)
from kehu.system.models import DictionaryItem, Notification, User

# --- users ----------------------------------------------------------------------------------


class UserListView(KehuListView):
    module = "system"
    title = _("Users")
    filterset_class = UserFilter
    create_url_name = "system:user_create"
    default_sort = "username"
    columns = [
        Column("username", _("User name"), sort="username", link=True),
        Column("display_name", _("Display name"), sort="display_name"),
        Column("department", _("Department"), sort="department__path"),
        Column("roles", _("Roles")),
        Column("phone", _("Mobile phone")),
        Column("email", _("E-mail")),
        Column("is_active", _("Active"), sort="is_active"),
        Column("last_login", _("Last login"), sort="last_login"),
    ]
    export_columns = [
        ExportColumn("username", _("User name")),
        ExportColumn("display_name", _("Display name")),
        ExportColumn("department", _("Department"), lambda u: str(u.department or "")),
        ExportColumn("roles", _("Roles"), lambda u: ", ".join(r.name for r in u.roles.all())),
        ExportColumn("phone", _("Mobile phone")),
        ExportColumn("email", _("E-mail")),
        ExportColumn("is_active", _("Active"), lambda u: str(_("Yes") if u.is_active else _("No"))),
        ExportColumn("last_login", _("Last login")),
    ]
    bulk_actions = [("activate", _("Activate")), ("deactivate", _("Deactivate"))]

    def selector(self, user):
        return selectors.user_list_visible_to(user=user)

    def perform_bulk_action(self, action: str, objects: list) -> int:
        return services.user_bulk_set_active(
            actor=cast(User, self.request.user), users=objects, active=action == "activate"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if not has_perm(self.request.user, "system.change"):
            context["bulk_actions"] = []
        return context


class _UserFormMixin:
    module = "system"
    template_name = "system/user_form.html"
    success_url_name = "system:user_list"

    def get_form_kwargs(self, obj) -> dict:
        kwargs = super().get_form_kwargs(obj)  # type: ignore[misc]
        kwargs["policy"] = field_policy_for(self.request.user, User)  # type: ignore[attr-defined]
        return kwargs


class UserCreateView(_UserFormMixin, KehuFormView):
    form_class = UserCreateForm
    title = _("New user")

    def save(self, form, obj):
        actor = self.request.user
        user = services.user_create(
            actor=actor,
            data=form.service_data(),
            roles=form.cleaned_data.get("roles") or [],
            password=form.cleaned_data["password"] or None,
        )
        if form.cleaned_data.get("send_set_password_email"):
            services.user_send_password_reset(actor=actor, user=user, request=self.request)
            messages.info(self.request, _("A set-password link was e-mailed to the user."))
        return user


class UserEditView(_UserFormMixin, KehuFormView):
    form_class = UserForm

    def get_object(self):
        return selectors.user_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("User %(name)s") % {"name": obj.username}

    def save(self, form, obj):
        return services.user_update(
            actor=self.request.user,
            user=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
            roles=form.cleaned_data["roles"] if "roles" in form.fields else None,
        )


class UserSetPasswordView(KehuFormView):
    module = "system"
    form_class = SetPasswordForm
    success_url_name = "system:user_list"

    def get_object(self):
        return selectors.user_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_form_kwargs(self, obj) -> dict:
        return {"user": obj}

    def get_title(self, obj):
        return _("Set the password of %(name)s") % {"name": obj.username}

    def save(self, form, obj):
        services.user_set_password(
            actor=self.request.user, user=obj, password=form.cleaned_data["password"]
        )
        return obj

    def get_success_url(self, obj) -> str:
        return reverse("system:user_edit", args=[obj.pk])


class UserSendResetView(ModulePermissionMixin, View):
    module = "system"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        user = selectors.user_get_for(user=request.user, pk=pk)
        try:
            services.user_send_password_reset(actor=request.user, user=user, request=request)
        except ServiceError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(
                request,
                _("A password reset link was e-mailed to %(email)s.") % {"email": user.email},
            )
        return HttpResponseRedirect(reverse("system:user_edit", args=[user.pk]))


# --- roles ----------------------------------------------------------------------------------


class RoleListView(KehuListView):
    module = "system"
    title = _("Roles")
    create_url_name = "system:role_create"
    default_sort = "id"
    columns = [
        Column("name", _("Name"), sort="name", link=True),
        Column("code", _("Code"), sort="code"),
        Column("get_data_scope_display", _("Data scope"), sort="data_scope"),
        Column("description", _("Description")),
        Column("user_count", _("Users"), sort="user_count"),
        Column("is_system", _("Built-in"), sort="is_system"),
    ]

    def selector(self, user):
        return selectors.role_list_with_counts(user=user)


class RoleFormView(KehuFormView):
    module = "system"
    form_class = RoleForm
    template_name = "system/role_form.html"
    success_url_name = "system:role_list"
    title = _("New role")

    def get_object(self):
        if self.creating:
            return None
        return selectors.role_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Role %(name)s") % {"name": obj.name} if obj else self.title

    def extra_context(self, obj) -> dict:
        return {
            "can_delete": obj is not None
            and not obj.is_system
            and has_perm(self.request.user, "system.delete")
        }

    def save(self, form, obj):
        return services.role_save(
            actor=self.request.user,
            role=obj,
            expected_version=form.cleaned_data.get("version"),
            data=form.service_data(),
            field_rules=form.field_rules(),
        )


class RoleDeleteView(ModulePermissionMixin, View):
    module = "system"
    perm_action = "delete"
    http_method_names = ["post"]

    def post(self, request, pk):
        role = selectors.role_get_for(user=request.user, pk=pk)
        try:
            services.role_delete(actor=request.user, role=role)
        except ServiceError as exc:
            messages.error(request, str(exc.message))
            return HttpResponseRedirect(reverse("system:role_edit", args=[role.pk]))
        messages.success(request, _("The role was deleted."))
        return HttpResponseRedirect(reverse("system:role_list"))


# --- dictionaries ---------------------------------------------------------------------------


class DictionaryListView(KehuListView):
    module = "system"
    title = _("Dictionaries")
    default_sort = "code"
    columns = [
        Column("name", _("Name"), sort="name", link=True),
        Column("name_en", _("English name")),
        Column("code", _("Code"), sort="code"),
        Column("description", _("Description")),
        Column("item_count", _("Options"), sort="item_count"),
        Column("is_system", _("Built-in")),
    ]

    def selector(self, user):
        return selectors.dictionary_list_with_counts(user=user)


def _dictionary_context(request, dictionary, add_form=None) -> dict:
    return {
        "dictionary": dictionary,
        "items": dictionary.items.order_by("sort_order", "id"),
        "add_form": add_form or DictionaryItemForm(dictionary=dictionary, prefix="new"),
        "can_change": has_perm(request.user, "system.change"),
    }


class DictionaryDetailView(ModulePermissionMixin, View):
    module = "system"

    def get(self, request, pk):
        dictionary = get_object_or_404(selectors.dictionary_list(user=request.user), pk=pk)
        context = _dictionary_context(request, dictionary)
        context["title"] = dictionary.name
        return render(request, "system/dictionary_detail.html", context)


class DictionaryItemCreateView(ModulePermissionMixin, View):
    """Add an option inline; htmx gets the refreshed item table (with errors if any)."""

    module = "system"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        dictionary = get_object_or_404(selectors.dictionary_list(user=request.user), pk=pk)
        form = DictionaryItemForm(request.POST, dictionary=dictionary, prefix="new")
        if form.is_valid():
            try:
                services.dictionary_item_create(
                    actor=request.user, dictionary=dictionary, data=form.service_data()
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            else:
                if not is_htmx(request):
                    return HttpResponseRedirect(dictionary.get_absolute_url())
                form = None
        context = _dictionary_context(request, dictionary, add_form=form)
        if is_htmx(request):
            return render(request, "system/_dictionary_items.html", context)
        context["title"] = dictionary.name
        return render(request, "system/dictionary_detail.html", context, status=400)


class DictionaryItemRowView(ModulePermissionMixin, View):
    """One option as a table row (htmx: after saving, or when an edit is cancelled)."""

    module = "system"

    def get(self, request, pk):
        item = get_object_or_404(DictionaryItem.objects.select_related("dictionary"), pk=pk)
        return render(
            request,
            "system/_dictionary_item_row.html",
            {"item": item, "can_change": has_perm(request.user, "system.change")},
        )


class DictionaryItemEditView(ModulePermissionMixin, View):
    module = "system"
    perm_action = "change"

    def _item(self, pk):
        return get_object_or_404(DictionaryItem.objects.select_related("dictionary"), pk=pk)

    def _form_row(self, request, item, form):
        return render(
            request, "system/_dictionary_item_form_row.html", {"item": item, "form": form}
        )

    def get(self, request, pk):
        item = self._item(pk)
        form = DictionaryItemForm(instance=item, dictionary=item.dictionary, prefix=f"item{pk}")
        return self._form_row(request, item, form)

    def post(self, request, pk):
        item = self._item(pk)
        form = DictionaryItemForm(
            request.POST, instance=item, dictionary=item.dictionary, prefix=f"item{pk}"
        )
        if form.is_valid():
            try:
                item = services.dictionary_item_update(
                    actor=request.user,
                    item=item,
                    expected_version=form.cleaned_data["version"],
                    data=form.service_data(),
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            else:
                if not is_htmx(request):
                    return HttpResponseRedirect(item.dictionary.get_absolute_url())
                return render(
                    request, "system/_dictionary_item_row.html", {"item": item, "can_change": True}
                )
        return self._form_row(request, item, form)


# --- settings -------------------------------------------------------------------------------


class SettingsView(KehuFormView):
    module = "system"
    form_class = SystemSettingsForm
    success_url_name = "system:settings"
    title = _("Settings")

    @property
    def creating(self) -> bool:
        return False  # the single settings row always exists

    def get_object(self):
        return services.system_settings_get()

    def save(self, form, obj):
        return services.system_settings_update(
            actor=self.request.user,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
        )


# --- operation log --------------------------------------------------------------------------


def _changes_text(entry) -> str:
    return "; ".join(
        f"{label}: {before} → {after}"
        for label, before, after in selectors.audit_changes_display(entry)
    )


class AuditListView(KehuListView):
    """Read only: no create, edit, delete or bulk action exists for the log."""

    module = "system"
    title = _("Operation log")
    filterset_class = AuditLogFilter
    http_method_names = ["get", "head", "options"]
    default_sort = "-at"
    paginate_by = 50
    columns = [
        Column("at", _("Time"), sort="at"),
        Column("username", _("User"), sort="username"),
        Column("get_action_display", _("Action"), sort="action"),
        Column("model", _("Record type"), sort="model"),
        Column("object_repr", _("Record")),
        Column("changes", _("Changes"), template="system/_audit_changes.html"),
        Column("ip_address", _("IP address")),
    ]
    export_columns = [
        ExportColumn("at", _("Time")),
        ExportColumn("username", _("User")),
        ExportColumn("action", _("Action"), lambda e: e.get_action_display()),
        ExportColumn("model", _("Record type")),
        ExportColumn("object_id", _("Record id")),
        ExportColumn("object_repr", _("Record")),
        ExportColumn("changes", _("Changes"), _changes_text),
        ExportColumn("note", _("Note")),
        ExportColumn("ip_address", _("IP address")),
    ]

    def selector(self, user):
        return selectors.audit_log_list(user=user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for row in context["rows"]:
            for cell in row["cells"]:
                if cell["column"].field == "changes":
                    cell["value"] = selectors.audit_changes_display(row["object"])
        return context


# --- notifications --------------------------------------------------------------------------


def _safe_local_url(url: str) -> str | None:
    """Only same-site paths ("/customers/3/"): never another host (no open redirect)."""
    if not url.startswith("/") or url.startswith(("//", "/\\")):
        return None
    return url if url_has_allowed_host_and_scheme(url, allowed_hosts=None) else None


class NotificationListView(KehuListView):
    """Every logged-in user's own notifications; no module permission needed."""

    module = ""
    title = _("Notifications")
    template_name = "system/notification_list.html"
    results_template_name = "system/_notification_results.html"

    def selector(self, user):
        return selectors.notification_list_for(user=user)

    def get_queryset(self):
        self.filterset = None
        return self.selector(self.request.user)  # unread first, newest first

    def post(self, request, *args, **kwargs):
        return HttpResponseRedirect(request.path)


class NotificationReadView(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, pk):
        note = get_object_or_404(Notification, pk=pk, recipient=request.user)
        services.notification_mark_read(user=request.user, ids=[note.pk])
        if is_htmx(request):
            note.refresh_from_db()
            return render(request, "system/_notification_item.html", {"note": note})
        return HttpResponseRedirect(reverse("system:notification_list"))


class NotificationReadAllView(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request):
        count = services.notification_mark_read(user=request.user)
        messages.success(request, _("%(count)d notifications marked read.") % {"count": count})
        return HttpResponseRedirect(reverse("system:notification_list"))


class NotificationOpenView(LoginRequiredMixin, View):
    """Clicking a notification marks it read and follows its link."""

    def get(self, request, pk):
        note = get_object_or_404(Notification, pk=pk, recipient=request.user)
        services.notification_mark_read(user=request.user, ids=[note.pk])
        target = _safe_local_url(note.url)
        return HttpResponseRedirect(target or reverse("system:notification_list"))
