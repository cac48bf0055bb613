import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from kehu.core.exceptions import ConflictError, PermissionRefused, ServiceError
from kehu.products import services
from kehu.products.models import Product, ProductCategory, ProductPriceChange
from kehu.products.selectors import category_by_full_name, category_tree
from kehu.system.models import AuditLog
from tests.products.factories import CategoryFactory, ProductFactory, unit

pytestmark = pytest.mark.django_db


def png_bytes(size=(600, 400), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_price_changes_are_recorded(org, product):
    updated = services.product_update(
        actor=org.warehouse,
        product=product,
        expected_version=1,
        data={"list_price": Decimal("2199.00"), "name": "惠普打印机"},
    )
    assert updated.version == 2 and updated.name_initials == "hpdyj"
    change = ProductPriceChange.objects.get()
    assert (change.field, change.old_value, change.new_value, change.changed_by) == (
        "list_price",
        Decimal("1999.00"),
        Decimal("2199.00"),
        org.warehouse,
    )
    services.product_update(
        actor=org.warehouse,
        product=updated,
        expected_version=2,
        data={"list_price": Decimal("2199.00"), "cost_price": Decimal("1400")},
    )
    # An unchanged list price writes no row; the changed cost price does.
    assert sorted(ProductPriceChange.objects.values_list("field", flat=True)) == [
        "cost_price",
        "list_price",
    ]


def test_stale_version_conflicts_and_changes_nothing(org, product):
    services.product_update(actor=org.admin, product=product, expected_version=1, data={})
    with pytest.raises(ConflictError):
        services.product_update(
            actor=org.admin, product=product, expected_version=1, data={"list_price": 1}
        )
    assert Product.objects.get(pk=product.pk).list_price == Decimal("1999.00")
    assert not ProductPriceChange.objects.exists()


def test_negative_price_refused(org):
    with pytest.raises(Exception):  # noqa: B017 - the model's check (ValidationError)
        services.product_create(
            actor=org.admin, data={"code": "X1", "name": "x", "list_price": Decimal("-1")}
        )
    assert not Product.all_objects.exists()


def test_sales_cannot_edit(org, product):
    with pytest.raises(PermissionRefused):
        services.product_update(
            actor=org.sales1, product=product, expected_version=1, data={"name": "x"}
        )
    with pytest.raises(PermissionRefused):
        services.product_create(actor=org.sales1, data={"code": "X", "name": "x"})


def test_code_of_a_deleted_product_is_reported_not_crashed(org, product):
    services.product_delete(actor=org.admin, product=product)
    with pytest.raises(ServiceError) as info:
        services.product_create(actor=org.admin, data={"code": product.code, "name": "新"})
    assert info.value.field == "code"
    services.product_restore(actor=org.admin, product=product)
    assert Product.objects.filter(pk=product.pk).exists()


def test_status_change_is_logged(org, product):
    services.product_status_set(actor=org.warehouse, product=product, status="off_sale")
    assert Product.objects.get(pk=product.pk).status == "off_sale"
    assert AuditLog.objects.filter(action="status", object_id=str(product.pk)).exists()


def test_image_upload_makes_a_thumbnail(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("photo.png", png_bytes(), content_type="image/png")
    product = services.product_create(
        actor=org.admin, data={"code": "IMG-1", "name": "投影仪", "image": upload, "unit": unit()}
    )
    product = Product.objects.get(pk=product.pk)
    assert product.image.name.endswith(".png") and product.thumbnail.name.endswith("_thumb.jpg")
    with Image.open(product.thumbnail.path) as thumb:
        assert max(thumb.size) <= 240
    # Replacing the picture removes the old files once saved.
    old = product.image.path
    services.product_update(
        actor=org.admin,
        product=product,
        expected_version=product.version,
        data={"image": SimpleUploadedFile("b.png", png_bytes(color=(0, 0, 0)))},
    )
    assert not (tmp_path / old).exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("fake.png", b"this is text, not a picture", "not an image"),
        ("huge.png", b"\x89PNG" + b"0" * (5 * 1024 * 1024 + 1), "larger than 5 MB"),
    ],
)
def test_bad_images_are_refused(org, settings, tmp_path, name, content, message):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(ServiceError) as info:
        services.product_create(
            actor=org.admin,
            data={"code": "IMG-2", "name": "x", "image": SimpleUploadedFile(name, content)},
        )
    assert info.value.field == "image" and message in str(info.value.message)
    assert not Product.all_objects.exists()
    assert not list(tmp_path.rglob("*.*"))


def test_category_tree_cycle_refused(org):
    office = services.category_create(actor=org.warehouse, data={"name": "办公设备"})
    printers = services.category_create(
        actor=org.warehouse, data={"name": "打印机", "parent": office}
    )
    laser = services.category_create(actor=org.warehouse, data={"name": "激光", "parent": printers})
    for target in (office, laser):
        with pytest.raises(ServiceError) as info:
            services.category_update(
                actor=org.warehouse,
                category=office,
                expected_version=1,
                data={"parent": target},
            )
        assert info.value.field == "parent"
    # A legal move carries the subtree along.
    computers = services.category_create(actor=org.warehouse, data={"name": "电脑"})
    services.category_update(
        actor=org.warehouse, category=printers, expected_version=1, data={"parent": computers}
    )
    laser.refresh_from_db()
    assert laser.path.startswith(computers.path)
    assert "电脑/打印机/激光" in category_by_full_name()


def test_category_reorder(org):
    a = services.category_create(actor=org.warehouse, data={"name": "A"})
    b = services.category_create(actor=org.warehouse, data={"name": "B"})
    c = services.category_create(actor=org.warehouse, data={"name": "C"})
    services.category_move(actor=org.warehouse, category=c, direction="up")
    assert [n.category.name for n in category_tree()] == ["A", "C", "B"]
    services.category_move(actor=org.warehouse, category=a, direction="up")  # already first
    services.category_move(actor=org.warehouse, category=a, direction="down")
    assert [n.category.name for n in category_tree()] == ["C", "A", "B"]
    assert {a.pk, b.pk, c.pk} == set(ProductCategory.objects.values_list("pk", flat=True))


def test_category_delete_refused_with_products_or_children(org):
    parent = CategoryFactory(name="耗材")
    child = CategoryFactory(name="墨盒", parent=parent)
    ProductFactory(category=child)
    with pytest.raises(ServiceError):
        services.category_delete(actor=org.admin, category=parent)
    with pytest.raises(ServiceError):
        services.category_delete(actor=org.admin, category=child)
    assert ProductCategory.objects.count() == 2
