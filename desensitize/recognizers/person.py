"""PERSON — Chinese personal names.

A name is a surname from the table (``surnames.txt``, compound ``surnames_compound.txt``
such as 欧阳, 司马) followed by a one- or two-character given name, or a transliterated
name joined by ``·`` (买买提·艾力).  jieba's ``nr`` tag flags hundreds of ordinary words
in government prose (张贴, 王府井, 高新区), so it is only one signal among several:

1. gate: the candidate starts with a surname, is not in ``person_stoplist.txt`` and does
   not end in a place or organisation suffix (区, 路, 局, ...);
2. jieba: the clause is segmented; a token tagged ``nr`` or unknown to the dictionary
   scores more than one the dictionary knows as another part of speech;
3. cues (``person_cues.tsv``): a role or label right before the name (姓名：, 市民,
   联系人, 反映人) or a word right after it (先生, 反映, 来电) raises the score.

A bare ``nr`` token with no cue stays below the reporting threshold.  "Surname +
先生/女士" is reported as a person reference including the honorific.
"""

from __future__ import annotations

import regex
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from desensitize.nlp import dictionary_tag, segment
from desensitize.recognizers._tables import context_words, mapping, words

ENTITY = "PERSON"
_BAD_SUFFIX = frozenset(
    "区市县省州路街镇村乡局厅委办院所站馆园港桥门楼店厂场城井岛湾寺庙宫殿塔阁署部处科室队组"
    "社会司校网台业化性率度费款法规制证号项件类期级型量额员品物器机车船人族"
)
_HONORIFICS = ("先生", "女士", "小姐", "同志", "师傅", "老师", "大爷", "大妈", "阿姨", "老人")
_NAME_TAGS = frozenset({"nr", "nrfg", "nrt"})
_FUNCTION_TAGS = frozenset({"c", "p", "u", "d", "r", "v", "a", "m", "f", "q", "uj", "ul", "ad"})
_HAN_RUN = regex.compile(r"[\p{Han}·•・]+")
_DOT_NAME = regex.compile(r"\p{Han}{2,8}[·•・]\p{Han}{2,8}")
_ISOLATED = regex.compile(r"(?:^|(?<=[，,；;：:、\s（(]))(\p{Han}{2,4})(?=[，,；;。、\s）)（(]|$)")
_SEPARATORS = " \t:：,，（(）)【】[]\"“”'‘’、为是"


_AFTER_CUES = regex.compile(
    "同志|先生|女士|本人|电话|手机|来电|致电|反映|投诉|举报|咨询|留言|老师|师傅|表示|称"
)
_LEFT_WORDS = ("用户", "接到", "关于", "为", "是", "由", "向", "给", "对", "让", "请", "和", "与",
               "及", "、", "经", "据", "将", "把", "被", "同", "找", "叫")
_BREAK = frozenset("的了和与及等称说在于向给被把将")


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


class _Tables:
    def __init__(self) -> None:
        self.single = words("surnames.txt")
        self.compound = words("surnames_compound.txt")
        self.stop = words("person_stoplist.txt")
        cues = mapping("person_cues.tsv")
        self.before_strong = tuple(sorted(cues.get("before_strong", ()), key=len, reverse=True))
        self.before_weak = tuple(cues.get("before_weak", ()))
        self.after_strong = tuple(sorted(cues.get("after_strong", ()), key=len, reverse=True))
        self.after_weak = tuple(cues.get("after_weak", ())) + ("、", "和", "与", "等", "及")
        self.cue_words = frozenset(self.before_strong) | frozenset(self.after_strong)

    def surname_len(self, word: str) -> int:
        if word[:2] in self.compound:
            return 2
        return 1 if word[:1] in self.single else 0


def plausible_name(value: str, tables: _Tables | None = None) -> bool:
    """A whole value that looks like a personal name (table scanner's cell check)."""
    t = tables or _TABLES_CACHE.get()
    v = value.strip()
    if _DOT_NAME.fullmatch(v):
        return True
    n = t.surname_len(v)
    if not n or not (n + 1 <= len(v) <= n + 2) or not regex.fullmatch(r"\p{Han}+", v):
        return False
    if v in t.stop or v[-1] in _BAD_SUFFIX or v in t.cue_words:
        return False
    return not v.endswith(_HONORIFICS)


class _LazyTables:
    def __init__(self) -> None:
        self._t: _Tables | None = None

    def get(self) -> _Tables:
        if self._t is None:
            self._t = _Tables()
        return self._t


_TABLES_CACHE = _LazyTables()


class ChinesePersonRecognizer(EntityRecognizer):
    """Chinese names gated by the surname table and scored by jieba tags and cues."""

    ENTITY = ENTITY

    def __init__(self) -> None:
        super().__init__(
            supported_entities=[ENTITY], name=type(self).__name__, supported_language="zh",
            context=context_words(ENTITY),
        )

    def load(self) -> None:
        self._tables = _TABLES_CACHE.get()
        cues = "|".join(regex.escape(c) for c in self._tables.before_strong)
        self._cue_rx = regex.compile(rf"(?:{cues})[ \t:：]*")
        after = "|".join(regex.escape(c) for c in self._tables.after_strong if len(c) > 1)
        self._cue_any_rx = regex.compile(rf"{cues}|{after}")
        self._honorific_rx = regex.compile("|".join(_HONORIFICS))

    # -- cues -------------------------------------------------------------------------
    def _before(self, text: str, start: int) -> float:
        left = text[max(0, start - 10):start]
        stripped = left.rstrip(_SEPARATORS)
        if stripped.endswith(self._tables.before_strong):
            return 0.4
        if left.rstrip(" ").endswith(("、", "和", "与", "及")) and self._name_like(text, start, -1):
            return 0.1
        return 0.0

    def _name_like(self, text: str, pos: int, direction: int) -> bool:
        """Whether a name-shaped word sits across the list separator next to ``pos``
        (王明、刘洋: a list of names; 权威、中立: not)."""
        t = self._tables
        if direction < 0:
            j = pos - 1
            while j >= 0 and not _is_han(text[j]) or (j >= 0 and text[j] in "、和与及"):
                j -= 1
            for length in (3, 2, 4):
                cand = text[max(0, j + 1 - length):j + 1]
                if len(cand) == length and plausible_name(cand, t):
                    return True
            return False
        j = pos
        while j < len(text) and (not _is_han(text[j]) or text[j] in "、和与及"):
            j += 1
        return any(plausible_name(text[j:j + k], t) and dictionary_tag(text[j:j + k]) in (None, "nr", "nrt", "nrfg")
                   for k in (3, 2))

    def _after(self, text: str, end: int) -> float:
        right = text[end:end + 4]
        if right.startswith(self._tables.after_strong):
            return 0.3
        if right.lstrip(" ").startswith(("(", "（")) and regex.match(r"[(（]\s*(?:电话|手机|身份证|\d)", right + text[end + 4:end + 8]):
            return 0.3
        if right.startswith(("、", "和", "与", "及")) and self._name_like(text, end + 1, 1):
            return 0.1
        return 0.0

    # -- candidates ---------------------------------------------------------------------
    def _candidates(self, run: str) -> list[tuple[int, int, float, bool]]:
        """(start, end, base score, is_honorific) inside one run of Han characters."""
        t = self._tables
        toks = segment(run)
        out: list[tuple[int, int, float, bool]] = []
        pos = 0
        offsets = []
        for word, _tag in toks:
            offsets.append(pos)
            pos += len(word)
        skip = -1
        for i, (word, tag) in enumerate(toks):
            start = offsets[i]
            if i == skip:
                continue
            n = t.surname_len(word)
            if not n:
                continue
            nxt = toks[i + 1][0] if i + 1 < len(toks) else ""
            if len(word) == n:  # bare surname: given name is the next token
                if nxt in _HONORIFICS[:4] and n == 1:
                    out.append((start, start + n + len(nxt), 0.6, True))
                elif tag in _FUNCTION_TAGS:
                    continue
                elif nxt and len(nxt) <= 2 and toks[i + 1][1] in _NAME_TAGS:
                    out.append((start, start + n + len(nxt), 0.45, False))
                    skip = i + 1
                elif nxt and t.surname_len(nxt) and len(nxt) >= 2:
                    continue
                elif nxt and len(nxt) <= 2 and nxt[0] not in _HONORIFICS and nxt not in t.stop:
                    ntag = toks[i + 1][1]
                    base = 0.35 if ntag in _NAME_TAGS or ntag in ("x", "nz") else 0.15
                    out.append((start, start + n + len(nxt), base, False))
            elif n == 1 and word[1:] in _HONORIFICS[:4]:
                out.append((start, start + len(word), 0.6, True))
            elif len(word) <= n + 2:
                if tag in _NAME_TAGS:
                    base = 0.45
                elif tag in ("x", "nz", "n", "j") and len(word) == 3:
                    base = 0.3
                else:
                    base = 0.15
                out.append((start, start + len(word), base, False))
            elif len(word) in (n + 3, n + 4) and word[n + 2:].startswith(("先生", "女士")):
                out.append((start, start + n + 2, 0.45, False))
        return out

    # -- cue-driven and isolated names (no segmentation) ---------------------------------
    def _given_len(self, text: str, i: int) -> int:
        """Length (0-2) of the given name starting at ``i``: Han characters up to a word
        that follows names (称, 反映, 先生 ...) or a non-Han character."""
        k = 0
        while k < 2 and i + k < len(text) and _is_han(text[i + k]):
            if k and (text[i + k] in _BREAK or text.startswith(self._tables.after_strong, i + k)):
                break
            k += 1
        return k

    def _cued(self, text: str) -> list[tuple[int, int, float]]:
        t = self._tables
        out = []
        for m in self._cue_rx.finditer(text):
            pos = m.end()
            n = t.surname_len(text[pos:pos + 2])
            if not n:
                continue
            g = self._given_len(text, pos + n)
            if g == 0 and n == 2:
                continue
            if g == 0:
                continue
            if g == 2 and pos + n + 2 < len(text) and _is_han(text[pos + n + 2]):
                # a verb may start on the second given character (王强出席): ask jieba
                bounds, acc = set(), 0
                for word, _tag in segment(text[pos:pos + n + 6]):
                    acc += len(word)
                    bounds.add(acc)
                if n + 1 in bounds and n + 2 not in bounds:
                    g = 1
            name = text[pos:pos + n + g]
            tag = dictionary_tag(name)
            labelled = m.group().rstrip(" \t").endswith((":", "："))
            if tag is not None and tag not in _NAME_TAGS and not labelled:
                continue  # 律师代为办理: an ordinary word after a role noun
            if plausible_name(name, t):
                out.append((pos, pos + n + g, min(0.95, 0.85 + self._after(text, pos + n + g) / 3)))
        for m in _AFTER_CUES.finditer(text):
            p = m.start()
            for length in (4, 3, 2):
                s0 = p - length
                if s0 < 0:
                    continue
                name = text[s0:p]
                n = t.surname_len(name)
                if not n or len(name) - n not in (1, 2) or not all(_is_han(c) for c in name):
                    continue
                if not plausible_name(name, t) or name[-1] in _BREAK:
                    continue
                left = text[max(0, s0 - 6):s0]
                if s0 == 0 or not _is_han(text[s0 - 1]) or left.endswith(_LEFT_WORDS) \
                        or left.endswith(t.before_strong):
                    out.append((s0, p, 0.7))
                    break
        for m in _ISOLATED.finditer(text):
            s, e = m.span(1)
            name = text[s:e]
            if not plausible_name(name, t):
                continue
            n = t.surname_len(name)
            if len(name) - n > 2:
                continue
            tag = dictionary_tag(name)
            if tag is not None and tag not in _NAME_TAGS:
                continue
            out.append((s, e, 0.55 if tag is None else 0.6))
        return out

    def _dot_names(self, text: str) -> list[tuple[int, int, float]]:
        t = self._tables
        out = []
        for m in _DOT_NAME.finditer(text):
            s, e = m.span()
            dot = m.group().find("·") if "·" in m.group() else 0
            mid = s + max(dot, m.group().find("•"), m.group().find("・"))
            left = text[s:mid]
            cut = -1
            for cue in (*t.before_strong, *_LEFT_WORDS, "人员", "人"):
                idx = left.rfind(cue)
                if idx >= 0 and mid - (s + idx + len(cue)) >= 2:
                    cut = max(cut, idx + len(cue))
            # after an introducing word keep the whole left part; otherwise at most 4
            s = max(s + cut, mid - 8) if cut >= 0 else max(s, mid - 4)
            right = text[mid + 1:e]
            stop = len(right)
            for cue in (*t.after_strong, "的", "本人", "操作", "等"):
                idx = right.find(cue, 2)
                if idx >= 0:
                    stop = min(stop, idx)
            e = mid + 1 + min(stop, 4 if stop <= 4 else 3)
            score = min(0.95, 0.6 + self._before(text, s) + self._after(text, e))
            out.append((s, e, score))
        return out

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        if entities and ENTITY not in entities:
            return []
        t = self._tables
        results: list[RecognizerResult] = []
        taken: list[tuple[int, int]] = []
        for s, e, score in self._dot_names(text) + self._cued(text):
            if any(s < te and ts < e for ts, te in taken):
                continue
            results.append(self._result(s, e, score))
            taken.append((s, e))
        for run in _HAN_RUN.finditer(text):
            chunk = run.group()
            if not any(c in t.single for c in chunk) or not self._worth_segmenting(text, run.start(), run.end()):
                continue
            for s0, e0, base, honorific in self._candidates(chunk):
                s, e = run.start() + s0, run.start() + e0
                name = text[s:e]
                if any(s < te and ts < e for ts, te in taken):
                    continue
                if not honorific and not plausible_name(name, t):
                    continue
                score = base + self._before(text, s) + (0.0 if honorific else self._after(text, e))
                if base <= 0.15:
                    continue
                results.append(self._result(s, e, min(score, 0.95)))
        return results

    def _worth_segmenting(self, text: str, start: int, end: int) -> bool:
        """Segmentation (the slow part) only where it can add a name the cue passes miss:
        honorifics, lists (、 和 与 及), or a cue word in or around the run."""
        chunk = text[start:end]
        if self._honorific_rx.search(chunk) or any(c in chunk for c in "和与及"):
            return True
        around = text[max(0, start - 8):start] + " " + text[end:end + 2]
        if "、" in around or "、" in text[end:end + 1]:
            return True
        return bool(self._cue_any_rx.search(text[max(0, start - 8):end + 4]))

    def _result(self, start: int, end: int, score: float) -> RecognizerResult:
        return RecognizerResult(
            entity_type=ENTITY, start=start, end=end, score=round(score, 2),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: type(self).__name__,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                "is_score_enhanced_by_context": True,
            },
        )
