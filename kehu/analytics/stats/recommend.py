"""Item-to-item recommendations from co-purchases ("customers who bought X also bought Y").

For every pair of products bought by the same customer: support (customers with both),
confidence P(Y | X) and lift P(X and Y) / (P(X) P(Y)). A customer's candidates are the
products most associated with what they already have, excluding those.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class Association:
    source: int
    target: int
    support: int
    confidence: float
    lift: float


def associations(
    baskets: Mapping[int, Iterable[int]], *, min_support: int = 3, max_per_item: int = 20
) -> dict[int, list[Association]]:
    """Per product, its strongest associated products (lift > 1), best first."""
    sets = [frozenset(items) for items in baskets.values()]
    n = len(sets)
    if n == 0:
        return {}
    item_count: Counter[int] = Counter()
    pair_count: Counter[tuple[int, int]] = Counter()
    for items in sets:
        item_count.update(items)
        pair_count.update(combinations(sorted(items), 2))
    result: dict[int, list[Association]] = defaultdict(list)
    for (a, b), together in pair_count.items():
        if together < min_support:
            continue
        lift = together * n / (item_count[a] * item_count[b])
        if lift <= 1.0:
            continue
        result[a].append(Association(a, b, together, together / item_count[a], lift))
        result[b].append(Association(b, a, together, together / item_count[b], lift))
    for rows in result.values():
        rows.sort(key=lambda r: (-r.lift, -r.confidence, -r.support, r.target))
        del rows[max_per_item:]
    return dict(result)


def recommend(
    owned: Iterable[int], rules: Mapping[int, list[Association]], *, k: int = 5
) -> list[tuple[int, float, int]]:
    """Top ``k`` (product, score, because-of product) for a customer owning ``owned``.

    The score of a candidate is its best lift × confidence over the owned products.
    """
    owned = set(owned)
    best: dict[int, tuple[float, int]] = {}
    for source in owned:
        for rule in rules.get(source, ()):
            if rule.target in owned:
                continue
            score = rule.lift * rule.confidence
            if rule.target not in best or score > best[rule.target][0]:
                best[rule.target] = (score, source)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:k]
    return [(target, score, source) for target, (score, source) in ranked]
