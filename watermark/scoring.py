"""How sure a detection is: one test per carrier and one combined, all exact.

Votes are kept apart by where they came from (row identity × carrier × level): after a
rounding the votes of fine levels are noise, after an edited column those of the
identities that used it are. Each vote group gets a weight from the suspect alone: the
share of agreeing pairs among votes for the same codeword bit, ``a = q² + (1 - q)²``,
gives the group's reliability ``q`` and the weight ``log(q / (1 - q))`` (0 for noise); a
pool with only a few pairs starts from a prior (``q = 0.85`` worth eight pairs), so that
a handful of pairs cannot silence a small but live carrier.

Weights are estimated per pool (one row identity and carrier kind): a single column and
level rarely has enough pairs. A statistic (one carrier kind, or all carriers) decides
every codeword bit by the weighted vote of its groups. Weights and decisions depend on the suspect only, never on
a codeword; an innocent recipient's codeword is uniform and independent of the suspect,
so its agreement with the decided bits is exactly Binomial(n, 1/2) — whatever the
weights; the test is two-sided (full disagreement is as telling as full agreement).
Each recipient's best statistic is then corrected for the number of statistics
(and, by the detector, for the number of recipients): the chance of naming any innocent
stays below ``alpha``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from watermark.codes import Votes, binomial_tail

_Q_MAX = 0.98
_PRIOR_Q = 0.85
_PRIOR_PAIRS = 8.0
_MIN_SIGN_CELLS = 20  # votes a group needs before it may be read inverted
_SIGN_Z = 4.0  # ... and how clearly (z-score) it must disagree with the rest


@dataclass(frozen=True)
class Statistic:
    """The decided bits of one test."""

    name: str
    decided: np.ndarray  # bool per codeword bit
    bits: np.ndarray  # uint8 majority bit
    cells: int
    weights: dict[str, float]  # per pool; "inverted <group>": -1 for groups read inverted

    @property
    def n(self) -> int:
        return int(self.decided.sum())


def weight(v: Votes) -> float:
    """Log-odds reliability of a vote group, estimated from pairs of votes on one bit."""
    o, z = v.ones.astype(np.float64), v.zeros.astype(np.float64)
    n = o + z
    if not v.cells:
        return 0.0
    pairs = float((n * (n - 1) / 2).sum())
    # A few pairs say little: the estimate starts from a prior of _PRIOR_PAIRS pairs
    # agreeing as marks read back at q = _PRIOR_Q would, and the pairs seen outweigh it.
    prior = _PRIOR_Q ** 2 + (1 - _PRIOR_Q) ** 2
    agree = (float((o * (o - 1) / 2 + z * (z - 1) / 2).sum()) + prior * _PRIOR_PAIRS) / \
        (pairs + _PRIOR_PAIRS)
    q = (1 + math.sqrt(max(2 * agree - 1, 0.0))) / 2
    q = min(q, _Q_MAX)
    return math.log(q / (1 - q))


def _pooled(groups: dict[str, Votes], pools: dict[str, str], signs: dict[str, int],
            bits: int) -> dict[str, float]:
    pooled: dict[str, Votes] = {}
    for label, v in groups.items():
        acc = pooled.setdefault(pools[label], Votes.empty(bits))
        ones, zeros = (v.ones, v.zeros) if signs[label] > 0 else (v.zeros, v.ones)
        acc.ones = acc.ones + ones
        acc.zeros = acc.zeros + zeros
    return {k: weight(v) for k, v in pooled.items()}


def statistic(name: str, groups: dict[str, Votes], pools: dict[str, str],
              bits: int) -> Statistic:
    """Weighted majority of the given vote groups.

    A group's weight is estimated on its pool (all groups of one row identity and carrier
    kind), which has enough pairs of votes to tell a live identity from a broken one. A
    group that votes against all the others (an edit that moved every value of a level
    by an odd amount inverts its parities) is read inverted: its sign comes from its
    agreement with the rest, a property of the suspect alone.
    """
    signs = {label: 1 for label in groups}
    weights = _pooled(groups, pools, signs, bits)

    def total() -> np.ndarray:
        out = np.zeros(bits, dtype=np.float64)
        for label, v in groups.items():
            out += signs[label] * weights[pools[label]] * (v.ones - v.zeros)
        return out

    score = total()
    flipped = False
    for label, v in groups.items():
        if v.cells < _MIN_SIGN_CELLS:
            continue
        own = signs[label] * weights[pools[label]] * (v.ones - v.zeros)
        rest = np.sign(score - own)
        agree = float(((v.ones - v.zeros) * rest).sum())
        seen = float((v.ones + v.zeros)[rest != 0].sum())
        if seen and agree < -_SIGN_Z * math.sqrt(seen):
            signs[label] = -1
            flipped = True
    if flipped:
        weights = _pooled(groups, pools, signs, bits)
        score = total()
    cells = sum(v.cells for v in groups.values())
    decided = np.abs(score) > 1e-9
    return Statistic(name, decided, (score > 0).astype(np.uint8), cells,
                     {k: round(w, 3) for k, w in weights.items()}
                     | {f"inverted {k}": -1 for k, sg in signs.items() if sg < 0})


def statistics(groups: dict[str, Votes], kinds: dict[str, str], pools: dict[str, str],
               bits: int) -> list[Statistic]:
    """One statistic per carrier kind present, plus the combined one when several are."""
    out = []
    present = sorted({kinds[g] for g, v in groups.items() if v.cells})
    for kind in present:
        out.append(statistic(kind, {g: v for g, v in groups.items() if kinds[g] == kind},
                             pools, bits))
    if len(present) > 1:
        out.append(statistic("combined", groups, pools, bits))
    return [s for s in out if s.n] or out[:1]


def agreements(stat: Statistic, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(agreement, exact two-sided p-value) of every codeword row of ``words``.

    Two-sided: a copy whose every level was shifted by an odd amount reads as the
    complement of its codeword, which is as unlikely for an innocent as full agreement.
    """
    agree = (words[:, stat.decided] == stat.bits[stat.decided]).sum(axis=1)
    tails: dict[int, float] = {}
    p = np.empty(agree.size, dtype=np.float64)
    n = stat.n
    for i, k in enumerate(agree.tolist()):
        if k not in tails:
            tails[k] = min(1.0, 2 * min(binomial_tail(k, n), binomial_tail(n - k, n)))
        p[i] = tails[k]
    return agree, p
