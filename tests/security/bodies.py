"""Request bodies for any write operation, built from its OpenAPI request schema.

``valid_body`` fills the required fields (and the version) with values that pass the
serializer, pointing foreign keys at the world's records, so a refusal comes from the rule
under test (permission, scope, version) and not from a missing field. ``invalid_values``
gives, per field, a value its type cannot accept, for the "invalid body → 400" checks.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.utils import timezone

from tests.security.api_operations import Operation

_serial = itertools.count(1)

TAX_NUMBER = "91310000123456789X"


def _ids(world) -> dict[str, Any]:
    from kehu.customers.models import PipelineStage
    from kehu.system.models import DictionaryItem, Role

    org, objects = world.org, world.objects
    product = objects["_product"]
    return {
        "customer": objects["customers"].pk,
        "contract": objects["_active_contract"].pk,
        "payment": objects["_confirmed_payment"].pk,
        "product": product.pk,
        "owner": org.sales1.pk,
        "successor": org.sales2.pk,
        "user": org.sales1.pk,
        "manager": org.salesmgr1.pk,
        "department": org.sales1_dept.pk,
        "parent": None,
        "position": objects["positions"].pk,
        "category": DictionaryItem.objects.get(
            dictionary__code="expense_category", value="travel"
        ).pk,
        "stage": PipelineStage.objects.filter(kind="open").order_by("sort_order", "pk").first().pk,
        "warehouse": objects["_default_warehouse"].pk,
        "from_warehouse": objects["_default_warehouse"].pk,
        "to_warehouse": objects["warehouses"].pk,
        "role": Role.objects.get(code="salesperson").pk,
    }


def _string_for(name: str, op: Operation) -> str:
    n = next(_serial)
    special = {
        "tax_number": TAX_NUMBER,
        "password": "Kehu-Strong-Pass-2026!",
        "method": "bank_transfer",
        "dictionary": "industry",
        "document_type": "sales.contract",
        "kind": "employee" if op.prefix == "sales-targets" else "in",
        "username": f"secuser{n}",
        "code": f"sec-{n}",
        "value": f"sec-{n}",
        "invoice_number": f"INV{n:08d}",
        "employee_no": f"SEC{n:04d}",
    }
    return special.get(name, f"安全测试{n}")


def value_for(name: str, prop: dict[str, Any], op: Operation, world) -> Any:
    today = timezone.localdate()
    ids = _ids(world)
    if op.prefix == "sales-targets" and name == "user":
        return world.org.sales2.pk  # sales1 has this month's target already
    if name == "lines":
        return [{"product": ids["product"], "quantity": "1", "unit_price": "10.00"}]
    if name == "steps":
        return [{"approver_kind": "role", "role": ids["role"]}]
    if name in ("year",):
        return today.year
    if name in ("month",):
        return today.month
    kind = prop.get("type")
    fmt = prop.get("format", "")
    enum = _enum(prop)
    if enum:
        return enum[0]
    if kind == "integer":
        return ids.get(name, 1)
    if kind == "string" and fmt == "decimal":
        return "1.00"
    if kind == "string" and fmt == "date":
        return today.isoformat()
    if kind == "string" and fmt == "date-time":
        return timezone.now().isoformat()
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return _string_for(name, op)


def _enum(prop: dict[str, Any]) -> list[Any]:
    if "enum" in prop:
        return [v for v in prop["enum"] if v not in ("", None)]
    for key in ("oneOf", "allOf", "anyOf"):
        for part in prop.get(key, []):
            values = _enum(part)
            if values:
                return values
    return []


def valid_body(op: Operation, world, obj=None) -> dict[str, Any]:
    required = set((op.body or {}).get("required", []))
    body: dict[str, Any] = {}
    for name, prop in op.writable.items():
        if name == "version":
            if obj is not None and hasattr(obj, "version"):
                body[name] = type(obj)._base_manager.get(pk=obj.pk).version
            continue
        if name in required or name in REASONS or name in NEEDED.get(op.prefix, ()):
            body[name] = value_for(name, prop, op, world)
    return body


# Optional in the schema, required by the rule for some actions (rejecting, losing a deal).
REASONS = {"comment", "reason", "lost_reason"}
# Optional in the schema, but one of them is needed (an order for a customer or a contract).
NEEDED = {"orders": {"customer", "lines"}, "sales-targets": {"user"}}


def invalid_values(op: Operation) -> dict[str, Any]:
    """Field → a value of the wrong type (or out of range) for that field."""
    result: dict[str, Any] = {}
    for name, prop in op.writable.items():
        kind = prop.get("type")
        fmt = prop.get("format", "")
        if fmt == "binary":
            continue
        if _enum(prop):
            result[name] = "no-such-choice"
        elif kind == "integer":
            result[name] = "not-a-number"
        elif kind == "string" and fmt == "decimal":
            result[name] = "12.3.4"
        elif kind == "string" and fmt == "date":
            result[name] = "2026-02-30"
        elif kind == "string" and fmt == "date-time":
            result[name] = "the day after tomorrow"
        elif kind == "boolean":
            result[name] = "perhaps"
        elif kind == "array":
            result[name] = "not-a-list"
        elif kind == "string":
            limit = prop.get("maxLength")
            result[name] = "x" * (limit + 1) if limit else {"not": "a string"}
    return result
