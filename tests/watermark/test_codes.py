from __future__ import annotations

import math
from fractions import Fraction
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watermark.codes import Votes, binomial_tail, bits_needed, score
from watermark.hashing import codeword, codeword_from_hex, codeword_hex


def _brute_tail(k: int, n: int) -> Fraction:
    hits = sum(1 for bits in product((0, 1), repeat=n) if sum(bits) >= k)
    return Fraction(hits, 2 ** n)


@pytest.mark.parametrize("n", range(11))
def test_binomial_tail_matches_enumeration(n: int) -> None:
    for k in range(-1, n + 2):
        assert binomial_tail(k, n) == pytest.approx(float(_brute_tail(k, n)), rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 1000), st.data())
def test_binomial_tail_is_a_decreasing_probability_without_overflow(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    p = binomial_tail(k, n)
    assert 0.0 <= p <= 1.0
    assert binomial_tail(k + 1, n) <= p
    assert binomial_tail(n, n) == pytest.approx(2.0 ** -n, rel=1e-12)


@pytest.mark.parametrize("tests,alpha", [(1, 1e-6), (1000, 1e-6), (10, 1e-3), (1, 0.5)])
def test_bits_needed_is_the_smallest_sufficient_count(tests: int, alpha: float) -> None:
    n = bits_needed(tests, alpha)
    assert 2.0 ** -n * tests < alpha
    assert 2.0 ** -(n - 1) * tests >= alpha or n == 1


def test_codewords_are_keyed_deterministic_and_long() -> None:
    a = codeword(b"k1", "alice", 256)
    assert a.shape == (256,) and set(np.unique(a)) <= {0, 1}
    assert np.array_equal(a, codeword(b"k1", "alice", 256))
    assert not np.array_equal(a, codeword(b"k2", "alice", 256))
    assert not np.array_equal(a, codeword(b"k1", "bob", 256))
    assert np.array_equal(codeword_from_hex(codeword_hex(a), 256), a)
    assert codeword(b"k1", "alice", 1000)[:256].tolist() == a.tolist()


def test_codeword_bits_are_balanced_over_many_recipients() -> None:
    words = np.stack([codeword(b"k", f"r{i}", 256) for i in range(400)])
    share = words.mean()
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / words.size)


def test_majority_vote_and_score() -> None:
    v = Votes.empty(8)
    v.add(np.array([0, 0, 0, 1, 1, 2]), np.array([1, 1, 0, 0, 1, 0]))
    decided, bit = v.majority()
    assert decided.tolist() == [True, False, True] + [False] * 5
    assert bit[0] == 1 and bit[2] == 0
    s = score(v, np.array([1, 0, 0, 0, 0, 0, 0, 0], dtype=np.uint8))
    assert (s.bits, s.agreement) == (2, 2)
    assert s.p_value == pytest.approx(0.25)
