"""'Did you mean' suggestions for misspelt keys, step types and step ids."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate most like `word`, or None when nothing is close enough."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    if matches:
        return matches[0]
    lowered = {c.lower().replace("-", "_"): c for c in candidates}
    return lowered.get(word.lower().replace("-", "_"))


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """A ` (did you mean 'x'?)` suffix, or an empty string."""
    match = closest(word, candidates, cutoff)
    return f"; did you mean '{match}'?" if match is not None else ""


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance between a and b, capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def near_miss(word: str, candidates: Iterable[str]) -> str | None:
    """A candidate one typo from `word` (two for long words); short words are never guessed."""
    if len(word) < 4:
        return None
    limit = 2 if len(word) >= 10 else 1
    best: tuple[int, str] | None = None
    for candidate in candidates:
        if candidate == word:
            return None
        distance = edit_distance(word, candidate, limit)
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None
