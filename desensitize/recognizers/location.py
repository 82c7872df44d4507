"""LOCATION — detailed postal addresses, not bare region names.

An address is reported when it reaches below the region level (GB/T 2260 divisions):
a road/street/lane with a door number (经十路123号), or a residential place with a
building, unit or room (阳光小区3号楼2单元501室), optionally preceded by its regions
(山东省济南市历下区).  ``济南市`` or ``历下区`` alone is not an address.  The start of a
match is trimmed at words that introduce an address (家住, 位于, 反映) so that the
span holds the address only.  Vocabulary: ``address_terms.tsv``.
"""

from __future__ import annotations

import regex
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from desensitize.recognizers._tables import context_words, mapping

ENTITY = "LOCATION"
_NUM = r"(?:[0-9０-９]+|[一二三四五六七八九十百零两]+)"


def _alt(terms: tuple[str, ...]) -> str:
    return "|".join(regex.escape(t) for t in sorted(terms, key=len, reverse=True))


class _Grammar:
    def __init__(self) -> None:
        terms = mapping("address_terms.tsv")
        self.stop_before = tuple(sorted(terms["stop_before"], key=len, reverse=True))
        self.known = frozenset(terms["known_region"])
        region = _alt(terms["region_suffix"])
        road = _alt(terms["road_suffix"])
        place = _alt(terms["place_suffix"])
        units = (
            rf"(?:[A-Za-z]?{_NUM}[A-Za-z]?(?:号楼|号院|栋|幢|座|楼)|[A-Za-z](?:座|栋|幢))?"
            rf"(?:{_NUM}(?:单元))?(?:{_NUM}(?:层|楼))?(?:{_NUM}(?:室|户|号房|房))?"
        )
        dashed = r"(?:[0-9]{1,3}-[0-9]{1,3}(?:-[0-9]{1,4})?(?:室|号)?)"
        door = rf"(?:[甲乙丙丁]?{_NUM}(?:-{_NUM})?(?:号院|号|弄))"
        name = r"[\p{Han}0-9A-Za-z]{1,12}?"
        # 1. road + door number, then optional place + units
        self.road = regex.compile(
            rf"{name}(?:{road}){door}(?:{name}(?:{place}))?(?:{units}|{dashed})?"
        )
        # 2. place + at least one unit part (the place may follow a road without door)
        self.place = regex.compile(
            rf"{name}(?:{road})?{name}(?:{place})(?:{dashed}|"
            rf"(?=[A-Za-z]?{_NUM}|[A-Za-z](?:座|栋|幢))(?:{door})?{units})"
        )
        # 3. road + building letter/number seat (惠州街B座)
        self.seat = regex.compile(rf"{name}(?:{road})[A-Za-z0-9]{{1,3}}(?:座|栋|幢|号楼)")
        self.region_tail = regex.compile(rf"(?:\p{{Han}}{{1,7}}?(?:{region}))$")
        self.region_suffix = terms["region_suffix"]


_GRAMMAR: list[_Grammar] = []


def _grammar() -> _Grammar:
    if not _GRAMMAR:
        _GRAMMAR.append(_Grammar())
    return _GRAMMAR[0]


def _trim_start(text: str, start: int, end: int, g: _Grammar) -> int:
    """Move ``start`` past the last introducing word or non-address character."""
    span = text[start:end]
    cut = 0
    for word in g.stop_before:
        idx = span.rfind(word, 0, max(0, len(span) - 3))
        if idx >= 0 and idx + len(word) > cut:
            cut = idx + len(word)
    return start + cut


def _extend_regions(text: str, start: int, g: _Grammar) -> int:
    """Extend ``start`` left over region names that directly precede it."""
    while start > 0:
        left = text[max(0, start - 12):start]
        best = None
        for known in g.known:
            if left.endswith(known):
                best = max(best or 0, len(known))
        if best:
            start -= best
            continue
        m = g.region_tail.search(left)
        if not m:
            break
        cand = m.group()
        trimmed = _trim_start(cand, 0, len(cand) + 3, g)
        cand = cand[trimmed:]
        if len(cand) < 2 or len(cand) > 8:
            break
        start -= len(cand)
    return start


def find_addresses(text: str) -> list[tuple[int, int, float]]:
    """``(start, end, score)`` of the detailed addresses in ``text``."""
    g = _grammar()
    spans: list[tuple[int, int, float]] = []
    for rx, score in ((g.road, 0.75), (g.place, 0.7), (g.seat, 0.6)):
        for m in rx.finditer(text):
            s, e = m.span()
            s = _trim_start(text, s, e, g)
            # a region suffix inside the head splits regions from the road name
            head = text[s:e]
            s2 = _extend_regions(text, s, g)
            has_region = s2 < s or any(head.startswith(k) for k in g.known)
            if e - s < 4:
                continue
            spans.append((s2, e, min(0.95, score + (0.15 if has_region else 0.0))))
    spans.sort(key=lambda x: (x[0], -(x[1] - x[0])))
    merged: list[tuple[int, int, float]] = []
    for s, e, sc in spans:
        if merged and s < merged[-1][1]:
            ps, pe, psc = merged[-1]
            merged[-1] = (ps, max(pe, e), max(psc, sc))
        else:
            merged.append((s, e, sc))
    return merged


def plausible_address(value: str) -> bool:
    """Whether most of a whole value is a detailed address (table scanner's cell check)."""
    v = value.strip()
    return any((e - s) >= 0.6 * len(v) for s, e, _ in find_addresses(v))


class ChineseAddressRecognizer(EntityRecognizer):
    """Detailed Chinese addresses (road + number, or place + building/unit/room)."""

    ENTITY = ENTITY

    def __init__(self) -> None:
        super().__init__(
            supported_entities=[ENTITY], name=type(self).__name__, supported_language="zh",
            context=context_words(ENTITY),
        )

    def load(self) -> None:
        _grammar()

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        if entities and ENTITY not in entities:
            return []
        return [
            RecognizerResult(
                entity_type=ENTITY, start=s, end=e, score=sc,
                recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                },
            )
            for s, e, sc in find_addresses(text)
        ]
