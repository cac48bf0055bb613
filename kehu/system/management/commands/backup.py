"""``manage.py backup [--output DIR] [--keep N]``: the database and uploaded files in one
archive (see kehu/system/backup.py); run it daily, e.g. from cron (README, "Backups")."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kehu.core.exceptions import ServiceError
from kehu.system import backup


class Command(BaseCommand):
    help = "Back up the database and the uploaded files into one archive."

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            default=None,
            help="Folder for the backups (default: KEHU_BACKUP_DIR or <var>/backups).",
        )
        parser.add_argument(
            "--keep", type=int, default=None, help="Then delete all but the newest N backups."
        )

    def handle(self, *args, output=None, keep=None, **options):
        directory = Path(output or settings.KEHU_BACKUP_DIR)
        try:
            result = backup.backup_create(directory=directory, keep=keep)
        except ServiceError as exc:
            raise CommandError(str(exc.message)) from exc
        self.stdout.write(
            f"{result.path} ({result.engine}, {result.size:,} bytes, "
            f"{result.media_files} uploaded files)"
        )
        for path in result.deleted:
            self.stdout.write(f"deleted old backup {path.name}")
