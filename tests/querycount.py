"""Query counts of pages, as the query-count tests take them."""

from django.db import connection
from django.test.utils import CaptureQueriesContext


def warm_page_queries(client, url, data=None, **extra):
    """``(queries, response)`` of a GET of ``url`` by a process that has served it once:
    the reference data a write just renewed (kehu.core.reference) is read by the first
    request and then held, so a count that must not grow compares warm requests."""
    client.get(url, data or {}, **extra)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, data or {}, **extra)
    return len(captured.captured_queries), response
