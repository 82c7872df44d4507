"""The rule passes of the PERSON recognizer: surname tables, cue words and the
proposals that need no model.

* ``plausible_name``: a whole value shaped like a name (surname from ``surnames.txt`` /
  ``surnames_compound.txt`` + one or two characters, or a ``·`` transliteration), not in
  ``person_stoplist.txt``, not ending in a place or organisation suffix;
* cue passes (:class:`RuleProposals`): a name after a label or role (姓名：, 联系人,
  ``person_cues.tsv``), before a word that follows names (反映, 来电, 先生), alone between
  separators, a transliteration joined by ``·``, a surname with an honorific (王女士).

The recognizer (:mod:`desensitize.recognizers.person`) checks these proposals against
the name model's segmentation before it reports any of them.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

from desensitize.name_candidates import FOREIGN, FUNCTION_SURNAMES, dictionary, finder
from desensitize.nlp import dictionary_tag, segment
from desensitize.recognizers._tables import mapping, words

Proposal = tuple[int, int, float]


_BAD_SUFFIX = frozenset(
    "区市县省州路街镇村乡局厅委办院所站馆园港桥门楼店厂场城井岛湾寺庙宫殿塔阁署部处科室队组"
    "社会司校网台业化性率度费款法规制证号项件类期级型量额员品物器机车船人族点"
)
_HONORIFICS = ("先生", "女士", "小姐", "同志", "师傅", "老师", "大爷", "大妈", "阿姨", "老人")
_NAME_TAGS = frozenset({"nr", "nrfg", "nrt"})
_DOT_NAME = regex.compile(r"\p{Han}{2,8}[·•・]\p{Han}{2,8}")
_ISOLATED = regex.compile(r"(?:^|(?<=[，,；;：:、\s（(]))(\p{Han}{2,4})(?=[，,；;。、\s）)（(]|$)")
_PROFILE = regex.compile(
    r"(?:^|(?<=[\n。；;●◆■▲]))[ \t]*(\p{Han}{2,4})[ \t]*[，,：:、]?[ \t]*[男女](?=[，,、；;。\s]|$|性|\d)")
_HAN = regex.compile(r"\p{Han}+")
_PAREN_CUE = regex.compile(r"[(（]\s*(?:电话|手机|身份证|\d)")
_SEPARATORS = " \t:：,，（(）)【】[]\"“”'‘’、为是"


_AFTER_CUES = regex.compile(
    "同志|先生|女士|本人|电话|手机|来电|致电|反映|投诉|举报|咨询|留言|老师|师傅|表示|称"
)
_LEFT_WORDS = ("用户", "接到", "关于", "为", "是", "由", "向", "给", "对", "让", "请", "和", "与",
               "及", "、", "经", "据", "将", "把", "被", "同", "找", "叫")
_NR = frozenset({"nr", "nrfg", "nrt"})
_FUNCTION_CHARS = frozenset("的了着过在是和与及说就也都还又被把将给向从对为以于等呢吗啊吧呀嘛之而并或")


def is_foreign(name: str) -> bool:
    """Whether at least half of ``name`` is transliteration characters (希拉克, 马尔蒂尼)."""
    return sum(c in FOREIGN for c in name) * 2 >= len(name)


def _given_char(ch: str, floor: float = -9.5) -> bool:
    """Whether ``ch`` ends names often enough (jieba's HMM emission table for names:
    log-probability above ``floor``; 玉 -4.7, 建 -7.2, 未 -8.8, 作 -9.7, 对 -12.9)."""
    from jieba.posseg.prob_emit import P as emit

    return float(emit.get(("E", "nr"), {}).get(ch, -99.0)) > floor


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
    if not n or not (n + 1 <= len(v) <= n + 2) or not _HAN.fullmatch(v):
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


class RuleProposals:
    """Cue-driven proposals (mixed into the recognizer; see module docstring)."""

    def load_rules(self) -> None:
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
        if right.lstrip(" ").startswith(("(", "（")) and _PAREN_CUE.match(right + text[end + 4:end + 8]):
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
        return self._after_cue_word(text) + self._named(text) + self._profile(text)

    def settled(self, clause: str, points: Iterable[tuple[int, bool]]) -> bool:
        """Whether the rules decide ``clause`` without the name model: every place a name
        may start (``points``, see :meth:`CandidateFinder.points`) lies in a name right
        after a label or role (姓名：王浩；, 来电人杨旭，, 租户：廖玉兰，) that ends before a
        non-Han character and starts with no function-word surname (记者于北京，: where
        于 is a preposition, only the model sees the place).

        Such a name stands whatever the model's segmentation (``ChinesePersonRecognizer.
        analyze`` keeps a labelled name of score 0.85 or more unless the model sees a
        place, organisation or time cutting into it): skipping the model changed no
        finding on the labelled sets, the development data, Faker sentences or policy
        prose.  Where it would differ, the labelled name is reported (来电人王北京，)."""
        cues = self._tables.before_strong
        starts = sorted({p for p, _ in points})
        if not starts or not clause[:starts[0]].rstrip(" \t:：").endswith(cues):
            return False  # a candidate after no label word: the model decides (most prose)
        clean = [(s, e) for s, e, _ in self._after_label(clause, clean=True)
                 if not _HAN.match(clause, e) and clause[s] not in FUNCTION_SURNAMES]
        return all(any(s <= p < e for s, e in clean) for p in starts)

    def _after_label(self, text: str, clean: bool = False) -> list[tuple[int, int, float]]:
        """Names right after a label or role word (姓名：王浩, 来电人杨旭), scores 0.85-0.95,
        and the name on a profile's first line (高峰，男，), 0.9 (``clean``: see
        :meth:`_after_cue_word`)."""
        return self._after_cue_word(text, clean) + self._profile(text)

    def _profile(self, text: str) -> list[tuple[int, int, float]]:
        t = self._tables
        out = []
        for m in _PROFILE.finditer(text):  # 高峰，男，1965年出生: a profile's first line
            s, e = m.span(1)
            name = text[s:e]
            if plausible_name(name, t) and len(name) - t.surname_len(name) <= 2:
                out.append((s, e, 0.9))
        return out

    def _after_cue_word(self, text: str, clean: bool = False) -> list[tuple[int, int, float]]:
        """``clean``: leave out the names of two given characters followed by a Han
        character (whichever end jieba gives them, a Han character follows)."""
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
                if clean:
                    continue
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
        return out

    def _named(self, text: str) -> list[tuple[int, int, float]]:
        """Names before a cue (王强反映, 0.7) and alone between separators (0.55-0.6)."""
        t = self._tables
        out = []
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

