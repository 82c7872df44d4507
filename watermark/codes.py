"""Votes, binomial tails and accusations.

Codewords are uniform keyed bit strings (:func:`watermark.hashing.codeword`), so for any
recipient whose copy did NOT leak, the agreement between the recovered bits and that
recipient's codeword is exactly Binomial(n, 1/2), whatever the suspect table holds —
that is the null hypothesis every p-value here is computed under. The tail is summed
exactly with integers (``math.comb``), no approximation.

Accusation: a recipient is named when its p-value, multiplied by the number of
recipients tested (Bonferroni correction), is below ``alpha``; hence the probability of
naming ANY innocent recipient is at most ``alpha``.

Collusion: when copies of two recipients are mixed, each recovered bit comes from one of
them; on the bits where their codewords agree (half of them) both colluders agree fully,
on the others each gets about half, so each colluder agrees on about 3/4 of the bits
while an innocent stays at 1/2 — with codewords of 256 bits that is ample to name a
colluder and, by the bound above, no innocent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exact."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return _tails(n)[k]


@lru_cache(maxsize=256)
def _tails(n: int) -> tuple[float, ...]:
    # Every tail of Binomial(n, 1/2) at once: exact integer sums from the top, each divided
    # by 2**n without float overflow (shifted to 60 significant bits first).
    out = [0.0] * (n + 1)
    num = 0
    for i in range(n, -1, -1):
        num += math.comb(n, i)
        shift = max(num.bit_length() - 60, 0)
        out[i] = math.ldexp(float(num >> shift), shift - n)
    return tuple(out)


def bits_needed(tests: int, alpha: float) -> int:
    """Smallest n with 2**-n * tests < alpha: fewer recovered bits can never accuse.

    Logarithms taken apart, so that no quotient overflows: ``tests / alpha`` is infinite
    for a tiny ``alpha`` (5e-324), its log2 is not."""
    return max(1, math.ceil(math.log2(max(tests, 1)) - math.log2(alpha) + 1e-9))


@dataclass
class Votes:
    """Per-bit vote counts of one extraction (mutable accumulator)."""

    ones: np.ndarray
    zeros: np.ndarray

    @classmethod
    def empty(cls, bits: int) -> Votes:
        return cls(np.zeros(bits, dtype=np.int64), np.zeros(bits, dtype=np.int64))

    def add(self, index: np.ndarray, bit: np.ndarray) -> None:
        if index.size == 0:
            return
        n = self.ones.size
        self.ones += np.bincount(index, weights=bit, minlength=n).astype(np.int64)
        self.zeros += np.bincount(index, weights=1 - bit, minlength=n).astype(np.int64)

    @property
    def cells(self) -> int:
        return int(self.ones.sum() + self.zeros.sum())

    def majority(self) -> tuple[np.ndarray, np.ndarray]:
        """(decided mask, majority bit) — ties and unseen bits are undecided."""
        decided = self.ones != self.zeros
        return decided, (self.ones > self.zeros).astype(np.uint8)


@dataclass(frozen=True)
class Score:
    """Agreement of the recovered bits with one codeword."""

    bits: int
    agreement: int
    p_value: float


def score(votes: Votes, word: np.ndarray) -> Score:
    """Majority vote per bit, then the exact binomial tail of the agreement."""
    return score_all(votes, word[np.newaxis, :])[0]


def score_all(votes: Votes, words: np.ndarray) -> list[Score]:
    """:func:`score` for every row of a (recipients × bits) codeword matrix."""
    decided, bit = votes.majority()
    n = int(decided.sum())
    agree = (words[:, decided] == bit[decided]).sum(axis=1)
    tails: dict[int, float] = {}
    out = []
    for k in agree.tolist():
        if k not in tails:
            tails[k] = binomial_tail(k, n)
        out.append(Score(n, k, tails[k]))
    return out
