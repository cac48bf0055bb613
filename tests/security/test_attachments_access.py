"""Uploaded files are served by a view that checks the reader may see their record.

Nothing is reachable under MEDIA_URL; an attachment is readable exactly when the record it
hangs on is (data scope and module permission), anything else answers 404.
"""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from kehu.core.attachments import OWNER_SELECTORS, attachment_add
from kehu.products.services import product_create
from tests.customers.factories import CustomerFactory, FollowUpFactory
from tests.sales.factories import contract_for

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png(name: str = "photo.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def followup_files(org):
    """A follow-up of sales3's customer (销售二部) with a PDF and a picture."""
    followup = FollowUpFactory(customer=CustomerFactory(owner=org.sales3), author=org.sales3)
    pdf = attachment_add(
        actor=org.sales3,
        obj=followup,
        file=SimpleUploadedFile("quote.pdf", PDF, content_type="application/pdf"),
    )
    picture = attachment_add(actor=org.sales3, obj=followup, file=png())
    return pdf, picture


def test_owner_downloads_a_pdf_as_attachment_never_sniffed(org, client_for, followup_files):
    pdf, _ = followup_files
    response = client_for(org.sales3).get(pdf.get_absolute_url())
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert 'filename="quote.pdf"' in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_pictures_are_shown_inline(org, client_for, followup_files):
    _, picture = followup_files
    response = client_for(org.sales3).get(picture.get_absolute_url())
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline;")


@pytest.mark.parametrize("reader", ["sales1", "sales2", "salesmgr1", "warehouse"])
def test_readers_outside_the_scope_get_404(org, client_for, followup_files, reader):
    for attachment in followup_files:
        response = client_for(getattr(org, reader)).get(attachment.get_absolute_url())
        assert response.status_code == 404, reader
        assert b"%PDF" not in response.content


@pytest.mark.parametrize("reader", ["sales3", "salesdirector", "manager", "admin"])
def test_readers_inside_the_scope_get_the_file(org, client_for, followup_files, reader):
    pdf, _ = followup_files
    assert client_for(getattr(org, reader)).get(pdf.get_absolute_url()).status_code == 200


def test_anonymous_is_sent_to_login(org, client, followup_files):
    pdf, _ = followup_files
    response = client.get(pdf.get_absolute_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_missing_attachment_is_404(org, client_for):
    assert client_for(org.admin).get(reverse("files:attachment", args=[999999])).status_code == 404


def test_contract_attachment_follows_the_contract_scope(org, client_for):
    contract = contract_for(org.sales3)
    scan = attachment_add(
        actor=org.sales3,
        obj=contract,
        file=SimpleUploadedFile("signed.pdf", PDF, content_type="application/pdf"),
    )
    assert client_for(org.sales3).get(scan.get_absolute_url()).status_code == 200
    assert client_for(org.sales1).get(scan.get_absolute_url()).status_code == 404
    # The contract page links the checked view, not the storage path.
    page = client_for(org.sales3).get(reverse("sales:contract_detail", args=[contract.pk]))
    assert scan.get_absolute_url() in page.content.decode()
    assert "/media/" not in page.content.decode()


def test_attachment_on_an_unlisted_kind_of_record_is_unreadable_even_by_admin(org, client_for):
    # Denied unless someone wrote down who may read it.
    customer = CustomerFactory(owner=org.sales1)
    stray = attachment_add(actor=org.admin, obj=org.sales1_dept, file=png())
    assert "hr.department" not in OWNER_SELECTORS
    assert client_for(org.admin).get(stray.get_absolute_url()).status_code == 404
    # A listed kind works for the same admin.
    listed = attachment_add(actor=org.admin, obj=customer, file=png())
    assert client_for(org.admin).get(listed.get_absolute_url()).status_code == 200


def test_api_lists_the_checked_url(org, api_for, followup_files):
    body = api_for(org.sales3).get("/api/v1/followups/").json()
    urls = {a["url"] for f in body["results"] for a in f["attachments"]}
    assert urls == {a.get_absolute_url() for a in followup_files}


def test_media_url_serves_nothing(org, client_for, followup_files):
    pdf, _ = followup_files
    assert client_for(org.sales3).get("/media/" + pdf.file.name).status_code == 404


def test_product_pictures_need_login_and_products_view(org, client_for, client):
    product = product_create(
        actor=org.admin,
        data={"code": "P-IMG", "name": "打印机", "list_price": "10.00", "image": png("p.png")},
    )
    url = reverse("files:product", args=[product.pk, "image"])
    assert client_for(org.sales1).get(url).status_code == 200
    assert client_for(org.sales1).get(url)["Content-Type"] == "image/png"
    assert client.get(url).status_code == 302
    assert (
        client_for(org.sales1).get(reverse("files:product", args=[product.pk, "x"])).status_code
        == 404
    )
    # A user without any role has no products.view: 404, the same as a missing product.
    from tests.factories import UserFactory

    assert client_for(UserFactory(username="norole")).get(url).status_code == 404
