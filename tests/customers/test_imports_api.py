"""POST /api/v1/customers/import/, GET /api/v1/imports/{id}/, GET /api/v1/customers/export/."""

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from kehu.core.models import ImportJob
from kehu.customers.models import Customer
from kehu.system.models import AuditLog, Role
from tests.customers.factories import CustomerFactory

IMPORT_URL = "/api/v1/customers/import/"
EXPORT_URL = "/api/v1/customers/export/"
HEADER = "Name,Mobile,Stage\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def post(client, text, **fields):
    data = {"file": SimpleUploadedFile("c.csv", text.encode("utf-8")), **fields}
    return client.post(IMPORT_URL, data, format="multipart")


def test_import_all_or_nothing_reports_every_bad_row_and_writes_nothing(org, api_for):
    response = post(api_for(org.sales1), HEADER + "甲,,won\n乙,123,Sold\n丙,,Dead\n")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "failed" and body["created"] == 0 and body["total_rows"] == 3
    assert [(e["line"], e["column"]) for e in body["errors"]] == [
        (3, "Mobile"),
        (3, "Stage"),
        (4, "Stage"),
    ]
    assert set(body["errors"][0]) == {"line", "column", "message"}
    assert not Customer.objects.exists()
    assert ImportJob.objects.get(pk=body["job"]).status == "failed"


def test_import_good_rows(org, api_for):
    response = post(api_for(org.sales1), HEADER + "甲,,won\n乙,,Sold\n", mode="good_rows")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["created"], body["updated"], body["skipped"]) == ("done", 1, 0, 0)
    assert [e["line"] for e in body["errors"]] == [3]
    assert Customer.objects.get().owner == org.sales1


def test_import_dry_run_writes_nothing(org, api_for):
    response = post(api_for(org.sales1), HEADER + "甲,,won\n", dry_run="true")
    assert response.status_code == 200
    assert response.json()["status"] == "preview" and response.json()["created"] == 1
    assert not Customer.objects.exists()


def test_import_duplicate_policy_update(org, api_for):
    existing = CustomerFactory(name="甲公司", owner=org.sales1)
    response = post(api_for(org.sales1), HEADER + "甲公司,,won\n", duplicate_policy="update")
    assert response.json()["updated"] == 1
    existing.refresh_from_db()
    assert existing.stage == "won"


def test_import_refused_and_bad_files(org, api_for):
    assert post(api_for(org.finance), HEADER + "甲,,\n").status_code == 403
    assert not ImportJob.objects.exists()
    empty = post(api_for(org.sales1), "")
    assert empty.status_code == 400 and "empty" in str(empty.json())
    binary = api_for(org.sales1).post(
        IMPORT_URL,
        {"file": SimpleUploadedFile("x.csv", b"\x89PNG\r\n\x1a\n\x00\x00")},
        format="multipart",
    )
    assert binary.status_code == 400 and "not a CSV" in binary.json()["message"]
    bad_mode = post(api_for(org.sales1), HEADER + "甲,,\n", mode="everything")
    assert bad_mode.status_code == 400
    assert not Customer.objects.exists()


def test_import_background_job_and_progress(
    org, api_for, settings, django_capture_on_commit_callbacks
):
    settings.KEHU_IMPORT_BACKGROUND_ROWS = 2
    client = api_for(org.sales1)
    rows = "".join(f"客户{i},,\n" for i in range(5))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, HEADER + rows, mode="good_rows")
    assert response.status_code == 202
    job_id = response.json()["job"]
    queued = client.get(f"/api/v1/imports/{job_id}/").json()
    assert (queued["status"], queued["total_rows"], queued["processed_rows"]) == ("running", 5, 0)
    assert not Customer.objects.exists()
    for callback in callbacks:
        callback()  # the ImmediateBackend runs the task now
    done = client.get(f"/api/v1/imports/{job_id}/").json()
    assert (done["status"], done["processed_rows"], done["created"]) == ("done", 5, 5)
    assert api_for(org.sales2).get(f"/api/v1/imports/{job_id}/").status_code == 404
    assert api_for(org.admin).get(f"/api/v1/imports/{job_id}/").status_code == 404


# --- export -----------------------------------------------------------------------------------


@pytest.fixture
def exporters(org):
    """Salespeople get the export permission for these tests (the default role lacks it)."""
    role = Role.objects.get(code="salesperson")
    role.permissions = [*role.permissions, "customers.export"]
    role.save()
    return org


def test_export_is_scoped_neutralised_and_logged(exporters, api_for):
    org = exporters
    CustomerFactory(name="=1+1", owner=org.sales1, stage="won")
    CustomerFactory(name="乙公司", owner=org.sales1)
    CustomerFactory(name="丙 sales3 的客户", owner=org.sales3)
    response = api_for(org.sales1).get(EXPORT_URL, {"format": "csv"})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    assert "'=1+1" in text and "\n=1+1" not in text and ",=1+1" not in text
    assert "乙公司" in text and "sales3" not in text
    log = AuditLog.objects.get(action="export", user=org.sales1)
    assert log.model == "customers.customer"


def test_export_xlsx_with_filters(exporters, api_for):
    org = exporters
    CustomerFactory(name="甲公司", owner=org.sales1, stage="won")
    CustomerFactory(name="乙公司", owner=org.sales1, stage="potential")
    CustomerFactory(name="公海客户", owner=None, in_pool=True)
    client = api_for(org.sales1)

    def names(**params):
        response = client.get(EXPORT_URL, {"format": "xlsx", **params})
        assert response.status_code == 200
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        rows = list(sheet.iter_rows(values_only=True))
        return sorted(r[rows[0].index("Name")] for r in rows[1:])

    assert names() == ["乙公司", "甲公司"]
    assert names(stage="won") == ["甲公司"]
    assert names(search="乙") == ["乙公司"]
    assert names(owner=org.sales1.pk) == ["乙公司", "甲公司"]
    assert names(in_pool="true") == ["公海客户"]


def test_export_refused_and_bad_format(org, api_for):
    CustomerFactory(name="甲公司", owner=org.sales1)
    assert api_for(org.sales1).get(EXPORT_URL, {"format": "csv"}).status_code == 403
    assert not AuditLog.objects.filter(action="export").exists()
    assert api_for(org.manager).get(EXPORT_URL, {"format": "pdf"}).status_code == 400
