"""LOCATION — detailed postal addresses, not bare region names.

An address is reported when it reaches below the region level (GB/T 2260 divisions):
a road/street/lane with a door number (经十路123号), or a residential place with a
building, unit or room (阳光小区3号楼2单元501室), optionally preceded by its regions
(山东省济南市历下区).  ``济南市`` or ``历下区`` alone is not an address.  The start of a
match is trimmed at words that introduce an address (家住, 位于, 反映) so that the
span holds the address only.  Vocabulary: ``address_terms.tsv``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from desensitize.nlp import segment
from desensitize.recognizers._base import ChineseEntityRecognizer
from desensitize.recognizers._tables import mapping

ENTITY = "LOCATION"
_NUM = r"(?:[0-9０-９]+|[一二三四五六七八九十百零两]+)"


def _alt(terms: tuple[str, ...]) -> str:
    return "|".join(regex.escape(t) for t in sorted(terms, key=len, reverse=True))


class _Grammar:
    def __init__(self) -> None:
        terms = mapping("address_terms.tsv")
        stops = terms["stop_before"]
        self.stop_multi = tuple(sorted((w for w in stops if len(w) > 1), key=len, reverse=True))
        self.stop_single = frozenset(w for w in stops if len(w) == 1)
        self.known = frozenset(terms["known_region"])
        self.known_head = regex.compile(_alt(tuple(self.known)))  # longest first
        self.known_tail = regex.compile(rf"(?:{_alt(tuple(self.known))})$")
        region = _alt(terms["region_suffix"])
        road = _alt(terms["road_suffix"])
        place = _alt(terms["place_suffix"])
        lou = r"楼(?![下上前后道里顶对旁边门口])"  # 楼 of a building, not 楼下, 楼上, 楼道, ...
        bld = rf"(?:[A-Za-z]?{_NUM}[A-Za-z]?(?:号{lou}|栋|幢|座|号院)|[A-Za-z](?:座|栋|幢))"
        unit = rf"(?:{_NUM}单元)"
        floor = rf"(?:{_NUM}(?:层|楼)(?![0-9]))"
        room = rf"(?:[A-Za-z]?{_NUM}(?:室|户|号房|房))"
        tail = rf"(?:{bld})?(?:{unit})?(?:{floor})?(?:{room})?"
        needed = rf"(?:{bld}{unit}?{floor}?{room}?|{unit}{floor}?{room}?|{room})"
        dashed = r"(?:[0-9]{1,3}-[0-9]{1,3}(?:-[0-9]{1,4})?(?:室|号)?)"
        door = rf"(?:[甲乙丙丁]?{_NUM}(?:-{_NUM})?(?:号院|号(?!院|{lou})|弄))"
        name = r"(?:(?![的了，,。])[\p{Han}0-9A-Za-z]){1,12}?"
        pname = r"(?:(?![的了])[\p{Han}A-Za-z]){2,10}?"
        ahead = rf"(?=[A-Za-z]?{_NUM}[A-Za-z]?(?:号楼|栋|幢|座|单元|室)|[A-Za-z](?:座|栋|幢))"
        # every pattern needs a number, a letter or 甲乙丙丁 right after its road or place
        # suffix: those suffix hits are found first, and a pattern is tried only at the
        # positions before a hit where its match can start (``reach``: its longest prefix)
        after = r"(?=[甲乙丙丁0-9０-９A-Za-z一二三四五六七八九十百零两])"
        road_hit = regex.compile(rf"(?:{road}){after}")
        place_hit = regex.compile(rf"(?:{place}){after}")
        seat = rf"[A-Za-z0-9]{{1,3}}(?:座|栋|幢|号{lou})"
        seat_hit = regex.compile(rf"(?:{road})(?={seat})")  # what pattern 4 needs after its road
        road_len = max(map(len, terms["road_suffix"]))
        self.patterns: tuple[tuple[regex.Pattern[str], float, regex.Pattern[str] | None, int], ...] = (
            # 1. road + door number, then an optional named place and its units
            (regex.compile(rf"{name}(?P<anchor>{road}){door}(?:{pname}(?:{place})?{ahead})?(?:{dashed}|{tail})"),
             0.75, road_hit, 12),
            # 2. a residential place + door or units (阳光小区3号楼2单元501室, 东山村12号)
            (regex.compile(rf"{name}(?:{road})?{name}(?P<anchor>{place})(?:{dashed}|{door}{tail}|{needed})"),
             0.7, place_hit, 24 + road_len),
            # 3. any named building with building + unit/room (龙奥金座24号楼1单元301室)
            (regex.compile(rf"{pname}(?P<anchor>{bld})(?:{unit}{floor}?{room}?|{room})"), 0.65, None, 0),
            # 4. road + lettered seat (惠州街B座)
            (regex.compile(rf"{name}(?P<anchor>{road}){seat}"), 0.6, seat_hit, 12),
        )
        self.loose = regex.compile(
            rf"(?:\p{{Han}}{{1,8}}?(?:{region}))+(?:\p{{Han}}{{1,10}}?(?:{road}|{place}|社区|街道))+"
            rf"(?:[A-Za-z0-9一二三四五六七八九十甲乙丙丁号楼栋幢座单元层室户院弄\-]*)"
        )
        self.region_tail = regex.compile(rf"(?:\p{{Han}}{{1,7}}?(?:{region}))$")
        self.region_head = regex.compile(rf"\p{{Han}}{{1,7}}?(?:{region})")


_GRAMMAR: list[_Grammar] = []


def _grammar() -> _Grammar:
    if not _GRAMMAR:
        _GRAMMAR.append(_Grammar())
    return _GRAMMAR[0]


def _trim_start(text: str, start: int, end: int, g: _Grammar) -> int:
    """Move ``start`` past the last word that introduces the address (家住, 反映, 住在 …).

    A one-character introducer (住, 在, 于, 和 …) cuts only when a region name follows
    it, since the same characters occur inside road names (和平路, 向阳路)."""
    span = text[start:end]
    limit = max(0, len(span) - 3)
    cut = 0
    for word in g.stop_multi:
        idx = span.rfind(word, 0, limit)
        if idx >= 0 and idx + len(word) > cut:
            cut = idx + len(word)
    for i in range(cut, min(limit, 12)):
        if span[i] in g.stop_single:
            rest = span[i + 1:]
            if g.known_head.match(rest) or g.region_head.match(rest[:9]):
                cut = i + 1
    return start + cut


_REGION_CHARS = "省市区县旗镇乡"
_BARE_SUFFIX = frozenset({"街道", "镇", "乡", "区", "市", "县", "省", "社区", "村"})
_ROAD_CHARS = frozenset({"路", "街", "大街", "大道"})
_NAME_TAGS = frozenset({"ns", "m", "nz", "j", "g", "ng", "nr"})
_STOP_TAGS = frozenset({"v", "p", "c", "u", "d", "r", "uj", "ul", "ad", "vn", "a", "q", "f", "x", "y", "e", "o"})


def _tokens(head: str) -> list[str]:
    """jieba words of ``head``, split after inner region characters (区泉景 -> 区|泉景)."""
    out: list[str] = []
    for word, _tag in segment(head):
        buf = ""
        for i, ch in enumerate(word):
            buf += ch
            if ch in _REGION_CHARS and 0 < i < len(word) - 1:
                out.append(buf)
                buf = ""
        if buf:
            out.append(buf)
    return out


def _is_region(tok: str, g: _Grammar) -> bool:
    return tok in g.known or (len(tok) >= 2 and tok[-1] in _REGION_CHARS) or tok.endswith("街道")


def _name_start(text: str, start: int, anchor: int, g: _Grammar) -> int:
    """Start of the proper name before a road/place suffix at ``anchor``: the words right
    before it (at least two characters, at most eight), then region words only."""
    lo = max(start, anchor - 16)
    head = text[lo:anchor]
    if not head:
        return anchor
    toks = _tokens(head)
    tags = dict(segment(head))
    pos = len(head)
    name_len = 0
    seen_region = False
    pull = 0  # a bare suffix token (街道, 区) pulls in the name before it
    for tok in reversed(toks):
        if pull:
            pull -= 1 if tok not in _ROAD_CHARS else 0
        elif tok in _BARE_SUFFIX:
            seen_region = True
            pull = 1
        elif _is_region(tok, g):
            seen_region = True
        elif seen_region:
            break
        else:
            if name_len >= 2 and (tags.get(tok) in _STOP_TAGS or tok in g.stop_single
                                   or tok.endswith(g.stop_multi)):
                break
            if name_len + len(tok) > 8:
                break
            if name_len >= 2 and len(tok) > 1 and tags.get(tok) not in _NAME_TAGS:
                break
            name_len += len(tok)
        pos -= len(tok)
    return lo + pos


def _extend_regions(text: str, start: int, g: _Grammar) -> int:
    """Extend ``start`` left over region names that directly precede it."""
    while start > 0:
        left = text[max(0, start - 12):start]
        m = g.known_tail.search(left)  # the leftmost start ending there: the longest
        best = len(m.group()) if m else 0
        if best:
            start -= best
            continue
        m = g.region_tail.search(left)
        if not m:
            break
        cand = m.group()
        cand = cand[_trim_start(cand + "路1号", 0, len(cand) + 3, g):]
        if len(cand) < 2 or len(cand) > 8:
            break
        start -= len(cand)
    return start


def _snap_to_region(text: str, start: int, g: _Grammar) -> int:
    """A span must not start mid-word: when at most four Han characters separate
    ``start`` from a region name on its left (江西省银川县|高|港南昌街), start right
    after that region instead, so that the regions can be pulled in."""
    j = start
    while j > 0 and start - j < 4:
        ch = text[j - 1]
        if not ("\u4e00" <= ch <= "\u9fff") or ch in g.stop_single or ch in _REGION_CHARS:
            break
        j -= 1
    if j == start or j == 0 or text[j - 1] not in _REGION_CHARS:
        return start
    if any(text[max(0, j - len(w)):start].find(w) >= 0 for w in g.stop_multi):
        return start
    return j


_NOT_NAME = regex.compile(r"[^\p{Han}0-9A-Za-z]|[的了]")


def _matches(text: str, rx: regex.Pattern[str], hint: regex.Pattern[str] | None,
             reach: int) -> Iterator[regex.Match[str]]:
    """``rx.finditer(text)``, trying ``rx`` only where a match can start: at most ``reach``
    characters before a ``hint`` (where the pattern's suffix group must match).  The
    same matches, in the same order, as a scan of every position (the text between a
    start and its suffix is at most ``reach`` characters, so no other start can match)."""
    if hint is None:
        yield from rx.finditer(text)
        return
    pos = 0
    hi_prev = -1
    # the text between a start and its suffix is all name characters (Han, letters,
    # digits; not 的, 了): a start lies after the last other character before the suffix
    breaks = [m.start() for m in _NOT_NAME.finditer(text)]
    for h in hint.finditer(text, overlapped=True):
        a = h.start()
        k = bisect.bisect_left(breaks, a) - 1
        lo, hi = max(pos, a - reach, hi_prev, breaks[k] + 1 if k >= 0 else 0), a
        hi_prev = max(hi_prev, hi)
        p = lo
        while p < hi:
            m = rx.match(text, p)
            if m is None:
                p += 1
                continue
            yield m
            pos = p = max(m.end(), p + 1)
            hi_prev = max(hi_prev, pos)


def find_addresses(text: str, *, precise: bool = True) -> list[tuple[int, int, float]]:
    """``(start, end, score)`` of the detailed addresses in ``text``.  ``precise=False``
    skips the jieba-based start refinement (a whole cell needs no exact start)."""
    g = _grammar()
    spans: list[tuple[int, int, float]] = []
    for rx, score, hint, reach in g.patterns:
        for m in _matches(text, rx, hint, reach):
            s, e = m.span()
            anchor = m.start("anchor") if m.group("anchor") else -1
            if anchor > s and precise:
                s = _name_start(text, s, anchor, g)
            s = _trim_start(text, s, e, g)
            # a region suffix inside the head splits regions from the road name
            head = text[s:e]
            s2 = _extend_regions(text, _snap_to_region(text, s, g), g)
            has_region = s2 < s or g.known_head.match(head) is not None
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


_ORG_END = ("政府", "委员会", "管委会", "公司", "医院", "学校", "大学", "中学", "小学", "银行",
            "办事处", "局", "厅", "委", "院", "所", "站", "部", "处", "科", "队")


def plausible_address(value: str) -> bool:
    """Whether a whole cell is an address (table scanner's cell check).

    A detailed address (see :func:`find_addresses`) covering most of the value, or a
    looser form a column of addresses also holds: regions followed by a road, street,
    community or village without a door number (历下区文化东路, 章丘区东山村).  Organisation
    names (济南市历下区人民政府) and bare regions (历下区) are not addresses."""
    v = value.strip()
    if any((e - s) >= 0.6 * len(v) for s, e, _ in find_addresses(v, precise=False)):
        return True
    if len(v) < 6 or v.endswith(_ORG_END):
        return False
    g = _grammar()
    return bool(g.loose.fullmatch(v))


class ChineseAddressRecognizer(ChineseEntityRecognizer):
    """Detailed Chinese addresses (road + number, or place + building/unit/room)."""

    ENTITY = ENTITY

    def load(self) -> None:
        _grammar()

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        if entities and ENTITY not in entities:
            return []
        return [self._found(s, e, sc) for s, e, sc in find_addresses(text)]
