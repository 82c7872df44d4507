"""Conservative masking of identifier-shaped digit runs, whatever their checksums say.

The recognizers report a resident ID or a bank card only when its check character
holds; a redactor must not rely on that (a mistyped ID is still a person's ID).
:func:`suspect_spans` finds every run that *looks* like a resident ID (15 digits, or 17
digits and a digit or ``X``) or a card number (16-19 digits), written plain, grouped
by separators (each gap its own) or in full-width digits; :func:`merge_spans` unites them with
the scanner's findings so that no digit of such a run is left in clear.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import regex

from desensitize.standards import SEPARATORS, compact, id_shaped

Span = tuple[int, int, str]

_D = "[0-9\uff10-\uff19]"
_SEP = "[" + regex.escape(SEPARATORS) + "]"
_ALNUM = "0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_X = "[Xx\uff38\uff58]"
# groups of three or more digits joined by single separators; the written forms end in a
# group, a lone check character (``-X``, ``-7``) or an X (a list like "1 2 3 4" is no run)
_RUN = regex.compile(
    rf"(?<![{_ALNUM}])[+\uff0b]?{_D}{{3,}}(?:{_SEP}{_D}{{3,}}){{0,6}}(?:{_SEP}?{_X}|{_SEP}{_D})?(?![{_ALNUM}])"
)


def classify_run(value: str) -> str | None:
    """``CN_RESIDENT_ID`` / ``CN_BANK_CARD`` for an ID- or card-shaped run, else None."""
    v = compact(value).lstrip("+")
    if id_shaped(v):
        return "CN_RESIDENT_ID"
    if 16 <= len(v) <= 19 and v.isascii() and v.isdigit():
        return "CN_BANK_CARD"
    return None


def suspect_spans(text: str) -> list[Span]:
    """``(start, end, entity)`` of every ID- or card-shaped run in ``text``."""
    out: list[Span] = []
    for m in _RUN.finditer(text):
        entity = classify_run(m.group())
        if entity is not None:
            start = m.start() + (1 if m.group()[0] in "+\uff0b" else 0)
            out.append((start, m.end(), entity))
    return out


def merge_spans(found: Iterable[Span], suspects: Sequence[Span]) -> list[Span]:
    """The scanner's spans plus the suspects; overlapping spans are united (the earlier
    span's entity names the union), so a partial finding never leaves digits in clear."""
    spans = sorted([*found, *suspects], key=lambda s: (s[0], -s[1]))
    out: list[Span] = []
    for start, end, entity in spans:
        if end <= start:
            continue
        if out and start < out[-1][1]:
            s0, e0, ent0 = out[-1]
            out[-1] = (s0, max(e0, end), ent0)
        else:
            out.append((start, end, entity))
    return out


def redact(text: str, found: Iterable[Span]) -> str:
    """``text`` with every span of ``found`` and every suspect run replaced by ``<ENTITY>``."""
    parts: list[str] = []
    pos = 0
    for start, end, entity in merge_spans(found, suspect_spans(text)):
        parts.append(text[pos:start])
        parts.append(f"<{entity}>")
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


__all__ = ["Span", "classify_run", "merge_spans", "redact", "suspect_spans"]
