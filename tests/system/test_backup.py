"""``manage.py backup`` / ``restore``: a round trip gives back every table row by row and
every uploaded file, on a SQLite file database and on PostgreSQL (pg_dump / pg_restore)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from kehu.core.models import ReferenceStamp
from kehu.system import backup
from kehu.system.models import AuditLog
from tests.concurrency.live import ROOT, live_database

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database(transactional_db, tmp_path, settings):
    """A committed database (SQLite: a file) and a MEDIA_ROOT of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    with live_database(tmp_path) as live:
        yield live


STAMPS = ReferenceStamp._meta.db_table


def assert_stamps_renewed(before, after) -> None:
    """A restore gives every kind of reference data a new stamp (kehu.core.reference), so
    no process serves its cached copy."""
    kinds = {kind for kind, _stamp in before[STAMPS]}
    assert kinds and kinds <= {kind for kind, _stamp in after[STAMPS]}
    assert not set(before[STAMPS]) & set(after[STAMPS])


def table_rows() -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    rows = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows[table] = sorted((tuple(row) for row in cursor.fetchall()), key=repr)
    return rows


def media_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def some_business(media: Path) -> dict:
    """Customers, a signed contract with a confirmed payment, and two uploaded files."""
    from tests.conftest import make_org
    from tests.customers.factories import CustomerFactory
    from tests.finance.factories import active_contract, pay

    org = make_org()
    contract = active_contract(org, amount="5000.00")
    pay(contract, "1200.00", confirm_by=org.finance)
    (media / "attachments" / "2026").mkdir(parents=True)
    (media / "attachments" / "2026" / "合同扫描.pdf").write_bytes(b"%PDF-1.4 scan")
    (media / "attachments" / "note.txt").write_text("keep me", encoding="utf-8")
    return {
        "org": org,
        "kept": CustomerFactory(owner=org.sales1),
        "doomed": CustomerFactory(owner=org.sales1),
    }


def spoil(state: dict, media: Path) -> None:
    """What happens after the backup: rows changed, added and deleted, files too."""
    from kehu.customers.models import Customer
    from kehu.finance.models import Payment
    from tests.customers.factories import CustomerFactory

    Customer.objects.filter(pk=state["kept"].pk).update(name="改掉的名字", version=99)
    Customer._base_manager.filter(pk=state["doomed"].pk).delete()
    CustomerFactory(owner=state["org"].sales2)
    Payment.objects.update(amount=Decimal("1.00"))
    (media / "attachments" / "note.txt").write_text("changed", encoding="utf-8")
    (media / "attachments" / "2026" / "合同扫描.pdf").unlink()
    (media / "new.txt").write_text("added after the backup", encoding="utf-8")


def test_backup_and_restore_give_back_every_table_and_file(database, tmp_path, settings):
    media = Path(settings.MEDIA_ROOT)
    state = some_business(media)
    before, files_before = table_rows(), media_files(media)
    assert sum(map(len, before.values())) > 100  # a real company, not empty tables

    out = io.StringIO()
    call_command("backup", output=str(tmp_path / "backups"), stdout=out)
    [archive] = backup.backup_list(directory=tmp_path / "backups")
    assert str(archive) in out.getvalue() and "2 uploaded files" in out.getvalue()
    logged = AuditLog.objects.get(action="backup")
    assert logged.note == archive.name and logged.changes["engine"] == database.vendor

    spoil(state, media)
    assert table_rows() != before and media_files(media) != files_before

    call_command("restore", str(archive), yes=True, stdout=io.StringIO())
    after = table_rows()
    restored_log = AuditLog.objects.get(action="restore")
    assert restored_log.note == archive.name and restored_log.model == "system.backup"
    audit_table = AuditLog._meta.db_table
    assert [row for row in after[audit_table] if row[0] != restored_log.pk] == before[audit_table]
    assert_stamps_renewed(before, after)
    for table in before:
        if table not in (audit_table, STAMPS):
            assert after[table] == before[table], table
    assert after.keys() == before.keys()
    assert media_files(media) == files_before

    # Sequences came back with the rows: new records do not collide with restored ones.
    from tests.customers.factories import CustomerFactory

    CustomerFactory(owner=state["org"].sales1)


def test_restore_refuses_without_yes_and_changes_nothing(database, tmp_path, settings):
    from kehu.customers.models import Customer

    state = some_business(Path(settings.MEDIA_ROOT))
    result = backup.backup_create(directory=tmp_path / "backups")
    Customer.objects.filter(pk=state["kept"].pk).update(name="之后改的")
    with pytest.raises(CommandError, match="--yes"):
        call_command("restore", str(result.path))
    assert Customer.objects.get(pk=state["kept"].pk).name == "之后改的"
    assert not AuditLog.objects.filter(action="restore").exists()


def _archive(path: Path, manifest: dict, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_restore_checks_the_file_first(database, tmp_path, settings):
    from kehu.customers.models import Customer

    some_business(Path(settings.MEDIA_ROOT))
    good = backup.backup_create(directory=tmp_path / "backups").path
    with tarfile.open(good) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        member = backup.DATABASE_MEMBER[database.vendor]
        dump = tar.extractfile(member).read()
    other_engine = "postgresql" if database.vendor == "sqlite" else "sqlite"
    bad = {
        "garbage": tmp_path / "garbage.tar.gz",
        "another engine": _archive(
            tmp_path / "other.tar.gz",
            {**manifest, "engine": other_engine},
            {backup.DATABASE_MEMBER[other_engine]: dump},
        ),
        "damaged": _archive(tmp_path / "damaged.tar.gz", manifest, {member: dump[:-100]}),
        "no manifest": tmp_path / "empty.tar.gz",
        "unsafe": _archive(tmp_path / "unsafe.tar.gz", manifest, {member: dump, "../x": b"x"}),
        "missing": tmp_path / "missing.tar.gz",
    }
    bad["garbage"].write_bytes(b"not a backup at all")
    with tarfile.open(bad["no manifest"], "w:gz"):
        pass
    messages = {
        "garbage": "not a readable",
        "another engine": f"backup is of a {other_engine} database",
        "damaged": "damaged",
        "no manifest": "no readable manifest",
        "unsafe": "unsafe entry",
        "missing": "No such backup file",
    }
    rows = Customer._base_manager.count()
    for case, path in bad.items():
        with pytest.raises(CommandError, match=messages[case]):
            call_command("restore", str(path), yes=True)
    assert Customer._base_manager.count() == rows
    assert not AuditLog.objects.filter(action="restore").exists()


def test_keep_deletes_all_but_the_newest_backups(database, tmp_path):
    folder = tmp_path / "backups"
    made = [backup.backup_create(directory=folder).path for _ in range(3)]
    (folder / "notes.txt").write_text("not a backup", encoding="utf-8")
    out = io.StringIO()
    call_command("backup", output=str(folder), keep=2, stdout=out)
    kept = backup.backup_list(directory=folder)
    assert len(kept) == 2 and kept[0] == made[2]
    assert not made[0].exists() and not made[1].exists()
    assert (folder / "notes.txt").exists()
    assert f"deleted old backup {made[0].name}" in out.getvalue()
    with pytest.raises(CommandError, match="at least one"):
        call_command("backup", output=str(folder), keep=0)


def test_the_commands_run_from_the_shell(database, tmp_path):
    """``manage.py backup`` and ``restore`` as an operator runs them, in their own process
    against the same database, while this one keeps its connection open."""
    from tests.conftest import make_org

    make_org()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database.url,
        "KEHU_VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    made = manage("backup", "--keep", "3")
    assert made.returncode == 0, made.stderr
    [archive] = backup.backup_list(directory=tmp_path / "var" / "backups")
    before = table_rows()
    refused = manage("restore", str(archive))
    assert refused.returncode != 0 and "--yes" in refused.stderr
    done = manage("restore", str(archive), "--yes")
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout
    after = table_rows()
    audit_table = AuditLog._meta.db_table
    assert_stamps_renewed(before, after)
    assert {t: r for t, r in after.items() if t not in (audit_table, STAMPS)} == {
        t: r for t, r in before.items() if t not in (audit_table, STAMPS)
    }
