"""Attachments on any record: uploads checked by their content, not their name.

Follow-ups, contracts and expense claims all attach files through ``attachment_add``.
"""

from __future__ import annotations

import os
import zipfile

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils.translation import gettext as _

from kehu.core.exceptions import PermissionRefused, ServiceError
from kehu.core.models import Attachment

MAX_ATTACHMENT_SIZE = 10 * 1024 * 1024

IMAGE_EXTENSIONS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".gif": "GIF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
ZIP_OFFICE_EXTENSIONS = {".docx", ".xlsx", ".pptx"}
OLE_OFFICE_EXTENSIONS = {".doc", ".xls", ".ppt"}
CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _head(file, size: int = 8) -> bytes:
    file.seek(0)
    head = file.read(size)
    file.seek(0)
    return head


def attachment_validate(file) -> str:
    """The file's content type if its bytes match its extension; ServiceError otherwise.

    A renamed text file (``evil.png``) is refused: images must open in Pillow, PDFs start
    with ``%PDF-``, Office files are a zip with the Office structure or an OLE container.
    """
    name = getattr(file, "name", "") or ""
    ext = os.path.splitext(name)[1].lower()
    size = getattr(file, "size", None)
    if size is None:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(0)
    if size > MAX_ATTACHMENT_SIZE:
        raise ServiceError(
            _("The file is larger than %(size)d MB.") % {"size": MAX_ATTACHMENT_SIZE // 2**20},
            field="attachments",
        )
    if size == 0:
        raise ServiceError(_("The file is empty."), field="attachments")
    refused = ServiceError(
        _("“%(name)s” is not a valid image, PDF or Office document.") % {"name": name},
        field="attachments",
    )
    if ext in IMAGE_EXTENSIONS:
        from PIL import Image, UnidentifiedImageError

        try:
            file.seek(0)
            with Image.open(file) as image:
                image_format = image.format
                image.verify()
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            # A few bytes claiming a huge picture (a decompression bomb): refused, not a 500.
            Image.DecompressionBombError,
        ) as exc:
            raise refused from exc
        finally:
            file.seek(0)
        if image_format != IMAGE_EXTENSIONS[ext]:
            raise refused
    elif ext == ".pdf":
        if not _head(file, 5) == b"%PDF-":
            raise refused
    elif ext in ZIP_OFFICE_EXTENSIONS:
        try:
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                if "[Content_Types].xml" not in archive.namelist():
                    raise refused
        except zipfile.BadZipFile as exc:
            raise refused from exc
        finally:
            file.seek(0)
    elif ext in OLE_OFFICE_EXTENSIONS:
        if _head(file) != OLE_MAGIC:
            raise refused
    else:
        raise ServiceError(
            _("Files of type “%(ext)s” cannot be attached.") % {"ext": ext or name},
            field="attachments",
        )
    return CONTENT_TYPES[ext]


def attachment_add(*, actor, obj: models.Model, file) -> Attachment:
    """Validate ``file`` and attach it to ``obj``; the caller checked ``actor`` may change obj."""
    from kehu.system.services import audit_log_record

    content_type = attachment_validate(file)
    name = os.path.basename(getattr(file, "name", "") or "file")[:255]
    with transaction.atomic():
        attachment = Attachment(
            content_type=ContentType.objects.get_for_model(obj, for_concrete_model=True),
            object_id=str(obj.pk),
            original_name=name,
            content_type_name=content_type,
            size=getattr(file, "size", 0) or 0,
            uploaded_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        file.seek(0)
        attachment.file.save(name, file, save=False)
        attachment.save()
        audit_log_record(user=actor, action="create", obj=attachment, note=str(obj)[:200])
    return attachment


def attachments_for(objs) -> dict[str, list[Attachment]]:
    """Attachments of several records of one model in one query, keyed by ``str(pk)``."""
    objs = list(objs)
    if not objs:
        return {}
    content_type = ContentType.objects.get_for_model(objs[0], for_concrete_model=True)
    result: dict[str, list[Attachment]] = {}
    for attachment in Attachment.objects.filter(
        content_type=content_type, object_id__in=[str(o.pk) for o in objs]
    ):
        result.setdefault(attachment.object_id, []).append(attachment)
    return result


# The selector that decides who may read each kind of record that carries attachments:
# an attachment is readable exactly when its record is. A record type missing here has
# unreadable attachments (404): access is denied unless someone wrote down who may read.
OWNER_SELECTORS = {
    "customers.customer": "kehu.customers.selectors.customer_get_for",
    "customers.followup": "kehu.customers.selectors.followup_get_for",
    "sales.contract": "kehu.sales.selectors.contract_get_for",
    "finance.expenseclaim": "kehu.finance.selectors.expense_get_for",
}


def attachment_get_for(*, user, pk) -> Attachment:
    """The attachment if ``user`` may read the record it is attached to; 404 otherwise.

    Missing, out of scope and lacking the module's view permission all answer 404, so a
    guessed id tells nothing about what exists.
    """
    from django.http import Http404
    from django.utils.module_loading import import_string

    try:
        attachment = Attachment.objects.select_related("content_type").get(pk=pk)
    except (Attachment.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("Not found.")) from exc
    label = f"{attachment.content_type.app_label}.{attachment.content_type.model}"
    selector = OWNER_SELECTORS.get(label)
    if selector is None or not getattr(user, "is_authenticated", False):
        raise Http404(_("Not found."))
    try:
        import_string(selector)(user=user, pk=attachment.object_id)
    except PermissionRefused as exc:
        raise Http404(_("Not found.")) from exc
    return attachment
