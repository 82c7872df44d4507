"""The scanner's direct recognizer calls against ``AnalyzerEngine.analyze`` on text nobody
here wrote: PII glued to odd separators (zero-width spaces, no-break spaces, full-width
digits and colons, tabs, combining marks, emoji, lone control characters)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PIECES = ["张伟", "欧阳娜娜", "王北京", "联系人：李雷", "姓名:韩梅梅", "13812345678", "１３８１２３４５６７８",
          "110101199003071234", "济南市历下区经十路12号", "阳光小区3号楼2单元501室", "z@example.com",
          "192.168.1.1", "鲁A12345", "6222021234567890123", "E12345678", "反映", "同志", "。", "，"]
ODD = ["\u200b", "\u00a0", "\u3000", "\t", "：", "\u0301", "😀", "\x07", "-", "·", "\ufeff", "\n", " "]


@lru_cache(maxsize=1)
def _engines() -> tuple[Any, Any]:
    from desensitize.text_scan import DirectAnalyzer, build_analyzer

    engine = build_analyzer()
    return engine, DirectAnalyzer(engine)


def _key(results: Sequence[Any]) -> set[tuple[str, int, int, float, object]]:
    from presidio_analyzer import RecognizerResult

    name = RecognizerResult.RECOGNIZER_NAME_KEY
    return {(r.entity_type, r.start, r.end, round(r.score, 6), r.recognition_metadata[name]) for r in results}


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.sampled_from(ODD),
                          st.text(alphabet=st.characters(codec="utf-8"), max_size=4)), max_size=14))
def test_direct_calls_report_what_the_engine_reports_on_odd_text(parts: list[str]) -> None:
    engine, direct = _engines()
    text = "".join(parts)
    entities = tuple(r.supported_entities[0] for r in engine.registry.recognizers)
    ours = _key(direct.analyze(text, entities))
    theirs = _key(engine.analyze(text, language="zh", entities=list(entities)))
    # the engine also drops a span contained in a same-entity span of no lower score
    dropped = {r for r in ours - theirs
               if any(t[0] == r[0] and t[1] <= r[1] and r[2] <= t[2] and t[3] >= r[3] for t in theirs)}
    assert ours - dropped == theirs, text


STRUCTURED = ("CN_RESIDENT_ID", "CN_USCC", "CN_BANK_CARD", "PHONE_NUMBER", "CN_LICENSE_PLATE",
              "CN_PASSPORT", "EMAIL_ADDRESS", "IP_ADDRESS", "LOCATION")


@lru_cache(maxsize=1)
def _scanner() -> Any:
    from desensitize.text_scan import TextScanner

    return TextScanner(entities=STRUCTURED)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.sampled_from(ODD),
                          st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
                                  max_size=4)), max_size=14))
def test_the_windows_lose_no_structured_finding_on_odd_text(parts: list[str]) -> None:
    """The scan plan analyses only windows around digits and letters (and address
    anchors); it must find what an analysis of the whole text finds."""
    import pytest

    from desensitize import scan_plan
    from desensitize.errors import ScanInputError

    scanner = _scanner()
    text = "".join(parts)
    try:
        planned = {(f.entity, f.start, f.end) for f in scanner.scan(text)}
    except ScanInputError:
        return  # refused as binary: nothing reported either way
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scan_plan, "plan", lambda piece, entities, taken=(): [
            (("LOCATION",), [(0, len(piece))])] * ("LOCATION" in entities) + [
            (tuple(e for e in entities if e not in ("PERSON", "LOCATION")), [(0, len(piece))])])
        whole = {(f.entity, f.start, f.end) for f in scanner.scan(text)}
    assert planned == whole, text
