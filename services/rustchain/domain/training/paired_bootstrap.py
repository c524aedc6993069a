"""Is a candidate really better? A paired bootstrap interval of the mean score difference.

Both policies run the same held-out scenarios, so the differences are paired by scenario; the
interval comes from resampling scenarios with replacement (seeded: the same data always gives
the same interval, so a recorded `PolicyEvaluated` can be checked).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def paired_interval(
    differences: Sequence[float], confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    """The two-sided percentile interval of the mean of `differences` at `confidence`."""
    if not differences:
        raise ValueError("a paired bootstrap needs at least one paired difference")
    if len(set(differences)) == 1:
        # Every resample has the same mean: the interval is that point.
        return differences[0], differences[0]
    rng = random.Random(seed)
    count = len(differences)
    means = sorted(math.fsum(rng.choices(differences, k=count)) / count for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[max(0, math.floor(tail * resamples))]
    high = means[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]
    return low, high


def should_promote(
    baseline: Sequence[float], candidate: Sequence[float], margin: float, low: float
) -> bool:
    """Promote only when the mean rises by at least `margin` and the interval is above zero."""
    gain = math.fsum(candidate) / len(candidate) - math.fsum(baseline) / len(baseline)
    return gain >= margin and low > 0
