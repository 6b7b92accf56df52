"""Small statistics for benchmark reports (no numpy: the figures are few)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of ``values`` (0 < pct <= 100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def seconds(values: Sequence[float]) -> str:
    """``[1.234s 2.345s]`` for a run-by-run listing."""
    return "[" + " ".join(f"{v:.3f}s" for v in values) + "]"
