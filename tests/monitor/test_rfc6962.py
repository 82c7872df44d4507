"""Conformance of ``monitor.merkle``'s proof verifiers with the published RFC 6962 test data
(transparency-dev/merkle ``testdata/``, Apache-2.0; see ``tests/data/rfc6962/README.md``).

Every file is one probe with ``wantErr``: happy paths must verify, every tampered or
garbage variant (flipped bits, wrong sizes and indices, truncated / padded proofs, wrong,
empty or swapped roots) must raise ``ProofInvalid`` and nothing else.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import ProofInvalid
from monitor.merkle import verify_consistency, verify_inclusion

DATA = Path(__file__).resolve().parents[1] / "data" / "rfc6962"

# Accepted upstream, refused here on purpose: its equal "roots" are 12 bytes, not SHA-256
# digests, and this verifier never accepts a value that is not a hash (fail closed).
STRICTER = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def _files(kind: str) -> list[Path]:
    return sorted((DATA / kind).rglob("*.json"))


def _id(path: Path) -> str:
    return path.relative_to(DATA).as_posix()


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _inclusion(doc: dict[str, Any]) -> None:
    verify_inclusion(_b64(doc["leafHash"]), int(doc["leafIdx"]), int(doc["treeSize"]),
                     [_b64(p) for p in doc["proof"] or []], _b64(doc["root"]))


def _consistency(doc: dict[str, Any]) -> None:
    verify_consistency(int(doc["size1"]), int(doc["size2"]), _b64(doc["root1"]),
                       _b64(doc["root2"]), [_b64(p) for p in doc["proof"] or []])


def _check(path: Path, verify: Any) -> None:
    doc = _load(path)
    must_fail = bool(doc["wantErr"]) or _id(path) in STRICTER
    if must_fail:
        with pytest.raises(ProofInvalid):
            verify(doc)
    else:
        verify(doc)


def test_the_copied_data_is_complete() -> None:
    """The test runs from a plain clone: data, licence and provenance are in the tree."""
    assert (DATA / "LICENSE").read_text().startswith(("Apache License", "\n"))
    assert "417fb0c314750d94e53942e9f92e79b6d35915db" in (DATA / "README.md").read_text()
    inclusion, consistency = _files("inclusion"), _files("consistency")
    assert len(inclusion) >= 90 and len(consistency) >= 90
    # both happy paths and tampered variants are present
    for files in (inclusion, consistency):
        wants = {bool(_load(p)["wantErr"]) for p in files}
        assert wants == {True, False}
    for name in STRICTER:
        assert (DATA / name).is_file()


@pytest.mark.parametrize("path", _files("inclusion"), ids=_id)
def test_inclusion_vector(path: Path) -> None:
    _check(path, _inclusion)


@pytest.mark.parametrize("path", _files("consistency"), ids=_id)
def test_consistency_vector(path: Path) -> None:
    _check(path, _consistency)


def test_empty_root_and_leaf_is_refused() -> None:
    """Finding 9: a one-leaf tree with an empty leaf and an empty root is not a proof."""
    with pytest.raises(ProofInvalid, match="not a SHA-256 hash"):
        _inclusion(_load(DATA / "inclusion" / "single-entry" / "empty-root-and-leaf.json"))
