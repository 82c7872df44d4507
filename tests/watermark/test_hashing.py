"""The vectorised SipHash-2-4 against the reference vectors and a plain implementation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from watermark.hashing import row_hashes, siphash24

_M = (1 << 64) - 1


def _reference(key: bytes, msg: bytes) -> int:
    def rotl(x: int, b: int) -> int:
        return ((x << b) | (x >> (64 - b))) & _M

    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rnd() -> None:
        v[0] = (v[0] + v[1]) & _M; v[1] = rotl(v[1], 13) ^ v[0]; v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & _M; v[3] = rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & _M; v[3] = rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & _M; v[1] = rotl(v[1], 17) ^ v[2]; v[2] = rotl(v[2], 32)

    full = len(msg) // 8 * 8
    words = [msg[i:i + 8] for i in range(0, full, 8)]
    words.append(msg[full:] + bytes(7 - len(msg) % 8) + bytes([len(msg) & 0xFF]))
    for w in words:
        m = int.from_bytes(w, "little")
        v[3] ^= m
        rnd()
        rnd()
        v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def _vector(key: bytes, msgs: list[bytes]) -> list[int]:
    data = np.frombuffer(b"".join(msgs), dtype=np.uint8)
    lens = np.array([len(m) for m in msgs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    return [int(x) for x in siphash24(key, data, starts, lens)]


def test_published_vectors() -> None:
    key = bytes(range(16))
    # Aumasson & Bernstein, SipHash paper, appendix A: messages 00 01 02 ... of length 0, 1, 8
    assert _vector(key, [b"", b"\x00", bytes(range(8))]) == [
        0x726FDB47DD0E0E31, 0x74F839C593DC67FD, 0x93F5F5799A932462]


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.lists(st.binary(max_size=70), min_size=1, max_size=20))
def test_matches_the_plain_implementation(key: bytes, msgs: list[bytes]) -> None:
    assert _vector(key, msgs) == [_reference(key, m) for m in msgs]


def test_row_hashes_depend_on_key_and_text_only() -> None:
    a = row_hashes(pa.array(["x", "yy", "张三", ""]), b"k")
    b = row_hashes(pa.array(["", "张三", "yy", "x"]), b"k")
    assert a.tolist() == b.tolist()[::-1]
    assert row_hashes(pa.array(["x"]), b"other")[0] != a[0]
    # a long key in the batch changes nothing for the others
    mixed = row_hashes(pa.array(["z" * 300, "x", "yy"]), b"k")
    assert mixed[1:].tolist() == a[:2].tolist()
    assert mixed[0] == row_hashes(pa.array(["z" * 300]), b"k")[0]
    assert len(set(row_hashes(pa.array([str(i) for i in range(10000)]), b"k").tolist())) == 10000
