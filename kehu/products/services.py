"""Every write of the products module: categories, products, prices, images and stock."""

from __future__ import annotations

import io
import os
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError
from kehu.core.permissions import require_perm
from kehu.core.services import model_create, soft_delete, soft_restore, versioned_update
from kehu.core.tree import tree_node_update, tree_path_set
from kehu.products.models import (
    INBOUND_KINDS,
    OUTBOUND_KINDS,
    MovementKind,
    PriceField,
    Product,
    ProductCategory,
    ProductPriceChange,
    ProductStatus,
    StockLevel,
    StockMovement,
    Warehouse,
)

IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_MAX_PIXELS = 40_000_000  # a small file can still decode to a huge bitmap
IMAGE_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
THUMBNAIL_SIZE = (240, 240)


def _audit(**kwargs) -> None:
    from kehu.system.services import audit_log_record

    audit_log_record(**kwargs)


def name_initials(name: str) -> str:
    """Pinyin initials for search ("惠普打印机" → "hpdyj"); other characters kept lower-case."""
    from pypinyin import Style, lazy_pinyin

    return "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower().replace(" ", "")[:200]


# --- categories -------------------------------------------------------------------------


def category_create(*, actor, data: dict[str, Any]) -> ProductCategory:
    require_perm(actor, "products.add")
    data = dict(data)
    with transaction.atomic():
        if data.get("sort_order") in (None, 0):
            # New categories go last among their siblings.
            last = ProductCategory.objects.filter(parent=data.get("parent")).aggregate(
                m=Max("sort_order")
            )["m"]
            data["sort_order"] = 0 if last is None else last + 1
        category = model_create(model=ProductCategory, user=actor, data=data)
        tree_path_set(category)
    return category


def category_update(
    *, actor, category: ProductCategory, expected_version: int, data: dict[str, Any]
) -> ProductCategory:
    """Rename or move a category; moving carries its sub-categories along, never into itself."""
    require_perm(actor, "products.change")
    return tree_node_update(
        node=category,
        new_parent=data.get("parent", category.parent),
        cycle_message=_("A category cannot be moved under itself or one of its sub-categories."),
        apply=lambda: versioned_update(
            instance=category, user=actor, expected_version=expected_version, data=data
        ),
    )


def category_move(*, actor, category: ProductCategory, direction: str) -> ProductCategory:
    """Move a category one place up or down among its siblings."""
    require_perm(actor, "products.change")
    if direction not in ("up", "down"):
        raise ServiceError(_("Unknown direction."), field="direction")
    with transaction.atomic():
        siblings = list(
            ProductCategory.objects.select_for_update()
            .filter(parent_id=category.parent_id)
            .order_by("sort_order", "name", "id")
        )
        index = next((i for i, c in enumerate(siblings) if c.pk == category.pk), None)
        if index is None:
            raise ServiceError(_("This category no longer exists."))
        other = index - 1 if direction == "up" else index + 1
        if 0 <= other < len(siblings):
            siblings[index], siblings[other] = siblings[other], siblings[index]
        # Renumber the siblings 0..n so equal sort orders cannot make a move a no-op.
        for position, sibling in enumerate(siblings):
            if sibling.sort_order != position:
                ProductCategory.objects.filter(pk=sibling.pk).update(
                    sort_order=position, version=F("version") + 1
                )
        _audit(user=actor, action="change", obj=category, note=f"move {direction}")
    return ProductCategory.objects.get(pk=category.pk)


def category_delete(*, actor, category: ProductCategory) -> None:
    require_perm(actor, "products.delete")
    if category.children.exists():
        raise ServiceError(_("Move or delete the sub-categories first."))
    # Deleted products count too: restoring one must find its category.
    if Product.all_objects.filter(category=category).exists():
        raise ServiceError(_("This category still has products; move them to another first."))
    with transaction.atomic():
        _audit(user=actor, action="delete", obj=category)
        category.delete()


# --- products ---------------------------------------------------------------------------


def product_image_validate(image) -> None:
    """Check the upload by its content (not its name): a real image, at most 5 MB."""
    from PIL import Image, UnidentifiedImageError

    if image.size is not None and image.size > IMAGE_MAX_BYTES:
        raise ServiceError(_("The image is larger than 5 MB."), field="image")
    try:
        image.seek(0)
        with Image.open(image) as picture:
            if picture.format not in IMAGE_FORMATS:
                raise ServiceError(
                    _("Upload a JPEG, PNG, GIF or WebP image."), field="image", code="format"
                )
            if picture.width * picture.height > IMAGE_MAX_PIXELS:
                raise ServiceError(_("The image has too many pixels."), field="image")
            picture.verify()
    except ServiceError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ServiceError(
            _("The file is not an image, or the image is damaged."), field="image", code="format"
        ) from None
    finally:
        image.seek(0)


def _image_store(image) -> tuple[str, str]:
    """Store the upload and a thumbnail beside it; returns both storage names."""
    from PIL import Image, ImageOps

    field = Product._meta.get_field("image")
    name = field.storage.save(field.generate_filename(Product(), image.name or "image"), image)
    image.seek(0)
    with Image.open(image) as original:
        picture = ImageOps.exif_transpose(original)
        picture.thumbnail(THUMBNAIL_SIZE)
        has_alpha = picture.mode in ("RGBA", "LA", "P")
        out = io.BytesIO()
        if has_alpha:
            picture.convert("RGBA").save(out, "PNG", optimize=True)
            ext = "png"
        else:
            picture.convert("RGB").save(out, "JPEG", quality=85)
            ext = "jpg"
    root, _ext = os.path.splitext(name)
    thumb = field.storage.save(f"{root}_thumb.{ext}", ContentFile(out.getvalue()))
    return name, thumb


def _image_delete(*names: str) -> None:
    storage = Product._meta.get_field("image").storage
    for name in names:
        if name:
            storage.delete(name)


def _clean_product_data(data: dict[str, Any]) -> dict[str, Any]:
    # Stock and derived fields are never taken from the caller.
    data = {
        k: v for k, v in data.items() if k not in ("stock_quantity", "name_initials", "thumbnail")
    }
    if "name" in data:
        data["name_initials"] = name_initials(data["name"] or "")
    return data


def _code_check(code, *, exclude_pk=None) -> None:
    # The unique index covers deleted products too, which the model's own check skips.
    clash = Product.all_objects.filter(code=code, deleted_at__isnull=False)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if code and clash.exists():
        raise ServiceError(
            _("A deleted product uses this code; restore it or choose another code."),
            field="code",
            code="unique",
        )


def product_create(*, actor, data: dict[str, Any]) -> Product:
    require_perm(actor, "products.add")
    data = _clean_product_data(data)
    _code_check(data.get("code"))
    image = data.pop("image", None)
    if isinstance(image, UploadedFile):
        product_image_validate(image)
    else:
        image = None
    stored: tuple[str, str] | None = None
    try:
        with transaction.atomic():
            product = model_create(model=Product, user=actor, data=data)
            if image is not None:
                stored = _image_store(image)
                Product.objects.filter(pk=product.pk).update(image=stored[0], thumbnail=stored[1])
                product.image.name, product.thumbnail.name = stored
    except Exception:
        if stored:
            _image_delete(*stored)
        raise
    return product


def product_update(
    *, actor, product: Product, expected_version: int, data: dict[str, Any]
) -> Product:
    """Edit a product; each changed price writes a ``ProductPriceChange`` row.

    ``image``: an upload replaces the picture (and its thumbnail), ``False`` clears it,
    anything else leaves it alone. A stale ``expected_version`` raises ``ConflictError``.
    """
    require_perm(actor, "products.change")
    data = _clean_product_data(data)
    if "code" in data:
        _code_check(data["code"], exclude_pk=product.pk)
    image = data.pop("image", None)
    if isinstance(image, UploadedFile):
        product_image_validate(image)
    stored: tuple[str, str] | None = None
    old_files = (product.image.name or "", product.thumbnail.name or "")
    try:
        with transaction.atomic():
            locked = Product.all_objects.select_for_update().get(pk=product.pk)
            before = {f: getattr(locked, f) for f in PriceField.values}
            old_files = (locked.image.name or "", locked.thumbnail.name or "")
            if locked.version == expected_version:
                if isinstance(image, UploadedFile):
                    stored = _image_store(image)
                    data["image"], data["thumbnail"] = stored
                elif image is False:
                    data["image"], data["thumbnail"] = "", ""
            product = versioned_update(
                instance=locked, user=actor, expected_version=expected_version, data=data
            )
            now = timezone.now()
            ProductPriceChange.objects.bulk_create(
                [
                    ProductPriceChange(
                        product=product,
                        field=field,
                        old_value=before[field],
                        new_value=getattr(product, field),
                        changed_by=actor,
                        changed_at=now,
                    )
                    for field in PriceField.values
                    if getattr(product, field) != before[field]
                ]
            )
    except Exception:
        if stored:
            _image_delete(*stored)
        raise
    if stored or image is False:
        # The old picture is only removed once the new state is committed.
        _image_delete(*old_files)
    return product


def product_status_set(*, actor, product: Product, status: str) -> Product:
    require_perm(actor, "products.change")
    if status not in ProductStatus.values:
        raise ServiceError(_("Unknown status."), field="status")
    if product.status == status:
        return product
    return versioned_update(
        instance=product,
        user=actor,
        expected_version=product.version,
        data={"status": status},
        action="status",
    )


def product_delete(*, actor, product: Product) -> None:
    """Soft delete: the product leaves the catalogue; its movements and history stay."""
    require_perm(actor, "products.delete")
    soft_delete(instance=product, user=actor)


def product_restore(*, actor, product: Product) -> None:
    require_perm(actor, "products.delete")
    soft_restore(instance=product, user=actor)


# --- warehouses and stock ---------------------------------------------------------------


def warehouse_default_ensure() -> Warehouse:
    """The default warehouse ("主仓库"), created on first need and by the post-migrate seed.

    Reads without a permission check: it is the fallback of every post, not a user action."""
    warehouse = Warehouse.objects.filter(is_default=True).first()
    if warehouse is not None:
        return warehouse
    try:
        with transaction.atomic():
            return Warehouse.objects.create(name="主仓库", code="main", is_default=True)
    except IntegrityError:  # created concurrently
        return Warehouse.objects.get(is_default=True)


def _signed_quantity(kind: str, quantity) -> Decimal:
    try:
        value = Decimal(str(quantity))
    except (InvalidOperation, TypeError, ValueError):
        raise ServiceError(_("Enter a number."), field="quantity") from None
    if not value.is_finite():
        raise ServiceError(_("Enter a number."), field="quantity")
    if value != value.quantize(Decimal("0.001")):
        raise ServiceError(_("Use at most three decimal places."), field="quantity")
    if value == 0:
        raise ServiceError(_("The quantity cannot be zero."), field="quantity")
    if kind in INBOUND_KINDS or kind in OUTBOUND_KINDS:
        if value < 0:
            raise ServiceError(
                _("Enter a positive quantity; the type says which way it goes."),
                field="quantity",
            )
        return value if kind in INBOUND_KINDS else -value
    return value  # adjustment: the signed correction


def _warehouse_usable(warehouse: Warehouse) -> None:
    if not warehouse.is_active:
        raise ServiceError(
            _("The warehouse %(warehouse)s is no longer in use.") % {"warehouse": warehouse.name},
            field="warehouse",
            code="inactive",
        )


def _stock_level_ensure(product: Product, warehouse: Warehouse) -> None:
    try:
        with transaction.atomic():
            StockLevel.objects.get_or_create(product=product, warehouse=warehouse)
    except IntegrityError:
        pass  # created by a concurrent post; the locked read after this waits for it


def _stock_post(
    *,
    actor,
    product: Product,
    warehouse: Warehouse,
    kind: str,
    delta: Decimal,
    reason: str,
    reference: str,
    reference_fields: dict[str, Any],
) -> StockMovement:
    """One signed movement; the caller holds the transaction and has checked the input."""
    from kehu.system.services import system_settings_get

    _stock_level_ensure(product, warehouse)
    level = StockLevel.objects.select_for_update().get(product=product, warehouse=warehouse)
    balance = level.quantity + delta
    if balance < 0 and delta < 0 and not system_settings_get().allow_negative_stock:
        raise ServiceError(
            _(
                "Not enough stock of %(product)s in %(warehouse)s: %(available)s available, "
                "%(requested)s requested."
            )
            % {
                "product": product.name,
                "warehouse": warehouse.name,
                "available": _number(level.quantity),
                "requested": _number(-delta),
            },
            field="quantity",
            code="insufficient_stock",
        )
    StockLevel.objects.filter(pk=level.pk).update(
        quantity=F("quantity") + delta, updated_at=timezone.now()
    )
    Product.all_objects.filter(pk=product.pk).update(stock_quantity=F("stock_quantity") + delta)
    movement = StockMovement.objects.create(
        product=product,
        warehouse=warehouse,
        kind=kind,
        quantity=delta,
        balance_after=balance,
        reason=reason[:200],
        reference=(reference or "")[:100],
        user=actor if getattr(actor, "is_authenticated", False) else None,
        **reference_fields,
    )
    # Checked again after the insert: on PostgreSQL the insert's foreign-key check holds a
    # key-share lock on the warehouse row, so a deactivation either committed before this
    # read (and is seen here) or waits for this transaction and then finds its stock.
    if not Warehouse.objects.filter(pk=warehouse.pk, is_active=True).exists():
        warehouse.is_active = False
        _warehouse_usable(warehouse)
    return movement


def stock_movement_post(
    *,
    actor,
    product: Product,
    warehouse: Warehouse | None = None,
    kind: str,
    quantity,
    reason: str = "",
    reference: str = "",
    reference_object=None,
    check_permission: bool = True,
) -> StockMovement:
    """Post one stock movement and update the stock level and the product total atomically.

    ``quantity`` is positive for ``in`` / ``out`` / ``order_shipment`` / ``order_return``
    (the kind gives the direction) and the signed correction for ``adjustment``. The stored
    movement carries the signed change and the warehouse balance after it. ``warehouse``
    None means the default warehouse; an inactive warehouse takes no movements.

    Invariants: ``StockLevel.quantity`` equals the sum of the product's movements in that
    warehouse and ``Product.stock_quantity`` the sum over warehouses. The level row is locked
    (PostgreSQL row lock; SQLite's IMMEDIATE transaction serialises writers), so concurrent
    posts queue up and a balance never goes below zero unless
    ``SystemSettings.allow_negative_stock`` is on; a refused post writes nothing.

    Contract for the sales module: post ``order_shipment`` when an order's goods leave and
    ``order_return`` when they come back, with ``reference`` the document number and
    ``reference_object`` the order (or its line). Sales checks its own permission and passes
    ``check_permission=False``; manual kinds need ``products.change``. Call inside the sales
    transaction so a refused shipment rolls the order back too; when posting several lines,
    post them in product-id order so two transactions cannot deadlock.
    """
    if check_permission:
        require_perm(actor, "products.change")
    if kind not in MovementKind.values:
        raise ServiceError(_("Unknown movement type."), field="kind")
    if kind in (MovementKind.TRANSFER_OUT, MovementKind.TRANSFER_IN):
        # Half a transfer would change the total; transfers come in pairs from stock_transfer.
        raise ServiceError(_("Transfers are posted as a transfer."), field="kind")
    delta = _signed_quantity(kind, quantity)
    reason = (reason or "").strip()
    if kind == MovementKind.ADJUSTMENT and not reason:
        raise ServiceError(_("Say why the stock is adjusted."), field="reason")
    if warehouse is not None:
        _warehouse_usable(warehouse)

    with transaction.atomic():
        warehouse = warehouse or warehouse_default_ensure()
        if not Product.all_objects.filter(pk=product.pk, deleted_at__isnull=True).exists():
            raise ServiceError(_("This product has been deleted."), field="product")
        reference_fields: dict[str, Any] = {}
        if reference_object is not None:
            from django.contrib.contenttypes.models import ContentType

            reference_fields = {
                "reference_type": ContentType.objects.get_for_model(reference_object),
                "reference_id": str(reference_object.pk),
            }
        movement = _stock_post(
            actor=actor,
            product=product,
            warehouse=warehouse,
            kind=kind,
            delta=delta,
            reason=reason,
            reference=reference,
            reference_fields=reference_fields,
        )
    product.stock_quantity = Product.all_objects.values_list("stock_quantity", flat=True).get(
        pk=product.pk
    )
    return movement


TRANSFER_PREFIX = "DB"  # 调拨单


def stock_transfer(
    *,
    actor,
    product: Product,
    from_warehouse: Warehouse,
    to_warehouse: Warehouse,
    quantity,
    reason: str = "",
    reference: str = "",
) -> tuple[StockMovement, StockMovement]:
    """Move stock of one product between two warehouses: a ``transfer_out`` and a
    ``transfer_in`` movement in one transaction, so the product's total never changes.

    Both movements carry the same reference (the caller's, or a new ``DB-<year>-<n>``
    number) to pair them. A source without enough stock refuses the transfer and nothing is
    written, unless negative stock is allowed. Needs ``products.change``.
    """
    require_perm(actor, "products.change")
    if from_warehouse.pk == to_warehouse.pk:
        raise ServiceError(
            _("Choose two different warehouses."), field="to_warehouse", code="same_warehouse"
        )
    try:
        _warehouse_usable(from_warehouse)
    except ServiceError as exc:
        exc.field = "from_warehouse"
        raise
    try:
        _warehouse_usable(to_warehouse)
    except ServiceError as exc:
        exc.field = "to_warehouse"
        raise
    amount = _signed_quantity(MovementKind.TRANSFER_IN, quantity)
    reason = (reason or "").strip()
    from kehu.core.services import document_number_next

    with transaction.atomic():
        if not Product.all_objects.filter(pk=product.pk, deleted_at__isnull=True).exists():
            raise ServiceError(_("This product has been deleted."), field="product")
        # Lock both levels in warehouse-id order so opposite transfers cannot deadlock.
        for warehouse in sorted((from_warehouse, to_warehouse), key=lambda w: w.pk):
            _stock_level_ensure(product, warehouse)
        list(
            StockLevel.objects.select_for_update()
            .filter(product=product, warehouse__in=[from_warehouse, to_warehouse])
            .order_by("warehouse_id")
        )
        reference = (reference or "").strip() or document_number_next(prefix=TRANSFER_PREFIX)
        common = {"actor": actor, "product": product, "reason": reason, "reference": reference}
        out = _stock_post(
            warehouse=from_warehouse,
            kind=MovementKind.TRANSFER_OUT,
            delta=-amount,
            reference_fields={},
            **common,
        )
        into = _stock_post(
            warehouse=to_warehouse,
            kind=MovementKind.TRANSFER_IN,
            delta=amount,
            reference_fields={},
            **common,
        )
        _audit(
            user=actor,
            action="change",
            obj=product,
            note=f"transfer {reference}: {from_warehouse.code} → {to_warehouse.code} {amount}",
        )
    return out, into


# --- warehouses -------------------------------------------------------------------------


def _warehouse_clean(data: dict[str, Any], *, exclude_pk=None) -> dict[str, Any]:
    """Name and code, trimmed; both unique regardless of case ("Main" and "main" clash)."""
    # Default and active are changed by their own services, never by an edit.
    data = {k: v for k, v in data.items() if k in ("name", "code")}
    others = Warehouse.objects.all()
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if "name" in data:
        data["name"] = (data["name"] or "").strip()
        if data["name"] and others.filter(name__iexact=data["name"]).exists():
            raise ServiceError(
                _("Another warehouse already has this name."), field="name", code="unique"
            )
    if "code" in data:
        data["code"] = (data["code"] or "").strip().lower()
        if data["code"] and others.filter(code__iexact=data["code"]).exists():
            raise ServiceError(
                _("Another warehouse already has this code."), field="code", code="unique"
            )
    return data


def warehouse_create(*, actor, data: dict[str, Any]) -> Warehouse:
    """A new, active, non-default warehouse (``warehouse_set_default`` makes it the default)."""
    require_perm(actor, "products.change")
    data = _warehouse_clean(data)
    with transaction.atomic():
        return model_create(model=Warehouse, user=actor, data=data)


def warehouse_update(
    *, actor, warehouse: Warehouse, expected_version: int, data: dict[str, Any]
) -> Warehouse:
    """Rename or re-code a warehouse; a stale ``expected_version`` raises ``ConflictError``."""
    require_perm(actor, "products.change")
    data = _warehouse_clean(data, exclude_pk=warehouse.pk)
    return versioned_update(
        instance=warehouse, user=actor, expected_version=expected_version, data=data
    )


def _warehouse_flag_set(*, actor, warehouse: Warehouse, action: str, **values) -> Warehouse:
    Warehouse.objects.filter(pk=warehouse.pk).update(
        version=F("version") + 1, updated_at=timezone.now(), **values
    )
    warehouse.refresh_from_db()
    _audit(user=actor, action="change", obj=warehouse, note=action)
    return warehouse


def warehouse_set_default(*, actor, warehouse: Warehouse) -> Warehouse:
    """Make ``warehouse`` the one default; the old default stops being it in the same
    transaction (the partial unique index would refuse two defaults anyway)."""
    require_perm(actor, "products.change")
    with transaction.atomic():
        # Lock every warehouse row: two simultaneous switches queue instead of colliding.
        rows = {w.pk: w for w in Warehouse.objects.select_for_update().order_by("pk")}
        current = rows.get(warehouse.pk)
        if current is None:
            raise ServiceError(_("This warehouse no longer exists."))
        if current.is_default:
            return current
        if not current.is_active:
            raise ServiceError(
                _("Reactivate the warehouse before making it the default."), code="inactive"
            )
        for old in (w for w in rows.values() if w.is_default):
            _warehouse_flag_set(actor=actor, warehouse=old, action="default off", is_default=False)
        return _warehouse_flag_set(
            actor=actor, warehouse=current, action="default", is_default=True
        )


def warehouse_deactivate(*, actor, warehouse: Warehouse) -> Warehouse:
    """Retire a warehouse: it takes no new stock and leaves the choices, its history stays.

    Refused for the default warehouse and while any product has stock there (positive or,
    with negative stock allowed, negative): move it out first with a transfer.
    """
    require_perm(actor, "products.change")
    with transaction.atomic():
        current = Warehouse.objects.select_for_update().filter(pk=warehouse.pk).first()
        if current is None:
            raise ServiceError(_("This warehouse no longer exists."))
        if not current.is_active:
            return current
        if current.is_default:
            raise ServiceError(
                _("Make another warehouse the default before deactivating this one."),
                code="default",
            )
        if StockLevel.objects.filter(warehouse=current).exclude(quantity=0).exists():
            raise ServiceError(
                _(
                    "%(warehouse)s still holds stock; transfer it to another warehouse "
                    "before deactivating."
                )
                % {"warehouse": current.name},
                code="has_stock",
            )
        return _warehouse_flag_set(
            actor=actor, warehouse=current, action="deactivate", is_active=False
        )


def warehouse_activate(*, actor, warehouse: Warehouse) -> Warehouse:
    require_perm(actor, "products.change")
    with transaction.atomic():
        current = Warehouse.objects.select_for_update().filter(pk=warehouse.pk).first()
        if current is None:
            raise ServiceError(_("This warehouse no longer exists."))
        if current.is_active:
            return current
        return _warehouse_flag_set(
            actor=actor, warehouse=current, action="activate", is_active=True
        )


def warehouse_delete(*, actor, warehouse: Warehouse) -> None:
    """Delete a warehouse created by mistake. One that ever had a movement is part of the
    stock history and can only be deactivated."""
    require_perm(actor, "products.delete")
    with transaction.atomic():
        current = Warehouse.objects.select_for_update().filter(pk=warehouse.pk).first()
        if current is None:
            return
        if current.is_default:
            raise ServiceError(_("The default warehouse cannot be deleted."), code="default")
        if StockMovement.objects.filter(warehouse=current).exists():
            raise ServiceError(
                _("This warehouse has stock movements; deactivate it instead."),
                code="has_movements",
            )
        StockLevel.objects.filter(warehouse=current, quantity=0).delete()  # empty rows only
        _audit(user=actor, action="delete", obj=current)
        current.delete()


def _number(value: Decimal) -> str:
    """A quantity without trailing zeros: 5, 2.5."""
    text = format(value.normalize(), "f")
    return text
