"""Customer pages: lists, the form with its duplicate check, the 360° page, the pool,
contacts, follow-ups and their calendar, the opportunity board and pipeline settings.

Thin: parse, call a service or selector, render. Scope comes from the selectors (404 for
anything outside it); rules and permissions from the services.
"""

from __future__ import annotations

import calendar
import datetime
from typing import Any

import django_filters
from django import forms
from django.contrib import messages
from django.db.models import F, Q
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views import View

from kehu.core.customfields import (
    custom_field_definitions,
    custom_filter_q,
    custom_values_display,
    definition_label,
)
from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.core.exports import ExportColumn
from kehu.core.fields import apply_field_policy, field_policy_for
from kehu.core.filters import is_id
from kehu.core.forms import SEARCH_SELECT_LIMIT, KehuForm
from kehu.core.permissions import has_perm, require_perm
from kehu.core.savedviews import saved_view_delete, saved_view_save, saved_views_for
from kehu.core.templatetags.kehu import cell as cell_display
from kehu.core.views import (
    Column,
    KehuFormView,
    KehuListView,
    ModulePermissionMixin,
    is_htmx,
    register_cell_renderer,
)
from kehu.customers import selectors, services
from kehu.customers import selectors_opportunities as opp_selectors
from kehu.customers import services_opportunities as opp_services
from kehu.customers.forms import (
    ContactForm,
    CustomerForm,
    FollowUpForm,
    MergeForm,
    OpportunityForm,
    PipelineStageForm,
    TransferForm,
    assignable_users,
)
from kehu.customers.imports import customer_export_columns
from kehu.customers.linked_search import linked_search_q
from kehu.customers.models import (
    Contact,
    Customer,
    CustomerStage,
    CustomerTag,
    FollowUp,
    Opportunity,
    PipelineStage,
    StageKind,
)
from kehu.hr.models import Department
from kehu.system.models import User
from kehu.system.selectors import dictionary_items

SAVED_VIEW_KEY = "customers.customer_list"


def _back(request, fallback: str) -> HttpResponseRedirect:
    """Redirect to ``next`` when it is a local URL, else ``fallback``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(fallback)


def _url_or_empty(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    return start, start + datetime.timedelta(days=1)


# --- customer list --------------------------------------------------------------------------

FOLLOWUP_CHOICES = (
    ("today", _("Due today")),
    ("overdue", _("Overdue")),
    ("week", _("Due within 7 days")),
    ("none", _("Nothing planned")),
)


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Name, pinyin initials, phone, e-mail")}
        ),
    )
    owner = django_filters.ModelChoiceFilter(label=_("Owner"), queryset=User.objects.none())
    department = django_filters.ModelChoiceFilter(
        label=_("Department"), queryset=Department.objects.order_by("path")
    )
    stage = django_filters.ChoiceFilter(label=_("Stage"), choices=CustomerStage.choices)
    level = django_filters.ModelChoiceFilter(label=_("Level"), queryset=dictionary_items("x"))
    source = django_filters.ModelChoiceFilter(label=_("Source"), queryset=dictionary_items("x"))
    industry = django_filters.ModelChoiceFilter(label=_("Industry"), queryset=dictionary_items("x"))
    tag = django_filters.ModelChoiceFilter(
        label=_("Tag"), field_name="tags", queryset=CustomerTag.objects.all()
    )
    followup = django_filters.ChoiceFilter(
        label=_("Follow-up"), choices=FOLLOWUP_CHOICES, method="filter_followup"
    )
    # The analytics dashboard's "new customers" figures link here with a month.
    created_after = django_filters.DateFilter(
        label=_("Created from"),
        field_name="created_at",
        lookup_expr="date__gte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    created_before = django_filters.DateFilter(
        label=_("Created up to"),
        field_name="created_at",
        lookup_expr="date__lte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = Customer
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.request.user
        self.filters["owner"].queryset = assignable_users(user)
        self.filters["level"].queryset = dictionary_items("customer_level")
        self.filters["source"].queryset = dictionary_items("customer_source")
        self.filters["industry"].queryset = dictionary_items("industry")
        # One filter per custom field; values are matched by the core custom-field helper.
        for definition in custom_field_definitions(Customer):
            name = f"cf_{definition.key}"
            if definition.field_type == "choice":
                self.filters[name] = django_filters.ChoiceFilter(
                    label=definition_label(definition),
                    choices=[(c, c) for c in definition.choices or []],
                    method=self.filter_custom,
                )
            else:
                widget = (
                    forms.DateInput(attrs={"type": "date"})
                    if definition.field_type == "date"
                    else forms.TextInput()
                )
                self.filters[name] = django_filters.CharFilter(
                    label=definition_label(definition), method=self.filter_custom, widget=widget
                )
            self.filters[name].field_name = name

    def filter_custom(self, queryset, name, value):
        return queryset.filter(custom_filter_q(Customer, name[3:], value))

    def search(self, queryset, name, value):
        # The list's queryset is scoped already: the search's conditions go on it directly
        # (as a nested subquery a page could not stop after its rows).
        return queryset.filter(selectors.customer_search_q(user=self.request.user, query=value))

    def filter_followup(self, queryset, name, value):
        return queryset.filter(_due_q(value))


def _due_q(value: str) -> Q:
    """Next follow-up due today, overdue, within a week, or none planned."""
    now = timezone.now()
    start, end = _day_bounds(timezone.localdate())
    if value == "today":
        return Q(next_followup_at__gte=start, next_followup_at__lt=end)
    if value == "overdue":
        return Q(next_followup_at__lt=now)
    if value == "week":
        return Q(next_followup_at__gte=now, next_followup_at__lt=now + datetime.timedelta(days=7))
    if value == "none":
        return Q(next_followup_at__isnull=True)
    return Q()


def _next_followup_cell(obj, value) -> str | None:
    """customers/_cell_next_followup.html in Python: overdue red, due today amber."""
    if not value:
        return "—"
    if not isinstance(value, datetime.datetime):
        return None  # not a date (a field rule masked it): the template decides
    due = timezone.localtime(value).date()
    today = timezone.localdate()
    css = (
        "text-danger fw-semibold"
        if due < today
        else "text-warning-emphasis fw-semibold"
        if due == today
        else ""
    )
    return format_html('<span class="{}">{}</span>', css, cell_display(value))


register_cell_renderer("customers/_cell_next_followup.html", _next_followup_cell)


def _dict_label(item) -> str:
    return item.display_label if item is not None else ""


class CustomerListView(KehuListView):
    module = "customers"
    title = _("Customers")
    template_name = "customers/customer_list.html"
    filterset_class = CustomerFilter
    create_url_name = "customers:customer_create"
    default_sort = "-id"
    columns = [
        Column("name", _("Name"), sort="name_initials", link=True),
        Column("phone", _("Phone")),
        Column("level", _("Level"), sort="level__sort_order"),
        Column("get_stage_display", _("Stage"), sort="stage"),
        # By owner id: groups each owner's customers, served by an index (a sort by the
        # owner's name would sort every customer in scope through the users table).
        Column("owner", _("Owner"), sort="owner_id"),
        Column("tag_names", _("Tags")),  # set by build_rows, one query a page
        Column("last_followup_at", _("Last follow-up"), sort="last_followup_at"),
        Column(
            "next_followup_at",
            _("Next follow-up"),
            sort="next_followup_at",
            template="customers/_cell_next_followup.html",
        ),
    ]
    bulk_actions = [("transfer", _("Transfer to…")), ("return", _("Return to the pool"))]
    row_url_name = "customers:customer_detail"

    def rows_queryset(self, queryset):
        return selectors.customer_list_page_rows(queryset)

    def build_rows(self, objects, columns, policy):
        objects = list(objects)
        selectors.customer_tag_names_attach(objects)  # the "tag_names" column
        return super().build_rows(objects, columns, policy)

    @property
    def export_columns(self):  # type: ignore[override]
        # The one definition of the customer export, shared with the API and the importer.
        return customer_export_columns()

    def exportable(self) -> bool:
        return True  # the fixed columns; not worth the custom-field query on every page

    def selector(self, user):
        return (
            selectors.customer_list_visible_to(user=user)
            .select_related("owner", "level", "industry", "source")
            .prefetch_related("tags")
        )

    def perform_bulk_action(self, action: str, objects: list) -> int:
        reason = self.request.POST.get("bulk_reason", "")
        if action == "transfer":
            owner = (
                assignable_users(self.request.user)
                .filter(pk=self.request.POST.get("bulk_owner") or 0)
                .first()
            )
            if owner is None:
                raise ServiceError(_("Choose the new owner."), field="owner")
            for customer in objects:
                services.customer_transfer(
                    actor=self.request.user, customer=customer, owner=owner, reason=reason
                )
        else:
            for customer in objects:
                services.customer_return_to_pool(
                    actor=self.request.user, customer=customer, reason=reason
                )
        return len(objects)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        can_assign = has_perm(user, "customers.assign")
        if not has_perm(user, "customers.change"):
            context["bulk_actions"] = []
        elif not can_assign:
            context["bulk_actions"] = [a for a in self.bulk_actions if a[0] != "transfer"]
        context.update(
            {
                "bulk_extra_template": "customers/_bulk_extra.html",
                "bulk_owners": assignable_users(user) if can_assign else [],
                "saved_views": saved_views_for(user=user, view=SAVED_VIEW_KEY),
                # The import wizard is a separate piece; the button shows once it is installed.
                "import_url": _url_or_empty("imports:upload", "customers")
                if has_perm(user, "customers.add")
                else "",
            }
        )
        return context


class SavedViewSaveView(ModulePermissionMixin, View):
    module = "customers"
    http_method_names = ["post"]

    def post(self, request):
        try:
            saved = saved_view_save(
                user=request.user,
                view=SAVED_VIEW_KEY,
                name=request.POST.get("name", ""),
                querystring=request.POST.get("querystring", ""),
            )
        except ServiceError as exc:
            messages.error(request, str(exc.message))
            return HttpResponseRedirect(reverse("customers:customer_list"))
        messages.success(request, _("View “%(name)s” saved.") % {"name": saved.name})
        url = reverse("customers:customer_list")
        return HttpResponseRedirect(f"{url}?{saved.querystring}" if saved.querystring else url)


class SavedViewDeleteView(ModulePermissionMixin, View):
    module = "customers"
    http_method_names = ["post"]

    def post(self, request, pk):
        if not saved_view_delete(user=request.user, pk=pk):
            raise Http404
        messages.success(request, _("The saved view was deleted."))
        return HttpResponseRedirect(reverse("customers:customer_list"))


# --- customer form --------------------------------------------------------------------------


class _CustomerFormMixin:
    module = "customers"
    form_class = CustomerForm
    template_name = "customers/customer_form.html"

    def get_form_kwargs(self, obj) -> dict:
        kwargs = super().get_form_kwargs(obj)  # type: ignore[misc]
        kwargs["actor"] = self.request.user  # type: ignore[attr-defined]
        kwargs["policy"] = field_policy_for(self.request.user, Customer)  # type: ignore[attr-defined]
        return kwargs

    def get_success_url(self, obj) -> str:
        return obj.get_absolute_url()

    def render_form(self, form, obj, status=200):
        template = (
            "customers/_customer_form_body.html" if is_htmx(self.request) else self.template_name
        )
        context = {"form": form, "object": obj, "title": self.get_title(obj), "view": self}  # type: ignore[attr-defined]
        return render(self.request, template, context, status=status)  # type: ignore[attr-defined]

    def post(self, request, *args, **kwargs):
        """Like the base form view, but a duplicate refusal shows the hits and the
        "create anyway" box instead of a bare error."""
        obj = self.get_object()  # type: ignore[attr-defined]
        form = self.form_class(request.POST, request.FILES, **self.get_form_kwargs(obj))
        if form.is_valid():
            try:
                saved = self.save(form, obj)  # type: ignore[attr-defined]
            except ServiceError as exc:
                if exc.code == "duplicate":
                    form.offer_allow_duplicate(hits_display(getattr(exc, "hits", [])))
                target = exc.field if exc.field in form.fields else None
                if exc.code == "duplicate" and target == "name":
                    target = None  # shown with the hits above the form
                form.add_error(target, str(exc.message))
            else:
                messages.success(request, _("Saved."))
                url = self.get_success_url(saved)
                if is_htmx(request):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = url
                    return response
                return HttpResponseRedirect(url)
        return self.render_form(form, obj, status=200 if is_htmx(request) else 400)  # type: ignore[attr-defined]


class CustomerCreateView(_CustomerFormMixin, KehuFormView):
    title = _("New customer")

    def save(self, form, obj):
        return services.customer_create(
            actor=self.request.user,
            data=form.service_data(),
            tags=form.tags(),
            custom_fields=form.custom_values(),
            owner=form.cleaned_data.get("owner"),
            allow_duplicate=bool(form.cleaned_data.get("allow_duplicate")),
        )


class CustomerEditView(_CustomerFormMixin, KehuFormView):
    def get_object(self):
        return selectors.customer_get_for_change(user=self.request.user, pk=self.kwargs["pk"])

    def get_title(self, obj):
        return _("Edit %(name)s") % {"name": obj.name}

    def save(self, form, obj):
        return services.customer_update(
            actor=self.request.user,
            customer=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
            tags=form.tags() if "tags_text" in form.fields else None,
            custom_fields=form.custom_values(),
        )


def hits_display(hits) -> list[dict]:
    """Duplicate hits for the template, with what matched in the user's language."""
    return [
        {
            "visible": hit.visible,
            "customer_id": hit.customer_id,
            "name": hit.name,
            "owner": hit.owner,
            "what": services.MATCH_LABELS.get(hit.matched_on, hit.matched_on),
        }
        for hit in hits
    ]


class CustomerDuplicatesView(ModulePermissionMixin, View):
    """htmx: the duplicate hits for what has been typed so far (name, phones, e-mail)."""

    module = "customers"

    def get(self, request):
        exclude = request.GET.get("exclude", "")
        hits = services.customer_find_duplicates(
            actor=request.user,
            name=request.GET.get("name", "")[:200],
            phone=request.GET.get("phone", "")[:30],
            mobile=request.GET.get("mobile", "")[:30],
            email=request.GET.get("email", "")[:254],
            exclude_id=int(exclude) if is_id(exclude) else None,
        )
        return render(request, "customers/_duplicate_hits.html", {"hits": hits_display(hits)})


# --- customer 360° --------------------------------------------------------------------------

PROFILE_FIELDS = [
    "code",
    "get_kind_display",
    "short_name",
    "phone",
    "mobile",
    "email",
    "website",
    "address",
    "industry",
    "source",
    "level",
    "get_stage_display",
    "owner",
    "department",
    "notes",
]


def _profile(customer: Customer, policy: dict[str, str]) -> list[tuple[Any, Any]]:
    """(label, value) pairs with the viewer's field policy applied (masked, hidden)."""
    rows: list[tuple[Any, Any]] = []
    for name in PROFILE_FIELDS:
        if name == "address":
            parts = [customer.province, customer.city, customer.district, customer.street]
            rows.append((_("Address"), " ".join(p for p in parts if p)))
            continue
        field_name = name.removeprefix("get_").removesuffix("_display")
        value = getattr(customer, name)
        if callable(value):
            value = value()
        value = apply_field_policy(Customer, policy, field_name, value)
        if value is None and policy.get(field_name) == "hidden":
            continue
        label = getattr(Customer._meta.get_field(field_name), "verbose_name", field_name)
        rows.append((label, value))
    return rows


def _timeline(customer: Customer) -> list:
    return list(selectors.customer_timeline(customer=customer))


class CustomerDetailView(ModulePermissionMixin, View):
    module = "customers"

    def get(self, request, pk):
        customer = selectors.customer_get_for(user=request.user, pk=pk)
        return render(request, "customers/customer_detail.html", detail_context(request, customer))


def detail_context(request, customer: Customer, **forms_: Any) -> dict:
    """Everything the 360° page shows, in a fixed number of queries however long the lists."""
    user = request.user
    policy = field_policy_for(user, Customer)
    contact_policy = field_policy_for(user, Contact)
    contacts = list(selectors.contacts_of(user=user, customer=customer))
    for contact in contacts:
        contact.shown = {  # type: ignore[attr-defined]
            name: apply_field_policy(Contact, contact_policy, name, getattr(contact, name))
            for name in ("phone", "mobile", "email", "wechat")
        }
    timeline = selectors.customer_timeline(customer=customer)
    opportunities = list(
        customer.opportunities.select_related("stage", "owner").order_by("-id")[:50]
    )
    figures = selectors.customer_key_figures(customer=customer)
    figures["days_owned"] = (
        (timezone.now() - customer.assigned_at).days
        if customer.assigned_at and customer.owner_id
        else None
    )
    in_scope = selectors.customer_can_change(user=user, customer=customer)
    can_change = in_scope and not customer.in_pool
    can_assign = can_change and has_perm(user, "customers.assign")
    return {
        "title": customer.name,
        "customer": customer,
        "profile": _profile(customer, policy),
        "custom_values": custom_values_display(Customer, customer.custom_fields),
        "tags": list(customer.tags.all()),
        "contacts": contacts,
        "timeline": timeline,
        "opportunities": opportunities,
        "figures": figures,
        "can_change": can_change,
        "can_assign": can_assign,
        "can_return": can_change and (customer.owner_id == user.pk or can_assign),
        "can_claim": customer.in_pool and has_perm(user, "customers.change"),
        "can_merge": in_scope and has_perm(user, "system.change"),
        "can_add_opportunity": can_change and has_perm(user, "customers.add"),
        "contact_form": forms_.get("contact_form") or ContactForm(prefix="contact"),
        "followup_form": forms_.get("followup_form")
        or FollowUpForm(customer=customer, prefix="followup"),
        "transfer_form": TransferForm(actor=user, prefix="transfer") if can_assign else None,
        "open_section": forms_.get("open_section", ""),
        "sales_documents": _sales_documents(user, customer),
        "can_add_sales": can_change and has_perm(user, "sales.add"),
    }


def _sales_documents(user, customer: Customer) -> dict | None:
    """The customer's quotes, contracts and orders (kehu.sales), for those who may see them."""
    if not has_perm(user, "sales.view"):
        return None
    from kehu.sales.selectors import customer_documents

    return customer_documents(user=user, customer=customer)


class CustomerActionView(ModulePermissionMixin, View):
    """Transfer, return to the pool, claim: a POST with a reason, back to the 360° page."""

    module = "customers"
    perm_action = "view"  # the services check the action's own permission
    http_method_names = ["post"]
    action = ""

    def post(self, request, pk):
        if self.action == "claim":
            customer = selectors.pool_customer_get_for_claim(user=request.user, pk=pk)
        else:
            customer = selectors.customer_get_for_change(user=request.user, pk=pk)
        try:
            message = self.perform(request, customer)
        except PermissionRefused:
            raise  # a 403 (kehu.core.middleware), not a message on the page
        except ServiceError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(request, message)
        return _back(request, customer.get_absolute_url())

    def perform(self, request, customer):
        user = request.user
        if self.action == "transfer":
            require_perm(user, "customers.assign")
            form = TransferForm(request.POST, actor=user, prefix="transfer")
            if not form.is_valid():
                raise ServiceError(_("Choose the new owner and give a reason."))
            services.customer_transfer(
                actor=user,
                customer=customer,
                owner=form.cleaned_data["owner"],
                reason=form.cleaned_data["reason"],
            )
            return _("Transferred to %(owner)s.") % {"owner": form.cleaned_data["owner"]}
        if self.action == "return":
            services.customer_return_to_pool(
                actor=user, customer=customer, reason=request.POST.get("return-reason", "")
            )
            return _("The customer is back in the public pool.")
        services.customer_claim(actor=user, customer=customer)
        return _("The customer is yours now.")


class CustomerMergeView(ModulePermissionMixin, View):
    module = "customers"
    perm_action = "delete"

    def _render(self, request, customer, form, status=200):
        return render(
            request,
            "customers/customer_merge.html",
            {"customer": customer, "form": form, "title": _("Merge %(name)s") % {"name": customer}},
            status=status,
        )

    def get(self, request, pk):
        customer = selectors.customer_get_for_change(user=request.user, pk=pk)
        return self._render(request, customer, MergeForm(actor=request.user, customer=customer))

    def post(self, request, pk):
        customer = selectors.customer_get_for_change(user=request.user, pk=pk)
        form = MergeForm(request.POST, actor=request.user, customer=customer)
        if form.is_valid():
            survivor = form.cleaned_data["other"]
            try:
                services.customer_merge(actor=request.user, survivor=survivor, merged=customer)
            except ServiceError as exc:
                form.add_error(None, str(exc.message))
            else:
                messages.success(
                    request,
                    _("%(merged)s was merged into %(survivor)s.")
                    % {"merged": customer, "survivor": survivor},
                )
                return HttpResponseRedirect(survivor.get_absolute_url())
        return self._render(request, customer, form, status=400)


class ContactCreateView(ModulePermissionMixin, View):
    """Inline add on the 360° page; errors come back in the page's contacts card."""

    module = "customers"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        customer = selectors.customer_get_for_change(user=request.user, pk=pk)
        form = ContactForm(request.POST, prefix="contact")
        if form.is_valid():
            try:
                services.contact_create(
                    actor=request.user, customer=customer, data=form.service_data()
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            else:
                messages.success(request, _("Contact added."))
                return _redirect(request, customer.get_absolute_url() + "#contacts")
        context = detail_context(request, customer, contact_form=form, open_section="contact")
        return render(request, "customers/customer_detail.html", context, status=400)


def _redirect(request, url: str) -> HttpResponse:
    if is_htmx(request):
        response = HttpResponse(status=204)
        # No #fragment: from /customers/1/#contacts the browser would only scroll, not reload.
        response["HX-Redirect"] = url.split("#", 1)[0]
        return response
    return HttpResponseRedirect(url)


class ContactEditView(KehuFormView):
    module = "customers"
    form_class = ContactForm
    template_name = "core/form.html"

    def get_object(self):
        return selectors.contact_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_form_kwargs(self, obj) -> dict:
        kwargs = super().get_form_kwargs(obj)
        kwargs["policy"] = field_policy_for(self.request.user, Contact)
        return kwargs

    def get_title(self, obj):
        return _("Contact %(name)s") % {"name": obj.name}

    def save(self, form, obj):
        return services.contact_update(
            actor=self.request.user,
            contact=obj,
            expected_version=form.cleaned_data["version"],
            data=form.service_data(),
        )

    def render_form(self, form, obj, status=200):
        if is_htmx(self.request):
            # Inline on the 360° page: the form replaces the contact's row.
            return render(
                self.request,
                "customers/_contact_inline_form.html",
                {"form": form, "contact": obj},
                status=status,
            )
        return super().render_form(form, obj, status=status)

    def get_success_url(self, obj) -> str:
        url = reverse("customers:customer_detail", args=[obj.customer_id])
        # htmx reloads the page (a #fragment alone would only scroll).
        return url if is_htmx(self.request) else url + "#contacts"


class ContactDeleteView(ModulePermissionMixin, View):
    module = "customers"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        contact = selectors.contact_get_for(user=request.user, pk=pk)
        try:
            services.contact_delete(actor=request.user, contact=contact)
        except ServiceError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(request, _("Contact deleted."))
        return HttpResponseRedirect(
            reverse("customers:customer_detail", args=[contact.customer_id]) + "#contacts"
        )


class FollowUpCreateView(ModulePermissionMixin, View):
    """Quick-add on the 360° page, with attachments (htmx posts multipart)."""

    module = "customers"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        customer = selectors.customer_get_for_change(user=request.user, pk=pk)
        form = FollowUpForm(request.POST, request.FILES, customer=customer, prefix="followup")
        if form.is_valid():
            data = form.service_data()
            try:
                services.followup_create(
                    actor=request.user,
                    customer=customer,
                    data=data,
                    files=form.cleaned_data.get("attachments") or [],
                )
            except ServiceError as exc:
                field = exc.field if exc.field in form.fields else None
                form.add_error(field, str(exc.message))
            else:
                messages.success(request, _("Follow-up recorded."))
                return _redirect(request, customer.get_absolute_url() + "#followups")
        if is_htmx(request):
            return render(
                request,
                "customers/_followup_form.html",
                {"customer": customer, "followup_form": form},
            )
        context = detail_context(request, customer, followup_form=form, open_section="followup")
        return render(request, "customers/customer_detail.html", context, status=400)


class CustomerOptionsView(ModulePermissionMixin, View):
    """htmx: ``<option>``s of the user's customers (not the pool) matching ``q``, for the
    forms' customer search select; the newest when nothing was typed."""

    module = "customers"

    def get(self, request):
        query = request.GET.get("q", "").strip()[:100]
        customers = (
            selectors.customer_search(user=request.user, query=query)
            if query
            else selectors.customer_list_visible_to(user=request.user).order_by("-id")
        )
        rows = customers.select_related(None).prefetch_related(None).only("id", "name")
        options = [(c.pk, c.name) for c in rows[:SEARCH_SELECT_LIMIT]]
        return render(request, "core/_options.html", {"options": options})


# --- pool -----------------------------------------------------------------------------------


class SearchOnlyFilter(django_filters.FilterSet):
    """One search box (pool and contacts): the customer search, or contact names."""

    q = django_filters.CharFilter(
        label=_("Search"), method="search", widget=forms.TextInput(attrs={"type": "search"})
    )

    class Meta:
        fields: list[str] = []
        form = KehuForm

    def search(self, queryset, name, value):
        value = value.strip()[:100]
        if queryset.model is Contact:
            return queryset.filter(linked_search_q(Contact, value, fields=("name",)))
        return queryset.filter(selectors.customer_search_q(user=self.request.user, query=value))


class PoolFilter(SearchOnlyFilter):
    class Meta(SearchOnlyFilter.Meta):
        model = Customer


class ContactFilter(SearchOnlyFilter):
    class Meta(SearchOnlyFilter.Meta):
        model = Contact


class PoolListView(KehuListView):
    module = "customers"
    title = _("Public pool")
    template_name = "customers/pool_list.html"
    filterset_class = PoolFilter
    default_sort = "-pool_entered_at"
    columns = [
        Column("name", _("Name"), sort="name_initials", link=True),
        Column("level", _("Level"), sort="level__sort_order"),
        Column("industry", _("Industry")),
        Column("city", _("City"), sort="city"),
        Column("last_followup_at", _("Last follow-up"), sort="last_followup_at"),
        Column("pool_entered_at", _("In the pool since"), sort="pool_entered_at"),
        Column("claim", _("Claim"), template="customers/_cell_claim.html"),
    ]

    def selector(self, user):
        return selectors.pool_list(user=user).select_related("level", "industry")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_claim"] = has_perm(self.request.user, "customers.change")
        return context


# --- contacts and follow-ups ----------------------------------------------------------------


class ContactListView(KehuListView):
    module = "customers"
    title = _("Contacts")
    filterset_class = ContactFilter
    default_sort = "-id"
    columns = [
        Column("name", _("Name"), sort="name", link=True),
        Column(
            "customer",
            _("Customer"),
            sort="customer__name_initials",
            template="customers/_cell_customer.html",
        ),
        Column("title", _("Job title")),
        Column("mobile", _("Mobile")),
        Column("phone", _("Phone")),
        Column("email", _("E-mail")),
        Column("is_primary", _("Primary contact"), sort="is_primary"),
    ]
    export_columns = [
        ExportColumn("name", _("Name")),
        ExportColumn("customer", _("Customer"), lambda c: c.customer.name),
        ExportColumn("title", _("Job title")),
        ExportColumn("mobile", _("Mobile")),
        ExportColumn("phone", _("Phone")),
        ExportColumn("email", _("E-mail")),
        ExportColumn("wechat", _("WeChat")),
    ]

    def selector(self, user):
        return selectors.contact_list_visible_to(user=user)


class FollowUpFilter(django_filters.FilterSet):
    due = django_filters.ChoiceFilter(
        label=_("Next follow-up"), choices=FOLLOWUP_CHOICES[:3], method="filter_due"
    )
    method = django_filters.ModelChoiceFilter(label=_("Method"), queryset=dictionary_items("x"))
    date_from = django_filters.DateFilter(
        label=_("From"), method="filter_from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        label=_("To"), method="filter_to", widget=forms.DateInput(attrs={"type": "date"})
    )
    # The calendar's "more" link: every plan of one day.
    planned = django_filters.DateFilter(
        label=_("Planned for"),
        method="filter_planned",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = FollowUp
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["method"].queryset = dictionary_items("followup_method")

    def filter_due(self, queryset, name, value):
        # The plan that is still open: the customer's next follow-up is this one's.
        return queryset.filter(_due_q(value), customer__next_followup_at=F("next_followup_at"))

    def filter_from(self, queryset, name, value):
        return queryset.filter(happened_at__gte=_day_bounds(value)[0])

    def filter_to(self, queryset, name, value):
        return queryset.filter(happened_at__lt=_day_bounds(value)[1])

    def filter_planned(self, queryset, name, value):
        start, end = _day_bounds(value)
        return queryset.filter(next_followup_at__gte=start, next_followup_at__lt=end)


class FollowUpListView(KehuListView):
    module = "customers"
    title = _("Follow-ups")
    template_name = "customers/followup_list.html"
    filterset_class = FollowUpFilter
    default_sort = "-happened_at"
    columns = [
        Column("happened_at", _("Time"), sort="happened_at", link=True),
        Column(
            "customer",
            _("Customer"),
            sort="customer__name_initials",
            template="customers/_cell_customer.html",
        ),
        Column("method", _("Method")),
        Column("content", _("Content"), template="customers/_cell_truncate.html"),
        Column("author", _("By"), sort="author__username"),
        Column("next_followup_at", _("Next follow-up"), sort="next_followup_at"),
        Column("next_action", _("Planned action")),
    ]
    export_columns = [
        ExportColumn("happened_at", _("Time")),
        ExportColumn("customer", _("Customer"), lambda f: f.customer.name),
        ExportColumn("method", _("Method"), lambda f: _dict_label(f.method)),
        ExportColumn("content", _("Content")),
        ExportColumn("author", _("By"), lambda f: str(f.author)),
        ExportColumn("next_followup_at", _("Next follow-up")),
        ExportColumn("next_action", _("Planned action")),
    ]

    def selector(self, user):
        return selectors.followup_list_visible_to(user=user)


class FollowUpCalendarView(ModulePermissionMixin, View):
    """A month of planned follow-ups, drawn on the server (no calendar library)."""

    module = "customers"

    def get(self, request):
        today = timezone.localdate()
        try:
            year = int(request.GET.get("year", today.year))
            month = int(request.GET.get("month", today.month))
            first = datetime.date(year, month, 1)
        except (TypeError, ValueError):
            first = today.replace(day=1)
        weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
        by_day = selectors.followup_plans_by_day(
            user=request.user, days=[day for week in weeks for day in week]
        )
        for plans, _more in by_day.values():
            for plan in plans:
                # Done once a later follow-up of the customer has happened.
                plan.done = bool(
                    plan.customer.last_followup_at
                    and plan.customer.last_followup_at >= plan.next_followup_at
                )
        previous = (first - datetime.timedelta(days=1)).replace(day=1)
        following = (first + datetime.timedelta(days=32)).replace(day=1)
        context = {
            "title": _("Follow-up calendar"),
            "month": first,
            "today": today,
            "current_time": timezone.now(),
            "weekdays": [calendar.day_abbr[i] for i in range(7)],
            # (day, its plans, whether it has more than the calendar shows)
            "weeks": [[(day, *by_day[day]) for day in week] for week in weeks],
            "previous": previous,
            "following": following,
        }
        return render(request, "customers/followup_calendar.html", context)


# --- opportunities --------------------------------------------------------------------------


class OpportunityBoardView(ModulePermissionMixin, View):
    module = "customers"

    def get(self, request):
        owner = request.GET.get("owner", "")
        columns = opp_selectors.opportunity_board(
            user=request.user,
            owner_id=int(owner) if is_id(owner) else None,
            query=request.GET.get("q", "").strip()[:100],
        )
        return render(
            request,
            "customers/opportunity_board.html",
            {
                "title": _("Opportunities"),
                "columns": columns,
                "owners": assignable_users(request.user),
                "can_change": has_perm(request.user, "customers.change"),
                "can_add": has_perm(request.user, "customers.add"),
                "can_configure": has_perm(request.user, "system.change"),
                "owner_filter": request.GET.get("owner", ""),
                "query": request.GET.get("q", ""),
            },
        )


class OpportunityFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Title or customer")}),
    )
    stage = django_filters.ModelChoiceFilter(label=_("Stage"), queryset=PipelineStage.objects.all())
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=StageKind.choices, field_name="stage__kind"
    )
    owner = django_filters.ModelChoiceFilter(label=_("Owner"), queryset=User.objects.none())
    close_from = django_filters.DateFilter(
        label=_("Expected close from"),
        field_name="expected_close_date",
        lookup_expr="gte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    close_to = django_filters.DateFilter(
        label=_("Expected close to"),
        field_name="expected_close_date",
        lookup_expr="lte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = Opportunity
        fields: list[str] = []
        form = KehuForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["owner"].queryset = assignable_users(self.request.user)

    def search(self, queryset, name, value):
        return queryset.filter(linked_search_q(Opportunity, value, fields=("title",)))


class OpportunityListView(KehuListView):
    module = "customers"
    title = _("Opportunities")
    template_name = "customers/opportunity_list.html"
    filterset_class = OpportunityFilter
    create_url_name = "customers:opportunity_create"
    default_sort = "-id"
    columns = [
        Column("title", _("Title"), sort="title", link=True),
        Column(
            "customer",
            _("Customer"),
            sort="customer__name_initials",
            template="customers/_cell_customer.html",
        ),
        Column("amount", _("Amount"), sort="amount"),
        Column("stage", _("Stage"), sort="stage__sort_order"),
        Column("probability", _("Win probability (%)"), sort="probability"),
        Column("expected_close_date", _("Expected close date"), sort="expected_close_date"),
        Column("owner", _("Owner"), sort="owner__username"),
        Column("lost_reason", _("Reason lost")),
    ]
    export_columns = [
        ExportColumn("title", _("Title")),
        ExportColumn("customer", _("Customer"), lambda o: o.customer.name),
        ExportColumn("amount", _("Amount")),
        ExportColumn("currency", _("Currency")),
        ExportColumn("stage", _("Stage"), lambda o: str(o.stage)),
        ExportColumn("probability", _("Win probability (%)")),
        ExportColumn("expected_close_date", _("Expected close date")),
        ExportColumn("owner", _("Owner"), lambda o: str(o.owner)),
        ExportColumn("closed_at", _("Closed at")),
        ExportColumn("lost_reason", _("Reason lost")),
    ]

    def selector(self, user):
        return opp_selectors.opportunity_list_visible_to(user=user)


class OpportunityFormView(KehuFormView):
    module = "customers"
    form_class = OpportunityForm
    template_name = "customers/opportunity_form.html"
    title = _("New opportunity")

    def get_object(self):
        if self.creating:
            return None
        return opp_selectors.opportunity_get_for(user=self.request.user, pk=self.kwargs["pk"])

    def get_form_kwargs(self, obj) -> dict:
        kwargs = super().get_form_kwargs(obj)
        kwargs["actor"] = self.request.user
        if obj is None and is_id(self.request.GET.get("customer", "")):
            kwargs["initial"] = {"customer": int(self.request.GET["customer"])}
        return kwargs

    def get_title(self, obj):
        return obj.title if obj else self.title

    def extra_context(self, obj) -> dict:
        from kehu.sales.selectors import opportunity_documents

        user = self.request.user
        return {
            "can_close": obj is not None
            and obj.closed_at is None
            and has_perm(self.request.user, "customers.change"),
            "can_delete": obj is not None and has_perm(self.request.user, "customers.delete"),
            # Quotes and contracts made for the opportunity (kehu.sales), within the scope.
            "sales_documents": opportunity_documents(user=user, opportunity=obj) if obj else None,
            "can_add_sales": has_perm(user, "sales.add"),
        }

    def save(self, form, obj):
        data = form.service_data()
        if obj is None:
            return opp_services.opportunity_create(actor=self.request.user, data=data)
        return opp_services.opportunity_update(
            actor=self.request.user,
            opportunity=obj,
            expected_version=form.cleaned_data["version"],
            data=data,
        )

    def get_success_url(self, obj) -> str:
        return reverse("customers:opportunity_board")


def _json_error(exc: ServiceError) -> JsonResponse:
    return JsonResponse(
        {"error": str(exc.message), "field": exc.field, "code": exc.code},
        status=exc.status_code,
    )


class OpportunityMoveView(ModulePermissionMixin, View):
    """The board's drop: JSON in (form-encoded), JSON out; a refusal keeps the card home."""

    module = "customers"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        opportunity = opp_selectors.opportunity_get_for(user=request.user, pk=pk)
        try:
            stage = PipelineStage.objects.get(pk=int(request.POST.get("stage", "")))
            position = int(request.POST.get("position", "0"))
            version = int(request.POST.get("version", ""))
        except (ValueError, PipelineStage.DoesNotExist):
            return JsonResponse(
                {"error": str(_("The request could not be completed."))}, status=400
            )
        try:
            moved = opp_services.opportunity_move(
                actor=request.user,
                opportunity=opportunity,
                stage=stage,
                position=position,
                expected_version=version,
                lost_reason=request.POST.get("lost_reason", ""),
            )
        except ServiceError as exc:
            return _json_error(exc)
        return JsonResponse(
            {
                "id": moved.pk,
                "version": moved.version,
                "stage": moved.stage_id,
                "probability": moved.probability,
                "closed": moved.closed_at is not None,
            }
        )


class OpportunityCloseView(ModulePermissionMixin, View):
    """Won / lost buttons on the opportunity page."""

    module = "customers"
    perm_action = "change"
    http_method_names = ["post"]
    outcome = "won"

    def post(self, request, pk):
        opportunity = opp_selectors.opportunity_get_for(user=request.user, pk=pk)
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            version = 0
        try:
            if self.outcome == "won":
                opp_services.opportunity_mark_won(
                    actor=request.user, opportunity=opportunity, expected_version=version
                )
                messages.success(request, _("Marked as won."))
            else:
                opp_services.opportunity_mark_lost(
                    actor=request.user,
                    opportunity=opportunity,
                    expected_version=version,
                    reason=request.POST.get("reason", ""),
                )
                messages.success(request, _("Marked as lost."))
        except ServiceError as exc:
            messages.error(request, str(exc.message))
            return HttpResponseRedirect(reverse("customers:opportunity_edit", args=[pk]))
        return _back(request, reverse("customers:opportunity_board"))


class OpportunityDeleteView(ModulePermissionMixin, View):
    module = "customers"
    perm_action = "delete"
    http_method_names = ["post"]

    def post(self, request, pk):
        opportunity = opp_selectors.opportunity_get_for(user=request.user, pk=pk)
        try:
            opp_services.opportunity_delete(actor=request.user, opportunity=opportunity)
        except ServiceError as exc:
            messages.error(request, str(exc.message))
            return HttpResponseRedirect(reverse("customers:opportunity_edit", args=[pk]))
        messages.success(request, _("The opportunity was deleted."))
        return HttpResponseRedirect(reverse("customers:opportunity_board"))


# --- pipeline stages ------------------------------------------------------------------------


class StageListView(ModulePermissionMixin, View):
    module = "system"

    def get(self, request):
        stages = list(opp_selectors.pipeline_stages(active_only=False))
        return render(
            request,
            "customers/stage_list.html",
            {
                "title": _("Sales pipeline"),
                "stages": stages,
                "can_change": has_perm(request.user, "system.change"),
            },
        )


class StageFormView(KehuFormView):
    module = "system"
    form_class = PipelineStageForm
    success_url_name = "customers:stage_list"
    title = _("New stage")

    def get_object(self):
        if self.creating:
            return None
        try:
            return PipelineStage.objects.get(pk=self.kwargs["pk"])
        except PipelineStage.DoesNotExist as exc:
            raise Http404 from exc

    def get_title(self, obj):
        return _("Stage %(name)s") % {"name": obj} if obj else self.title

    def save(self, form, obj):
        data = form.service_data()
        if obj is None:
            return opp_services.pipeline_stage_create(actor=self.request.user, data=data)
        return opp_services.pipeline_stage_update(
            actor=self.request.user,
            stage=obj,
            expected_version=form.cleaned_data["version"],
            data=data,
        )


class StageMoveView(ModulePermissionMixin, View):
    """Up / down buttons: swap a stage with its neighbour and renumber."""

    module = "system"
    perm_action = "change"
    http_method_names = ["post"]

    def post(self, request, pk):
        ids = list(opp_selectors.pipeline_stages(active_only=False).values_list("pk", flat=True))
        if pk not in ids:
            raise Http404
        index = ids.index(pk)
        other = index - 1 if request.POST.get("direction") == "up" else index + 1
        if 0 <= other < len(ids):
            ids[index], ids[other] = ids[other], ids[index]
            opp_services.pipeline_stage_reorder(actor=request.user, ordered_ids=ids)
        return HttpResponseRedirect(reverse("customers:stage_list"))
