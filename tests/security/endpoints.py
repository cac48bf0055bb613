"""Every page and API operation the URL configuration and the OpenAPI schema expose.

The access matrix (test_access_matrix.py) walks these and fails on any that has no
declared expectation in expectations.py, so a new endpoint cannot go unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str  # namespaced URL name, e.g. "customers:customer_detail" or "api:customer-list"
    pattern: str  # the route as written (regex for routers)
    kwargs: tuple[str, ...]  # the URL's keyword arguments
    methods: tuple[str, ...] | None  # methods the view answers; None when it cannot be told
    view: object  # the view callable
    api: bool


def _methods(callback) -> tuple[str, ...] | None:
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF viewset route: method -> action
        # HEAD is GET without the body: the GET expectation covers it.
        return tuple(sorted(m.upper() for m in actions if m in HTTP_METHODS))
    cls = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if cls is None:
        return None  # a function view: the table says which methods it takes
    allowed = getattr(cls, "http_method_names", HTTP_METHODS)
    return tuple(sorted(m.upper() for m in HTTP_METHODS if m in allowed and hasattr(cls, m)))


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), namespace, entry


def routes() -> list[Route]:
    """Every named URL once (DRF's format-suffix twins of a route are the same view)."""
    found: dict[str, Route] = {}
    for pattern, namespace, entry in _walk(get_resolver().url_patterns):
        if "(?P<format>" in pattern or "<drf_format_suffix:" in pattern:
            continue
        if not entry.name:
            raise AssertionError(f"URL {pattern!r} has no name; the access matrix needs one")
        name = f"{namespace}:{entry.name}" if namespace else entry.name
        kwargs = tuple(sorted(entry.pattern.regex.groupindex))
        found.setdefault(
            name,
            Route(
                name=name,
                pattern=pattern,
                kwargs=kwargs,
                methods=_methods(entry.callback),
                view=entry.callback,
                api=pattern.startswith("api/v1/"),
            ),
        )
    return sorted(found.values(), key=lambda r: r.name)


def schema_operations() -> list[tuple[str, str]]:
    """(path template, METHOD) of every operation in the public OpenAPI schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (path, method.upper())
        for path, item in schema["paths"].items()
        for method in item
        if method in HTTP_METHODS
    )
