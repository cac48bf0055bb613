"""Fixtures of the concurrency tests: ``live``, a database shared by threads and processes
(see live.py)."""

import pytest

from tests.concurrency.live import live_database


@pytest.fixture
def live(transactional_db, tmp_path):
    with live_database(tmp_path) as database:
        yield database
