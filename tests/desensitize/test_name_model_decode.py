"""The name model's pruned, bucketed Viterbi must give the paths of the full Viterbi."""

from __future__ import annotations

import numpy as np

from desensitize.name_model import tagger


def _full_viterbi(logits: np.ndarray, trans: np.ndarray) -> list[int]:
    dp = logits[0].copy()
    back = []
    for t in range(1, len(logits)):
        scores = dp[:, None] + trans
        best = scores.argmax(axis=0)
        back.append(best)
        dp = scores[best, np.arange(len(dp))] + logits[t]
    path = [int(dp.argmax())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    return path[::-1]


def test_pruned_viterbi_equals_the_full_one_on_peaked_flat_and_tied_scores() -> None:
    """Peaked scores (the usual case: one or two previous tags weighed), flat ones (every
    tag within the transitions' range: the full step), exact ties (lowest tag wins) and
    rows of different lengths in one batch."""
    lac = tagger()
    trans = lac._transitions
    n = trans.shape[0]
    rng = np.random.default_rng(12)
    rows = []
    for k in range(120):
        length = int(rng.integers(1, 40))
        kind = k % 4
        if kind == 0:
            x = rng.normal(0, 4, (length, n))
        elif kind == 1:
            x = rng.normal(0, 0.05, (length, n))
        elif kind == 2:
            x = np.round(rng.normal(0, 2, (length, n)))  # many exact ties
        else:
            x = np.zeros((length, n))
            x[np.arange(length), rng.integers(0, n, length)] = 3.0
            x[np.arange(length), rng.integers(0, n, length)] += 2.9  # a close second
        rows.append(x.astype(np.float32))
    width = max(len(r) for r in rows)
    padded = np.zeros((len(rows), width, n), dtype=np.float32)
    for i, r in enumerate(rows):
        padded[i, :len(r)] = r
    want = [_full_viterbi(r, trans) for r in rows]
    assert lac._decode(padded, [len(r) for r in rows]) == want
    ranked = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # as the tagger sends them
    assert lac._decode(padded[ranked], [len(rows[i]) for i in ranked]) == [want[i] for i in ranked]
    for lo in range(0, 20, 5):  # small batches take the full step
        part = rows[lo:lo + 5]
        assert lac._decode(padded[lo:lo + 5, :max(map(len, part))], [len(r) for r in part]) == want[lo:lo + 5]


def test_tagging_many_clauses_equals_tagging_each_alone() -> None:
    clauses = ["联系不上张丹，电话一直无人接听。", "司长魏小安摇头苦笑", "王德泉心里很不服气",
               "，来电人姓名邓斌，来电内容：山东省济南市槐荫区银座花园20号楼4单", "陈晨的邮箱是", "请"]
    together = tagger().words_many(clauses * 3)
    assert together == [tagger().words(c) for c in clauses] * 3
