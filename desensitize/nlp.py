"""Offline Chinese NLP for Presidio: a custom ``NlpEngine`` and jieba segmentation.

Presidio's default engine loads a spaCy model (a download); ours loads nothing.  Our
recognizers are self-contained (patterns, tables, jieba), so the engine hands Presidio
empty artifacts and the recognizers that need words call :func:`segment`, which runs
jieba with its bundled dictionary (no network) on short clauses and caches results.
Nothing happens at import time: jieba's dictionary is loaded on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine
from spacy.tokens import Doc
from spacy.vocab import Vocab

from desensitize.pos_hmm import hmm_cut, load_hmm

LANGUAGE = "zh"


@lru_cache(maxsize=1)
def _posseg() -> Any:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()

    class MemoPOSTokenizer(jieba.posseg.POSTokenizer):  # type: ignore[misc]
        """jieba's tagger with its HMM pass over runs of unknown characters memoised.

        That pass (a Viterbi over about 250 states per character) is most of the cost of
        tagging a short clause, and the same runs of Han characters recur across
        records: street and place names (经十, 舜耕), given names.  jieba calls it
        through the name-mangled ``__cut``, overridden here with a cached copy of its
        output, computed by :func:`desensitize.pos_hmm.hmm_cut` (the same search,
        vectorised)."""

        def _POSTokenizer__cut(self, sentence: str) -> Iterator[Any]:
            return iter(_hmm_cut(sentence))

    load_hmm()  # its tables with jieba's, not during the first scan that needs them
    tagger = MemoPOSTokenizer.__new__(MemoPOSTokenizer)
    tagger.__dict__.update(jieba.posseg.dt.__dict__)  # the loaded dictionary, shared
    return tagger


@lru_cache(maxsize=16384)
def _hmm_cut(run: str) -> tuple[Any, ...]:
    import jieba.posseg

    fast = hmm_cut(run)  # the same words and tags as jieba's own pass, below, only faster
    if fast is not None:
        return tuple(jieba.posseg.pair(word, tag) for word, tag in fast)
    base = jieba.posseg.POSTokenizer._POSTokenizer__cut
    return tuple(base(jieba.posseg.dt, run))


@lru_cache(maxsize=65536)
def segment(clause: str) -> tuple[tuple[str, str], ...]:
    """jieba words with part-of-speech tags (``nr`` person, ``ns`` place, ...) of a clause
    (the same as ``jieba.posseg.cut(clause)``)."""
    import jieba.posseg

    tagger = _posseg()
    if clause and jieba.posseg.re_han_internal.fullmatch(clause):
        return _cut_block(tagger, clause)
    return tuple((p.word, p.flag) for p in tagger.cut(clause, HMM=True))


def _cut_block(tagger: Any, block: str) -> tuple[tuple[str, str], ...]:
    """``jieba.posseg.cut`` of a text that is one block of Han characters, letters and
    digits (an address head, a name), in one function instead of jieba's chain of
    generators: its dictionary graph (``get_DAG``), its best route computed from the right
    with the same float sums and tie-break (``calc``: the greatest score, then the
    furthest end), and its words, runs of single characters going to the HMM pass as in
    ``POSTokenizer.__cut_DAG``."""
    from math import log

    from jieba.posseg import re_han_detail as han_run

    tagger.makesure_userdict_loaded()
    freq = tagger.tokenizer.FREQ
    tags = tagger.word_tag_tab
    n = len(block)
    logtotal = log(tagger.tokenizer.total)
    score = [0.0] * (n + 1)
    nxt = [0] * n
    for idx in range(n - 1, -1, -1):
        best, end = 0.0, -1
        i, frag = idx, block[idx]
        while i < n and frag in freq:
            f = freq[frag]
            if f:
                s = log(f) - logtotal + score[i + 1]
                if end < 0 or s > best or (s == best and i > end):
                    best, end = s, i
            i += 1
            frag = block[idx:i + 1]
        if end < 0:  # no dictionary word starts here: the character alone
            best, end = log(freq.get(block[idx]) or 1) - logtotal + score[idx + 1], idx
        score[idx], nxt[idx] = best, end + 1
    out: list[tuple[str, str]] = []

    def flush(buf: str) -> None:
        if len(buf) == 1:
            out.append((buf, tags.get(buf, "x")))
        elif not freq.get(buf):  # jieba's HMM pass (``__cut_detail``; a run all Han goes straight in)
            run = _hmm_cut(buf) if han_run.fullmatch(buf) else tagger._POSTokenizer__cut_detail(buf)
            out.extend((p.word, p.flag) for p in run)
        else:
            out.extend((ch, tags.get(ch, "x")) for ch in buf)

    buf = ""
    x = 0
    while x < n:
        y = nxt[x]
        if y - x == 1:
            buf += block[x]
        else:
            if buf:
                flush(buf)
                buf = ""
            word = block[x:y]
            out.append((word, tags.get(word, "x")))
        x = y
    if buf:
        flush(buf)
    return tuple(out)


def clear_caches() -> None:
    """Forget every cached segmentation (benchmarks start each run cold)."""
    segment.cache_clear()
    _hmm_cut.cache_clear()


def dictionary_tag(word: str) -> str | None:
    """The tag jieba's dictionary gives ``word``, or None when it is not a dictionary word."""
    tag: str | None = _posseg().word_tag_tab.get(word)
    return tag


class ChineseNlpEngine(NlpEngine):
    """A Presidio ``NlpEngine`` for ``zh`` that needs no model download.

    It returns empty artifacts (no spaCy NER runs); context is handled by
    :class:`desensitize.context.WindowContextEnhancer` on characters, and the PERSON
    recognizer segments text with jieba itself.
    """

    def __init__(self) -> None:
        self._vocab: Vocab | None = None

    def load(self) -> None:
        self._vocab = Vocab()

    def is_loaded(self) -> bool:
        return self._vocab is not None

    def _artifacts(self) -> NlpArtifacts:
        vocab = self._vocab
        if vocab is None:
            vocab = self._vocab = Vocab()
        return NlpArtifacts(
            entities=[], tokens=Doc(vocab, words=[]), tokens_indices=[],
            lemmas=[], nlp_engine=self, language=LANGUAGE, scores=[],
        )

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        return self._artifacts()

    def process_batch(
        self, texts: Iterable[str], language: str, batch_size: int = 1, n_process: int = 1,
        **kwargs: Any,
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        for text in texts:
            yield str(text), self._artifacts()

    def is_stopword(self, word: str, language: str) -> bool:
        return False

    def is_punct(self, word: str, language: str) -> bool:
        return not any(ch.isalnum() for ch in word)

    def get_supported_entities(self) -> list[str]:
        return []

    def get_supported_languages(self) -> list[str]:
        return [LANGUAGE]
