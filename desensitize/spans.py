"""Non-overlapping spans with overlap tests in logarithmic time.

The text scanner keeps the best of competing findings and the PERSON recognizer the best
of competing names; on a long document (hundreds of findings per chunk) testing each new
span against every kept one is quadratic, so the kept spans stay sorted here.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any


class Taken:
    """Half-open spans ``[start, end)`` that do not overlap each other."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._empty = False  # an empty span breaks the order of the ends: test them all

    def free(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` overlaps no kept span (``end <= s or start >= e`` for
        every kept ``[s, e)``)."""
        if self._empty or end <= start:
            return all(end <= s or start >= e for s, e in zip(self._starts, self._ends, strict=True))
        # kept non-empty spans do not overlap, so their ends rise with their starts: the
        # last one starting before ``end`` is the only one that can reach past ``start``
        j = bisect.bisect_left(self._starts, end)
        return j == 0 or self._ends[j - 1] <= start

    def add(self, start: int, end: int) -> None:
        i = bisect.bisect_right(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, end)
        self._empty = self._empty or end <= start


def overlapping(spans: Sequence[tuple[Any, ...]], starts: Sequence[int], start: int, end: int) -> range:
    """Indices of ``spans`` (sorted, non-overlapping, ``starts`` their starts) that overlap
    ``[start, end)`` (``s < end and start < e``)."""
    i = max(0, bisect.bisect_right(starts, start) - 1)
    if i < len(spans) and spans[i][1] <= start:
        i += 1
    j = bisect.bisect_left(starts, end, lo=i)
    return range(i, j)
