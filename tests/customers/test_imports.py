"""Customer import (through the customer services) and export, in services and the web pages."""

import csv
import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from kehu.core.exceptions import PermissionRefused
from kehu.core.imports import import_run
from kehu.core.models import CustomFieldDefinition, ImportJob
from kehu.customers.imports import CustomerImporter, customer_export_columns
from kehu.customers.models import Customer
from kehu.system.models import AuditLog
from tests.customers.factories import CustomerFactory

HEADER = "名称,Mobile,E-mail,Industry,Level,Stage,Tags,Owner\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def run(user, text, *, mode="all_or_nothing", policy="skip", dry_run=False, encoding="utf-8"):
    return import_run(
        importer=CustomerImporter(user=user, duplicate_policy=policy),
        data=text.encode(encoding),
        filename="customers.csv",
        mode=mode,
        dry_run=dry_run,
    )


def test_gbk_csv_with_chinese_names_dictionaries_tags_and_stage(org):
    text = HEADER + (
        '深圳市腾达电子有限公司,13800138001,sales@tengda.cn,信息技术,a,Intent,"重点, 华南",\n'
        "杭州云帆科技有限公司,13800138002,,Manufacturing,B 普通客户,potential,,\n"
    )
    result = run(org.sales1, text, encoding="gbk")
    assert result.errors == [] and result.created == 2
    first = Customer.objects.get(name="深圳市腾达电子有限公司")
    assert first.owner == org.sales1 and first.department == org.sales1_dept
    assert (first.industry.value, first.level.value, first.stage) == ("it", "a", "intent")
    assert sorted(t.name for t in first.tags.all()) == ["华南", "重点"]
    assert first.code and first.name_initials
    second = Customer.objects.get(name="杭州云帆科技有限公司")
    assert (second.industry.value, second.level.value, second.stage) == (
        "manufacturing",
        "b",
        "potential",
    )
    # One operation-log row per customer (from the service); the summary is the job's.
    assert AuditLog.objects.filter(action="create", model="customers.customer").count() == 2


def test_bad_dictionary_value_and_email_are_reported_by_line(org):
    text = HEADER + "甲公司,13800138001,bad-mail,Farming,,,,\n"
    result = run(org.sales1, text, mode="good_rows")
    assert result.created == 0
    assert {(e["line"], e["column"]) for e in result.errors} == {(2, "E-mail"), (2, "Industry")}


def test_owner_column_needs_assign(org):
    text = HEADER + "甲公司,,,,,,,sales2\n"
    refused = run(org.sales1, text)
    assert refused.status == "failed"
    assert refused.errors[0]["column"] == "Owner"
    assert "may not assign" in refused.errors[0]["message"]
    assert run(org.sales1, HEADER + "乙公司,,,,,,,SALES1\n").created == 1
    result = run(org.salesmgr1, text)
    assert result.created == 1
    assert Customer.objects.get(name="甲公司").owner == org.sales2
    unknown = run(org.salesmgr1, HEADER + "丙公司,,,,,,,nobody\n")
    assert "No active user" in unknown.errors[0]["message"]


@pytest.mark.parametrize(
    ("policy", "created", "updated", "skipped"),
    [("skip", 0, 0, 1), ("update", 0, 1, 0), ("create", 1, 0, 0)],
)
def test_duplicate_policies_by_normalised_name(org, policy, created, updated, skipped):
    existing = CustomerFactory(name="华为技术有限公司", owner=org.sales1, stage="potential")
    result = run(org.sales1, HEADER + "华为技术,,,,,Won,VIP,\n", policy=policy)
    assert result.errors == []
    assert (result.created, result.updated, result.skipped) == (created, updated, skipped)
    existing.refresh_from_db()
    assert existing.stage == ("won" if policy == "update" else "potential")
    if policy == "update":
        assert existing.version == 2 and [t.name for t in existing.tags.all()] == ["VIP"]


def test_duplicate_by_phone_and_email(org):
    CustomerFactory(name="甲", owner=org.sales1, mobile="13912345678", email="a@b.cn")
    result = run(org.sales1, HEADER + "乙,139-1234-5678,,,,,,\n丙,,A@B.cn,,,,,\n")
    assert (result.skipped, result.created) == (2, 0)


def test_scope_an_import_never_updates_a_customer_out_of_scope(org):
    theirs = CustomerFactory(name="上海远景贸易有限公司", owner=org.sales3, stage="potential")
    for policy in ("update", "skip"):
        result = run(org.sales1, HEADER + "上海远景贸易有限公司,,,,,Won,,\n", policy=policy)
        assert result.status == "failed"
        assert result.errors[0]["line"] == 2
        assert "owned by" in result.errors[0]["message"]
        assert (
            "sales3" in result.errors[0]["message"]
            or str(org.sales3) in (result.errors[0]["message"])
        )
    theirs.refresh_from_db()
    assert (theirs.stage, theirs.version) == ("potential", 1)
    assert Customer.objects.count() == 1


def test_pool_duplicate_is_skipped_but_never_updated(org):
    CustomerFactory(name="公海客户", owner=None, in_pool=True)
    assert run(org.sales1, HEADER + "公海客户,,,,,,,\n").skipped == 1
    result = run(org.sales1, HEADER + "公海客户,,,,,Won,,\n", policy="update")
    assert "public pool" in result.errors[0]["message"]


def test_all_or_nothing_and_good_rows(org):
    text = HEADER + "甲,,,,,,,\n乙,,,,,Sold,,\n丙,,,,,,,\n"
    failed = run(org.sales1, text)
    assert failed.status == "failed" and [e["line"] for e in failed.errors] == [3]
    assert not Customer.objects.exists()
    good = run(org.sales1, text, mode="good_rows")
    assert good.created == 2 and [e["line"] for e in good.errors] == [3]
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["丙", "甲"]


def test_duplicates_within_one_file(org):
    result = run(org.sales1, HEADER + "甲公司,,,,,,,\n甲公司,,,,,,,\n")
    assert (result.created, result.skipped) == (1, 1)


def test_dry_run_and_refused_permission_write_nothing(org):
    preview = run(org.sales1, HEADER + "甲,,,,,,,\n", dry_run=True)
    assert preview.created == 1 and preview.preview[0][0] == "甲"
    with pytest.raises(PermissionRefused):
        run(org.finance, HEADER + "甲,,,,,,,\n")
    assert not Customer.objects.exists()


def test_custom_fields_import(org):
    CustomFieldDefinition.objects.create(
        model="customers.customer",
        key="region",
        label="区域",
        label_en="Region",
        field_type="choice",
        choices=["华南", "华北"],
    )
    CustomFieldDefinition.objects.create(
        model="customers.customer",
        key="budget",
        label="预算",
        label_en="Budget",
        field_type="number",
    )
    result = run(org.sales1, "名称,区域,Budget\n甲,华南,1234.50\n乙,西北,\n", mode="good_rows")
    assert result.created == 1
    assert Customer.objects.get(name="甲").custom_fields == {"region": "华南", "budget": "1234.5"}
    assert result.errors[0]["column"] == "Region"


# --- export columns ---------------------------------------------------------------------------


def test_export_columns_include_custom_fields_and_dictionary_labels(org):
    from kehu.core.exports import export_rows
    from kehu.system.selectors import dictionary_items

    CustomFieldDefinition.objects.create(
        model="customers.customer", key="region", label="区域", label_en="Region"
    )
    customer = CustomerFactory(
        name="=1+1",
        owner=org.sales1,
        level=dictionary_items("customer_level").get(value="a"),
        custom_fields={"region": "华南"},
    )
    rows = list(
        export_rows(
            user=org.admin,
            model=Customer,
            queryset=Customer.objects.filter(pk=customer.pk),
            columns=customer_export_columns(),
        )
    )
    header, row = rows
    values = dict(zip(header, row, strict=True))
    assert values["Name"] == "'=1+1"
    assert values["Level"] == "A key account"
    assert values["Region"] == "华南"
    assert values["Owner"] == "sales1"


def test_an_export_imports_again(org):
    """The export's read-only columns are ignored, so an edited export can be imported."""
    from kehu.core.exports import export_rows

    CustomerFactory(name="甲公司", owner=org.sales1, mobile="13900000001")
    rows = list(
        export_rows(
            user=org.sales1,
            model=Customer,
            queryset=Customer.objects.all(),
            columns=customer_export_columns(),
        )
    )
    rows[1][rows[0].index("Stage")] = "Won"
    rows[1][rows[0].index("Mobile")] = ""  # masked for a salesperson; left empty
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    result = run(org.sales1, out.getvalue(), policy="update")
    assert result.errors == [] and result.updated == 1
    assert Customer.objects.get().stage == "won"


# --- web pages --------------------------------------------------------------------------------


def upload(client, text, **fields):
    data = {"mode": "all_or_nothing", "duplicate_policy": "skip", **fields}
    data["file"] = SimpleUploadedFile("customers.csv", text.encode("utf-8"))
    return client.post(reverse("imports:upload", args=["customers"]), data)


def test_web_upload_preview_confirm_result(org, client_for):
    client = client_for(org.sales1)
    page = client.get(reverse("imports:upload", args=["customers"]))
    assert page.status_code == 200 and "template.xlsx" in page.content.decode()
    response = upload(client, HEADER + "甲公司,,,,,,,\n乙公司,,,,,Sold,,\n", mode="good_rows")
    assert response.status_code == 302
    job = ImportJob.objects.get()
    preview = client.get(response["Location"])
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "甲公司" in html and "Sold" in html and "Import the 1 good row" in html
    assert not Customer.objects.exists()
    done = client.post(reverse("imports:run", args=["customers", job.pk]))
    assert done.status_code == 302
    result = client.get(done["Location"])
    assert result.status_code == 200
    assert "The import has finished" in result.content.decode()
    assert Customer.objects.get().name == "甲公司"
    # Confirming twice imports nothing more.
    client.post(reverse("imports:run", args=["customers", job.pk]))
    assert Customer.objects.count() == 1
    recent = client.get(reverse("imports:upload", args=["customers"]))
    assert "customers.csv" in recent.content.decode()


def test_web_all_or_nothing_preview_offers_no_import_on_errors(org, client_for):
    client = client_for(org.sales1)
    response = upload(client, HEADER + "甲公司,,,,,Sold,,\n")
    preview = client.get(response["Location"]).content.decode()
    assert "Nothing can be imported" in preview and "imports/customers/" in preview
    assert 'id="import-errors"' in preview


def test_web_file_error_shows_on_the_form(org, client_for):
    client = client_for(org.sales1)
    response = client.post(
        reverse("imports:upload", args=["customers"]),
        {
            "mode": "good_rows",
            "duplicate_policy": "skip",
            "file": SimpleUploadedFile("x.csv", b""),
        },
    )
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_web_background_progress(org, client_for, settings, django_capture_on_commit_callbacks):
    settings.KEHU_IMPORT_BACKGROUND_ROWS = 1
    client = client_for(org.sales1)
    upload(client, HEADER + "甲公司,,,,,,,\n乙公司,,,,,,,\n", mode="good_rows")
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(reverse("imports:run", args=["customers", job.pk]))
    progress_url = reverse("imports:progress", args=["customers", job.pk])
    running = client.get(progress_url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in running and "progress-bar" in running
    for callback in callbacks:
        callback()
    finished = client.get(progress_url, headers={"HX-Request": "true"}).content.decode()
    assert "every 1s" not in finished and "The import has finished" in finished
    job.refresh_from_db()
    assert (job.status, job.created_count, job.processed_rows) == ("done", 2, 2)


def test_web_refused_and_other_users_jobs(org, client_for):
    assert (
        client_for(org.finance).get(reverse("imports:upload", args=["customers"])).status_code
        == 403
    )
    refused = upload(client_for(org.finance), HEADER + "甲,,,,,,,\n")
    assert refused.status_code == 403 and not ImportJob.objects.exists()
    assert client_for(org.sales1).get("/imports/nope/").status_code == 404
    upload(client_for(org.sales1), HEADER + "甲,,,,,,,\n")
    job = ImportJob.objects.get()
    other = client_for(org.sales2)
    for name in ("preview", "result", "progress"):
        assert other.get(reverse(f"imports:{name}", args=["customers", job.pk])).status_code == 404
    assert other.post(reverse("imports:run", args=["customers", job.pk])).status_code == 404
    assert not Customer.objects.exists()


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_template_download(org, client_for, fmt):
    response = client_for(org.sales1).get(reverse("imports:template", args=["customers", fmt]))
    assert response.status_code == 200
    assert f"customers-template.{fmt}" in response["Content-Disposition"]
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        header, example = [[c.value for c in row] for row in sheet.iter_rows()]
    else:
        header, example = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert header[0] == "Name *" and example[0] == "华为技术有限公司"
    assert "Owner" in header
