"""The scan plan's windows: the structured entities' windows, found as clusters of runs
in one pass, must be the merged windows of every run."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.scan_plan import _merge, _or_whole, structured_windows
from tests.desensitize.data import pii_gen, prose_gen

_RUN = re.compile(r"[0-9A-Za-z０-９Ａ-Ｚａ-ｚ@＠]+")


def _windows_of_every_run(text: str) -> list[tuple[int, int]]:
    spans = [(m.start() - 16, m.end() + 6) for m in _RUN.finditer(text)]
    return _or_whole(_merge(spans, len(text)), len(text))


def test_structured_windows_are_the_merged_windows_of_every_run() -> None:
    data = Path(__file__).parent / "data"
    texts = [json.loads(line)["text"] for path in sorted(data.glob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts += list(prose_gen.policy_prose())
    texts.append("\n".join(str(r["text"]) for r in pii_gen.labelled("heldout", 300, seed=7)))
    rng = random.Random(3)
    pad = "政" * 300  # windows covering most of a text give way to the whole text
    for gap in range(15, 30):  # runs whose windows just meet, or just miss
        texts.append(pad + ("王" * gap).join(rng.choice(["a1", "１２", "x@y"]) for _ in range(8)) + pad)
    texts += ["", "a", "王", "a" + "王" * 22 + "b", "a" + "王" * 23 + "b", "王" * 40 + "1" + "王" * 40]
    for text in texts:
        assert structured_windows(text) == _windows_of_every_run(text), text


@settings(deadline=None, max_examples=300)
@given(st.lists(st.tuples(st.text(alphabet="a1＠", min_size=1, max_size=3),
                          st.text(alphabet=" 王，\n", min_size=1, max_size=40)), max_size=12),
       st.integers(0, 400))
def test_any_text_gets_the_merged_windows_of_every_run(parts: list[tuple[str, str]], pad: int) -> None:
    text = "".join(run + gap for run, gap in parts) + "政" * pad
    assert structured_windows(text) == _windows_of_every_run(text)


def test_address_anchors_are_those_of_the_three_branches() -> None:
    """The anchor pattern starts with a lookahead on its branches' first characters; it
    must find what the branches alone find."""
    from desensitize.scan_plan import _ADDRESS_ANCHOR, _NUM

    plain = re.compile(rf"{_NUM}(?:号|栋|幢|座|单元|层|楼|室|户|弄|院)|[A-Za-z](?:座|栋|幢|区)"
                       rf"|(?:路|街|巷|道|村|小区|大厦|公寓|花园){_NUM}")
    rng = random.Random(4)
    texts = [pii_gen.address(rng) for _ in range(500)] + list(prose_gen.policy_prose())
    texts += ["小区３号", "大厦十二层", "公寓B座", "花园二〇", "路一二三四", "A区", "甲12号院"]
    for text in texts:
        assert [m.span() for m in _ADDRESS_ANCHOR.finditer(text)] == [m.span() for m in plain.finditer(text)]
