"""The trail façade: checkpoints (create, list, export), inclusion proofs, verification.

Binds an ``AuditStore`` to a ``Signer``; every method takes the caller's session and
never commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gmcrypto import suite_for_hash
from monitor.checkpoint import Checkpoint, Signer, sign_checkpoint, verify_checkpoint
from monitor.errors import CheckpointError, EventNotFound, Tampered
from monitor.events import utc_now
from monitor.merkle import (
    InclusionProof,
    consistency_proof,
    frontier_ranges,
    inclusion_proof,
    verify_consistency,
)
from monitor.store import CHECKPOINTS, AuditStore, from_us, to_us
from monitor.verify import verify_trail

PROOF_FORMAT = "quanguard-inclusion-proof/1"
CONSISTENCY_FORMAT = "quanguard-consistency-proof/1"


@dataclass(frozen=True)
class StoredCheckpoint:
    id: int
    checkpoint: Checkpoint
    exported: datetime | None


_LATEST_HEAD = (
    sa.select(CHECKPOINTS.c.tree_size, CHECKPOINTS.c.created)
    .order_by(CHECKPOINTS.c.id.desc()).limit(1)
)


class _OffsetLeaves(Sequence[bytes]):
    """Leaf hashes from index ``offset`` on; earlier ones were purged."""

    def __init__(self, offset: int, leaves: list[bytes]):
        self._offset = offset
        self._leaves = leaves

    def __len__(self) -> int:
        return self._offset + len(self._leaves)

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(i, slice):
            raise TypeError("slicing is not supported")
        if i < self._offset:
            raise EventNotFound(f"leaf {i + 1} was purged by retention")
        return self._leaves[i - self._offset]


class Trail:
    def __init__(self, store: AuditStore, signer: Signer):
        if signer.suite.name != store.suite.name:
            raise CheckpointError(
                f"the trail key is {signer.algorithm} but the store hashes with "
                f"{store.suite.hash_alg}; both must come from one crypto suite")
        self.store = store
        self.signer = signer

    # -- checkpoints -------------------------------------------------------------
    def checkpoint(self, session: Session, *, now: datetime | None = None,
                   handover: str | None = None) -> Checkpoint:
        """Sign the current head and store the checkpoint (no-op size 0 is refused).

        A trail of another suite, or a sealed one, is refused (SuiteMismatch). With
        ``handover`` (a suite name) this is the trail's final checkpoint: it names the
        successor suite and seals the trail, so nothing is appended after it."""
        head = self.store.head(session)
        if head.seq == 0:
            raise CheckpointError("the trail is empty; nothing to checkpoint")
        self.store.check_suite(session, head_seq=head.seq)
        cp = sign_checkpoint(
            self.signer, tree_size=head.seq, root=head.root(self.store.hash),
            chain_hash=head.hash, timestamp=now or utc_now(), handover=handover,
        )
        if handover is not None:
            self.store.seal(session, successor=handover, at=to_us(cp.timestamp))
        session.execute(
            CHECKPOINTS.insert().values(
                tree_size=cp.tree_size, created=to_us(cp.timestamp), body=cp.to_json()
            )
        )
        return cp

    def checkpoints(self, session: Session) -> list[StoredCheckpoint]:
        rows = session.execute(sa.select(CHECKPOINTS).order_by(CHECKPOINTS.c.id)).all()
        return [
            StoredCheckpoint(
                r.id, Checkpoint.from_json(r.body),
                from_us(r.exported) if r.exported is not None else None,
            )
            for r in rows
        ]

    def latest(self, session: Session) -> StoredCheckpoint | None:
        row = session.execute(
            sa.select(CHECKPOINTS).order_by(CHECKPOINTS.c.id.desc()).limit(1)
        ).first()
        if row is None:
            return None
        return StoredCheckpoint(
            row.id, Checkpoint.from_json(row.body),
            from_us(row.exported) if row.exported is not None else None,
        )

    def latest_head(self, session: Session) -> tuple[int, datetime] | None:
        """Tree size and time of the newest checkpoint, without parsing it (hot path)."""
        row = session.execute(_LATEST_HEAD).first()
        return None if row is None else (int(row[0]), from_us(int(row[1])))

    def mark_exported(self, session: Session, checkpoint_id: int, *, now: datetime) -> None:
        session.execute(
            sa.update(CHECKPOINTS).where(CHECKPOINTS.c.id == checkpoint_id)
            .values(exported=to_us(now))
        )

    def exported_size(self, session: Session) -> int:
        """Largest tree size covered by an exported checkpoint (0 when none)."""
        value = session.execute(
            sa.select(sa.func.max(CHECKPOINTS.c.tree_size))
            .where(CHECKPOINTS.c.exported.is_not(None))
        ).scalar()
        return int(value or 0)

    # -- proofs ------------------------------------------------------------------
    def proof(self, session: Session, seq: int, checkpoint: Checkpoint) -> InclusionProof:
        """Inclusion proof of event ``seq`` in the tree of ``checkpoint``."""
        head = self.store.head(session)
        if not head.pruned_below < seq <= checkpoint.tree_size:
            raise EventNotFound(
                f"seq {seq} is not provable against a checkpoint of {checkpoint.tree_size} "
                f"events (retained: {head.pruned_below + 1}..{head.seq})"
            )
        leaves = self.store.leaf_hashes(session, head.pruned_below + 1, checkpoint.tree_size)
        known = dict(zip(frontier_ranges(head.pruned_below), head.pruned_frontier, strict=True))
        path = inclusion_proof(
            _OffsetLeaves(head.pruned_below, leaves), seq - 1, checkpoint.tree_size, known=known,
            h=self.store.hash,
        )
        return InclusionProof(seq, checkpoint.tree_size, leaves[seq - 1 - head.pruned_below],
                              tuple(path))

    def consistency(self, session: Session, old_size: int, checkpoint: Checkpoint
                    ) -> list[bytes]:
        """RFC 6962 consistency proof from the tree of ``old_size`` events to ``checkpoint``."""
        head = self.store.head(session)
        if not head.pruned_below < old_size <= checkpoint.tree_size:
            raise EventNotFound(
                f"cannot prove {old_size} -> {checkpoint.tree_size} "
                f"(retained: {head.pruned_below + 1}..{head.seq})"
            )
        leaves = self.store.leaf_hashes(session, head.pruned_below + 1, checkpoint.tree_size)
        known = dict(zip(frontier_ranges(head.pruned_below), head.pruned_frontier, strict=True))
        return consistency_proof(_OffsetLeaves(head.pruned_below, leaves), old_size,
                                 checkpoint.tree_size, known=known, h=self.store.hash)

    def verify(self, session: Session, external: Sequence[Checkpoint] = ()) -> None:
        """Verify rows, head, stored checkpoints and ``external`` ones (exported files).

        Reads only. A stored checkpoint row that no longer parses is damage (``modified``),
        not a malformed input: the trail's own table was altered."""
        stored: list[Checkpoint] = []
        for row in session.execute(sa.select(CHECKPOINTS).order_by(CHECKPOINTS.c.id)):
            try:
                stored.append(Checkpoint.from_json(row.body))
            except CheckpointError as exc:
                raise Tampered(int(row.tree_size), "modified",
                               f"stored checkpoint {row.id} is unreadable ({exc})") from exc
        head = self.store.head(session)
        usable = [c for c in stored if c.tree_size > head.pruned_below]
        verify_trail(session, self.store, [*usable, *external],
                     expected_key_id=self.signer.key_id)


def proof_document(proof: InclusionProof, body: str, hash_alg: str = "sha256"
                   ) -> dict[str, Any]:
    """The JSON form of a proof: the event body (so its leaf can be recomputed) + path."""
    return {
        "format": PROOF_FORMAT,
        "hash_alg": hash_alg,
        "seq": proof.seq,
        "tree_size": proof.tree_size,
        "leaf_hash": proof.leaf_hash.hex(),
        "path": [p.hex() for p in proof.path],
        "event": body,
    }


def verify_proof_document(doc: Any, checkpoint: Checkpoint,
                          *, expected_key_id: str | None = None) -> None:
    """Offline check of a proof document against an exported checkpoint (no database).

    1. the checkpoint's signature; 2. the proof is for the checkpoint's tree size;
    3. the event body hashes to the proof's leaf; 4. the RFC 6962 path leads to the root.
    """
    from monitor.errors import ProofInvalid
    from monitor.merkle import leaf_hash

    verify_checkpoint(checkpoint, expected_key_id=expected_key_id)
    hf = suite_for_hash(checkpoint.hash_alg).hash
    try:
        if doc.get("format") != PROOF_FORMAT:
            raise ProofInvalid(f"not a {PROOF_FORMAT} document")
        # 1b. the proof's hash (absent in documents older than the suites: sha256) is the
        #     one the checkpoint's tree uses
        if doc.get("hash_alg", "sha256") != checkpoint.hash_alg:
            raise ProofInvalid(
                f"the proof is a {doc.get('hash_alg', 'sha256')} path, the checkpoint signs a "
                f"{checkpoint.hash_alg} tree")
        proof = InclusionProof(
            seq=int(doc["seq"]), tree_size=int(doc["tree_size"]),
            leaf_hash=bytes.fromhex(doc["leaf_hash"]),
            path=tuple(bytes.fromhex(p) for p in doc["path"]),
        )
        body = doc["event"].encode("utf-8")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProofInvalid(f"malformed proof document: {exc}") from exc
    if proof.tree_size != checkpoint.tree_size:
        raise ProofInvalid(
            f"proof is for a tree of {proof.tree_size} events, the checkpoint signs "
            f"{checkpoint.tree_size}"
        )
    if leaf_hash(body, hf) != proof.leaf_hash:
        raise ProofInvalid("the event body does not hash to the proof's leaf")
    seq_in_body = json.loads(body).get("event", {}).get("sequence")
    if seq_in_body != proof.seq:
        raise ProofInvalid(f"the event body is seq {seq_in_body}, the proof claims {proof.seq}")
    proof.verify(checkpoint.root, h=hf)


def consistency_document(old_size: int, proof: Sequence[bytes], new: Checkpoint
                         ) -> dict[str, Any]:
    return {"format": CONSISTENCY_FORMAT, "old_size": old_size, "new_size": new.tree_size,
            "proof": [p.hex() for p in proof], "checkpoint": new.to_dict()}


def verify_consistency_document(doc: Any, old: Checkpoint,
                                *, expected_key_id: str | None = None) -> Checkpoint:
    """Offline: the newer checkpoint in ``doc`` extends the exported ``old`` one.

    1. the old checkpoint's signature (pinned key, if given); 2. the new checkpoint's
    signature by the same key; 3. the sizes match; 4. the RFC 6962 consistency proof.
    Returns the verified newer checkpoint.
    """
    from monitor.errors import ProofInvalid

    verify_checkpoint(old, expected_key_id=expected_key_id)
    try:
        if doc.get("format") != CONSISTENCY_FORMAT:
            raise ProofInvalid(f"not a {CONSISTENCY_FORMAT} document")
        new = Checkpoint.from_dict(doc["checkpoint"])
        proof = [bytes.fromhex(p) for p in doc["proof"]]
        old_size = int(doc["old_size"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProofInvalid(f"malformed consistency proof: {exc}") from exc
    verify_checkpoint(new, expected_key_id=old.key_id)
    if (new.hash_alg, new.signature_alg) != (old.hash_alg, old.signature_alg):
        raise ProofInvalid("the two checkpoints are of different crypto suites")
    if old_size != old.tree_size:
        raise ProofInvalid(f"proof starts at {old_size} events, the checkpoint has "
                           f"{old.tree_size}")
    verify_consistency(old.tree_size, new.tree_size, old.root, new.root, proof,
                       h=suite_for_hash(old.hash_alg).hash)
    return new
