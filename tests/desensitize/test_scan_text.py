"""Text scanning: chunking keeps offsets, batch entry point, redaction, context words,
bad input, offline engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize import ScanInputError, ScanTooLarge, TextScanner
from desensitize.findings import Finding
from desensitize.name_model import LacTagger
from desensitize.text_scan import chunks
from quanguard.container import Container
from tests.desensitize.data import pii_gen, prose_gen


@pytest.fixture(scope="module")
def scanner() -> TextScanner:
    return TextScanner(chunk_size=300, overlap=40)


TICKET = "市民王建国（电话13812345678）反映历下区经十路123号噪音扰民。"


def test_offsets_survive_chunking(scanner: TextScanner) -> None:
    filler = "全市已整合1228项政务服务事项，网上可办率达到99.3%。" * 40
    text = filler + TICKET + filler + TICKET
    found = scanner.scan(text, with_text=True)
    assert [f.text for f in found] == ["王建国", "13812345678", "历下区经十路123号"] * 2
    assert all(text[f.start:f.end] == f.text for f in found)


@pytest.mark.parametrize("size,overlap", [(50, 10), (97, 20), (1000, 0)])
def test_chunks_cover_the_text(size: int, overlap: int) -> None:
    text = ("一二三。四五六七八九十" * 30) + "x" * 333
    pieces = list(chunks(text, size, overlap))
    covered: set[int] = set()
    for off, piece in pieces:
        assert text[off:off + len(piece)] == piece and len(piece) <= size
        covered.update(range(off, off + len(piece)))
    assert covered == set(range(len(text)))


def test_batch_entry_point(scanner: TextScanner) -> None:
    out = list(scanner.scan_many(["", TICKET, "没有个人信息。"]))
    assert [len(x) for x in out] == [0, 3, 0]


def test_redact(scanner: TextScanner) -> None:
    assert scanner.redact(TICKET) == "市民<PERSON>（电话<PHONE_NUMBER>）反映<LOCATION>噪音扰民。"


def test_context_words_raise_a_weak_match(scanner: TextScanner) -> None:
    legacy = "370102800101123"  # 15-digit legacy ID: reported only next to a context word
    assert scanner.scan(f"编码{legacy}") == []
    assert [f.entity for f in scanner.scan(f"身份证号码：{legacy}")] == ["CN_RESIDENT_ID"]


def test_serial_number_context_lowers_a_card(scanner: TextScanner) -> None:
    card = "6222021234567890128"
    assert [f.entity for f in scanner.scan(f"银行卡号{card}")] == ["CN_BANK_CARD"]
    assert scanner.scan(f"订单编号{card}") == []


def test_binary_and_huge_text_are_refused() -> None:
    s = TextScanner(max_chars=1000)
    with pytest.raises(ScanInputError):
        s.scan("abc\x00def")
    with pytest.raises(ScanTooLarge):
        s.scan("好" * 1001)
    with pytest.raises(ScanInputError):
        TextScanner(entities=("NOPE",))


def test_engine_is_offline_and_chinese(scanner: TextScanner) -> None:
    engine = scanner.engine
    assert engine.supported_languages == ["zh"]  # type: ignore[attr-defined]
    names = {r.supported_entities[0] for r in engine.registry.recognizers}  # type: ignore[attr-defined]
    assert names == {"PERSON", "LOCATION", "PHONE_NUMBER", "EMAIL_ADDRESS", "IP_ADDRESS", "CN_RESIDENT_ID",
                     "CN_BANK_CARD", "CN_USCC", "CN_LICENSE_PLATE", "CN_PASSPORT"}


def test_make_redactor(container: Container) -> None:
    from quanguard.services.scan import make_redactor

    redact = make_redactor(container)
    assert redact("用于核查联系人张三丰的电话13812345678") == "用于核查联系人<PERSON>的电话<PHONE_NUMBER>"
    assert redact("") == ""


def test_batched_scan_equals_scan_per_text_on_held_out_records() -> None:
    """The batch entry point tags all records' clauses in one model call; it must find
    exactly what one ``scan`` per record finds (offsets, scores), on every record."""
    import json
    from pathlib import Path

    data = Path(__file__).parent / "data" / "labelled_heldout.jsonl"
    texts = [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines() if line]
    texts += ["", TICKET, TICKET]  # empty and repeated records in the same batch
    scanner = TextScanner(batch_size=64)
    assert list(scanner.scan_many(texts)) == [scanner.scan(t) if t else [] for t in texts]


def test_batched_model_paths_do_not_outlive_the_batch() -> None:
    """Paths tagged ahead for a batch serve only inside it: a clause tagged there is
    tagged afresh afterwards (no stale or cross-request cache)."""
    from desensitize.name_model import _AHEAD, tagger

    clause = "联系不上张丹，电话无人接听。"
    fresh = tagger().words(clause)
    with tagger().batch([clause]):
        assert _AHEAD.get() and tagger().words(clause) == fresh
    assert _AHEAD.get() is None
    assert tagger().words(clause) == fresh


def test_a_bad_text_in_a_batch_is_refused() -> None:
    scanner = TextScanner()
    with pytest.raises(ScanInputError):
        list(scanner.scan_many([TICKET, "abc\x00def", TICKET]))


def test_a_clause_is_tagged_the_same_whatever_shares_its_batch() -> None:
    """The exported encoder is not blind to padding; a record's names must not depend on
    which other records share its batch (failed before: 33 of 488 ticket clauses were
    tagged differently alone than in a batch)."""
    from desensitize.name_model import tagger

    clause = "，来电人姓名邓斌，来电内容：山东省济南市槐荫区银座花园20号楼4单"
    alone = tagger().words(clause)
    longer = "在济南市历下区燕子山小区28号楼2单元反映噪音扰民问题，请相关部门尽快核实处理并回复来电人。"
    assert tagger().words_many([clause, longer, clause[:12]])[0] == alone


def test_a_batch_without_person_never_loads_the_name_model() -> None:
    from desensitize.name_model import tagger

    tagger.cache_clear()
    scanner = TextScanner(entities=("PHONE_NUMBER",))
    out = list(scanner.scan_many([TICKET, "王建国说：联系人张丹。"]))
    assert [[f.entity for f in fs] for fs in out] == [["PHONE_NUMBER"], []]
    assert tagger.cache_info().currsize == 0


def _records() -> list[str]:
    import json
    from pathlib import Path

    data = Path(__file__).parent / "data"
    return [json.loads(line)["text"] for name in ("labelled_dev.jsonl", "labelled_heldout.jsonl")
            for line in (data / name).read_text(encoding="utf-8").splitlines() if line]


def test_direct_recognizer_calls_find_what_the_analyzer_engine_finds() -> None:
    """The scanner calls the engine's recognizers itself (no per-call engine overhead);
    on every labelled record, on policy prose and on a long mixed text it must report
    what ``AnalyzerEngine.analyze`` reports (entity, offsets, score, recognizer)."""
    from desensitize.text_scan import DirectAnalyzer, build_analyzer

    engine = build_analyzer()
    direct = DirectAnalyzer(engine)
    prose = "\n".join(prose_gen.policy_prose())[:6000]
    texts = _records() + [prose, prose + "\n".join(_records()[:40]), "", "。"]
    everything = tuple(r.supported_entities[0] for r in engine.registry.recognizers)  # type: ignore[attr-defined]

    def key(results: Sequence[Any]) -> set[tuple[str, int, int, float, object]]:
        from presidio_analyzer import RecognizerResult

        name = RecognizerResult.RECOGNIZER_NAME_KEY
        return {(r.entity_type, r.start, r.end, round(r.score, 6), r.recognition_metadata[name])
                for r in results}

    for entities in (everything, ("PERSON",), ("LOCATION",), ("PHONE_NUMBER", "CN_RESIDENT_ID")):
        for text in texts:
            ours = key(direct.analyze(text, entities))
            theirs = key(engine.analyze(text, language="zh", entities=list(entities)))  # type: ignore[attr-defined]
            # the engine also drops a span contained in a same-entity span of no lower
            # score; the scanner's resolution drops it too
            dropped = {r for r in ours - theirs
                       if any(t[0] == r[0] and t[1] <= r[1] and r[2] <= t[2] and t[3] >= r[3] for t in theirs)}
            assert ours - dropped == theirs, text


def test_anchored_address_search_finds_what_a_scan_of_every_position_finds() -> None:
    """Address patterns are tried only before a road or place suffix followed by a
    number; on addresses of every shape, labelled records and prose the matches must be
    those of ``finditer`` over the whole text, in the same order."""
    import random

    from desensitize.recognizers.location import _grammar, _matches

    rng = random.Random(5)
    texts = _records() + list(prose_gen.policy_prose())
    texts += [pii_gen.address(rng, full_region=rng.random() < 0.5) for _ in range(800)]
    texts += ["和平路北街123号", "花园花园小区花园3号楼", "路1路2路3号", "经十路" + "1" * 300 + "号",
              "东山村12号东山村13号", "惠州街B座", "阳光小区3号楼2单元501室阳光小区3号楼", "",
              "幸福里甲12号院", "一二三路四五六号七八九小区十栋"]
    for rx, _score, hint, reach in _grammar().patterns:
        for text in texts:
            got = [(m.span(), m.span("anchor")) for m in _matches(text, rx, hint, reach)]
            assert got == [(m.span(), m.span("anchor")) for m in rx.finditer(text)], text


def test_the_name_model_does_not_look_inside_an_address() -> None:
    """章丘区, 解放路, 泉景花园 start with surnames; once the address is found there is no
    name to look for in it (the model is the costliest step)."""
    from desensitize.name_model import tagger

    scanner = TextScanner()
    text = "地址：章丘区解放路986号泉景花园2号楼5单元401室，电话13812345678"
    assert not [j for j in scanner._jobs(text) if "PERSON" in j[1]]
    seen: list[str] = []
    real = type(tagger())._tag
    def spy(self: LacTagger, clauses: Sequence[str]) -> list[list[int]]:
        seen.extend(clauses)
        return real(self, clauses)

    type(tagger())._tag = spy  # type: ignore[method-assign]
    try:
        found = scanner.scan(text)
    finally:
        type(tagger())._tag = real  # type: ignore[method-assign]
    assert [f.entity for f in found] == ["LOCATION", "PHONE_NUMBER"] and seen == []


def test_memoised_segmentation_equals_jieba() -> None:
    """The tagger memoises jieba's HMM pass over runs of unknown characters; its words
    and tags must be jieba's own, on records, addresses and pieces cut anywhere."""
    import jieba.posseg

    from desensitize.nlp import clear_caches, segment

    texts = _records()[:300]
    texts += [t[i:i + n] for t in texts[:100] for i in range(0, len(t), 5) for n in (7, 16)]
    texts += ["经十路1279号舜耕花园", "区舜耕路724号金域华府", "称其在经十路", "", "   ", "abc123"]
    clear_caches()
    for _ in range(2):  # cold, then from the cache
        assert [segment(t) for t in texts] == [
            tuple((p.word, p.flag) for p in jieba.posseg.dt.cut(t)) for t in texts]
        segment.cache_clear()


def test_memoised_name_start_test_equals_the_plain_one() -> None:
    """``surname_at`` is memoised on the five characters around the position; at every
    position of the records, prose and the starts and ends of texts it must answer as
    the unmemoised test does."""
    from desensitize.name_candidates import finder

    find = finder()
    prose = "\n".join(prose_gen.policy_prose())[:20000]
    texts = _records() + [prose, "王", "王五", "和王五", "2024年年底", "司马光", "智慧城市"]
    find.clear_memo()
    for text in texts:
        for i in range(len(text)):
            for cued in (False, True):
                assert find.surname_at(text, i, cued=cued) == find._surname_at(text, i, cued), (text, i)


def _points_by_scanning(find: Any, clause: str) -> list[tuple[int, bool]]:
    """``CandidateFinder.points`` written as a scan of every character (its definition)."""
    from desensitize.name_candidates import _DOTS, FOREIGN

    out = [(i, False) for i in range(len(clause) - 1)
           if clause[i] in find._starts and regex.match(r"\p{Han}", clause[i + 1])
           and find._surname_at(clause, i, False)]
    foreign = f"[{''.join(sorted(FOREIGN))}]{{2,}}"
    out += [(m.start(), True) for m in regex.finditer(foreign, clause) if find._foreign(m.group())]
    end = 0
    for i in range(len(clause)):
        if i < end:
            continue  # inside the cue found last
        for word in find._cues.get(clause[i], ()):
            if clause.startswith(word, i):  # the longest cue starting here
                end = i + len(word)
                p = (i, True) if word in _DOTS else (find._cue_point(clause, i, end), False)
                if p[0] is not None:
                    out.append(p)
                break
    return out


def test_name_start_points_equal_a_scan_of_every_character() -> None:
    """``points`` finds surnames and cues with pattern scans; on the records, prose, the
    development-like Faker sentences and edge cases it must find what a scan of every
    character finds, in the same order."""
    from desensitize.name_candidates import finder

    find = finder()
    prose = list(prose_gen.policy_prose())
    texts = _records() + prose + ["王", "", "王五", "·", "买买提·艾力", "联系人", "联系人：王",
                                  "姓名：司马光", "李鹏说", "希拉克说", "江主席", "来电人王北京，"]
    find.clear_memo()
    for text in texts:
        for _, clause in find.clauses(text) if text else [(0, text)]:
            assert find.points(clause) == _points_by_scanning(find, clause), clause


def _resolve_greedily(findings: list[Any]) -> list[Any]:
    """``resolve`` by its definition: greedy over all findings, best first."""
    from desensitize.recognizers import PRIORITY
    from desensitize.spans import Taken

    rank = {e: i for i, e in enumerate(PRIORITY)}
    chosen, taken = [], Taken()
    for f in sorted(set(findings), key=lambda f: (-f.score, rank.get(f.entity, 99), -(f.end - f.start), f.start)):
        if taken.free(f.start, f.end):
            chosen.append(f)
            taken.add(f.start, f.end)
    return sorted(chosen, key=lambda f: (f.start, f.end))


_ENTITY = st.sampled_from(["PERSON", "LOCATION", "PHONE_NUMBER", "CN_RESIDENT_ID", "OTHER", "ANOTHER"])
_FINDING = st.builds(Finding, _ENTITY, st.integers(0, 40), st.integers(0, 40),
                     st.sampled_from([0.5, 0.6, 0.85, 0.95]), st.none())


@settings(deadline=None, max_examples=500)
@given(st.lists(st.one_of(_FINDING, _FINDING.filter(lambda f: f.end > f.start)), max_size=25))
def test_resolving_group_by_group_chooses_what_the_greedy_pass_over_all_chooses(findings: list[Any]) -> None:
    """Overlapping groups, lone findings, ties, duplicates, empty spans, unranked entities."""
    from desensitize.text_scan import resolve

    findings = [f for f in findings if f.end >= f.start]
    assert resolve(findings) == _resolve_greedily(findings)
    assert resolve(findings + findings[:3]) == _resolve_greedily(findings)


def test_resolving_real_scans_chooses_what_the_greedy_pass_chooses() -> None:
    from desensitize import text_scan

    seen: list[list[Any]] = []
    real = text_scan.resolve
    def spy(findings: Any) -> list[Any]:
        seen.append(list(findings))
        return real(seen[-1])

    text_scan.resolve = spy
    try:
        list(TextScanner().scan_many(_records() + ["\n".join(_records()[:200])]))
    finally:
        text_scan.resolve = real
    assert sum(map(len, seen)) > 1000
    assert all(real(f) == _resolve_greedily(f) for f in seen)


def test_empty_spans_at_one_place_come_out_best_first_as_in_the_greedy_pass() -> None:
    from desensitize.text_scan import resolve

    for order in ([0.5, 0.9, 0.6], [0.9, 0.6, 0.5], [0.6, 0.5, 0.9]):
        findings = [Finding(e, 5, 5, sc) for e, sc in zip(("PERSON", "LOCATION", "OTHER"), order, strict=True)]
        assert resolve(findings) == _resolve_greedily(findings)


def _origin(starts: list[tuple[int, int, int]], pos: int) -> tuple[int, int] | None:
    i = max((k for k, (j, _, _) in enumerate(starts) if j <= pos), default=-1)
    if i < 0:
        return None
    j, p, n = starts[i]
    return (j, p) if pos < j + n else None


@settings(deadline=None, max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 6)), min_size=1, max_size=6),
       st.lists(st.tuples(st.sampled_from(["PERSON", "LOCATION"]), st.integers(0, 60), st.integers(0, 8),
                          st.sampled_from([0.3, 0.45, 0.5, 0.9])), max_size=20))
def test_results_are_placed_only_inside_one_window(gaps: list[tuple[int, int]], raw: list[Any]) -> None:
    """A result is kept when above its entity's threshold and inside one window of the
    joined text (by definition: its first and last characters in the same window)."""
    from types import SimpleNamespace

    starts, pos, piece = [], 1, 0
    for gap, length in gaps:  # joined windows one full stop apart, from anywhere in the piece
        piece += gap
        starts.append((pos, piece, length))
        pos, piece = pos + length + 1, piece + length
    scanner = TextScanner()
    results = [SimpleNamespace(entity_type=e, start=s, end=s + n, score=sc) for e, s, n, sc in raw]
    expected = []
    for r in results:
        base = _origin(starts, r.start)
        if r.score >= scanner._threshold(r.entity_type) and base is not None and _origin(starts, r.end - 1) == base:
            s = base[1] + r.start - base[0]
            expected.append((r, (s, s + r.end - r.start), r.score))
    assert list(scanner._placed(results, starts)) == expected
