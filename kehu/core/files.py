"""Uploaded files, served only to those who may see the record they belong to.

Nothing under MEDIA_ROOT has a public URL: attachments follow their record's data scope,
product pictures need ``products.view``, the company logo a login. Everything else is a
404, the same answer as for a file that does not exist.
"""

from __future__ import annotations

import mimetypes
import os

from django.contrib.auth.decorators import login_required
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from kehu.core.attachments import attachment_get_for
from kehu.core.exceptions import PermissionRefused

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}
PRODUCT_FILES = ("image", "thumbnail")


def served_file(file: FieldFile, *, name: str, content_type: str = "") -> FileResponse:
    """The stored file; images shown inline, anything else downloaded, never sniffed.

    A stored file is never run as a page: ``nosniff`` keeps the browser from guessing a
    script out of it, and its own policy forbids scripts and plugins even when opened.
    """
    if not file or not file.name or not file.storage.exists(file.name):
        raise Http404(_("Not found."))
    content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(
        file.open("rb"),
        as_attachment=content_type not in IMAGE_TYPES,
        filename=name,
        content_type=content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def attachment_download(request: HttpRequest, pk: int) -> FileResponse:
    attachment = attachment_get_for(user=request.user, pk=pk)
    return served_file(
        attachment.file, name=attachment.original_name, content_type=attachment.content_type_name
    )


@login_required
@require_GET
def product_file(request: HttpRequest, pk: int, field: str) -> FileResponse:
    from kehu.products.selectors import product_get_for

    if field not in PRODUCT_FILES:
        raise Http404(_("Not found."))
    try:
        product = product_get_for(user=request.user, pk=pk)
    except PermissionRefused as exc:
        raise Http404(_("Not found.")) from exc
    file = getattr(product, field)
    return served_file(file, name=f"{product.code}{os.path.splitext(file.name or '')[1]}")


@login_required
@require_GET
def company_logo(request: HttpRequest) -> FileResponse:
    from kehu.system.services import system_settings_get

    logo = system_settings_get().logo
    return served_file(logo, name=os.path.basename(logo.name or "logo"))


def product_file_url(product, field: str = "image") -> str:
    """The URL of a product's picture (``""`` when it has none)."""
    return reverse("files:product", args=[product.pk, field]) if getattr(product, field) else ""


app_name = "files"
urlpatterns = [
    path("attachments/<int:pk>/", attachment_download, name="attachment"),
    path("products/<int:pk>/<str:field>/", product_file, name="product"),
    path("logo/", company_logo, name="logo"),
]
