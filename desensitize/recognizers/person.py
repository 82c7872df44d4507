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

from desensitize.name_candidates import dictionary, finder
from desensitize.name_model import tagger
from desensitize.nlp import dictionary_tag, segment
from desensitize.recognizers._tables import context_words, mapping, words

ENTITY = "PERSON"
_BAD_SUFFIX = frozenset(
    "区市县省州路街镇村乡局厅委办院所站馆园港桥门楼店厂场城井岛湾寺庙宫殿塔阁署部处科室队组"
    "社会司校网台业化性率度费款法规制证号项件类期级型量额员品物器机车船人族点"
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
_NOT_AFTER_NAME = frozenset({"理论", "思想", "时代", "新时代", "主义", "精神", "路", "大街", "大道", "街"})
# characters of transliterated foreign names (奥尔布赖特, 希丁克, 马尔蒂尼)
_FOREIGN = frozenset("斯尔克特维尼奇普拉德里诺夫托基亚科罗卡森伊娃莎丝妮蒂布赖丁希姆顿逊曼伦纳契洛索杰")


_NR = frozenset({"nr", "nrfg", "nrt"})
_FUNCTION_CHARS = frozenset("的了着过在是和与及说就也都还又被把将给向从对为以于等呢吗啊吧呀嘛之而并或")
_SPEAKING = ("说", "表示", "指出", "认为", "介绍", "强调", "告诉", "回忆", "坦言", "笑", "总是", "谦虚")


def _given_char(ch: str) -> bool:
    """Whether ``ch`` ends names often enough (jieba's HMM emission table for names)."""
    from jieba.posseg.prob_emit import P as emit

    return float(emit.get(("E", "nr"), {}).get(ch, -99.0)) > -9.5


def _wordy(span: str) -> bool:
    """Whether ``span`` holds an everyday word (two characters, frequent, not a name)."""
    freq, tags = dictionary()
    return any(freq.get(span[i:i + 2], 0) >= 1000 and tags.get(span[i:i + 2]) not in _NR
               for i in range(len(span) - 1))


def _in_title(text: str, s: int, e: int) -> bool:
    """Whether ``text[s:e]`` sits inside a book or work title (《…》)."""
    left = text[max(0, s - 20):s]
    return left.rfind("《") > left.rfind("》") and "》" in text[e:e + 20]
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
        sur = "|".join(regex.escape(c) for c in sorted(self._tables.compound | self._tables.single,
                                                       key=len, reverse=True))
        self._honorific_name_rx = regex.compile(rf"(?:{sur})(?:{'|'.join(_HONORIFICS[:6])})")

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
                if not plausible_name(name, t) or name[-1] in _BREAK or name[0] in _FUNCTION_CHARS \
                        or not finder().surname_at(text, s0):
                    continue
                left = text[max(0, s0 - 6):s0]
                if s0 == 0 or not _is_han(text[s0 - 1]) or left.endswith(_LEFT_WORDS) \
                        or left.endswith(t.before_strong):
                    out.append((s0, p, 0.7))
                    break
        for m in _ISOLATED.finditer(text):
            s, e = m.span(1)
            name = text[s:e]
            if not plausible_name(name, t) or name[0] in _FUNCTION_CHARS or name[0] == "有" \
                    or not finder().surname_at(text, s):
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
            if text[e - 1] in _BAD_SUFFIX or _wordy(text[s:e]):
                continue  # 爱山东·泉城办: an app, not a transliterated name
            score = min(0.95, 0.6 + self._before(text, s) + self._after(text, e))
            out.append((s, e, score))
        return out

    # -- the model's proposals ------------------------------------------------------------
    def _model(self, text: str) -> list[tuple[int, int, float]]:
        """Names the model tags ``PER`` in the clauses the cheap test lets through."""
        find = finder()
        todo = [(off, clause) for off, clause in find.clauses(text) if find.worth_tagging(clause)]
        if not todo:
            return []
        out = []
        for (off, clause), words in zip(todo, tagger().words_many([c for _, c in todo]), strict=True):
            words = self._repair(clause, words)
            for k, (s, e, tag) in enumerate(words):
                if tag != "PER":
                    continue
                nxt = words[k + 1] if k + 1 < len(words) else None
                score = self._model_score(text, off + s, off + e, nxt[2] if nxt else "",
                                          clause[nxt[0]:nxt[1]] if nxt else "")
                if score > 0:
                    out.append((off + s, off + e, score))
        return out

    def _repair(self, clause: str, words: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """Mend two boundary slips of the model: a transliterated name cut in two
        (斯卡尔|法罗) is joined; a surname + one character followed by one more name
        character and a pause or a speaking verb (傅全|有、 罗豪|才指出) is extended."""
        out: list[tuple[int, int, str]] = []
        t = self._tables
        i = 0
        while i < len(words):
            s, e, tag = words[i]
            if tag == "PER" and out and out[-1][2] == "PER" and out[-1][1] == s \
                    and not (self._chinese(clause[out[-1][0]:s]) and self._chinese(clause[s:e])):
                out[-1] = (out[-1][0], e, "PER")
                i += 1
                continue
            if (tag == "PER" and e - s == 2 and t.surname_len(clause[s:e]) == 1 and i + 1 < len(words)
                    and words[i + 1][1] - words[i + 1][0] == 1):
                ch = clause[e]
                after = clause[e + 1:e + 3]
                if (_is_han(ch) and ch not in _FUNCTION_CHARS and _given_char(ch)
                        and (not after or not _is_han(after[0]) or after.startswith(_SPEAKING))):
                    out.append((s, e + 1, "PER"))
                    i += 2
                    continue
            out.append((s, e, tag))
            i += 1
        return out

    def _chinese(self, name: str) -> bool:
        n = self._tables.surname_len(name)
        return bool(n) and 1 <= len(name) - n <= 2

    def _model_score(self, text: str, s: int, e: int, next_tag: str, next_word: str) -> float:
        """Score of a span the model tags PER: surname gate, stop-list veto, context."""
        t = self._tables
        name = text[s:e]
        if len(name) < 2 or len(name) > 16 or name in t.stop or name in t.cue_words:
            return 0.0
        if next_word in _NOT_AFTER_NAME:
            return 0.0  # 邓小平理论, 毛泽东思想: a doctrine, not a person
        dotted = bool(_DOT_NAME.fullmatch(name))
        n = t.surname_len(name)
        han = regex.fullmatch(r"\p{Han}+", name) is not None
        if dotted:
            if name[-1] in _BAD_SUFFIX or name[-1] in "卷集" or _in_title(text, s, e):
                return 0.0
            base = 0.65
        elif n and han and 1 <= len(name) - n <= 2:
            if name[-1] in _BAD_SUFFIX or name.endswith(_HONORIFICS):
                return 0.0
            base = 0.7
        elif han and len(name) <= 6:
            # no surname from the table: a foreign name, a nickname
            base = 0.4 + (0.15 if sum(c in _FOREIGN for c in name) * 2 >= len(name) else 0.0)
        else:
            return 0.0
        freq, tags = dictionary()
        for k in (1, 2):  # 开罗|晴, 许许多多: the first character belongs to a word on its left
            left = text[max(0, s - k):s + 1]
            if len(left) == k + 1 and freq.get(left, 0) >= 30 and tags.get(left) not in _NR:
                return 0.0
        if len(name) == 2 and freq.get(name, 0) >= 100:
            base -= 0.3  # 智慧, 荣获: everyday words jieba's dictionary calls names
        return min(0.95, base + self._before(text, s) / 2 + self._after(text, e) / 2)

    def _honorifics(self, text: str) -> list[tuple[int, int, float]]:
        """王女士, 李先生: a surname and an honorific after a boundary or a cue."""
        out = []
        for m in self._honorific_name_rx.finditer(text):
            s = m.start()
            if s > 0 and _is_han(text[s - 1]):
                left = text[max(0, s - 6):s]
                if not left.endswith(_LEFT_WORDS) and not left.endswith(self._tables.before_strong):
                    continue
            out.append((s, m.end(), 0.6))
        return out

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        if entities and ENTITY not in entities:
            return []
        results: list[RecognizerResult] = []
        taken: list[tuple[int, int]] = []
        model = self._model(text)
        proposals = self._dot_names(text) + self._cued(text) + model + self._honorifics(text)
        # proposals that can be reported claim their span first: transliterated names and
        # names after a label (寄件人：欧阳轩建) before the model's, then honorifics
        order = sorted(range(len(proposals)), key=lambda i: (proposals[i][2] < 0.5, i))
        for s, e, score in (proposals[i] for i in order):
            if any(s < te and ts < e for ts, te in taken):
                continue
            results.append(self._result(s, e, score))
            taken.append((s, e))
        return results

    def _result(self, start: int, end: int, score: float) -> RecognizerResult:
        return RecognizerResult(
            entity_type=ENTITY, start=start, end=end, score=round(score, 2),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: type(self).__name__,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                "is_score_enhanced_by_context": True,
            },
        )
