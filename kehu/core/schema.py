"""OpenAPI post-processing: every operation documents the errors it can answer with.

Each module documents its own success responses and some errors; what any operation can
answer anyway (401 without a token, 403 without the permission, 404 outside the data scope
or past the last page, 400 for bad input, 409 for a stale version or a step the status does
not allow) is filled in here once, with the shape the exception handler gives those bodies,
so a client (and the API fuzz test) can rely on the schema for every status it sees.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

ERROR_SCHEMA = "Error"
VALIDATION_ERROR_SCHEMA = "ValidationError"

DESCRIPTIONS = {
    "400": _("Invalid input: messages per field (non_field_errors for the whole request)."),
    "401": _("Not authenticated: no or an invalid token or session."),
    "403": _("Permission denied."),
    "404": _("Not found, outside your data scope, or a page past the last one."),
    "409": _("Conflict: stale version, or a step the record's status does not allow."),
    "415": _("Unsupported media type: send the body as one of the documented types."),
}

COMPONENTS: dict[str, dict[str, Any]] = {
    ERROR_SCHEMA: {
        "type": "object",
        "description": "An error: `detail`, or messages per field as for 400.",
        "properties": {"detail": {"type": "string"}},
        "additionalProperties": True,
    },
    VALIDATION_ERROR_SCHEMA: {
        "description": (
            "Messages per field (nested for nested input, such as lines); "
            "`non_field_errors` for the request as a whole. A list of messages when the "
            "request body itself is not an object."
        ),
        "oneOf": [
            {"type": "object", "additionalProperties": True},
            {"type": "array", "items": {"type": "string"}},
        ],
    },
}

WRITE_METHODS = {"post", "put", "patch", "delete"}


def _codes_for(method: str, operation: dict[str, Any]) -> list[str]:
    codes = ["401", "403", "404"]
    has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    if method in WRITE_METHODS or has_query:
        codes.append("400")
    if method in WRITE_METHODS:
        codes.append("409")
    if "requestBody" in operation:
        codes.append("415")
    return codes


def _error_content(code: str) -> dict[str, Any]:
    name = VALIDATION_ERROR_SCHEMA if code == "400" else ERROR_SCHEMA
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def document_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in COMPONENTS.items():
        schemas.setdefault(name, component)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", *WRITE_METHODS}:
                continue
            responses = operation.setdefault("responses", {})
            for code in _codes_for(method, operation):
                responses.setdefault(code, {"description": str(DESCRIPTIONS[code])})
            for code, response in responses.items():
                if code[:1] in ("4", "5") and "content" not in response:
                    response["content"] = _error_content(code)
    return result
