"""The one background process: enqueues due periodic jobs and runs queued tasks.

Each tick enqueues the periodic jobs whose interval has elapsed, then drains the queue with
django-tasks-db's own worker in batch mode (which claims each task under a lock, so several
``worker`` processes may run side by side), then sleeps.
"""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils.crypto import get_random_string
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, task_backends
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.management.commands.db_worker import Worker

from kehu.core.periodic import autodiscover, enqueue_due_jobs, periodic_jobs


class Command(BaseCommand):
    help = "Run queued background tasks and the periodic jobs modules register."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Run one tick (enqueue due jobs, drain the queue)."
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=5.0,
            help="Seconds to sleep between ticks when the queue is empty (default: 5).",
        )
        parser.add_argument(
            "--queue-name", default="*", help="Queues to process, comma-separated (default: all)."
        )
        parser.add_argument("--backend", default=DEFAULT_TASK_BACKEND_ALIAS)

    def handle(self, *args, once: bool, interval: float, queue_name: str, backend: str, **options):
        self.running = True
        self.current: Worker | None = None
        self.worker_id = get_random_string(32)
        verbosity = options.get("verbosity", 1)
        if verbosity < 2:
            # django-tasks-db's batch worker logs its start and stop on every tick.
            logging.getLogger("django_tasks_db").setLevel(logging.WARNING)
        autodiscover()
        if verbosity:
            names = ", ".join(job.name for job in periodic_jobs()) or "none"
            self.stdout.write(f"Kehu worker {self.worker_id} started; periodic jobs: {names}")
        if not once:
            signal.signal(signal.SIGINT, self._shutdown)
            signal.signal(signal.SIGTERM, self._shutdown)
        while self.running:
            self.tick(queue_names=queue_name.split(","), backend_name=backend, verbosity=verbosity)
            if once:
                break
            # Sleep in short slices so a stop signal is honoured promptly.
            deadline = time.monotonic() + interval
            while self.running and time.monotonic() < deadline:
                time.sleep(min(0.2, interval))
        if verbosity:
            self.stdout.write("Kehu worker stopped.")

    def tick(self, *, queue_names: list[str], backend_name: str, verbosity: int = 1) -> None:
        close_old_connections()
        enqueued = enqueue_due_jobs()
        if enqueued and verbosity:
            self.stdout.write("Enqueued periodic jobs: " + ", ".join(enqueued))
        # With a non-database backend (the immediate one in tests) enqueue already ran them.
        if not isinstance(task_backends[backend_name], DatabaseBackend):
            return
        self.current = Worker(
            queue_names=queue_names,
            interval=0,
            batch=True,
            backend_name=backend_name,
            startup_delay=False,
            max_tasks=None,
            worker_id=self.worker_id,
            excluded_queue_names=[],
        )
        try:
            self.current.run()
        finally:
            self.current = None
            close_old_connections()

    def _shutdown(self, signum: int, frame: FrameType | None) -> None:
        if not self.running:
            # Second signal: stop now, even mid-task.
            raise SystemExit(1)
        self.stderr.write(f"Received {signal.strsignal(signum)}: stopping after the current task.")
        self.running = False
        if self.current is not None:
            # The batch worker checks this flag between tasks.
            self.current.running = False
