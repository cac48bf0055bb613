"""RFM: recency, frequency and monetary scores (quintiles, 1–5) and the eight named segments.

Each score is 5 for the best fifth of customers (most recent, most frequent, highest spend).
A customer is "high" on a dimension when their score is above the average score, the usual
rule of the eight-segment model (重要价值客户 …).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def quintile_scores(values, *, higher_is_better: bool = True) -> np.ndarray:
    """1–5 by rank; ties share a score (ranked by their average position)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=int)
    order = values if higher_is_better else -values
    # Average ranks for ties, then the mid-point percentile of each rank.
    sorter = np.argsort(order, kind="mergesort")
    ranks = np.empty(n)
    ranks[sorter] = np.arange(1, n + 1)
    _unique, inverse = np.unique(order, return_inverse=True)
    mean_rank = np.bincount(inverse, weights=ranks) / np.bincount(inverse)
    percentile = (mean_rank[inverse] - 0.5) / n
    return np.clip(np.floor(percentile * 5) + 1, 1, 5).astype(int)


@dataclass(frozen=True)
class Segment:
    code: str  # kehu.analytics.models.Segment holds the names shown to people
    high_r: bool
    high_f: bool
    high_m: bool


# 重要价值, 重要发展, 重要保持, 重要挽留, 一般价值, 一般发展, 一般保持, 一般挽留
SEGMENTS = (
    Segment("champions", True, True, True),
    Segment("promising_big", True, False, True),
    Segment("valuable_at_risk", False, True, True),
    Segment("cannot_lose", False, False, True),
    Segment("loyal", True, True, False),
    Segment("new", True, False, False),
    Segment("need_attention", False, True, False),
    Segment("hibernating", False, False, False),
)
SEGMENT_BY_FLAGS = {(s.high_r, s.high_f, s.high_m): s for s in SEGMENTS}
# Codes by 4·high_r + 2·high_f + high_m, for picking a million customers' segments at once.
_SEGMENT_BY_INDEX = np.array(
    [SEGMENT_BY_FLAGS[(bool(i & 4), bool(i & 2), bool(i & 1))].code for i in range(8)],
    dtype=object,
)


@dataclass(frozen=True)
class RfmResult:
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    segments: list[str]


def rfm_score(recency_days, frequency, monetary) -> RfmResult:
    """Scores and segment codes for arrays of recency (days), frequency and monetary."""
    r = quintile_scores(recency_days, higher_is_better=False)
    f = quintile_scores(frequency)
    m = quintile_scores(monetary)
    if len(r) == 0:
        return RfmResult(r, f, m, [])
    high_r, high_f, high_m = r > r.mean(), f > f.mean(), m > m.mean()
    flags = high_r.astype(int) * 4 + high_f.astype(int) * 2 + high_m.astype(int)
    return RfmResult(r, f, m, _SEGMENT_BY_INDEX[flags].tolist())
