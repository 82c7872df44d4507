"""Non-overlapping span bookkeeping (desensitize.spans) agrees with the pairwise test it
replaces, on random spans including empty ones."""

from __future__ import annotations

import random

from desensitize.spans import Taken, overlapping


def test_taken_agrees_with_the_pairwise_test() -> None:
    rng = random.Random(12)
    for trial in range(2000):
        taken, kept = Taken(), list[tuple[int, int]]()
        for _ in range(rng.randint(1, 30)):
            s = rng.randint(0, 40)
            e = s + rng.randint(0 if trial % 3 == 0 else 1, 8)
            free = all(e <= a or s >= b for a, b in kept)
            assert taken.free(s, e) == free, (kept, s, e)
            if free:
                taken.add(s, e)
                kept.append((s, e))


def test_overlapping_finds_every_overlap() -> None:
    rng = random.Random(7)
    for _ in range(500):
        pos, spans = 0, []
        while pos < 60:
            pos += rng.randint(0, 4)
            n = rng.randint(1, 5)
            spans.append((pos, pos + n))
            pos += n
        starts = [s for s, _ in spans]
        for _ in range(20):
            s = rng.randint(0, 70)
            e = s + rng.randint(1, 9)
            got = [spans[k] for k in overlapping(spans, starts, s, e)]
            assert got == [x for x in spans if x[0] < e and s < x[1]]
