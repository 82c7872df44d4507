"""Cheap candidate finding for person names: which clauses can hold a name at all.

The name model (:mod:`desensitize.name_model`) costs far more per character than the
regular expressions, so it only sees the clauses where a name can be:

* a surname from the table (``surnames.txt``, ``surnames_compound.txt``) followed by a
  Han character, where the surname and the next character(s) are not an everyday word
  (全市, 安全, 高质量, 王府井 — looked up in jieba's bundled dictionary), or
* a cue that announces a person (姓名, 联系人, 先生, 女士, 同志, 说 ... from
  ``person_cues.tsv``) or a transliterated name with a middle dot (买买提·艾力), or
* a run of two or more characters typical of transliterated names (希拉克, 斯卡尔法罗:
  ``FOREIGN``) that is not a common word.

Government prose is mostly words: a typical policy paragraph leaves few clauses to tag.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import importlib.util
import logging
import marshal
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import regex

# the tables' reader, not the recognizers package: finding no candidate must not load
# Presidio (a free text without one is redacted without it)
from desensitize.datafiles import mapping, words
from desensitize.errors import RecognizerDataError

_HAN_RUN = regex.compile(r"\p{Han}+")
_HAN_CHAR = regex.compile(r"\p{Han}")
_DOTS = "·•・"
_CLAUSE = regex.compile(r"[^。！？；;!?\n\r]+[。！？；;!?]?")
_MAX_CLAUSE = 200
_NAME_TAGS = frozenset({"nr", "nrfg", "nrt"})
# words whose frequency in jieba's dictionary makes "surname + next characters" an
# ordinary word rather than a name (张贴 1000+, 高效 1000+; a rare name-like word such as
# 张丹 has frequency 0)
_WORD_FREQ = 30
# last characters of words jieba tags as names that are not (智能化, 安全性)
_KNOWN_NAME_TAGS = frozenset({"nr", "nrt", "nrfg", "nz", "t"})
_NOT_LAST = frozenset("化性率度区市县省局会部")
# surnames that are mostly function words; a name with them starts a clause or follows a cue
FUNCTION_SURNAMES = frozenset("和于向从有能后单党在是以及与为把被将对")
_COMMON_TAGS = frozenset({"n", "vn", "v", "a", "ad", "an", "d", "vd"})
# characters typical of transliterated foreign names (奥尔布赖特, 希丁克, 马尔蒂尼)
FOREIGN = frozenset("斯尔克特维尼奇普拉德里诺夫托基亚科罗卡森伊娃莎丝妮蒂布赖丁希姆顿逊曼伦纳契洛索杰"
                    "埃莫萨吉奥乌贝戈赫霍库卢鲁迈佩乔塞沙舍什泰汤图瓦威沃谢耶约扎兹迪弗阿艾")
# a plain character class: the standard library's engine scans it faster than ``regex``
_FOREIGN_RUN = re.compile(f"[{re.escape(''.join(sorted(FOREIGN)))}]{{2,}}")
_SPEAKING = ("说", "表示", "指出", "认为", "介绍", "强调", "告诉", "透露", "回忆", "坦言", "笑道", "问")


# The tables are derived from jieba's dictionary once per dictionary and kept (marshal,
# ~3 MB) in the user's cache folder: reading the 349,000-line file costs every process
# that clears a free text about 0.3 s (each ``quanguard audit ingest``), the kept copy
# ~0.05 s. Derived data only: a missing, unreadable, damaged or stale copy is rebuilt from
# the dictionary (the file is named by the SHA-256 of the dictionary and of what the
# derivation depends on, and holds the SHA-256 of its own payload). The folder is trusted
# as Python trusts its ``__pycache__``: whoever can write it can write the code as well.
_TABLES_VERSION = 1


def cache_dir() -> Path | None:
    """Where derived tables are kept: ``QUANGUARD_CACHE_DIR`` (empty: nowhere), else
    ``$XDG_CACHE_HOME/quanguard``, else ``~/.cache/quanguard``."""
    configured = os.environ.get("QUANGUARD_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or ""
    try:
        return (Path(base) if base.strip() else Path.home() / ".cache") / "quanguard"
    except RuntimeError:  # no home folder to resolve
        return None


def _jieba_dictionary() -> Path:
    spec = importlib.util.find_spec("jieba")
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not folders:
        raise RecognizerDataError("jieba's dictionary cannot be read (the jieba package is "
                                  "not installed)")
    return Path(folders[0]) / "dict.txt"


@lru_cache(maxsize=1)
def finder_tables() -> tuple[dict[str, int], dict[str, str]]:
    """The words of jieba's bundled dictionary the finder can tell apart from an unknown
    word: their frequencies when at least ``_WORD_FREQ`` (a rarer word counts as none in
    every test here), their tags when the frequency is, or when a three-character word is
    tagged as a name (:meth:`CandidateFinder._surname_at` asks that of any frequency).

    Read from jieba's dictionary file as jieba reads it (a word listed twice: its last
    line), without loading jieba: its tokenizer and tagger (a second or more of start-up
    and a hundred MB) are only needed once a clause goes to the model. Kept in
    :func:`cache_dir` for the next process.

    Raises RecognizerDataError when jieba or its dictionary is missing."""
    return tables_of(_jieba_dictionary(), cache_dir())


def tables_of(path: Path, cache: Path | None) -> tuple[dict[str, int], dict[str, str]]:
    """:func:`finder_tables` of the dictionary file ``path``, kept in ``cache`` (None: not kept)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecognizerDataError(f"jieba's dictionary cannot be read ({exc})") from exc
    # the dictionary and everything the derivation depends on name the kept copy
    digest = hashlib.sha256(raw + repr(
        (_TABLES_VERSION, _WORD_FREQ, sorted(_KNOWN_NAME_TAGS))).encode()).hexdigest()
    kept = None
    if cache is not None:
        kept = cache / f"name-finder-{digest[:32]}.marshal"
        tables = _read_kept(kept)
        if tables is not None:
            return tables
    tables = _derive(raw.decode("utf-8"))
    if kept is not None:
        _keep_tables(kept, tables)
    return tables


def _read_kept(path: Path) -> tuple[dict[str, int], dict[str, str]] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    payload = data[32:]
    if len(data) < 32 or hashlib.sha256(payload).digest() != data[:32]:
        return None  # damaged or cut short: rebuilt
    try:
        freq, tags = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if type(freq) is not dict or type(tags) is not dict:
        return None
    return freq, tags


def _keep_tables(path: Path, tables: tuple[dict[str, int], dict[str, str]]) -> None:
    """Write the tables beside their readers, whole or not at all (a rename); a folder that
    cannot be written only costs the next process the derivation."""
    payload = marshal.dumps(tables)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        for old in path.parent.glob("name-finder-*.marshal"):  # an older dictionary's
            if old.name != path.name:
                with contextlib.suppress(OSError):
                    old.unlink()
    except OSError:
        logging.getLogger(__name__).debug("name finder tables not kept in %s", path.parent)


def _derive(text: str) -> tuple[dict[str, int], dict[str, str]]:
    last: dict[str, str] = {}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word:
            last[word] = rest
    del text
    freq: dict[str, int] = {}
    tags: dict[str, str] = {}
    for word, rest in last.items():
        count, _, tag = rest.partition(" ")
        try:
            f = int(count)
        except ValueError as exc:
            raise RecognizerDataError(f"jieba's dictionary: bad entry {word!r} {rest!r}") from exc
        if f >= _WORD_FREQ:
            freq[word] = f
            tags[word] = tag
        elif len(word) == 3 and tag in _KNOWN_NAME_TAGS:
            tags[word] = tag
    return freq, tags


@lru_cache(maxsize=1)
def _dictionary() -> tuple[dict[str, int], dict[str, str]]:
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    tags: dict[str, str] = jieba.posseg.dt.word_tag_tab
    return jieba.dt.FREQ, tags


class CandidateFinder:
    """Clauses of a text and whether each may hold a name (see module docstring)."""

    def __init__(self) -> None:
        self.single = words("surnames.txt")
        self.compound = words("surnames_compound.txt")
        cues = mapping("person_cues.tsv")
        cue_words = set(cues.get("before_strong", ())) | {
            w for w in cues.get("after_strong", ()) if len(w) > 1} | set(_SPEAKING)
        # cue words by first character, longest first, and the dots that join the parts of
        # a transliterated name (a dot no cue starts with is a cue of its own)
        self._cues: dict[str, tuple[str, ...]] = {}
        for w in sorted(cue_words, key=len, reverse=True):
            self._cues[w[0]] = (*self._cues.get(w[0], ()), w)
        for dot in _DOTS:
            self._cues.setdefault(dot, (dot,))
        # their alternation, longest first: it finds the leftmost-longest, non-overlapping
        # cues; the standard library's engine skips a branch on its first character
        self._cue_rx = re.compile("|".join(re.escape(w) for ws in self._cues.values() for w in ws))
        # characters that may start a name: a surname or the first of a compound one
        self._starts = frozenset(self.single | {c[0] for c in self.compound})
        self._start_rx = re.compile(f"[{re.escape(''.join(sorted(c for c in self._starts if len(c) == 1)))}]")
        self.freq, self.tags = finder_tables()
        self._memo: dict[tuple[str, bool, bool], bool] = {}

    def clauses(self, text: str) -> Iterator[tuple[int, str]]:
        """``(offset, clause)``: sentences, long ones cut at commas (at most 200 chars)."""
        for m in _CLAUSE.finditer(text):
            start, piece = m.start(), m.group()
            while len(piece) > _MAX_CLAUSE:
                cut = max(piece.rfind(c, 0, _MAX_CLAUSE) for c in "，,、：:")
                cut = cut + 1 if cut > 20 else _MAX_CLAUSE
                yield start, piece[:cut]
                start, piece = start + cut, piece[cut:]
            if piece.strip():
                yield start, piece

    def _ordinary(self, word: str, cued: bool = False) -> bool:
        f = self.freq.get(word)
        if not f or f < _WORD_FREQ:
            return False
        tag = self.tags.get(word)
        if len(word) == 3 and tag in _KNOWN_NAME_TAGS and word[-1] not in _NOT_LAST:
            return False  # 温家宝, 马克思, 刘彦彬: the dictionary knows a name
        # 智慧, 养老, 荣获: jieba's dictionary tags them nr, but they are everyday words;
        # next to a cue (李鹏说, 朱德同志) such a word is taken for the name it also is
        return tag not in _NAME_TAGS or (f >= 500 and not cued)

    def surname_at(self, text: str, i: int, *, cued: bool = False) -> bool:
        """Whether a name may start at ``i`` (a surname not glued into a common word).

        The answer depends on ``text[i - 1:i + 4]`` only; it is memoised on that."""
        key = (text[i - 1:i + 4] if i > 0 else text[i:i + 4], i > 0, cued)
        known = self._memo.get(key)
        if known is None:
            if len(self._memo) > 200_000:
                self._memo.clear()
            known = self._memo[key] = self._surname_at(text, i, cued)
        return known

    def clear_memo(self) -> None:
        self._memo.clear()

    def _surname_at(self, text: str, i: int, cued: bool) -> bool:
        ch = text[i]
        if text[i:i + 2] in self.compound:
            return not self._ordinary(text[i:i + 3]) and not self._ordinary(text[i:i + 4])
        if ch not in self.single:
            return False
        if i > 0:
            prev = text[i - 1]
            if ch in FUNCTION_SURNAMES and "\u4e00" <= prev <= "\u9fff":
                return False  # 和, 于, 向 ... inside a sentence: the function word
            if prev.isdigit() and ch in "年月日号":
                return False  # 2024年年底
        word = text[i:i + 3]
        if len(word) == 3 and self.tags.get(word) in _KNOWN_NAME_TAGS and word[-1] not in _NOT_LAST:
            return True  # 温家宝 (温家 is a word), 刘彦彬: the dictionary knows a name
        if self._ordinary(text[i:i + 2], cued) or self._ordinary(word, cued):
            return False
        if i > 0 and "\u4e00" <= text[i - 1] <= "\u9fff":
            # 营商环境, 全覆盖: mid-sentence, the "given name" is a frequent common word
            nxt = text[i + 1:i + 3]
            if self.freq.get(nxt, 0) >= 1000 and self.tags.get(nxt) in _COMMON_TAGS:
                return False
        return not (i > 0 and self._ordinary(text[i - 1:i + 1]))

    def _foreign(self, run: str) -> bool:
        """A transliteration run that is not a common word (克拉 is, 希拉克 is not)."""
        return not (len(run) == 2 and self.freq.get(run, 0) >= _WORD_FREQ)

    def _cue_point(self, clause: str, start: int, end: int) -> int | None:
        """Where a name may sit next to the cue ``clause[start:end]``: right after it (市民|高峰,
        申请人：|马晓东) or right before it (高峰|反映, 江|主席), judged without the cue's own characters as left
        context (申请人马晓东: 人马 is a word, but not here)."""
        if end < len(clause) and clause[end] in " \t:：":
            end += 1
        one = start - 1  # a surname alone before a title (江|主席)
        if one >= 0 and clause[one] in self.single and clause[one] not in FUNCTION_SURNAMES \
                and not self._ordinary(clause[max(0, one - 1):one + 1]):
            return one
        for p in (end, start - 2, start - 3, start - 4):
            if 0 <= p < len(clause) - 1 and (clause[p] in self.single or clause[p:p + 2] in self.compound) \
                    and (p >= end or _HAN_RUN.fullmatch(clause, p, start)) \
                    and self.surname_at(clause[p:], 0, cued=True):
                # (a name right before the cue is Han up to it: 工单】来电 holds none)
                return p
        return None

    def points(self, clause: str) -> list[tuple[int, bool]]:
        """``(position, wide)`` of every place in ``clause`` where a name may start;
        ``wide`` for transliterations, which reach further both ways."""
        out: list[tuple[int, bool]] = []
        memo = self._memo  # surname_at's memo, read here without a call per surname
        # a surname character (not the last) followed by a Han character (CJK's main
        # block checked by range, the rest of the Han script by the pattern)
        for m in self._start_rx.finditer(clause, 0, len(clause) - 1):
            i = m.start()
            nxt = clause[i + 1]
            if not ("\u4e00" <= nxt <= "\u9fef" or _HAN_CHAR.match(nxt)):
                continue
            known = memo.get((clause[i - 1:i + 4], True, False) if i else (clause[:4], False, False))
            if known if known is not None else self.surname_at(clause, i):
                out.append((i, False))
        out += [(m.start(), True) for m in _FOREIGN_RUN.finditer(clause) if self._foreign(m.group())]
        for m in self._cue_rx.finditer(clause):
            i, end = m.span()
            if m.group() in _DOTS:
                out.append((i, True))
            else:
                p = self._cue_point(clause, i, end)
                if p is not None:
                    out.append((p, False))
        return out

    def worth_tagging(self, clause: str) -> bool:
        """Whether the clause may hold a name (the cheap test before the model)."""
        return bool(self.points(clause))


@lru_cache(maxsize=1)
def finder() -> CandidateFinder:
    return CandidateFinder()


def dictionary() -> tuple[dict[str, int], dict[str, Any]]:
    """jieba's word frequencies and part-of-speech tags (loaded once)."""
    return _dictionary()


def name_windows(text: str, *, before: int = 5, after: int = 8,
                 skip: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Merged ``(start, end)`` windows of ``text`` around every place a name can start
    (see :class:`CandidateFinder`), cut at clause ends: all the name model needs to see.

    ``skip``: sorted, non-overlapping spans already taken by another entity (a detailed
    address: 解放路, 章丘区, 泉景花园 start with surnames); a place inside one is no
    place a name starts."""
    find = finder()
    skip_starts = [s for s, _ in skip]

    def taken(pos: int) -> bool:
        i = bisect.bisect_right(skip_starts, pos) - 1
        return i >= 0 and pos < skip[i][1]

    out: list[tuple[int, int]] = []
    for off, clause in find.clauses(text):
        points = find.points(clause)
        if skip:
            points = [(p, w) for p, w in points if not taken(off + p)]
        wide = {p for p, w in points if w}
        for p in sorted(p for p, _ in points):
            lo, hi = (p - 14, p + 14) if p in wide else (p - before, p + after)
            s, e = off + max(0, lo), off + min(len(clause), hi)
            if out and s <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
    return out
