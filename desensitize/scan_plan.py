"""Cheap candidate finding for the text scanner: where each entity family can occur.

``plan(text, entities)`` returns ``[(entities, windows)]``: for each family the merged
``(start, end)`` windows of ``text`` worth analysing.

* PERSON: around a surname that starts no common word, or a cue with a surname
  character near it (:func:`desensitize.name_candidates.name_windows`), except inside
  the addresses already found (the scanner analyses LOCATION first);
* LOCATION: before and after a door, building, unit or room number (12号, 3栋, 501室,
  B座), which every detailed address has;
* the structured entities (IDs, cards, phones, plates, passports, e-mail, IP): around
  runs of Latin letters and digits (half- or full-width), with the 16 characters before
  them that hold context words.

Windows that cover most of the text are replaced by the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from desensitize.name_candidates import name_windows

# plain character classes: the standard library's engine scans them about twice as fast
_ALNUM_CLASS = "0-9A-Za-z０-９Ａ-Ｚａ-ｚ@＠"
_BEFORE, _AFTER = 16, 6  # context characters a structured window keeps around its run
# runs whose windows meet (at most _BEFORE + _AFTER other characters between them), as
# one match: the merged window of the cluster is its span widened by the margins
_ALNUM_CLUSTER = re.compile(rf"[{_ALNUM_CLASS}]+(?:[^{_ALNUM_CLASS}]{{1,{_BEFORE + _AFTER}}}[{_ALNUM_CLASS}]+)*")
_NUM = r"(?:[0-9０-９]+|[一二三四五六七八九十百零两]+)"
# (the lookahead, the first characters of the three branches, spares the engine trying
# each branch at every other character)
_ADDRESS_ANCHOR = re.compile(
    rf"(?=[0-9０-９一二三四五六七八九十百零两A-Za-z路街巷道村小大公花])"
    rf"(?:{_NUM}(?:号|栋|幢|座|单元|层|楼|室|户|弄|院)|[A-Za-z](?:座|栋|幢|区)|(?:路|街|巷|道|村|小区|大厦|公寓|花园){_NUM})")
_WHOLE = 0.7


def _merge(spans: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        s, e = max(0, s), min(n, e)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif e > s:
            out.append((s, e))
    return out


def _or_whole(spans: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    covered = sum(e - s for s, e in spans)
    return [(0, n)] if n and covered >= _WHOLE * n else spans


def person_windows(text: str, taken: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """PERSON windows of ``text``; ``taken``: sorted spans of addresses found already."""
    return _or_whole(name_windows(text, skip=taken), len(text))


def location_windows(text: str) -> list[tuple[int, int]]:
    """LOCATION windows of ``text``."""
    spans = [(m.start() - 40, m.end() + 24) for m in _ADDRESS_ANCHOR.finditer(text)]
    return _or_whole(_merge(spans, len(text)), len(text))


def structured_windows(text: str) -> list[tuple[int, int]]:
    """Windows of ``text`` for the structured entities: each run of Latin letters and
    digits with the ``_BEFORE`` characters before it and the ``_AFTER`` after it, merged
    where they meet (the same windows as :func:`_merge` of the runs' windows)."""
    n = len(text)
    spans = [(max(0, m.start() - _BEFORE), min(n, m.end() + _AFTER)) for m in _ALNUM_CLUSTER.finditer(text)]
    return _or_whole(spans, n)


def plan(text: str, entities: Sequence[str],
         taken: Sequence[tuple[int, int]] = ()) -> list[tuple[tuple[str, ...], list[tuple[int, int]]]]:
    """The families of ``entities`` and the windows of ``text`` to analyse for each
    (``taken``: see :func:`person_windows`)."""
    out: list[tuple[tuple[str, ...], list[tuple[int, int]]]] = []
    if "PERSON" in entities:
        out.append((("PERSON",), person_windows(text, taken)))
    if "LOCATION" in entities:
        out.append((("LOCATION",), location_windows(text)))
    rest = tuple(e for e in entities if e not in ("PERSON", "LOCATION"))
    if rest:
        out.append((rest, structured_windows(text)))
    return [(ents, windows) for ents, windows in out if windows]
