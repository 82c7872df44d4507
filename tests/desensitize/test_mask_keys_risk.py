"""Key material (0600 files, lengths, never shown) and k-anonymity before/after masking."""

from __future__ import annotations

import stat
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.errors import KeyMaterialError
from desensitize.keys import Keyring, load_key_dir, load_key_file, load_keyring
from desensitize.risk import KAnonymity, guess_quasi_identifiers, k_anonymity


def test_key_dir_creates_private_key_once(tmp_path: Path) -> None:
    d = tmp_path / "keys"
    k1 = load_key_dir(d)
    f = d / "mask.key"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert load_key_dir(d).derive("hash") == k1.derive("hash")
    with pytest.raises(KeyMaterialError, match="no masking key"):
        load_key_dir(tmp_path / "other", create=False)


@pytest.mark.parametrize("content", [b"", b"short", b"x" * 31, b"x" * 33, b"zz" * 32, b"ab" * 33])
def test_wrong_key_length_is_clear_and_secret_free(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "k"
    f.write_bytes(content)
    with pytest.raises(KeyMaterialError) as info:
        load_key_file(f)
    assert "32 bytes" in str(info.value) and str(f) in str(info.value)
    if content:
        assert content.decode(errors="ignore") not in str(info.value) or len(content) < 3


def test_key_file_forms_and_separation(tmp_path: Path) -> None:
    raw = bytes(range(32))
    (tmp_path / "raw").write_bytes(raw)
    (tmp_path / "hex").write_text(raw.hex() + "\n")
    a, b = load_key_file(tmp_path / "raw"), load_key_file(tmp_path / "hex")
    assert a.derive("fpe") == b.derive("fpe")
    assert a.derive("hash") != a.derive("fpe")
    assert len(a.derive("encrypt")) == 64
    assert raw.hex() not in repr(a) and "redacted" in repr(a)
    assert load_keyring(key_file=tmp_path / "raw", key_dir=tmp_path / "kd").derive("x") == a.derive("x")
    with pytest.raises(KeyMaterialError, match="QUANGUARD_KEY_DIR"):
        load_keyring()
    with pytest.raises(KeyMaterialError, match="cannot read"):
        load_key_file(tmp_path / "missing")
    with pytest.raises(KeyMaterialError):
        Keyring(b"short")


def test_k_anonymity_small_example() -> None:
    t = pa.table({"性别": ["男", "男", "女", "女", "女"], "出生年": ["1990", "1990", "1991", "1991", "1985"],
                  "x": ["1", "2", "3", "4", "5"]})
    assert k_anonymity(t.to_batches(max_chunksize=2), ["性别", "出生年"]).k == 1
    assert k_anonymity(t.to_batches(), ["性别"]).k == 2
    counter = KAnonymity(["性别", "gone"])
    counter.update(t.select(["x"]).to_batches()[0])
    assert counter.result().k == 5  # no quasi-identifier left: every row looks the same
    assert KAnonymity(["a"]).result().k is None


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from("xyz")), min_size=1, max_size=60),
       st.integers(1, 7))
def test_k_anonymity_streaming_equals_whole(rows: list[tuple[str, str]], chunk: int) -> None:
    t = pa.table({"q1": [r[0] for r in rows], "q2": [r[1] for r in rows]})
    from collections import Counter

    expected = min(Counter(rows).values())
    assert k_anonymity(t.to_batches(max_chunksize=chunk), ["q1", "q2"]).k == expected


def test_guess_quasi_identifiers() -> None:
    assert guess_quasi_identifiers(["姓名", "出生日期", "性别", "XB", "年龄", "所在区县", "备注", "职业"]) == [
        "出生日期", "性别", "XB", "年龄", "所在区县", "职业"]


def test_k_anonymity_memory_cap() -> None:
    counter = KAnonymity(["q"], cap=10)
    counter.update(pa.record_batch({"q": [str(i) for i in range(50)]}))
    counter.update(pa.record_batch({"q": ["1"]}))
    result = counter.result()
    assert counter.overflow and result.k is None and result.rows == 51
