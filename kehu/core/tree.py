"""Trees kept as materialised paths ("/00000001/00000004/"), for departments and categories.

"This node and everything below it" is then one indexed prefix query, and a move rewrites
the subtree's paths in one UPDATE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models, transaction
from django.db.models import Value
from django.db.models.functions import Concat, Substr
from django.utils.translation import gettext as _

from kehu.core.exceptions import ServiceError

PATH_WIDTH = 8
N = TypeVar("N", bound=models.Model)


def tree_segment(pk: int) -> str:
    return f"{pk:0{PATH_WIDTH}d}/"


def tree_path_set(node: Any) -> None:
    """Give a freshly created node its path below its parent."""
    parent_path = node.parent.path if node.parent else "/"
    node.path = parent_path + tree_segment(node.pk)
    node.save(update_fields=["path"])


def tree_node_update(*, node: N, new_parent: Any, cycle_message: str, apply: Callable[[], N]) -> N:
    """Run ``apply`` (the versioned update) and move the subtree if the parent changed.

    Both rows are locked in id order (two moves cannot deadlock) and the cycle check reads
    paths under the lock, so two simultaneous moves cannot build a loop.
    """
    model = type(node)
    with transaction.atomic():
        locked: dict[Any, Any] = {
            row.pk: row
            for row in model._default_manager.select_for_update()
            .filter(pk__in=[node.pk, getattr(new_parent, "pk", None)])
            .order_by("pk")
        }
        if node.pk not in locked:
            raise ServiceError(_("This record no longer exists."))
        old_path = locked[node.pk].path
        parent_path = locked[new_parent.pk].path if new_parent is not None else "/"
        if new_parent is not None and parent_path.startswith(old_path):
            raise ServiceError(cycle_message, field="parent")
        node = apply()
        new_path = parent_path + tree_segment(node.pk)
        if new_path != old_path:
            model._default_manager.filter(path__startswith=old_path).update(
                path=Concat(Value(new_path), Substr("path", len(old_path) + 1))
            )
            node.refresh_from_db()
    return node
