"""The writer processes of the concurrency tests: ``python -m tests.concurrency.worker``.

Reads a JSON spec on stdin ({"ctx", "ops", "processes", "threads"}), sets Django up once
against DATABASE_URL, then forks the writer processes (each with its own database
connections). Each writer process runs every operation once per thread, with its threads
released together, after all processes said they were ready. Prints one line
"RESULT <json list of every outcome>".
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import threading
import time


class _DryRun(Exception):
    pass


def warm_up(ops, ctx: dict, writer: int) -> None:
    """Run each operation once in a transaction that is rolled back, so the writers contend
    on the database at the start, not on first-time work (a lazy import inside a write
    transaction would hold SQLite's write lock for as long as it takes)."""
    from django.db import OperationalError, transaction

    from tests.concurrency.operations import attempt

    for op in ops:
        for _try in range(60):
            try:
                with transaction.atomic():
                    attempt(op, ctx, writer)
                    raise _DryRun
            except _DryRun:
                break
            except OperationalError:  # another process warming up holds the lock
                time.sleep(0.5)


def writer_process(spec: dict, index: int, barrier, results) -> None:
    from django.db import connections

    from tests.concurrency.operations import BY_NAME, attempt

    ops = [BY_NAME[name] for name in spec["ops"]]
    writers = [index * spec["threads"] + t for t in range(spec["threads"])]
    warm_up(ops, spec["ctx"], writers[0])
    connections.close_all()
    barrier.wait()
    outcomes: list[dict] = []
    lock = threading.Lock()
    for op in ops:
        start = threading.Barrier(len(writers))

        def target(writer: int, op=op, start=start) -> None:
            try:
                start.wait()
                outcome = attempt(op, spec["ctx"], writer)
            finally:
                connections.close_all()
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=target, args=(w,)) for w in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    results.put(outcomes)


def main() -> None:
    spec = json.loads(sys.stdin.read())
    import django

    django.setup()
    from django.db import connections
    from django.urls import get_resolver

    assert get_resolver().url_patterns  # imports every view once, before forking
    import rest_framework.test  # noqa: F401

    connections.close_all()  # a forked child must not share the parent's connection
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(spec["processes"])
    results = context.Queue()
    children = [
        context.Process(target=writer_process, args=(spec, index, barrier, results))
        for index in range(spec["processes"])
    ]
    for child in children:
        child.start()
    outcomes: list[dict] = []
    for _child in children:
        outcomes.extend(results.get(timeout=300))
    for child in children:
        child.join()
        if child.exitcode != 0:
            sys.exit(f"writer process exited with {child.exitcode}")
    print("RESULT " + json.dumps(outcomes), flush=True)


if __name__ == "__main__":
    main()
