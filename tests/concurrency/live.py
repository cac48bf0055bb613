"""A committed database that threads and separate processes can all write to at once.

PostgreSQL: pytest's own test database (the tests using it are transactional, so what a
test writes is committed and other connections see it); child processes get its name
through DATABASE_URL. SQLite: the in-memory test database is private to one connection,
so each test builds a *file* database with the project's real connection options
(IMMEDIATE transactions, WAL, busy timeout) and points this thread, every writer thread
and every writer process at it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

from django.core.management import call_command
from django.db import connections

from tests.concurrency.operations import attempt
from tests.core.conftest import using_connection

ROOT = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT = 180


class Live:
    def __init__(self, tmp_path: Path):
        default = connections["default"]
        self.vendor = default.vendor
        self.tmp_path = tmp_path
        self.settings_dict = copy.deepcopy(default.settings_dict)
        if self.vendor == "sqlite":
            self.settings_dict["NAME"] = str(tmp_path / "kehu.sqlite3")
            self.url = f"sqlite:///{self.settings_dict['NAME']}"
        else:
            s = self.settings_dict
            auth = quote(s["USER"] or "") + (f":{quote(s['PASSWORD'])}" if s["PASSWORD"] else "")
            host = f"{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
            self.url = f"postgres://{auth}@{host}/{s['NAME']}"

    @contextlib.contextmanager
    def connect(self):
        """This thread's "default" connection to the shared database, closed afterwards."""
        if self.vendor != "sqlite":
            try:
                yield connections["default"]
            finally:
                connections["default"].close()
            return
        backend = connections["default"].__class__
        wrapper = backend(copy.deepcopy(self.settings_dict), "default")
        try:
            with using_connection(wrapper):
                yield wrapper
        finally:
            wrapper.close()

    def create_schema(self) -> None:
        """SQLite: every table, then the seeds the apps add after a migrate."""
        call_command("migrate", run_syncdb=True, interactive=False, verbosity=0)

    # --- running writers ------------------------------------------------------------------

    def threads(self, count: int, op, ctx: dict) -> list[dict]:
        """``op`` by ``count`` threads released together, each on its own connection."""
        barrier = threading.Barrier(count)
        results: list[dict] = [{}] * count

        def target(index: int) -> None:
            with self.connect():
                try:
                    barrier.wait()
                    results[index] = attempt(op, ctx, index)
                finally:
                    connections.close_all()

        workers = [threading.Thread(target=target, args=(i,)) for i in range(count)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(PROCESS_TIMEOUT)
        assert not any(w.is_alive() for w in workers), "a writer thread hung"
        return results

    def processes(self, count: int, *, threads: int, ops, ctx: dict) -> list[dict]:
        """``count`` writer processes of ``threads`` threads each, running ``ops`` in order
        (see worker.py); returns every outcome of every writer."""
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": self.url,
            "KEHU_VAR_DIR": str(self.tmp_path / "var"),
            "LOG_LEVEL": "ERROR",
            "PYTHONPATH": str(ROOT),
        }
        spec = {
            "ctx": ctx,
            "ops": [op.__name__ for op in ops],
            "processes": count,
            "threads": threads,
        }
        done = subprocess.run(
            [sys.executable, "-m", "tests.concurrency.worker"],
            cwd=ROOT,
            env=env,
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        lines = [row for row in done.stdout.splitlines() if row.startswith("RESULT ")]
        assert len(lines) == 1, (done.stdout[-2000:], done.stderr[-2000:])
        return json.loads(lines[0][len("RESULT ") :])


@contextlib.contextmanager
def live_database(tmp_path: Path):
    """The shared database, with this thread's "default" pointing at it meanwhile."""
    database = Live(tmp_path)
    if database.vendor == "sqlite":
        with database.connect():
            database.create_schema()
            yield database
    else:
        yield database
