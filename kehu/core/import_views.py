"""Import pages shared by every module: upload → preview → result (with progress).

Thin: each view checks the importer's permissions, then calls kehu.core.imports.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.core.imports import (
    MODE_EXPLANATIONS,
    Importer,
    get_importer,
    import_job_create,
    import_job_get_for,
    import_job_list_for,
    import_job_preview,
    import_job_start,
    import_template_response,
    max_file_bytes,
)
from kehu.core.models import ImportJob, ImportStatus

RECENT_JOBS = 10


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("CSV (UTF-8 or GBK) or Excel .xlsx; the first row holds the column names."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,.txt"}),
    )
    mode = forms.ChoiceField(
        label=_("If some rows have errors"),
        choices=ImportJob.Mode.choices,
        initial=ImportJob.Mode.ALL_OR_NOTHING,
        widget=forms.RadioSelect,
    )
    duplicate_policy = forms.ChoiceField(
        label=_("Rows matching an existing record"),
        choices=ImportJob.DuplicatePolicy.choices,
        initial=ImportJob.DuplicatePolicy.SKIP,
        widget=forms.RadioSelect,
    )


def _importer(request, name: str, *, duplicate_policy: str = ImportJob.DuplicatePolicy.SKIP):
    """The importer for the user, or 404 (unknown) / 403 (no permission) before anything."""
    cls = get_importer(name)
    if cls is None:
        raise Http404
    importer = cls(user=request.user, duplicate_policy=duplicate_policy)
    try:
        importer.check_permissions()
    except PermissionRefused as exc:
        raise PermissionDenied from exc
    return importer


def _job(request, importer_name: str, pk: int) -> ImportJob:
    job = import_job_get_for(user=request.user, pk=pk)
    if job.importer != importer_name:
        raise Http404
    return job


def _context(importer: Importer, **extra) -> dict:
    try:
        list_url = reverse(importer.list_url_name) if importer.list_url_name else ""
    except NoReverseMatch:
        list_url = ""
    return {
        "importer": importer,
        "importer_title": importer.title(),
        "list_url": list_url,
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def import_upload(request, importer: str):
    imp = _importer(request, importer)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(
                user=request.user,
                importer=importer,
                file=form.cleaned_data["file"],
                mode=form.cleaned_data["mode"],
                duplicate_policy=form.cleaned_data["duplicate_policy"],
            )
        except PermissionRefused as exc:
            raise PermissionDenied from exc
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
        else:
            return HttpResponseRedirect(reverse("imports:preview", args=[importer, job.pk]))
    context = _context(
        imp,
        form=form,
        title=_("Import %(what)s") % {"what": imp.title()},
        columns=imp.get_columns(),
        jobs=import_job_list_for(user=request.user, importer=importer)[:RECENT_JOBS],
        max_mb=max_file_bytes() // (1024 * 1024),
    )
    return render(request, "core/import_upload.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def import_preview(request, importer: str, pk: int):
    job = _job(request, importer, pk)
    imp = _importer(request, importer, duplicate_policy=job.duplicate_policy)
    if job.status != ImportStatus.PENDING:
        return HttpResponseRedirect(reverse("imports:result", args=[importer, job.pk]))
    result = import_job_preview(job=job)
    context = _context(
        imp,
        job=job,
        result=result,
        title=_("Check the import"),
        mode_explanation=MODE_EXPLANATIONS[ImportJob.Mode(job.mode)],
        error_lines=len({e["line"] for e in result.errors}),
        can_import=result.status != "failed"
        and (job.mode == ImportJob.Mode.GOOD_ROWS or not result.errors)
        and result.created + result.updated > 0,
    )
    return render(request, "core/import_preview.html", context)


@login_required
@require_POST
def import_run(request, importer: str, pk: int):
    job = _job(request, importer, pk)
    _importer(request, importer, duplicate_policy=job.duplicate_policy)
    try:
        import_job_start(job=job)
    except PermissionRefused as exc:
        raise PermissionDenied from exc
    except ServiceError as exc:
        messages.error(request, str(exc.message))
    return HttpResponseRedirect(reverse("imports:result", args=[importer, job.pk]))


@login_required
@require_GET
def import_result(request, importer: str, pk: int):
    job = _job(request, importer, pk)
    imp = _importer(request, importer, duplicate_policy=job.duplicate_policy)
    context = _context(imp, job=job, title=_("Import result"))
    return render(request, "core/import_result.html", context)


@login_required
@require_GET
def import_progress(request, importer: str, pk: int):
    """The htmx fragment polled while a background import runs; stops once it is done."""
    job = _job(request, importer, pk)
    imp = _importer(request, importer, duplicate_policy=job.duplicate_policy)
    return render(request, "core/import_job.html", _context(imp, job=job))


@login_required
@require_GET
def import_template(request, importer: str, fmt: str):
    imp = _importer(request, importer)
    if fmt not in ("csv", "xlsx"):
        raise Http404
    return import_template_response(imp, fmt)
