"""Backups of the database and the uploaded files, and their restore (``manage.py backup``,
``manage.py restore``).

A backup is one archive ``kehu-backup-<UTC time>.tar.gz`` holding ``manifest.json``, the
database and ``media/`` (everything under MEDIA_ROOT):

- SQLite: ``db.sqlite3``, copied with SQLite's online backup API, a consistent snapshot
  taken while the application keeps running (writers wait for the copy, they do not fail).
- PostgreSQL: ``db.dump``, ``pg_dump --format=custom`` (one consistent snapshot), restored
  with ``pg_restore --clean --if-exists --no-owner --single-transaction``: all or nothing.

A restore checks the archive first (manifest, engine, checksum, SQLite integrity check or
``pg_restore --list``) and refuses a backup of the other engine. Backups and restores are
written to the operation log. Retention: ``keep`` deletes all but the newest backups.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kehu.core.exceptions import ServiceError
from kehu.core.reference import reference_changed_all

FORMAT = 1
PREFIX = "kehu-backup-"
SUFFIX = ".tar.gz"
NAME_PATTERN = re.compile(rf"^{PREFIX}\d{{8}}-\d{{6}}(-\d+)?{re.escape(SUFFIX)}$")
MANIFEST = "manifest.json"
DATABASE_MEMBER = {"sqlite": "db.sqlite3", "postgresql": "db.dump"}
MEDIA_MEMBER = "media"
ALIAS = "default"


@dataclass
class BackupResult:
    path: Path
    engine: str
    size: int
    media_files: int
    deleted: list[Path] = field(default_factory=list)


@dataclass
class BackupCheck:
    path: Path
    manifest: dict


def _engine() -> str:
    vendor = connections[ALIAS].vendor
    if vendor not in DATABASE_MEMBER:
        raise ServiceError(_("Backups support SQLite and PostgreSQL only."), code="engine")
    return vendor


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _operator() -> str:
    try:
        return f"{getpass.getuser()} (manage.py)"
    except (KeyError, OSError):
        return "manage.py"


def _audit(*, action: str, note: str, changes: dict) -> None:
    from kehu.system.services import audit_log_record

    audit_log_record(
        user=None,
        action=action,
        model="system.backup",
        username=_operator(),
        note=note,
        changes=changes,
    )


# --- PostgreSQL's client programs -----------------------------------------------------------


def _pg_args_env() -> tuple[list[str], dict[str, str], str]:
    """Connection options for pg_dump / pg_restore, the password in the environment only."""
    params = connections[ALIAS].settings_dict
    args = []
    if params.get("HOST"):
        args += ["--host", str(params["HOST"])]
    if params.get("PORT"):
        args += ["--port", str(params["PORT"])]
    if params.get("USER"):
        args += ["--username", str(params["USER"])]
    env = {**os.environ}
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = str(params["PASSWORD"])
    return args, env, str(params["NAME"])


def _run(command: list[str], env: dict[str, str]) -> str:
    program = command[0]
    if shutil.which(program) is None:
        raise ServiceError(
            _("%(program)s was not found: install the PostgreSQL client programs.")
            % {"program": program},
            code="missing_program",
        )
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(
            _("%(program)s failed: %(error)s")
            % {"program": program, "error": done.stderr.strip()[-2000:]},
            code="program_failed",
        )
    return done.stdout


# --- backup ---------------------------------------------------------------------------------


def _dump_database(engine: str, target: Path) -> None:
    connection = connections[ALIAS]
    if engine == "sqlite":
        connection.ensure_connection()
        source = connection.connection  # the live database, file or memory
        destination = sqlite3.connect(target)
        try:
            # One step (pages=-1): a consistent snapshot; writers wait on the busy timeout.
            source.backup(destination, pages=-1)
        finally:
            destination.close()
        return
    args, env, name = _pg_args_env()
    _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), *args, name], env)


def _media_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _archive_name(directory: Path, now: datetime.datetime) -> Path:
    stamp = now.astimezone(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    path = directory / f"{PREFIX}{stamp}{SUFFIX}"
    serial = 1
    while path.exists():
        serial += 1
        path = directory / f"{PREFIX}{stamp}-{serial}{SUFFIX}"
    return path


def backup_list(*, directory: Path) -> list[Path]:
    """The backups in ``directory``, oldest first (their names sort by time)."""
    if not directory.is_dir():
        return []

    def order(path: Path) -> tuple[str, int]:
        stem = path.name[len(PREFIX) : -len(SUFFIX)]
        parts = stem.split("-")
        return "-".join(parts[:2]), int(parts[2]) if len(parts) > 2 else 1

    return sorted((p for p in directory.iterdir() if NAME_PATTERN.match(p.name)), key=order)


def backup_prune(*, directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``directory``; returns the deleted."""
    if keep < 1:
        raise ServiceError(_("Keep at least one backup."), field="keep", code="invalid")
    backups = backup_list(directory=directory)
    doomed = backups[: max(len(backups) - keep, 0)]
    for path in doomed:
        path.unlink()
    return doomed


def backup_create(*, directory: Path, keep: int | None = None) -> BackupResult:
    """Write a backup archive of the database and MEDIA_ROOT into ``directory``.

    The archive is written under a temporary name and renamed when complete, so a backup
    that fails half-way never looks like one. With ``keep``, older backups beyond the
    newest ``keep`` are deleted afterwards.
    """
    engine = _engine()
    if keep is not None and keep < 1:
        raise ServiceError(_("Keep at least one backup."), field="keep", code="invalid")
    directory.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    media_root = Path(settings.MEDIA_ROOT)
    with tempfile.TemporaryDirectory(prefix="kehu-backup-", dir=directory) as work:
        dump = Path(work) / DATABASE_MEMBER[engine]
        _dump_database(engine, dump)
        media = _media_files(media_root)
        manifest = {
            "format": FORMAT,
            "application": "kehu",
            "engine": engine,
            "created_at": now.isoformat(),
            "database": {"member": dump.name, "sha256": _sha256(dump), "size": dump.stat().st_size},
            "media_files": len(media),
        }
        target = _archive_name(directory, now)
        partial = Path(work) / target.name
        with tarfile.open(partial, "w:gz") as archive:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(now.timestamp())
            archive.addfile(info, io.BytesIO(data))
            archive.add(dump, arcname=dump.name)
            for path in media:
                archive.add(path, arcname=f"{MEDIA_MEMBER}/{path.relative_to(media_root)}")
        partial.replace(target)
    result = BackupResult(
        path=target, engine=engine, size=target.stat().st_size, media_files=len(media)
    )
    _audit(
        action="backup",
        note=target.name,
        changes={"engine": engine, "size": result.size, "media_files": len(media)},
    )
    if keep is not None:
        result.deleted = backup_prune(directory=directory, keep=keep)
    return result


# --- restore --------------------------------------------------------------------------------


def _refuse(message) -> ServiceError:
    return ServiceError(message, field="file", code="bad_backup")


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = archive.getmembers()
    for member in members:
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise _refuse(_("The backup holds an unsafe entry: %(name)s.") % {"name": member.name})
    return members


def backup_check(*, path: Path, work: Path) -> BackupCheck:
    """Open ``path``, check it is a whole Kehu backup of this database engine, and unpack
    it into ``work``. Raises ServiceError (nothing changed) when anything is wrong."""
    engine = _engine()
    if not path.is_file():
        raise _refuse(_("No such backup file: %(path)s.") % {"path": path})
    try:
        with tarfile.open(path, "r:gz") as archive:
            _safe_members(archive)
            archive.extractall(work, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _refuse(
            _("This is not a readable Kehu backup (%(error)s).") % {"error": exc}
        ) from exc
    try:
        manifest = json.loads((work / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _refuse(_("The backup has no readable manifest.")) from exc
    if manifest.get("application") != "kehu" or manifest.get("format") != FORMAT:
        raise _refuse(_("This is not a Kehu backup of a format this version can restore."))
    if manifest.get("engine") != engine:
        raise _refuse(
            _("This backup is of a %(theirs)s database; this installation uses %(ours)s.")
            % {"theirs": manifest.get("engine"), "ours": engine}
        )
    database = work / DATABASE_MEMBER[engine]
    if not database.is_file() or _sha256(database) != manifest["database"]["sha256"]:
        raise _refuse(_("The database in the backup is missing or damaged (checksum)."))
    if engine == "sqlite":
        check = sqlite3.connect(database)
        try:
            result = check.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            result = str(exc)
        finally:
            check.close()
        if result != "ok":
            raise _refuse(_("The database in the backup is damaged: %(error)s") % {"error": result})
    else:
        args, env, _name = _pg_args_env()
        _run(["pg_restore", "--list", str(database)], env)
    return BackupCheck(path=path, manifest=manifest)


def _restore_database(engine: str, dump: Path) -> None:
    connection = connections[ALIAS]
    if engine == "sqlite":
        connection.ensure_connection()
        if connection.in_atomic_block:
            raise ServiceError(_("Restore cannot run inside a transaction."), code="in_transaction")
        source = sqlite3.connect(dump)
        try:
            # Page by page into the live database, as one write: readers see before or after.
            source.backup(connection.connection, pages=-1)
        finally:
            source.close()
        return
    connections.close_all()  # our own sessions must not hold locks on what is dropped
    args, env, name = _pg_args_env()
    _run(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            name,
            *args,
            str(dump),
        ],
        env,
    )


def _restore_media(unpacked: Path) -> int:
    """Replace MEDIA_ROOT by the backup's files; the old tree is removed only once the new
    one is in place."""
    media_root = Path(settings.MEDIA_ROOT)
    source = unpacked / MEDIA_MEMBER
    count = len(_media_files(source))
    media_root.parent.mkdir(parents=True, exist_ok=True)
    incoming = media_root.with_name(f".{media_root.name}.restoring")
    outgoing = media_root.with_name(f".{media_root.name}.replaced")
    for leftover in (incoming, outgoing):
        shutil.rmtree(leftover, ignore_errors=True)
    if source.is_dir():
        shutil.copytree(source, incoming)
    else:
        incoming.mkdir()
    if media_root.exists():
        media_root.rename(outgoing)
    incoming.rename(media_root)
    shutil.rmtree(outgoing, ignore_errors=True)
    return count


def backup_restore(*, path: Path) -> BackupCheck:
    """Replace the database and MEDIA_ROOT with the backup at ``path`` (checked first).

    Every table is replaced by its state at backup time; the restore is then written to
    the (restored) operation log.
    """
    engine = _engine()
    with tempfile.TemporaryDirectory(prefix="kehu-restore-") as work:
        checked = backup_check(path=path, work=Path(work))
        _restore_database(engine, Path(work) / DATABASE_MEMBER[engine])
        media = _restore_media(Path(work))
    with contextlib.suppress(Exception):
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.clear_cache()  # ids come from the backup now
    reference_changed_all()  # every process reads the restored reference data afresh
    _audit(
        action="restore",
        note=path.name,
        changes={
            "engine": engine,
            "backup_created_at": checked.manifest.get("created_at"),
            "media_files": media,
        },
    )
    return checked
