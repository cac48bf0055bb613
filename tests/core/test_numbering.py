"""Gap-free document numbers: sequential, per prefix and year, safe under concurrency."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from kehu.core.models import DocumentSequence
from kehu.core.services import document_number_next
from tests.core.conftest import run_in_threads


class Rollback(Exception):
    pass


def test_sequential_per_prefix_and_year(db):
    assert document_number_next(prefix="HT", year=2026) == "HT-2026-000001"
    assert document_number_next(prefix="HT", year=2026) == "HT-2026-000002"
    # Another prefix and another year each count on their own.
    assert document_number_next(prefix="DD", year=2026) == "DD-2026-000001"
    assert document_number_next(prefix="HT", year=2027) == "HT-2027-000001"
    assert document_number_next(prefix="HT", year=2026) == "HT-2026-000003"
    assert DocumentSequence.objects.get(prefix="HT", year=2026).last_value == 3


def test_defaults_to_this_year_and_honours_width(db):
    year = timezone.localdate().year
    assert document_number_next(prefix="FP", width=4) == f"FP-{year}-0001"


def test_rolled_back_document_hands_its_number_back(db):
    assert document_number_next(prefix="HT", year=2026) == "HT-2026-000001"
    with pytest.raises(Rollback), transaction.atomic():
        assert document_number_next(prefix="HT", year=2026) == "HT-2026-000002"
        raise Rollback  # e.g. the contract failed validation after taking a number
    # No gap: the next document gets the number the failed one gave back.
    assert document_number_next(prefix="HT", year=2026) == "HT-2026-000002"


def test_first_number_of_a_new_sequence_rolled_back(db):
    with pytest.raises(Rollback), transaction.atomic():
        document_number_next(prefix="TK", year=2026)
        raise Rollback
    assert not DocumentSequence.objects.filter(prefix="TK").exists()
    assert document_number_next(prefix="TK", year=2026) == "TK-2026-000001"


THREADS, PER_THREAD = 8, 10


def _take_numbers(_index):
    # Each number in its own transaction, as each document's creation would be.
    return [document_number_next(prefix="HT", year=2026) for _ in range(PER_THREAD)]


def _assert_unique_and_consecutive(results):
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    numbers = [n for batch in results for n in batch]
    assert len(numbers) == THREADS * PER_THREAD
    assert sorted(numbers) == [f"HT-2026-{i:06d}" for i in range(1, THREADS * PER_THREAD + 1)]
    # Within one thread the numbers only go up.
    for batch in results:
        assert batch == sorted(batch)


@pytest.mark.django_db(transaction=True)
def test_concurrent_numbers_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency: PostgreSQL run")
    # The sequence row does not exist yet: the threads also race to create it.
    results = run_in_threads(THREADS, _take_numbers)
    _assert_unique_and_consecutive(results)
    assert DocumentSequence.objects.get(prefix="HT", year=2026).last_value == 80


def test_concurrent_numbers_on_sqlite_file(sqlite_file_db):
    # The project's SQLite settings (IMMEDIATE transactions, WAL, busy timeout) on a real
    # file, one connection per thread, the way several server threads would share it.
    database = sqlite_file_db([DocumentSequence])

    def work(index):
        with database.connect():
            return _take_numbers(index)

    results = run_in_threads(THREADS, work)
    _assert_unique_and_consecutive(results)
    with database.connect():
        assert DocumentSequence.objects.get(prefix="HT", year=2026).last_value == 80
