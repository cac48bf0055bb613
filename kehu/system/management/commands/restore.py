"""``manage.py restore FILE --yes``: replace the database and the uploaded files with a
backup made by ``manage.py backup`` (checked first; nothing changes without ``--yes``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kehu.core.exceptions import ServiceError
from kehu.system import backup


class Command(BaseCommand):
    help = "Restore the database and the uploaded files from a backup archive."

    def add_arguments(self, parser):
        parser.add_argument("file", help="A kehu-backup-*.tar.gz archive.")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="Really replace every table and uploaded file with the backup's.",
        )

    def handle(self, *args, file: str, yes: bool = False, **options):
        path = Path(file)
        try:
            with tempfile.TemporaryDirectory(prefix="kehu-check-") as work:
                checked = backup.backup_check(path=path, work=Path(work))
            manifest = checked.manifest
            summary = (
                f"{path.name}: {manifest['engine']} backup of {manifest['created_at']}, "
                f"{manifest['media_files']} uploaded files"
            )
            if not yes:
                raise CommandError(
                    f"{summary}. Restoring replaces every table and uploaded file with the "
                    "backup's; run again with --yes to do it."
                )
            backup.backup_restore(path=path)
        except ServiceError as exc:
            raise CommandError(str(exc.message)) from exc
        self.stdout.write(f"restored {summary}")
