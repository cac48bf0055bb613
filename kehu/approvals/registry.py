"""Document types that go through approval, registered by the modules that own them.

The engine knows nothing about contracts or payments: it asks the registered type for the
amount, department and title of a document, and calls back when a request ends. Callbacks
run inside the engine's transaction, so the document's status and the request's status
change together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils.functional import Promise


@dataclass(frozen=True)
class ApprovalDocumentType:
    code: str  # "sales.contract"
    model: type[models.Model]
    label: str | Promise
    module: str  # permission module whose ``approve`` a role step requires, e.g. "sales"
    amount: Callable[[Any], Decimal | None]
    department: Callable[[Any], Any]  # the document's department (a Department or None)
    title: Callable[[Any], str]
    # (document, request, actor) -> None; inside the engine's transaction.
    on_approved: Callable[..., None]
    on_rejected: Callable[..., None]
    on_withdrawn: Callable[..., None]
    currency: Callable[[Any], str] = lambda document: getattr(document, "currency", "CNY")


_types: dict[str, ApprovalDocumentType] = {}


def approval_document_type_register(document_type: ApprovalDocumentType) -> None:
    _types[document_type.code] = document_type


def approval_document_type_get(code: str) -> ApprovalDocumentType:
    return _types[code]


def approval_document_types() -> list[ApprovalDocumentType]:
    return list(_types.values())
