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


_SMALL = "王府井 120 ns\n张贴 1500 v\n王五 3 nr\n张丹 0 nr\n张丹丹 2 nr\n高效 2000 a\n"


def test_the_tables_are_kept_and_the_kept_copy_is_read(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import desensitize.name_candidates as nc

    src = tmp_path / "dict.txt"
    src.write_text(_SMALL, encoding="utf-8")
    made = nc.tables_of(src, tmp_path / "cache")
    assert made == ({"王府井": 120, "张贴": 1500, "高效": 2000},
                    {"王府井": "ns", "张贴": "v", "高效": "a", "张丹丹": "nr"})
    (kept,) = (tmp_path / "cache").iterdir()

    def no_derivation(text: str) -> None:
        raise AssertionError("derived again although a good copy is kept")

    monkeypatch.setattr(nc, "_derive", no_derivation)
    assert nc.tables_of(src, tmp_path / "cache") == made
    assert kept.stat().st_mode & 0o077 == 0  # private, like everything the service writes


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "not marshal"])
def test_a_damaged_kept_copy_is_rebuilt_not_trusted(tmp_path: Path, damage: str) -> None:
    import hashlib

    import desensitize.name_candidates as nc

    src = tmp_path / "dict.txt"
    src.write_text(_SMALL, encoding="utf-8")
    made = nc.tables_of(src, tmp_path / "cache")
    (kept,) = (tmp_path / "cache").iterdir()
    data = kept.read_bytes()
    if damage == "truncated":
        kept.write_bytes(data[:-7])
    elif damage == "flipped":  # a payload that still unmarshals but names other words
        kept.write_bytes(data[:40] + bytes([data[40] ^ 1]) + data[41:])
    elif damage == "empty":
        kept.write_bytes(b"")
    else:  # a valid digest over a payload that is not the tables
        junk = b"\x00not marshal"
        kept.write_bytes(hashlib.sha256(junk).digest() + junk)
    assert nc.tables_of(src, tmp_path / "cache") == made
    assert nc.tables_of(src, None) == made
    assert kept.read_bytes() == data  # rewritten whole


def test_another_dictionary_never_gets_the_kept_tables_of_the_first(tmp_path: Path) -> None:
    import desensitize.name_candidates as nc

    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text(_SMALL, encoding="utf-8")
    second.write_text(_SMALL.replace("张贴 1500 v", "张贴 5 v"), encoding="utf-8")
    a = nc.tables_of(first, tmp_path / "cache")
    b = nc.tables_of(second, tmp_path / "cache")
    assert "张贴" in a[0] and "张贴" not in b[0]
    # the first dictionary's copy made way for the second's (no pile of stale copies)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert nc.tables_of(first, tmp_path / "cache") == a


def test_a_cache_folder_that_cannot_be_written_costs_only_time(tmp_path: Path) -> None:
    import desensitize.name_candidates as nc

    src = tmp_path / "dict.txt"
    src.write_text(_SMALL, encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert nc.tables_of(src, blocker / "cache") == nc.tables_of(src, None)
    assert not (tmp_path / "file.tmp").exists() and blocker.read_text() == "x"


def test_where_tables_are_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from desensitize.name_candidates import cache_dir

    monkeypatch.setenv("QUANGUARD_CACHE_DIR", str(tmp_path / "q"))
    assert cache_dir() == tmp_path / "q"
    monkeypatch.setenv("QUANGUARD_CACHE_DIR", "")
    assert cache_dir() is None
    monkeypatch.delenv("QUANGUARD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "quanguard"


def test_a_change_to_the_derivation_never_reads_tables_kept_by_the_old_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import desensitize.name_candidates as nc

    src = tmp_path / "dict.txt"
    src.write_text(_SMALL, encoding="utf-8")
    before = nc.tables_of(src, tmp_path / "cache")
    monkeypatch.setattr(nc, "_WORD_FREQ", 1000)  # a threshold changed in a later release
    after = nc.tables_of(src, tmp_path / "cache")
    assert "王府井" in before[0] and "王府井" not in after[0]
    monkeypatch.setattr(nc, "_KNOWN_NAME_TAGS", frozenset({"nz"}))
    assert "张丹丹" not in nc.tables_of(src, tmp_path / "cache")[1]


def test_no_home_folder_keeps_no_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    # a service user without a home (and no cache setting): nothing kept, nothing raised
    from desensitize.name_candidates import cache_dir

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("QUANGUARD_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert cache_dir() is None
