"""PERSON — Chinese personal names: the model proposes, the rules veto, context scores.

1. **Cheap candidates** (:mod:`desensitize.name_candidates`): only clauses with a surname
   that starts no common word, a cue word (姓名, 联系人, 先生, 说 ...), a middle dot or a
   run of transliteration characters (斯, 尔, 克 ...) reach the model.  The text
   scanner (:func:`clauses_ahead`) sends only the clauses the rules do not settle
   alone: a clause whose every candidate lies in a name right after a label or role,
   ending before a non-Han character (姓名：王浩；, 来电人杨旭，), keeps the rule's name
   without the model (on the labelled sets, the development data, Faker sentences and
   policy prose the findings are the same either way).
2. **The model proposes** (:mod:`desensitize.name_model`, Baidu LAC, a character
   BiGRU-CRF run by ONNX Runtime): its ``PER`` words are the proposals, mended at known
   boundary slips (a transliteration cut in two, a third given character split off, a
   function word glued on) and cut back to the surname before a title (江|主席, 陈|某,
   老|张).
3. **The rules veto**: ``person_stoplist.txt``, cue words themselves, a place or
   organisation suffix (区, 局 ...), a street named after a person (中山路), a first
   character that belongs to a word on its left, an everyday word jieba's dictionary
   calls a name (智慧, 荣获), a transliteration inside a work title.
4. **Context scores**: a base by shape (surname + one or two characters 0.7, ``·`` name
   0.65, no table surname 0.4, or 0.55 when most characters are transliteration ones),
   raised by cue words right before or after (``person_cues.tsv``).
5. **Rule proposals** (:mod:`desensitize.recognizers.person_rules`: a name after a label,
   before a cue, alone between separators, a ``·`` name, a surname + honorific) fill in
   where the model saw no name, and only when they agree with the model's segmentation
   (they start and end on its word boundaries and hold no function word, place,
   organisation or time); where they overlap a model name, the model's span is kept and
   takes the cue's score.  Two exceptions, where the model is known to slip on rare
   names: a name right after a label or role (收件人向淑珍, 姓名：储玉) stands unless the
   model sees a place, organisation or time inside it, a function-word phrase (学生和科技)
   or a shorter name before a word (被申请人刘玉|未按期); and a rule name that only adds
   the surname the model dropped (司徒|丽阳) replaces the model's.  Clauses the model did
   not see keep the rule proposals as is.

Names inside doctrines (邓小平理论, 毛泽东思想) are reported: they are names, the public
NER sets label them so, and the redactor errs on the side of masking.  "Surname +
先生/女士" is reported including the honorific.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from desensitize.name_candidates import FOREIGN, FUNCTION_SURNAMES, dictionary, finder
from desensitize.name_model import tagger
from desensitize.recognizers._base import ChineseEntityRecognizer
from desensitize.recognizers.person_rules import (
    _BAD_SUFFIX,
    _FUNCTION_CHARS,
    _HONORIFICS,
    _NR,
    Proposal,
    RuleProposals,
    _given_char,
    _in_title,
    _is_han,
    is_foreign,
    plausible_name,
)
from desensitize.spans import Taken, overlapping

__all__ = ["ENTITY", "ChinesePersonRecognizer", "clauses_ahead", "model_clauses", "open_clauses",
           "plausible_name"]

ENTITY = "PERSON"
Word = tuple[int, int, str]
# a street or place named after a person is a place (中山路); a doctrine is still a name
_NOT_AFTER_NAME = frozenset({"路", "大街", "大道", "街", "公园", "广场", "故居", "纪念馆"})
_SPEAKING = ("说", "表示", "指出", "认为", "介绍", "强调", "告诉", "回忆", "坦言", "笑", "总是", "谦虚")
# words after a name that are not part of it: the span is cut back to the surname
_TITLE_WORDS = (
    "主席 总理 总统 首相 书记 局长 市长 县长 省长 区长 镇长 乡长 村长 部长 厅长 处长 科长 院长 校长 "
    "所长 主任 经理 董事长 总裁 总 工 教授 院士 博士 医生 大夫 护士 律师 警官 队长 老 老太 老汉 "
    "某 某某 大娘 大婶 大嫂 大姐 大哥 大叔 姨 姐 哥 叔 嫂 婶 伯 奶奶 爷爷 家 氏 委员 将军")
_TITLES = tuple(sorted(_TITLE_WORDS.split(), key=len, reverse=True))
_TITLE_SET = frozenset(_TITLES)
_TITLE_SIZES = tuple(sorted({len(w) for w in _TITLES}, reverse=True))
_AFTER_THIRD = ("上将", "中将", "少将", "将军", "总统", "总理", "主席", "先生", "同志", "教授",
                "院士", "今天", "昨天", "日前", "近日")
_DOTS = "·•・"
_DOCTRINES = ("主义", "思想", "理论")
_HONORIFIC_SET = frozenset(_HONORIFICS)
_DOTTED = regex.compile(r"\p{Han}+(?:[·•・]\p{Han}+)+")
_HAN = regex.compile(r"\p{Han}+")
_HAN2 = regex.compile(r"\p{Han}{2,}")
_GLUED = frozenset("等也对著说都就还又被把将的了")  # 王克等, 肖扬也, 钱程对
# the clauses worth tagging of the texts of a batch (:func:`clauses_ahead`), this context only
_CLAUSES_AHEAD: ContextVar[dict[str, list[tuple[int, str]]] | None] = ContextVar(
    "person_clauses", default=None)
_BAD_TAGS = frozenset({"LOC", "ORG", "TIME", "c", "p", "u", "d", "r", "q", "m", "f", "w", "xc",
                       "vd", "ad"})


@lru_cache(maxsize=1)
def _rules() -> RuleProposals:
    rules = RuleProposals()
    rules.load_rules()
    return rules


def model_clauses(text: str) -> list[tuple[int, str]]:
    """``(offset, clause)`` of the clauses of ``text`` the model tags (those worth it;
    inside :func:`clauses_ahead`, the clauses planned there)."""
    ahead = _CLAUSES_AHEAD.get()
    if ahead is not None and text in ahead:
        return ahead[text]
    find = finder()
    return [(off, clause) for off, clause in find.clauses(text) if find.worth_tagging(clause)]


def open_clauses(text: str) -> list[tuple[int, str]]:
    """The text scanner's plan: ``(offset, clause)`` of the clauses of ``text`` where a
    name may start (:meth:`CandidateFinder.points`) and the rules alone do not settle it
    (:meth:`RuleProposals.settled`: 姓名：王浩；)."""
    find = finder()
    rules = _rules()
    return [(off, clause) for off, clause in find.clauses(text)
            if (points := find.points(clause)) and not rules.settled(clause, points)]


@contextmanager
def clauses_ahead(texts: Iterable[str]) -> Iterator[list[str]]:
    """The clauses the model will tag in ``texts`` (:func:`open_clauses`, for
    :meth:`LacTagger.batch`); inside the block, :func:`model_clauses` of these texts
    returns them."""
    ahead = {t: open_clauses(t) for t in texts}
    token = _CLAUSES_AHEAD.set(ahead)
    try:
        yield [c for found in ahead.values() for _, c in found]
    finally:
        _CLAUSES_AHEAD.reset(token)


class ChinesePersonRecognizer(RuleProposals, ChineseEntityRecognizer):
    """Chinese names: LAC proposes, stop-list and rules veto, cue words score."""

    ENTITY = ENTITY

    def load(self) -> None:
        self.load_rules()

    # -- the model's proposals ------------------------------------------------------------
    def _segment(self, text: str) -> list[Word]:
        """The model's words (offsets into ``text``) of the clauses worth tagging."""
        todo = model_clauses(text)
        if not todo:
            return []
        out: list[Word] = []
        for (off, clause), words in zip(todo, tagger().words_many([c for _, c in todo]), strict=True):
            out.extend((off + s, off + e, tag) for s, e, tag in self._repair(clause, words))
        return out

    def _model(self, text: str, words: list[Word]) -> list[tuple[int, int, float]]:
        """Every ``PER`` word, cut to its name, with its score (0: vetoed)."""
        out = []
        for k, (s, e, tag) in enumerate(words):
            if tag != "PER":
                continue
            s, e = self._trim(text, s, e)
            nxt = words[k + 1] if k + 1 < len(words) and words[k + 1][0] == words[k][1] else None
            next_word = text[nxt[0]:nxt[1]] if nxt else ""
            out.append((s, e, self._model_score(text, s, e, next_word)))
        return out

    def _trim(self, text: str, s: int, e: int) -> tuple[int, int]:
        """江主席 → 江, 陈某 → 陈, 老张 → 张, 王克等 → 王克 (the name without the title)."""
        t = self._tables
        name = text[s:e]
        if len(name) >= 2 and name[0] in "老小" and t.surname_len(name[1:]) == len(name) - 1:
            return s + 1, e
        for title in _HONORIFICS:  # 梁侠女士 → 梁侠; 刘先生 stays whole
            if name.endswith(title) and t.surname_len(name) < len(name) - len(title):
                return s, e - len(title)
        for size in _TITLE_SIZES:  # the longest title first, as a scan of _TITLES would
            if len(name) > size and name[-size:] in _TITLE_SET:
                head = name[:-size]
                if t.surname_len(head) == len(head) and not name.endswith(_HONORIFICS):
                    return s, s + len(head)
        if len(name) >= 3 and name[-1] in _GLUED and plausible_name(name[:-1], t):
            return s, e - 1
        return s, e

    def _repair(self, clause: str, words: list[Word]) -> list[Word]:
        """Mend two boundary slips of the model: a transliterated name cut in two
        (斯卡尔|法罗) is joined; a surname + one character followed by one more name
        character and a pause, a speaking verb, a title or a time (傅全|有|上将,
        罗豪|才指出) is extended."""
        out: list[Word] = []
        t = self._tables
        i = 0
        while i < len(words):
            s, e, tag = words[i]
            if tag == "PER" and out and out[-1][2] == "PER" and out[-1][1] == s \
                    and (not (self._chinese(clause[out[-1][0]:s]) and self._chinese(clause[s:e]))
                         or is_foreign(clause[out[-1][0]:e])):
                out[-1] = (out[-1][0], e, "PER")
                i += 1
                continue
            if len(out) > 1 and out[-2][2] == "PER" and out[-1][0] == s - 1 and out[-2][1] == s - 1 \
                    and clause[s - 1] in _DOTS and (tag == "PER" or tag not in _BAD_TAGS
                                                    and _HAN2.fullmatch(clause[s:e])):
                out[-2:] = [(out[-2][0], e, "PER")]  # 达|·|芬奇, 阿布都热西提|·|买买提
                i += 1
                continue
            if tag != "PER" and out and out[-1][2] == "PER" and out[-1][1] == s \
                    and clause[s] in _DOTS and e - s > 1 and _is_han(clause[e - 1]):
                out[-1] = (out[-1][0], e, "PER")  # 哈里|·卡门
                i += 1
                continue
            if tag == "nz" and clause.endswith(_DOCTRINES, s, e):
                head = next(len(clause[s:e]) - len(d) for d in _DOCTRINES if clause.endswith(d, s, e))
                if head >= 2 and dictionary()[1].get(clause[s:s + head]) in _NR:
                    out += [(s, s + head, "PER"), (s + head, e, "n")]  # 马克思|主义
                    i += 1
                    continue
            if (tag == "PER" and e - s == 2 and t.surname_len(clause[s:e]) == 1 and i + 1 < len(words)
                    and words[i + 1][1] - words[i + 1][0] == 1):
                ch = clause[e]
                after = clause[e + 1:e + 3]
                then = words[i + 2][2] if i + 2 < len(words) else ""
                if (_is_han(ch) and ch not in _FUNCTION_CHARS and _given_char(ch)
                        and (not after or not _is_han(after[0]) or after.startswith(_SPEAKING)
                             or after.startswith(_AFTER_THIRD) or then == "TIME")):
                    out.append((s, e + 1, "PER"))
                    i += 2
                    continue
            out.append((s, e, tag))
            i += 1
        return out

    def _chinese(self, name: str) -> bool:
        n = self._tables.surname_len(name)
        return bool(n) and 1 <= len(name) - n <= 2

    def _model_score(self, text: str, s: int, e: int, next_word: str) -> float:
        """Score of a span the model tags PER: surname gate, stop-list veto, context."""
        t = self._tables
        name = text[s:e]
        if not name or len(name) > 16 or name in t.stop or name in t.cue_words:
            return 0.0
        if next_word in _NOT_AFTER_NAME or text.startswith(tuple(_NOT_AFTER_NAME), e) and len(name) > 1:
            return 0.0  # 中山路: a street
        dotted = bool(_DOTTED.fullmatch(name))
        n = t.surname_len(name)
        han = _HAN.fullmatch(name) is not None
        if dotted:
            if (name[-1] in _BAD_SUFFIX and name[-1] not in FOREIGN and name[-1] not in "门塔")\
                    or name[-1] in "卷集" or _in_title(text, s, e):
                return 0.0
            base = 0.65
        elif n and han and len(name) == n:
            # a surname alone: before a title (江主席, 陈某) or after 老/小 (老张)
            if not (text.startswith(_TITLES, e) or text.startswith(_HONORIFICS, e)
                    or text[s - 1:s] in ("老", "小") and s > 0):
                return 0.0
            base = 0.55
        elif n and han and 1 <= len(name) - n <= 2:
            if name.endswith(_HONORIFICS) and len(name) - n == 2:
                base = 0.6  # 刘先生, 王女士: a person reference with its honorific
            elif name[-1] in _BAD_SUFFIX or name.endswith(_HONORIFICS):
                return 0.0
            else:
                base = 0.7
        elif han and 2 <= len(name) <= 6:
            # no surname from the table: a foreign name, a nickname
            base = 0.4 + (0.15 if is_foreign(name) else 0.0)
        else:
            return 0.0
        freq, tags = dictionary()
        before = self._before(text, s)
        for k in (1, 2):  # 开罗|晴, 许许多多: the first character belongs to a word on its left
            left = text[max(0, s - k):s + 1]
            if len(left) == k + 1 and freq.get(left, 0) >= 30 and tags.get(left) not in _NR \
                    and before < 0.4:  # unless a label ends there (申请人|马晓东)
                return 0.0
        if len(name) == 2 and freq.get(name, 0) >= 100:
            # 智慧, 荣获: everyday words (jieba's dictionary calls some of them names, as it
            # does 李鹏: those keep a reportable score)
            base -= 0.15 if tags.get(name) in _NR else 0.3
        return min(0.95, base + before / 2 + self._after(text, e) / 2)

    # -- combining ----------------------------------------------------------------------------
    def _agrees(self, text: str, words: list[Word], starts: dict[int, int], word_starts: list[int],
                s: int, e: int, cued: bool = False) -> bool:
        """Whether a rule proposal ``[s, e)`` agrees with the model's segmentation (or
        lies where the model did not look)."""
        k = starts.get(s)
        if k is None:
            # no word cuts into the span at either end (the words are sorted and do not
            # overlap: only the last word starting before a position can hold it)
            for pos in (s, e):
                i = bisect.bisect_left(word_starts, pos) - 1
                if i >= 0 and words[i][1] > pos:
                    return False
            return True
        while k < len(words) and words[k][0] < e:
            ws, we, tag = words[k]
            if we > e:  # 梁侠|女士 tagged as one word: fine when a cue follows the name
                return text[e:we] in self._tables.cue_words or text[e:we] in _HONORIFIC_SET
            if tag == "ORG" and (ws, we) == (s, e) and cued:
                return True  # 接到柯宁电话: a cue says person where the model says organisation
            if tag in _BAD_TAGS or (tag in ("v", "a") and (ws > s or we < e)):
                return False  # 有|饭|吃: a verb phrase, not a name the model cut up
            if we == e:
                return True
            k += 1
        return False

    def _labelled(self, text: str, words: list[Word], word_starts: list[int], s: int, e: int) -> bool:
        """Whether a name right after a label or role (收件人向淑珍, 来电人任兵, 姓名：储玉)
        stands even where the model cut it otherwise: unless the model sees a place, an
        organisation or a time there (记者从|重庆), a function-word surname comes with an
        everyday word (学生和|科技), a function word ends it (经理钱程|对), or the span is a
        phrase of three words (群众有|饭|吃)."""
        inside = [words[k] for k in overlapping(words, word_starts, s, e)]
        if any(tag in ("LOC", "ORG", "TIME") and (ws, we) != (s, e) for ws, we, tag in inside):
            return False  # a place or organisation the name would cut (尤军 alone may be one)
        if len(inside) >= 3 and any(tag == "v" for _, _, tag in inside[1:]):
            return False
        n = max(1, self._tables.surname_len(text[s:e]))
        if text[e - 1] in _FUNCTION_CHARS and e - s - n >= 2:
            return False  # 经理钱程|对: the model's shorter name stands
        freq, tags = dictionary()
        given = text[s + n:e]
        return not (text[s] in FUNCTION_SURNAMES and freq.get(given, 0) >= 1000
                    and tags.get(given) not in _NR)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        if entities and ENTITY not in entities:
            return []
        words = self._segment(text)
        model = self._model(text, words)
        starts = {w[0]: k for k, w in enumerate(words)}
        word_starts = [w[0] for w in words]
        model_starts = [m[0] for m in model]
        scores = {(s, e): score for s, e, score in model}
        rules: list[Proposal] = []
        for s, e, score in self._dot_names(text) + self._cued(text) + self._honorifics(text):
            near = [model[k] for k in overlapping(model, model_starts, s, e)]
            hit = [(ms, me) for ms, me, _ in near
                   if not (me - ms == 1 and ms >= s and me <= e and e - s > 1)]
            if len(hit) < len(near):
                for ms, me, _ in near:  # a lone surname inside a rule's name (薄|一波同志)
                    if (ms, me) not in hit:
                        scores[(ms, me)] = 0.0
            left = [(ms, me) for ms, me in hit if s < ms and me == e and scores[(ms, me)] > 0
                    and (self._tables.surname_len(text[s:ms]) == ms - s
                         or ms - s == 1 and text[s] == text[ms])]
            if left and len(left) == len(hit):
                # the model dropped the surname (司徒|丽阳, 向|淑珍) or the first of a
                # doubled syllable (买|买提·艾力): the rule's span, with the best score
                best = max(score, *(scores[span] for span in left))
                for span in left:
                    scores[span] = 0.0
                rules.append((s, e, best))
            elif score >= 0.85 and self._labelled(text, words, word_starts, s, e) and not any(
                    ms == s and me == e - 1 and scores[(ms, me)] > 0 and not _given_char(text[me], -8.0)
                    for ms, me in hit):  # 被申请人刘玉|未按期: the model's shorter name stands
                for span in hit:  # a name right after a label: the label knows best
                    scores[span] = 0.0
                rules.append((s, e, score))
            elif hit:
                for span in hit:  # the model's span, with the cue's score
                    if scores[span] > 0:
                        scores[span] = max(scores[span], min(score, 0.95))
            elif self._agrees(text, words, starts, word_starts, s, e, score >= 0.7) or any(
                    (ms, me) in scores for ms, me in ((s, s + 1), (s, s + 2)) if me < e):
                # agrees with the model, or the model saw only its surname (薄|一波同志)
                rules.append((s, e, score))
        results: list[RecognizerResult] = []
        taken = Taken()
        proposals = [(s, e, sc) for (s, e), sc in scores.items() if sc > 0] + rules
        for s, e, score in sorted(proposals, key=lambda p: (-p[2], p[0])):
            if not taken.free(s, e):
                continue
            results.append(self._result(s, e, score))
            taken.add(s, e)
        return results

    def _result(self, start: int, end: int, score: float) -> RecognizerResult:
        return self._found(start, end, round(score, 2), is_score_enhanced_by_context=True)
