"""jieba's part-of-speech HMM pass, vectorised: the same words and tags, faster.

jieba tags a run of characters its dictionary does not know (经十, 舜耕, a given name)
with a Viterbi search over 256 (position, part-of-speech) states, written as Python
loops over pairs of states: about a quarter of a millisecond per character, most of the
cost of segmenting an address.  :func:`hmm_cut` runs the same search with NumPy, one
matrix step per character, and returns what ``jieba.posseg.POSTokenizer.__cut`` yields
for the run, as ``(word, tag)`` pairs.

Equality with jieba is exact, not approximate: every path score is the same sum of the
same float64 terms in the same order (``score + transition + emission``), states are
numbered in their sort order so that a tie is broken as jieba's ``max`` over
``(score, state)`` tuples breaks it (the greatest state), and the candidate states of
each step are chosen as jieba chooses them.  A step jieba would fail on (no state can
follow) is left to jieba itself.  ``tests/desensitize/test_pos_hmm.py`` compares the two.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_MIN_FLOAT = -3.14e100  # jieba's emission of a character a state never emits


class Model:
    """An HMM in jieba's tables (start, transition and emission log-probabilities by
    state, the states each character may take) as arrays over the sorted states."""

    def __init__(self, start_P: dict[Any, float], trans_P: dict[Any, dict[Any, float]],
                 emit_P: dict[Any, dict[str, float]], char_state_tab_P: dict[str, tuple[Any, ...]]) -> None:
        import numpy as np

        self.np = np
        self.states: list[Any] = sorted(trans_P)
        index = {s: i for i, s in enumerate(self.states)}
        n = len(self.states)
        self.start = np.array([start_P[s] for s in self.states], dtype=np.float64)
        self.trans = np.full((n, n), -np.inf, dtype=np.float64)  # jieba's default: MIN_INF
        self.follows = np.zeros((n, n), dtype=bool)  # y is a key of trans_P[x]
        for x, row in trans_P.items():
            for y, p in row.items():
                self.trans[index[x], index[y]] = p
                self.follows[index[x], index[y]] = True
        self.has_next = np.array([bool(trans_P[s]) for s in self.states])
        self.emit = [emit_P[s] for s in self.states]
        self.everywhere = np.ones(n, dtype=bool)
        # the states a character may take (jieba: every state for a character not listed)
        self.char_row = {c: k for k, c in enumerate(char_state_tab_P)}
        self.char_states = np.zeros((len(self.char_row), n), dtype=bool)
        for c, states in char_state_tab_P.items():
            self.char_states[self.char_row[c], [index[s] for s in states]] = True

    def allowed(self, ch: str) -> Any:
        row = self.char_row.get(ch)
        return self.everywhere if row is None else self.char_states[row]

    def emission(self, rows: Any, ch: str) -> Any:
        emit = self.emit
        return self.np.fromiter((emit[i].get(ch, _MIN_FLOAT) for i in rows.tolist()),
                                dtype=self.np.float64, count=len(rows))

    def viterbi(self, obs: str) -> list[Any] | None:
        """The state of each character on jieba's best path, or None where jieba's own
        search raises (no state of a step has a successor)."""
        np = self.np
        cur = np.flatnonzero(self.allowed(obs[0]))
        score = self.start[cur] + self.emission(cur, obs[0])
        back: list[tuple[Any, Any]] = []  # per step: (its states, best previous of each)
        for ch in obs[1:]:
            keep = self.has_next[cur]
            prev, prev_score = cur[keep], score[keep]
            if not len(prev):
                return None
            expect = self.follows[prev].any(axis=0)
            mask = self.allowed(ch) & expect
            if not mask.any():
                mask = expect  # not empty: prev is not
            nxt = np.flatnonzero(mask)
            total = (prev_score[:, None] + self.trans[np.ix_(prev, nxt)]) + self.emission(nxt, ch)[None, :]
            # the greatest previous state among equal scores: the first maximum of the
            # rows in descending state order
            pick = len(prev) - 1 - np.argmax(total[::-1], axis=0)
            score = total[pick, np.arange(len(nxt))]
            back.append((nxt, prev[pick]))
            cur = nxt
        best = len(cur) - 1 - int(np.argmax(score[::-1]))
        state = int(cur[best])
        path = [state]
        for states, prevs in reversed(back):
            state = int(prevs[int(np.searchsorted(states, state))])
            path.append(state)
        path.reverse()
        return [self.states[i] for i in path]


@lru_cache(maxsize=1)
def _model() -> Model:
    from jieba.posseg import char_state_tab_P, emit_P, start_P, trans_P

    return Model(start_P, trans_P, emit_P, char_state_tab_P)


def load_hmm() -> None:
    """Build the arrays (about 15 ms, once per process)."""
    _model()


def hmm_cut(run: str, model: Model | None = None) -> tuple[tuple[str, str], ...] | None:
    """``(word, tag)`` of a run of Han characters as jieba's HMM pass cuts it
    (``POSTokenizer.__cut``), or None where jieba's search itself must answer
    (``model``: jieba's own unless given)."""
    if not run:
        return ()
    pos_list = (model or _model()).viterbi(run)
    if pos_list is None:
        return None
    out: list[tuple[str, str]] = []
    begin = nexti = 0
    for i, char in enumerate(run):
        pos = pos_list[i][0]
        if pos == "B":
            begin = i
        elif pos == "E":
            out.append((run[begin:i + 1], pos_list[i][1]))
            nexti = i + 1
        elif pos == "S":
            out.append((char, pos_list[i][1]))
            nexti = i + 1
    if nexti < len(run):
        out.append((run[nexti:], pos_list[nexti][1]))
    return tuple(out)
