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

import numpy as np
from scipy import sparse


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
    item_count: Counter[int] = Counter()
    pair_count: Counter[tuple[int, int]] = Counter()
    for items in sets:
        item_count.update(items)
        pair_count.update(combinations(sorted(items), 2))
    return associations_from_counts(
        len(sets), item_count, pair_count, min_support=min_support, max_per_item=max_per_item
    )


class CoPurchases:
    """Co-purchase counts accumulated from chunks of (customer, product) pairs, as sparse
    matrices: memory grows with the products and the pairs of them bought together, not
    with the customers. Each customer's pairs must all be in one chunk."""

    def __init__(self, products: np.ndarray) -> None:
        self.products = np.sort(np.asarray(products, dtype=np.int64))
        size = len(self.products)
        self.customers = 0
        self.items = np.zeros(size, dtype=np.int64)
        self.pairs = sparse.csr_matrix((size, size), dtype=np.int64)

    def add(self, customers: np.ndarray, products: np.ndarray) -> None:
        """Distinct (customer, product) pairs of some customers."""
        if not len(customers):
            return
        rows, row_of = np.unique(customers, return_inverse=True)
        columns = np.searchsorted(self.products, products)
        if (columns >= len(self.products)).any() or (self.products[columns] != products).any():
            raise ValueError("a product outside the catalogue given to CoPurchases")
        basket = sparse.csr_matrix(
            (np.ones(len(columns), dtype=np.int64), (row_of, columns)),
            shape=(len(rows), len(self.products)),
        )
        basket.sum_duplicates()
        basket.data[:] = 1  # a pair given twice still counts once
        self.customers += len(rows)
        self.items += np.asarray(basket.sum(axis=0)).ravel()
        self.pairs = self.pairs + basket.T @ basket

    def counts(self) -> tuple[int, dict[int, int], dict[tuple[int, int], int]]:
        """(customers, customers per product, customers per pair of products (lower id
        first)) as ``associations_from_counts`` takes them."""
        ids = self.products.tolist()
        items = {ids[i]: int(c) for i, c in enumerate(self.items.tolist()) if c}
        pairs = self.pairs.tocoo()
        upper = pairs.row < pairs.col
        together = {
            (ids[a], ids[b]): int(c)
            for a, b, c in zip(
                pairs.row[upper].tolist(),
                pairs.col[upper].tolist(),
                pairs.data[upper].tolist(),
                strict=True,
            )
            if c
        }
        return self.customers, items, together


def associations_from_counts(
    n: int,
    item_count: Mapping[int, int],
    pair_count: Mapping[tuple[int, int], int],
    *,
    min_support: int = 3,
    max_per_item: int = 20,
) -> dict[int, list[Association]]:
    """``associations`` from counts: ``n`` customers, customers per product and per pair of
    products (the lower id first)."""
    if n == 0:
        return {}
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
