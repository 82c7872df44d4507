from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from monitor.errors import ProofInvalid
from monitor.merkle import (
    EMPTY_ROOT,
    Accumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)


def ref_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH written literally (recursive), as the oracle."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(str(i).encode()) for i in range(n)]


def test_rfc6962_prefixes() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert tree_root([]) == EMPTY_ROOT
    # Known-answer: the empty-tree root of RFC 6962 test vectors (sha256 of nothing).
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@given(st.integers(0, 70))
def test_root_matches_recursive_definition(n: int) -> None:
    leaves = leaves_of(n)
    assert tree_root(leaves) == ref_mth(leaves)


@given(st.integers(0, 70), st.integers(0, 70))
def test_accumulator_resumes_from_frontier(n: int, extra: int) -> None:
    leaves = leaves_of(n + extra)
    a = Accumulator()
    a.extend(leaves[:n])
    b = Accumulator(n, a.frontier)
    b.extend(leaves[n:])
    assert b.root() == ref_mth(leaves)


@given(st.data())
def test_inclusion_proofs_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 80))
    i = data.draw(st.integers(0, n - 1))
    leaves = leaves_of(n)
    proof = inclusion_proof(leaves, i)
    verify_inclusion(leaves[i], i, n, proof, ref_mth(leaves))


@given(st.data())
def test_forged_inclusion_proofs_fail(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 80))
    i = data.draw(st.integers(0, n - 1))
    leaves = leaves_of(n)
    root = tree_root(leaves)
    proof = inclusion_proof(leaves, i)
    forgery = data.draw(st.sampled_from(
        ["index", "size", "swap", "extra", "missing", "leaf", "flip", "root"]))
    leaf, idx, size, path, r = leaves[i], i, n, list(proof), root
    if forgery == "index":
        idx = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        # leaves are distinct so a proof for i cannot hold at j unless the path is shared;
        assume(inclusion_proof(leaves, idx) != proof or leaves[idx] != leaf)
    elif forgery == "size":
        # a proof for the tree of n leaves presented for a tree of another size
        size = data.draw(st.integers(1, 200).filter(lambda s: s != n))
        big = leaves_of(max(size, n))
        r = tree_root(big[:size])
        assume(not (i < size and inclusion_proof(big[:size], i) == proof))
    elif forgery == "swap":
        assume(len(path) >= 2)
        a, b = data.draw(st.lists(st.integers(0, len(path) - 1), min_size=2, max_size=2,
                                  unique=True))
        assume(path[a] != path[b])
        path[a], path[b] = path[b], path[a]
    elif forgery == "extra":
        pos = data.draw(st.integers(0, len(path)))
        path.insert(pos, data.draw(st.binary(min_size=32, max_size=32)))
    elif forgery == "missing":
        assume(path)
        del path[data.draw(st.integers(0, len(path) - 1))]
    elif forgery == "leaf":
        leaf = leaf_hash(b"forged")
    elif forgery == "flip":
        assume(path)
        j = data.draw(st.integers(0, len(path) - 1))
        path[j] = bytes([path[j][0] ^ 1]) + path[j][1:]
    else:
        r = hashlib.sha256(b"other").digest()
    with pytest.raises(ProofInvalid):
        verify_inclusion(leaf, idx, size, path, r)


@pytest.mark.parametrize(("index", "size"), [(-1, 3), (3, 3), (0, 0), (5, 2)])
def test_inclusion_out_of_range(index: int, size: int) -> None:
    with pytest.raises(ProofInvalid):
        verify_inclusion(leaf_hash(b"x"), index, size, [], EMPTY_ROOT)


def test_short_hash_in_path_rejected() -> None:
    leaves = leaves_of(4)
    proof = inclusion_proof(leaves, 1)
    proof[0] = proof[0][:31]
    with pytest.raises(ProofInvalid):
        verify_inclusion(leaves[1], 1, 4, proof, tree_root(leaves))


@given(st.data())
def test_consistency_proofs_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 80))
    m = data.draw(st.integers(1, n))
    leaves = leaves_of(n)
    proof = consistency_proof(leaves, m, n)
    verify_consistency(m, n, ref_mth(leaves[:m]), ref_mth(leaves), proof)


@given(st.data())
def test_forged_consistency_fails(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 80))
    m = data.draw(st.integers(1, n - 1))
    leaves = leaves_of(n)
    proof = consistency_proof(leaves, m, n)
    old_root, new_root = tree_root(leaves[:m]), tree_root(leaves)
    forgery = data.draw(st.sampled_from(["old_root", "new_root", "extra", "missing", "history"]))
    if forgery == "old_root":
        old_root = leaf_hash(b"x")
    elif forgery == "new_root":
        new_root = leaf_hash(b"x")
    elif forgery == "extra":
        proof.append(leaf_hash(b"x"))
    elif forgery == "missing":
        assume(proof)
        proof.pop(data.draw(st.integers(0, len(proof) - 1)))
    else:
        # a rewritten history: the new tree does not extend the old one
        rewritten = list(leaves)
        rewritten[data.draw(st.integers(0, m - 1))] = leaf_hash(b"rewritten")
        new_root = tree_root(rewritten)
        proof = consistency_proof(rewritten, m, n)
    with pytest.raises(ProofInvalid):
        verify_consistency(m, n, old_root, new_root, proof)


def _purged_prefix(leaves: list[bytes], m: int) -> tuple[list[bytes], dict[tuple[int, int], bytes]]:
    """``leaves`` whose first ``m`` are purged (reading one fails the test), and the frontier
    hashes kept for them."""
    from monitor.merkle import frontier_ranges

    acc = Accumulator()
    acc.extend(leaves[:m])
    known = dict(zip(frontier_ranges(m), acc.frontier, strict=True))

    class Purged(list[bytes]):
        def __getitem__(self, j: int) -> bytes:  # type: ignore[override]
            assert j >= m, f"purged leaf {j} was read"
            return list.__getitem__(self, j)

    return Purged(leaves), known


@given(st.data())
def test_inclusion_proof_with_purged_prefix(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 90))
    m = data.draw(st.integers(1, n - 1))
    i = data.draw(st.integers(m, n - 1))
    leaves = leaves_of(n)
    purged, known = _purged_prefix(leaves, m)
    proof = inclusion_proof(purged, i, n, known=known)
    assert proof == inclusion_proof(leaves, i, n)


@given(st.data())
def test_consistency_proof_with_purged_prefix(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 90))
    m = data.draw(st.integers(1, n - 1))
    old = data.draw(st.integers(m + 1, n))
    leaves = leaves_of(n)
    purged, known = _purged_prefix(leaves, m)
    assert consistency_proof(purged, old, n, known=known) == consistency_proof(
        leaves, old, n)
