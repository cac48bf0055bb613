"""Shared views: the list / form pattern modules build on, home, search, health, language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape as html_escape
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import LoginView
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import connection
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeData, mark_safe
from django.utils.translation import check_for_language, get_language
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import ListView

from kehu.core.exceptions import ServiceError
from kehu.core.exports import ExportColumn, export_response
from kehu.core.fields import apply_field_policy, field_policy_for
from kehu.core.filters import is_id
from kehu.core.pagination import BoundedPaginator, list_count_budget_ms
from kehu.core.permissions import has_perm
from kehu.core.search import search_all
from kehu.core.templatetags.kehu import cell as cell_display
from kehu.core.todos import todos_for


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


@dataclass
class Column:
    """One column of a list page: the attribute shown and, optionally, how to sort by it."""

    field: str
    label: Any
    sort: str | None = None
    link: bool = False
    template: str | None = None


# Python twins of cell templates (template name -> (object, value) -> safe HTML), registered
# by the module that owns the template. A list page's rows are its main cost after the
# layout: an include per cell per row is ~40 µs, the function a few. Cells whose template has
# no twin are still included by the results template.
CellRenderer = Callable[[Any, Any], str | None]  # None: leave the cell to its template
_cell_renderers: dict[str, CellRenderer] = {}


def register_cell_renderer(template_name: str, renderer: CellRenderer) -> None:
    _cell_renderers[template_name] = renderer


def _cell_html(value) -> str:
    """``{{ value|cell }}`` as the template writes it: the ``cell`` filter, localised,
    escaped unless already safe (plain text through html.escape, as Django's escape does)."""
    shown = cell_display(value)
    if not isinstance(shown, (str, SafeData)):
        shown = localize(shown)
    if isinstance(shown, SafeData):
        return cast(str, shown)
    return mark_safe(html_escape(str(shown)))


_URL_PK = 987654321987
# build_rows leaves each row's URL on its object under this name for cell renderers.
ROW_URL_ATTR = "_kehu_row_url"


def _row_url_builder(name: str | None) -> Callable[[Any], str] | None:
    """``pk -> url`` for a URL name taking one pk, reversed once (reverse is ~20 µs)."""
    if not name:
        return None
    pattern = reverse(name, args=[_URL_PK])
    head, _sep, tail = pattern.partition(str(_URL_PK))
    return lambda pk: f"{head}{pk}{tail}"


_choice_tables: dict[tuple[Any, str, str], dict] = {}


def choice_labels(model, field_name: str) -> dict:
    """{value: label} of a field's choices in the active language, built once per process
    and language: ``get_FOO_display`` hashes every lazy label on every call (~10 µs per
    choice), which is most of a list row's cost for a status column."""
    key = (model, field_name, get_language() or "")
    table = _choice_tables.get(key)
    if table is None:
        field = model._meta.get_field(field_name)
        table = _choice_tables[key] = {value: str(label) for value, label in field.flatchoices}
    return table


def _choice_labels(model, column_field: str) -> tuple[dict, str] | None:
    """For a ``get_FOO_display`` column: ({value: label}, "FOO"); None for any other."""
    if not (column_field.startswith("get_") and column_field.endswith("_display")):
        return None
    name = column_field[4:-8]
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:  # a method of that name, not a field's display: left alone
        return None
    if not field.choices:
        return None
    return choice_labels(model, name), field.attname


class ModulePermissionMixin(LoginRequiredMixin):
    module: str = ""
    perm_action: str = "view"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if self.module and not has_perm(request.user, f"{self.module}.{self.perm_action}"):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class KehuListView(ModulePermissionMixin, ListView):
    """A list page: server-side filters, sort, pagination, export and bulk actions.

    Subclasses give ``selector`` (scoped queryset for a user), ``columns``, optionally a
    ``filterset_class`` and ``bulk_actions``. Requests from htmx get only the results.
    """

    template_name = "core/list.html"
    results_template_name = "core/_list_results.html"
    paginate_by = 20
    # Counts stop at a cap (kehu/core/pagination.py): no full COUNT over huge tables.
    paginator_class = BoundedPaginator
    columns: list[Column] = []
    export_columns: list[ExportColumn] = []
    filterset_class: Any = None
    default_sort = "-id"
    title: Any = ""
    create_url_name: str | None = None
    bulk_actions: list[tuple[str, Any]] = []
    search_placeholder: Any = _("Search")
    # The URL name of a row's page (one pk argument): reversed once per page instead of
    # once per row through ``get_absolute_url``.
    row_url_name: str | None = None

    def selector(self, user):
        raise NotImplementedError

    def rows_queryset(self, queryset):
        """The page's rows as the page needs them (columns, joins); exports and bulk
        actions read ``selector`` in full. A subclass narrows it with only()/annotations."""
        return queryset

    def paginate_queryset(self, queryset, page_size):
        return super().paginate_queryset(self.rows_queryset(queryset), page_size)

    def is_filtered(self) -> bool:
        """The request narrows the list by a filter or a search."""
        filterset = getattr(self, "filterset", None)
        if filterset is None or not filterset.is_bound or not filterset.form.is_valid():
            return False
        return any(value not in (None, "", []) for value in filterset.form.cleaned_data.values())

    def get_paginator(self, queryset, per_page, **kwargs):
        # A filtered or searched list may have to read its whole scope to count: it counts
        # within a time budget and otherwise pages on without a total (kehu.core.pagination).
        if self.is_filtered():
            kwargs["budget_ms"] = list_count_budget_ms()
        return super().get_paginator(queryset, per_page, **kwargs)

    def get_template_names(self):
        if is_htmx(self.request) and not self.request.headers.get("HX-Boosted"):
            return [self.results_template_name]
        return [self.template_name]

    def sort_options(self) -> dict[str, str]:
        return {c.field: c.sort for c in self.columns if c.sort}

    def scoped_queryset(self):
        """``selector(user)``, built once per request (pages read its model several times)."""
        queryset = getattr(self, "_scoped", None)
        if queryset is None:
            queryset = self._scoped = self.selector(self.request.user)
        return queryset

    def get_queryset(self):
        queryset = self.scoped_queryset()
        self.filterset = None
        if self.filterset_class is not None:
            self.filterset = self.filterset_class(
                self.request.GET or None, queryset=queryset, request=self.request
            )
            queryset = self.filterset.qs if self.filterset.is_bound else queryset
        sort = self.request.GET.get("sort", "")
        key = sort.lstrip("-")
        options = self.sort_options()
        if key in options:
            order = options[key]
            # The id breaks ties in the sort's own direction, so one (column, id) index
            # serves both directions (read backwards for descending).
            if sort.startswith("-"):
                queryset = queryset.order_by(f"-{order}", "-pk")
            else:
                queryset = queryset.order_by(order, "pk")
        else:
            queryset = queryset.order_by(self.default_sort)
        return queryset

    def get(self, request, *args, **kwargs):
        fmt = request.GET.get("export")
        if fmt:
            return export_response(
                user=request.user,
                module=self.module,
                model=self.scoped_queryset().model,
                queryset=self.get_queryset(),  # read in chunks by export_response
                columns=self.export_columns,
                fmt=fmt,
                filename=str(self.get_title()),
            )
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        """Bulk actions: the chosen rows are re-read through the user's scope."""
        action = request.POST.get("bulk_action", "")
        if action not in dict(self.bulk_actions):
            messages.error(request, _("Choose an action."))
        else:
            ids = [i for i in request.POST.getlist("selected") if is_id(i)]
            objects = list(self.selector(request.user).filter(pk__in=ids))
            if not objects:
                messages.error(request, _("Select at least one row."))
            else:
                try:
                    count = self.perform_bulk_action(action, objects)
                except ServiceError as exc:
                    messages.error(request, str(exc.message))
                else:
                    messages.success(request, _("%(count)d rows updated.") % {"count": count})
        return HttpResponseRedirect(request.get_full_path())

    def perform_bulk_action(self, action: str, objects: list) -> int:
        raise NotImplementedError

    def get_title(self):
        return self.title or self.scoped_queryset().model._meta.verbose_name_plural

    def exportable(self) -> bool:
        """The page offers an export (a subclass whose columns cost a query says so)."""
        return bool(self.export_columns)

    def build_rows(self, objects, columns: list[Column], policy: dict[str, str]) -> list[dict]:
        """The page's rows: each cell's value after the field policy, and its markup where
        Python can write it (the ``cell`` filter, or a registered twin of the column's
        template); ``html`` None leaves the cell to the results template.

        Everything that is the same for every row is worked out once per column first: a
        list page is 20 rows of 8-10 cells, and per-cell overhead is most of its cost."""
        model = self.scoped_queryset().model
        row_url = _row_url_builder(self.row_url_name)
        plan = []
        for column in columns:
            # The cell's opening tag as the results template writes it (a lazy label is
            # translated once per page, not once per row).
            td = f'<td data-label="{conditional_escape(str(column.label))}">'
            # get_FOO_display per row hashes every lazy choice label; one lookup table instead.
            choices = _choice_labels(model, column.field)
            renderer = _cell_renderers.get(column.template) if column.template else None
            plan.append(
                (
                    column,
                    choices[1] if choices else column.field,
                    choices[0] if choices else None,
                    column.field in policy,  # only then can the policy change the value
                    renderer,
                    td,
                )
            )
        rows = []
        for obj in objects:
            if row_url is not None:
                url = row_url(obj.pk)
                setattr(obj, ROW_URL_ATTR, url)
            else:
                url = obj.get_absolute_url() if hasattr(obj, "get_absolute_url") else ""
            cells = []
            for column, attname, labels, ruled, renderer, td in plan:
                if labels is not None:
                    value = getattr(obj, attname)
                    value = labels.get(value, value)
                else:
                    value = getattr(obj, attname, "")
                    if callable(value) and not hasattr(value, "all"):
                        value = value()
                if ruled:
                    value = apply_field_policy(model, policy, column.field, value)
                html: str | None
                if column.template:
                    html = renderer(obj, value) if renderer is not None else None
                else:
                    html = _cell_html(value)
                    if column.link and url:
                        html = format_html('<a href="{}">{}</a>', url, html)
                cells.append(
                    {
                        "column": column,
                        "value": value,
                        "html": html,
                        # The whole cell, or None for the template's include to write.
                        "td": None if html is None else mark_safe(f"{td}{html}</td>"),
                    }
                )
            rows.append({"object": obj, "url": url, "cells": cells})
        return rows

    def column_headers(self, columns: list[Column]) -> list[dict]:
        """Per column: the sort link's query string and the arrow of the current sort."""
        current = self.request.GET.get("sort", "")
        headers = []
        for column in columns:
            header: dict[str, Any] = {"column": column, "sort_query": "", "sort_icon": ""}
            if column.sort:
                query = self.request.GET.copy()
                query["sort"] = f"-{column.field}" if current == column.field else column.field
                query.pop("page", None)
                header["sort_query"] = query.urlencode()
                if current == column.field:
                    header["sort_icon"] = mark_safe('<i class="bi bi-caret-up-fill"></i>')
                elif current == f"-{column.field}":
                    header["sort_icon"] = mark_safe('<i class="bi bi-caret-down-fill"></i>')
            headers.append(header)
        return headers

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        model = self.scoped_queryset().model
        user = self.request.user
        policy = field_policy_for(user, model)
        # Hidden fields lose their column in the header and in every row alike.
        visible_columns = [c for c in self.columns if policy.get(c.field) != "hidden"]
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            {
                "title": self.get_title(),
                "columns": visible_columns,
                "headers": self.column_headers(visible_columns),
                "rows": self.build_rows(context["object_list"], visible_columns, policy),
                "filterset": self.filterset,
                "current_sort": self.request.GET.get("sort", ""),
                "querystring": query.urlencode(),
                "can_export": has_perm(user, f"{self.module}.export") and self.exportable(),
                "can_create": bool(self.create_url_name) and has_perm(user, f"{self.module}.add"),
                "create_url": reverse(self.create_url_name) if self.create_url_name else "",
                "bulk_actions": self.bulk_actions,
                "search_placeholder": self.search_placeholder,
            }
        )
        return context


class KehuFormView(ModulePermissionMixin, View):
    """Create or edit through a service; errors come back inline (htmx swaps the form).

    Subclasses set ``form_class`` and implement ``get_object`` (scoped, or None to create)
    and ``save(form, obj)`` which calls the service and returns the saved object.
    """

    form_class: Any = None
    template_name = "core/form.html"
    title: Any = ""
    success_url_name: str = ""
    perm_action = "change"

    def get_object(self):
        return None

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and self.creating:
            self.perm_action = "add"
        return super().dispatch(request, *args, **kwargs)

    @property
    def creating(self) -> bool:
        return "pk" not in self.kwargs

    def get_form_kwargs(self, obj) -> dict:
        kwargs: dict[str, Any] = {}
        if obj is not None and hasattr(self.form_class, "_meta"):
            kwargs["instance"] = obj
        return kwargs

    def render_form(self, form, obj, status=200):
        template = "core/_form_body.html" if is_htmx(self.request) else self.template_name
        context = {"form": form, "object": obj, "title": self.get_title(obj), "view": self}
        context.update(self.extra_context(obj))
        return render(self.request, template, context, status=status)

    def extra_context(self, obj) -> dict:
        return {}

    def get_title(self, obj):
        return self.title

    def get(self, request, *args, **kwargs):
        obj = self.get_object()
        return self.render_form(self.form_class(**self.get_form_kwargs(obj)), obj)

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        form = self.form_class(request.POST, request.FILES, **self.get_form_kwargs(obj))
        if form.is_valid():
            try:
                saved = self.save(form, obj)
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            else:
                messages.success(request, _("Saved."))
                url = self.get_success_url(saved)
                if is_htmx(request):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = url
                    return response
                return HttpResponseRedirect(url)
        # 200 for htmx so the form with its errors is swapped in; 400 for plain posts.
        return self.render_form(form, obj, status=200 if is_htmx(request) else 400)

    def save(self, form, obj):
        raise NotImplementedError

    def get_success_url(self, obj) -> str:
        return reverse(self.success_url_name)


@login_required
def home(request):
    return render(request, "core/home.html", {"todo_groups": todos_for(request.user)})


@login_required
@require_GET
def global_search(request):
    query = request.GET.get("q", "").strip()[:100]
    groups = search_all(user=request.user, query=query) if query else []
    template = "core/_search_results.html" if is_htmx(request) else "core/search.html"
    return render(request, template, {"query": query, "groups": groups})


@require_GET
def healthz(request):
    """200 when the database answers, 503 otherwise; for load balancers and monitors."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


class KehuLoginView(LoginView):
    """The login page; a user's saved language follows them to any browser."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        language = form.get_user().language
        if language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax"
            )
        return response


@require_POST
def set_language(request):
    """Switch the interface language; remembered in a cookie and on the user."""
    from django.utils import translation

    language = request.POST.get("language", "")
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    if language and check_for_language(language) and language in dict(settings.LANGUAGES):
        translation.activate(language)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax"
        )
        if request.user.is_authenticated and request.user.language != language:
            get_user_model().objects.filter(pk=request.user.pk).update(language=language)
    return response


def _api_error(request, status: int, message) -> JsonResponse | None:
    """Under /api/ an error is JSON like the API's own (``{"detail": …}``), never a page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": str(message)}, status=status)
    return None


def error_404(request, exception=None):
    return _api_error(request, 404, _("Not found.")) or render(request, "404.html", status=404)


def error_403(request, exception=None):
    return _api_error(request, 403, _("You do not have permission to perform this action.")) or (
        render(request, "403.html", status=403)
    )


def error_500(request):
    return _api_error(request, 500, _("A server error occurred.")) or render(
        request, "500.html", status=500
    )
