"""The trail façade: checkpoints (create, list, export), inclusion proofs, verification.

Binds an ``AuditStore`` to a ``Signer``; every method takes the caller's session and
never commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gmcrypto import Suite, suite_for_hash
from monitor.checkpoint import (
    Checkpoint,
    Signer,
    checkpoint_digest,
    sign_checkpoint,
    verify_checkpoint,
)
from monitor.errors import CheckpointError, EventNotFound, Tampered
from monitor.events import AuditEvent, utc_now
from monitor.merkle import (
    InclusionProof,
    consistency_proof,
    frontier_ranges,
    inclusion_proof,
    verify_consistency,
)
from monitor.store import CHECKPOINTS, HEAD, AuditStore, Generation, from_us, to_us
from monitor.verify import verify_trail

PROOF_FORMAT = "quanguard-inclusion-proof/1"
CONSISTENCY_FORMAT = "quanguard-consistency-proof/1"


@dataclass(frozen=True)
class StoredCheckpoint:
    id: int
    checkpoint: Checkpoint
    exported: datetime | None


# The newest checkpoint's last seq (its generation's base + its tree size) and time.
_LATEST_HEAD = (
    sa.select(CHECKPOINTS.c.tree_size + HEAD.c.base, CHECKPOINTS.c.created)
    .join(HEAD, HEAD.c.id == sa.func.coalesce(CHECKPOINTS.c.generation, 1))
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
        if head.size == 0:
            raise CheckpointError("the trail is empty; nothing to checkpoint")
        self.store.check_suite(session, head=head)
        cp = sign_checkpoint(
            self.signer, tree_size=head.size, root=head.root(self.store.hash),
            chain_hash=head.hash, timestamp=now or utc_now(), handover=handover,
            generation=head.generation, first_seq=head.base + 1,
        )
        if handover is not None:
            self.store.seal(session, successor=handover, at=to_us(cp.timestamp))
        session.execute(
            CHECKPOINTS.insert().values(
                tree_size=cp.tree_size, created=to_us(cp.timestamp), body=cp.to_json(),
                generation=head.generation,
            )
        )
        return cp

    def hand_over(self, session: Session, successor: Suite, opening: AuditEvent, *,
                  now: datetime | None = None) -> tuple[Checkpoint, AuditEvent]:
        """Seal the current generation with a final checkpoint naming ``successor`` and
        open the next generation under it, in the caller's transaction.

        ``opening`` becomes the new generation's first event, with the link labels added
        (``previous_generation``, ``previous_suite``, ``previous_tree_size``,
        ``previous_checkpoint``: the successor's hash of the final checkpoint document),
        hashed with the successor's hash. Returns the final checkpoint and that event."""
        final = self.checkpoint(session, now=now, handover=successor.name)
        return final, self.open_next(session, successor, opening, final, now=now)

    def open_next(self, session: Session, successor: Suite, opening: AuditEvent,
                  final: Checkpoint, *, now: datetime | None = None) -> AuditEvent:
        """Open the generation after one sealed by ``final`` (see :meth:`hand_over`; also
        completes a hand-over made before generations existed, which only sealed)."""
        nxt = AuditStore(successor)
        gen = nxt.start_generation(session, successor)
        labels = {**opening.labels, "generation": str(gen.id), "suite": successor.name,
                  "previous_generation": str(gen.id - 1),
                  "previous_suite": suite_for_hash(final.hash_alg).name,
                  "previous_tree_size": str(final.tree_size),
                  "previous_checkpoint": checkpoint_digest(final, successor)}
        (first,) = nxt.append(session, [replace(opening, labels=labels)], now=now)
        return first

    def checkpoints(self, session: Session) -> list[StoredCheckpoint]:
        rows = session.execute(sa.select(CHECKPOINTS).order_by(CHECKPOINTS.c.id)).all()
        return [
            StoredCheckpoint(
                r.id, Checkpoint.from_json(r.body),
                from_us(r.exported) if r.exported is not None else None,
            )
            for r in rows
        ]

    def latest(self, session: Session, generation: int | None = None
               ) -> StoredCheckpoint | None:
        """The newest checkpoint (of ``generation``, when given)."""
        stmt = sa.select(CHECKPOINTS)
        if generation is not None:
            stmt = stmt.where(sa.func.coalesce(CHECKPOINTS.c.generation, 1) == generation)
        row = session.execute(stmt.order_by(CHECKPOINTS.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return StoredCheckpoint(
            row.id, Checkpoint.from_json(row.body),
            from_us(row.exported) if row.exported is not None else None,
        )

    def latest_head(self, session: Session) -> tuple[int, datetime] | None:
        """Last seq covered by the newest checkpoint and its time, without parsing it (hot
        path; the seq is the tree size in the first generation)."""
        row = session.execute(_LATEST_HEAD).first()
        return None if row is None else (int(row[0]), from_us(int(row[1])))

    def mark_exported(self, session: Session, checkpoint_id: int, *, now: datetime) -> None:
        session.execute(
            sa.update(CHECKPOINTS).where(CHECKPOINTS.c.id == checkpoint_id)
            .values(exported=to_us(now))
        )

    def exported_size(self, session: Session) -> int:
        """Largest seq covered by an exported checkpoint (0 when none). Every earlier
        generation counts as covered: its final checkpoint was exported at the hand-over."""
        head = self.store.head(session)
        value = session.execute(
            sa.select(sa.func.max(CHECKPOINTS.c.tree_size))
            .where(CHECKPOINTS.c.exported.is_not(None),
                   sa.func.coalesce(CHECKPOINTS.c.generation, 1) == head.generation)
        ).scalar()
        return head.base + int(value or 0)

    def generation_of(self, session: Session, seq: int) -> Generation:
        """The generation whose events include ``seq`` (EventNotFound beyond the head)."""
        gens = self.store.generations(session)
        for gen in gens:
            if gen.head.base < seq <= gen.head.seq:
                return gen
        raise EventNotFound(f"no audit event with seq {seq} (the trail ends at "
                            f"{gens[-1].head.seq if gens else 0})")

    def final_checkpoint(self, session: Session, generation: int) -> Checkpoint | None:
        """The hand-over checkpoint that sealed ``generation`` (None while it is open)."""
        for stored in reversed(self.checkpoints(session)):
            cp = stored.checkpoint
            if cp.generation == generation and cp.handover is not None:
                return cp
        return None

    # -- proofs ------------------------------------------------------------------
    def proof(self, session: Session, seq: int, checkpoint: Checkpoint) -> InclusionProof:
        """Inclusion proof of event ``seq`` in the tree of ``checkpoint`` (of any
        generation: the tree is hashed with that generation's suite)."""
        head = self._generation_head(session, checkpoint)
        last = head.base + checkpoint.tree_size
        if not head.pruned_below < seq <= last:
            raise EventNotFound(
                f"seq {seq} is not provable against a checkpoint of events "
                f"{head.base + 1}..{last} (retained: {head.pruned_below + 1}..{head.seq})"
            )
        leaves = self.store.leaf_hashes(session, head.pruned_below + 1, last)
        known = dict(zip(frontier_ranges(head.pruned_size), head.pruned_frontier, strict=True))
        index = seq - head.base - 1
        path = inclusion_proof(
            _OffsetLeaves(head.pruned_size, leaves), index, checkpoint.tree_size, known=known,
            h=suite_for_hash(checkpoint.hash_alg).hash,
        )
        return InclusionProof(seq, checkpoint.tree_size, leaves[index - head.pruned_size],
                              tuple(path), first_seq=head.base + 1)

    def _generation_head(self, session: Session, checkpoint: Checkpoint) -> Any:
        for gen in self.store.generations(session):
            if gen.id == checkpoint.generation:
                if gen.head.base + 1 != checkpoint.first_seq:
                    raise CheckpointError(
                        f"the checkpoint says generation {gen.id} starts at seq "
                        f"{checkpoint.first_seq}, the trail says {gen.head.base + 1}")
                return gen.head
        raise CheckpointError(f"the trail has no generation {checkpoint.generation}")

    def consistency(self, session: Session, old_size: int, checkpoint: Checkpoint
                    ) -> list[bytes]:
        """RFC 6962 consistency proof from the tree of ``old_size`` events to ``checkpoint``
        (both of ``checkpoint``'s generation)."""
        head = self._generation_head(session, checkpoint)
        if not head.pruned_size < old_size <= checkpoint.tree_size:
            raise EventNotFound(
                f"cannot prove {old_size} -> {checkpoint.tree_size} "
                f"(retained: {head.pruned_size + 1}..{head.size} of generation "
                f"{head.generation})"
            )
        leaves = self.store.leaf_hashes(session, head.pruned_below + 1,
                                        head.base + checkpoint.tree_size)
        known = dict(zip(frontier_ranges(head.pruned_size), head.pruned_frontier, strict=True))
        return consistency_proof(_OffsetLeaves(head.pruned_size, leaves), old_size,
                                 checkpoint.tree_size, known=known,
                                 h=suite_for_hash(checkpoint.hash_alg).hash)

    def verify(self, session: Session, external: Sequence[Checkpoint] = ()) -> list[Generation]:
        """Verify every generation (rows, head, stored checkpoints and ``external`` ones,
        exported files), each under its own suite, and the hand-over links between them.

        Reads only. A stored checkpoint row that no longer parses is damage (``modified``),
        not a malformed input: the trail's own table was altered. Returns the generations."""
        stored: list[Checkpoint] = []
        for row in session.execute(sa.select(CHECKPOINTS).order_by(CHECKPOINTS.c.id)):
            try:
                cp = Checkpoint.from_json(row.body)
            except CheckpointError as exc:
                raise Tampered(int(row.tree_size), "modified",
                               f"stored checkpoint {row.id} is unreadable ({exc})") from exc
            if cp.generation != (row.generation or 1):
                raise Tampered(int(row.tree_size), "modified",
                               f"stored checkpoint {row.id} signs generation {cp.generation} "
                               f"but is filed under {row.generation or 1}")
            stored.append(cp)
        return verify_trail(session, self.store, [*stored, *external],
                            expected_key_id=self.signer.key_id, stored=len(stored))


def proof_document(proof: InclusionProof, body: str, hash_alg: str = "sha256"
                   ) -> dict[str, Any]:
    """The JSON form of a proof: the event body (so its leaf can be recomputed) + path.
    A proof in a later trail generation names the seq of that generation's leaf 0."""
    doc: dict[str, Any] = {
        "format": PROOF_FORMAT,
        "hash_alg": hash_alg,
        "seq": proof.seq,
        "tree_size": proof.tree_size,
        "leaf_hash": proof.leaf_hash.hex(),
        "path": [p.hex() for p in proof.path],
        "event": body,
    }
    if proof.first_seq != 1:
        doc["first_seq"] = proof.first_seq
    return doc


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
        # 1c. the leaf numbering: the generation's first seq is signed in the checkpoint
        if int(doc.get("first_seq", 1)) != checkpoint.first_seq:
            raise ProofInvalid(
                f"the proof numbers leaves from seq {doc.get('first_seq', 1)}, the checkpoint's "
                f"generation {checkpoint.generation} starts at seq {checkpoint.first_seq}")
        proof = InclusionProof(
            seq=int(doc["seq"]), tree_size=int(doc["tree_size"]),
            leaf_hash=bytes.fromhex(doc["leaf_hash"]),
            path=tuple(bytes.fromhex(p) for p in doc["path"]),
            first_seq=checkpoint.first_seq,
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
    if (new.generation, new.first_seq) != (old.generation, old.first_seq):
        raise ProofInvalid(
            f"the checkpoints are of trail generations {old.generation} and {new.generation}; "
            "a later generation is linked by its hand-over record, not by a consistency proof")
    if old_size != old.tree_size:
        raise ProofInvalid(f"proof starts at {old_size} events, the checkpoint has "
                           f"{old.tree_size}")
    verify_consistency(old.tree_size, new.tree_size, old.root, new.root, proof,
                       h=suite_for_hash(old.hash_alg).hash)
    return new
