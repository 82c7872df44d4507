"""The name candidate finder reads the part of jieba's dictionary it consults straight from
jieba's dictionary file (no tokenizer, no tagger loaded: a free text with a surname
character but no place for a name is cleared in a fraction of jieba's start-up), and
finds exactly the places it finds with jieba's own tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.desensitize.data import prose_gen

REPO = Path(__file__).resolve().parents[2]


def _records() -> list[str]:
    data = Path(__file__).parent / "data"
    return [json.loads(line)["text"] for name in ("labelled_dev.jsonl", "labelled_heldout.jsonl")
            for line in (data / name).read_text(encoding="utf-8").splitlines() if line]


def test_clearing_a_text_loads_neither_jieba_nor_presidio() -> None:
    code = (
        "import json, sys\n"
        "from desensitize.scan_plan import plan\n"
        "texts = ['月度统计报表', '信用评估', '政务服务办件', '人口普查数据比对']\n"
        "found = [plan(t, ('PERSON', 'LOCATION', 'PHONE_NUMBER')) for t in texts]\n"
        "print(json.dumps([found, sorted({m.split('.')[0] for m in sys.modules})]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=True)
    found, loaded = json.loads(proc.stdout)
    assert found == [[], [], [], []]
    assert not {"jieba", "presidio_analyzer", "spacy"} & set(loaded), loaded


@pytest.fixture(scope="module")
def jieba_tables() -> tuple[dict[str, int], dict[str, str]]:
    from desensitize.name_candidates import dictionary

    return dictionary()


def test_the_tables_are_jiebas_words_the_finder_can_tell_apart(
        jieba_tables: tuple[dict[str, int], dict[str, str]]) -> None:
    from desensitize.name_candidates import _KNOWN_NAME_TAGS, _WORD_FREQ, finder_tables

    freq, tags = jieba_tables
    own_freq, own_tags = finder_tables()
    assert own_freq == {w: f for w, f in freq.items() if f >= _WORD_FREQ}
    assert own_tags == {w: t for w, t in tags.items()
                        if freq.get(w, 0) >= _WORD_FREQ
                        or (len(w) == 3 and t in _KNOWN_NAME_TAGS)}
    assert len(own_freq) > 50_000  # the file was read, not an empty stand-in


def test_the_finder_finds_the_places_it_finds_with_jiebas_own_tables(
        jieba_tables: tuple[dict[str, int], dict[str, str]]) -> None:
    from desensitize.name_candidates import CandidateFinder

    own, full = CandidateFinder(), CandidateFinder()
    full.freq, full.tags = jieba_tables
    texts = _records() + ["\n".join(prose_gen.policy_prose())[:20000]] + [
        "王", "王五", "和王五", "2024年年底", "司马光", "智慧城市", "月度统计报表", "信用评估",
        "政务服务办件", "人口普查数据比对", "温家宝说", "申请人马晓东", "希拉克", "克拉"]
    checked = 0
    for text in texts:
        for _off, clause in full.clauses(text):
            assert own.points(clause) == full.points(clause), clause
            checked += 1
        for i in range(len(text)):
            for cued in (False, True):
                assert own._surname_at(text, i, cued) == full._surname_at(text, i, cued), (text, i)
    assert checked > 500
