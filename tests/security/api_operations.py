"""The API's operations, read from its OpenAPI schema, so new endpoints are covered at once."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

WRITE_METHODS = ("post", "put", "patch", "delete")
PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the template, e.g. /api/v1/customers/{id}/transfer/
    operation_id: str
    body: dict[str, Any] | None  # the JSON request schema, $refs resolved (None: no body)
    query: tuple[dict[str, Any], ...]  # the query parameters
    multipart: bool = False  # the body is only accepted as multipart/form-data

    @property
    def prefix(self) -> str:
        return self.path.removeprefix("/api/v1/").split("/")[0]

    @property
    def action(self) -> str:
        """The custom action's segment ("transfer"), or "" for the standard ones."""
        rest = self.path.removeprefix("/api/v1/").strip("/").split("/")[1:]
        named = [part for part in rest if not PARAM.fullmatch(part)]
        return named[-1] if named else ""

    @property
    def has_id(self) -> bool:
        return bool(PARAM.search(self.path))

    @property
    def properties(self) -> dict[str, Any]:
        return (self.body or {}).get("properties", {})

    @property
    def writable(self) -> dict[str, Any]:
        return {name: s for name, s in self.properties.items() if not s.get("readOnly")}

    def url(self, pk: Any) -> str:
        return PARAM.sub(str(pk), self.path)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


@functools.cache
def schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(node: Any, components: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _resolve(components[name], components)
        return {key: _resolve(value, components) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, components) for value in node]
    return node


def _operations() -> list[Operation]:
    spec = schema()
    components = spec.get("components", {}).get("schemas", {})
    result = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", *WRITE_METHODS):
                continue
            body = None
            content = op.get("requestBody", {}).get("content", {})
            multipart = bool(content) and "application/json" not in content
            if "application/json" in content:
                body = _resolve(content["application/json"].get("schema", {}), components)
            elif content:
                first = next(iter(content.values()))
                body = _resolve(first.get("schema", {}), components)
            query = tuple(
                _resolve(p, components) for p in op.get("parameters", []) if p.get("in") == "query"
            )
            result.append(Operation(method, path, op["operationId"], body, query, multipart))
    return result


@functools.cache
def all_operations() -> tuple[Operation, ...]:
    return tuple(_operations())


def write_operations() -> list[Operation]:
    return [op for op in all_operations() if op.method in WRITE_METHODS]


def read_operations() -> list[Operation]:
    return [op for op in all_operations() if op.method == "get"]
