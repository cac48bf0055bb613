import contextlib
import copy
import threading

import pytest
from django.db import connections

from tests.testapp.factories import WidgetFactory


@pytest.fixture
def widgets(org):
    """One widget per user of interest, keyed by the owner's username."""
    owners = ["sales1", "sales2", "sales3", "salesmgr1", "salesdirector", "finance"]
    return {name: WidgetFactory(name=f"w-{name}", owner=getattr(org, name)) for name in owners}


@contextlib.contextmanager
def using_connection(wrapper):
    """Point this thread's "default" alias at ``wrapper`` for the duration of the block."""
    original = connections["default"]
    connections["default"] = wrapper
    try:
        yield wrapper
    finally:
        connections["default"] = original


class SqliteFileDB:
    """A throw-away SQLite *file* database with the project's real connection options
    (IMMEDIATE transactions, WAL, busy timeout), for concurrency tests that the shared
    in-memory test database cannot run: each thread opens its own connection to the file.
    """

    def __init__(self, path, models):
        self.settings_dict = copy.deepcopy(connections["default"].settings_dict)
        self.settings_dict["NAME"] = str(path)
        with self.connect() as wrapper, wrapper.schema_editor() as editor:
            for model in models:
                editor.create_model(model)

    @contextlib.contextmanager
    def connect(self):
        """A fresh connection, installed as this thread's default, closed afterwards."""
        backend = connections["default"].__class__
        wrapper = backend(copy.deepcopy(self.settings_dict), "default")
        try:
            with using_connection(wrapper):
                yield wrapper
        finally:
            wrapper.close()


@pytest.fixture
def sqlite_file_db(db, tmp_path):
    """``sqlite_file_db(models)``: a file database holding tables for ``models``."""
    if connections["default"].vendor != "sqlite":
        pytest.skip("SQLite-only: the project's SQLite connection settings under threads")

    def make(models) -> SqliteFileDB:
        return SqliteFileDB(tmp_path / "concurrency.sqlite3", models)

    return make


def run_in_threads(count: int, work, *, timeout: float = 60):
    """Run ``work(index)`` in ``count`` threads started together; return results in order.

    Exceptions are returned, not raised, so a test can count winners and losers. Every
    thread closes its own database connections: a leaked one blocks the test database drop.
    """
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results
