"""Merkle tree hashing, inclusion and consistency proofs per RFC 6962 §2.1
(algorithms as restated in RFC 9162 §2.1).

* leaf hash  = SHA-256(0x00 || leaf bytes)
* node hash  = SHA-256(0x01 || left || right)
* MTH(D[n]) splits at k, the largest power of two smaller than n.

Leaf indices are 0-based here; the trail's ``seq`` s is leaf index s - 1.
Verifiers return ``None`` or raise ``ProofInvalid`` (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from monitor.errors import ProofInvalid

HASH_SIZE = 32  # SHA-256 and SM3 both
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 6962: MTH({}) = SHA-256()

#: The tree's hash: SHA-256 (RFC 6962) or, in the gm crypto suite, SM3 — same structure.
Digest = Callable[[bytes], bytes]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes, h: Digest = sha256) -> bytes:
    return h(b"\x00" + data)


def node_hash(left: bytes, right: bytes, h: Digest = sha256) -> bytes:
    return h(b"\x01" + left + right)


def _require_hashes(**named: bytes | Sequence[bytes]) -> None:
    """Raise ProofInvalid unless every named value (or list element) is 32 bytes long."""
    for name, value in named.items():
        items = [value] if isinstance(value, bytes | bytearray) else list(value)
        for item in items:
            if not isinstance(item, bytes | bytearray) or len(item) != HASH_SIZE:
                size = len(item) if isinstance(item, bytes | bytearray) else "?"
                raise ProofInvalid(f"{name}: a {size}-byte value is not a SHA-256 hash")


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Accumulator:
    """Incremental tree head: the "frontier" of perfect subtrees (a compact range).

    ``frontier`` lists the roots of the perfect subtrees that make up the first
    ``size`` leaves, largest first. It can be saved and resumed (retention keeps it at
    the purge anchor so the root can still be recomputed after old leaves are gone).
    """

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = (), *, h: Digest = sha256):
        self._h = h
        if len(frontier) != size.bit_count():
            raise ValueError("frontier does not match size")
        self.size = size
        self._stack: list[tuple[int, bytes]] = []
        remaining = size
        for node in frontier:
            height = remaining.bit_length() - 1
            self._stack.append((height, node))
            remaining -= 1 << height

    def append(self, leaf: bytes) -> None:
        height, node = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            node = node_hash(left, node, self._h)
            height += 1
        self._stack.append((height, node))
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    @property
    def frontier(self) -> tuple[bytes, ...]:
        return tuple(h for _, h in self._stack)

    def root(self) -> bytes:
        if not self._stack:
            return self._h(b"")  # RFC 6962: MTH({}) = HASH()
        acc = self._stack[-1][1]
        for _, node in reversed(self._stack[:-1]):
            acc = node_hash(node, acc, self._h)
        return acc


def tree_root(leaves: Sequence[bytes], *, h: Digest = sha256) -> bytes:
    """MTH of the given leaf hashes."""
    acc = Accumulator(h=h)
    acc.extend(leaves)
    return acc.root()


def _mth(
    leaves: Sequence[bytes], lo: int, hi: int, known: Mapping[tuple[int, int], bytes] | None = None,
    h: Digest = sha256,
) -> bytes:
    if known:
        if (lo, hi) in known:
            return known[(lo, hi)]
        if hi - lo > 1 and lo < max(h for _, h in known):
            # The range reaches into purged leaves: split as RFC 6962 does until the
            # pieces are known subtrees or retained leaves.
            k = _split(hi - lo)
            return node_hash(_mth(leaves, lo, lo + k, known, h), _mth(leaves, lo + k, hi, known, h), h)
    acc = Accumulator(h=h)
    for i in range(lo, hi):
        acc.append(leaves[i])
    return acc.root()


def inclusion_proof(
    leaves: Sequence[bytes],
    index: int,
    size: int | None = None,
    *,
    known: Mapping[tuple[int, int], bytes] | None = None,
    h: Digest = sha256,
) -> list[bytes]:
    """PATH(index, D[size]) of RFC 6962 §2.1.1, from the leaf hashes ``leaves[:size]``.

    ``known`` maps leaf ranges ``(lo, hi)`` to subtree roots already known (the frontier
    at the retention anchor), so purged leaves need not be present in ``leaves``.
    """
    n = len(leaves) if size is None else size
    if not 0 <= index < n <= len(leaves):
        raise ValueError(f"leaf index {index} not in a tree of size {n}")
    path: list[bytes] = []
    lo, hi, m = 0, n, index
    # Walk down from the root, collecting the sibling subtree roots (bottom-up order).
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(_mth(leaves, lo + k, hi, known, h))
            hi = lo + k
        else:
            path.append(_mth(leaves, lo, lo + k, known, h))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes,
    *, h: Digest = sha256,
) -> None:
    """RFC 9162 §2.1.3.2. Raises ProofInvalid unless ``leaf`` is at ``index`` of the tree."""
    # 1. the index must lie inside the tree, and every hash must be a SHA-256 digest
    #    (an empty leaf and root would otherwise "match" for a one-leaf tree)
    if not 0 <= index < size:
        raise ProofInvalid(f"leaf index {index} is outside a tree of size {size}")
    _require_hashes(leaf=leaf, root=root, path=path)
    fn, sn, r = index, size - 1, leaf
    # 2. fold the path, choosing the side from the bits of fn and sn
    for p in path:
        if sn == 0:
            raise ProofInvalid("proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r, h)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p, h)
        fn >>= 1
        sn >>= 1
    # 3. the path must be exactly consumed and end at the signed root
    if sn != 0:
        raise ProofInvalid("proof is shorter than the tree is deep")
    if not hmac.compare_digest(r, root):
        raise ProofInvalid("proof does not lead to the tree root")


def consistency_proof(
    leaves: Sequence[bytes], old_size: int, new_size: int,
    *, known: Mapping[tuple[int, int], bytes] | None = None, h: Digest = sha256,
) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 6962 §2.1.2 (``known`` as in inclusion_proof)."""
    if not 0 < old_size <= new_size <= len(leaves):
        raise ValueError("need 0 < old_size <= new_size <= number of leaves")

    def sub(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [_mth(leaves, lo, hi, known, h)]
        k = _split(n)
        if m <= k:
            return sub(m, lo, lo + k, complete) + [_mth(leaves, lo + k, hi, known, h)]
        return sub(m - k, lo + k, hi, False) + [_mth(leaves, lo, lo + k, known, h)]

    return sub(old_size, 0, new_size, True)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes],
    *, h: Digest = sha256,
) -> None:
    """RFC 9162 §2.1.4.2. Raises ProofInvalid unless the new tree extends the old one."""
    # 1. sizes, and every hash must be a SHA-256 digest. Stricter than RFC 9162 for equal
    #    sizes: two equal non-hashes are refused, not accepted as "the same tree".
    if not 0 < old_size <= new_size:
        raise ProofInvalid(f"cannot prove {old_size} -> {new_size}")
    _require_hashes(old_root=old_root, new_root=new_root, proof=proof)
    if old_size == new_size:
        if proof or not hmac.compare_digest(old_root, new_root):
            raise ProofInvalid("same size but different roots or a non-empty proof")
        return
    # 2. if old_size is a power of two, the old root is the first node of the path
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        raise ProofInvalid("empty consistency proof")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    # 3. fold the remaining nodes into both roots
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalid("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr, h)
            sr = node_hash(c, sr, h)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c, h)
        fn >>= 1
        sn >>= 1
    # 4. both roots must match and the path be exactly consumed
    if sn != 0:
        raise ProofInvalid("consistency proof is too short")
    if not (hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)):
        raise ProofInvalid("consistency proof does not match the tree heads")


@dataclass(frozen=True)
class InclusionProof:
    """A self-contained proof that leaf ``seq`` is in the tree of ``tree_size`` leaves."""

    seq: int
    tree_size: int
    leaf_hash: bytes
    path: tuple[bytes, ...]
    first_seq: int = 1  # seq of leaf 0 (a later trail generation starts above 1)

    def verify(self, root: bytes, *, h: Digest = sha256) -> None:
        verify_inclusion(self.leaf_hash, self.seq - self.first_seq, self.tree_size, self.path,
                         root, h=h)


def frontier_ranges(size: int) -> list[tuple[int, int]]:
    """The leaf ranges of the perfect subtrees whose roots form the frontier of ``size``."""
    out, lo = [], 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            out.append((lo, lo + (1 << bit)))
            lo += 1 << bit
    return out
