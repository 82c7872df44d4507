"""Verification of the audit trail. Returns ``None`` or raises (fail closed).

``verify_trail`` walks every stored event once, in seq order, and checks, per row:

1. seq is the next expected one (a gap: ``deleted``);
2. the body parses and names the row's own seq (else ``deleted`` / ``inserted`` /
   ``reordered``, told apart by where the body belongs);
3. the indexed columns equal the values in the body, and the stored leaf hash is the
   RFC 6962 leaf hash of the body (else ``modified``);
4. the chain: ``prev_hash`` equals the previous row's hash (else ``inserted``) and
   ``hash = H(0x02 || prev || leaf)`` (else ``modified``).

Before any row, the retention anchor of the head row:

0. its frontier must hold exactly one 32-byte subtree root per set bit of its size
   (RFC 6962 §2.1 decomposition), and it may not lie beyond the head (else ``modified``).

Then, against the head row and every checkpoint (stored ones and an exported one):

5. rows beyond the head are ``inserted``; a head or checkpoint beyond the last row
   means the tail was ``truncated``; the head's own frontier must fit its size, as in
   step 0, before its root is compared (else ``modified``);
6. every checkpoint's Ed25519 signature and key id (``bad_signature``), and its tree
   root and chain hash equal the ones recomputed from the rows (``modified``).

An empty trail, a missing or unreadable checkpoint file and a checkpoint older than
the retention anchor are errors, not passes.

A trail handed over to another crypto suite has several generations in one database
(seqs run on; each generation has its own suite, chain, tree and head row). Each is
verified as above under its own suite; a sealed one must end with its signed final
checkpoint, and the first event of the next one must name that checkpoint by digest.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session

from gmcrypto import Suite, get_suite
from monitor.chain import chain_hash
from monitor.checkpoint import Checkpoint, checkpoint_digest, verify_checkpoint
from monitor.errors import CheckpointError, InvalidEvent, SuiteMismatch, Tampered
from monitor.events import AuditEvent
from monitor.merkle import Accumulator, leaf_hash
from monitor.store import AuditStore, Generation, Head, StoredEvent, event_columns

_LOOKAHEAD = 1000
_HASH = 32  # SHA-256 or SM3


def verify_trail(
    session: Session,
    store: AuditStore,
    checkpoints: Iterable[Checkpoint] = (),
    *,
    expected_key_id: str | None = None,
    stored: int | None = None,
) -> list[Generation]:
    """Verify every generation of the stored trail and the given checkpoints, each
    generation under its own crypto suite. Raises ``Tampered``; returns the generations.

    Checkpoints are sorted to their generation (format 3 names it; older ones are the
    first). The keys: the current generation, when it runs this process's suite, is held
    to ``expected_key_id`` (this deployment's signing key); a sealed generation to the key
    of its final checkpoint, which the next generation's first event names by digest — so
    trust runs from the current key back through every hand-over. The first ``stored``
    checkpoints are the trail's own (older than the retention anchor: skipped), the rest
    were handed in (such a one is an error, not a pass).

    Reads only: nothing is written, so damage is judged on the trail as found."""
    cps = list(checkpoints)
    own = cps[:stored] if stored is not None else []
    handed = cps[stored:] if stored is not None else cps
    gens = store.generations(session)
    known = {g.id for g in gens}
    for cp in handed:
        if cp.generation not in known:
            raise CheckpointError(f"the checkpoint of generation {cp.generation} is of no "
                                  f"generation of this trail (it has 1..{len(gens)})")
    current = gens[-1]
    finals: dict[int, Checkpoint] = {}
    for i, gen in enumerate(gens):
        mine_own = [c for c in own if c.generation == gen.id]
        mine = [c for c in mine_own if c.tree_size > gen.head.pruned_size]
        mine += [c for c in handed if c.generation == gen.id]
        end = gens[i + 1].head.base if i + 1 < len(gens) else None
        suite = get_suite(gen.suite)
        if gen is current and gen.suite == store.suite.name:
            pin = expected_key_id
        elif gen.sealed is not None or gen is not current:
            final = _final(gen, mine_own)
            finals[gen.id] = final
            pin = final.key_id
        elif gen.id == 1:
            # the only generation, of another suite than this deployment's: nothing to
            # anchor its key to (and appending would mix suites)
            raise SuiteMismatch(gen.suite, store.suite.name)
        else:
            pin = None  # held by the link from the previous, pinned, generation below
        verify_generation(session, AuditStore(suite), gen, mine, expected_key_id=pin, end=end)
        if pin is None and len({c.key_id for c in mine}) > 1:
            raise Tampered(gen.head.seq, "bad_signature",
                           f"generation {gen.id} holds checkpoints of more than one key")
        if gen.id > 1:
            _check_link(session, store, gens[i - 1], gen, finals[gens[i - 1].id], suite)
    return gens


def _final(gen: Generation, own: Sequence[Checkpoint]) -> Checkpoint:
    """The signed hand-over checkpoint of a sealed generation: it names the successor and
    covers every event of the generation."""
    finals = [c for c in own if c.handover is not None]
    if not finals:
        raise Tampered(gen.head.seq, "modified",
                       f"generation {gen.id} ({gen.suite}) was handed over but its final "
                       "checkpoint is missing")
    final = finals[-1]
    if final.handover != gen.successor or final.tree_size != gen.head.size:
        raise Tampered(gen.head.seq, "modified",
                       f"the final checkpoint of generation {gen.id} covers {final.tree_size} "
                       f"events handed to '{final.handover}'; the generation holds "
                       f"{gen.head.size} handed to '{gen.successor}'")
    return final


def _check_link(session: Session, store: AuditStore, prev: Generation, gen: Generation,
                final: Checkpoint, suite: Suite) -> None:
    """The first event of ``gen`` is the hand-over record naming ``prev``'s final
    checkpoint by digest (its body is covered by ``gen``'s own leaf, chain and root)."""
    if gen.head.base != prev.head.seq or gen.suite != prev.successor:
        raise Tampered(gen.first_seq, "modified",
                       f"generation {gen.id} does not continue generation {prev.id} "
                       f"(it starts after seq {gen.head.base}, under '{gen.suite}'; generation "
                       f"{prev.id} ends at {prev.head.seq}, handed to '{prev.successor}')")
    if gen.head.size == 0:
        raise Tampered(gen.first_seq, "deleted",
                       f"generation {gen.id} has lost its hand-over record")
    if gen.head.pruned_below > gen.head.base:
        return  # purged by retention with the events around it (the anchor holds its leaf)
    first = next(iter(store.iter_range(session, gen.first_seq, gen.first_seq)), None)
    if first is None:
        raise Tampered(gen.first_seq, "deleted",
                       f"the hand-over record opening generation {gen.id} is missing")
    labels = AuditEvent.from_json(first.body).labels
    want = {"previous_generation": str(prev.id), "previous_suite": prev.suite,
            "previous_checkpoint": checkpoint_digest(final, suite)}
    if any(labels.get(k) != v for k, v in want.items()):
        raise Tampered(gen.first_seq, "modified",
                       f"the first event of generation {gen.id} does not name the final "
                       f"checkpoint of generation {prev.id} (hand-over link broken)")


def verify_generation(
    session: Session,
    store: AuditStore,
    gen: Generation,
    checkpoints: Iterable[Checkpoint] = (),
    *,
    expected_key_id: str | None = None,
    end: int | None = None,
) -> None:
    """Verify one generation (``store`` hashes with its suite): rows ``base+1..`` up to
    ``end`` (the next generation's base) against its head row and checkpoints."""
    head = gen.head
    hf = store.hash
    _check_head(head, anchor_only=True)
    cps = sorted(checkpoints, key=lambda c: c.tree_size)
    # 6a. signatures first: a forged checkpoint must not be used as a reference; a
    #     checkpoint of another suite's tree cannot match this generation
    for cp in cps:
        verify_checkpoint(cp, expected_key_id=expected_key_id)
        if cp.hash_alg != store.suite.hash_alg:
            raise SuiteMismatch(
                gen.suite, store.suite.name,
                f"checkpoint of size {cp.tree_size} is a {cp.hash_alg} tree head; generation "
                f"{gen.id} of this trail hashes with {store.suite.hash_alg}")
        if cp.first_seq != gen.first_seq:
            raise Tampered(cp.tree_size, "modified",
                           f"a checkpoint of generation {gen.id} starts at seq {cp.first_seq}, "
                           f"the generation at {gen.first_seq}")
        if cp.tree_size <= head.pruned_size:
            raise CheckpointError(
                f"checkpoint of size {cp.tree_size} predates the retention purge "
                f"(events 1..{head.pruned_below} are gone); verify against a newer one"
            )
    wanted = {head.base + cp.tree_size for cp in cps}
    heads: dict[int, tuple[bytes, bytes]] = {}

    expected = head.pruned_below + 1
    prev = head.pruned_hash
    acc = Accumulator(head.pruned_size, head.pruned_frontier, h=hf)
    last = head.pruned_below
    for row in store.iter_range(session, expected, end):
        # 5a. nothing may follow the head
        if row.seq > head.seq:
            raise Tampered(row.seq, "inserted", f"row beyond the trail head {head.seq}")
        # 1. contiguous seq
        if row.seq != expected:
            raise Tampered(expected, "deleted", f"seq {expected} is missing")
        # 2. the body belongs at this seq
        event = _parse(row)
        if event.seq != row.seq:
            _misplaced(session, store, row, event)
        # 3. columns and leaf hash agree with the body
        cols = event_columns(event)
        for name, value in row.columns.items():
            if value != cols[name] and not (name == "actor_name" and value == "" and cols[name] is None):
                # (an empty name column is no name: trails written before the store wrote
                # a reporter's empty display name as NULL hold '' where the body has none)
                raise Tampered(
                    row.seq, "modified",
                    f"column {name!r} is {value!r} but the hashed body says {cols[name]!r}",
                )
        leaf = leaf_hash(row.body.encode("utf-8"), hf)
        if not hmac.compare_digest(leaf, row.leaf_hash):
            raise Tampered(row.seq, "modified", "body does not match its leaf hash")
        # 4. the chain link
        if not hmac.compare_digest(row.prev_hash, prev):
            raise Tampered(row.seq, "inserted", "row does not link to the previous row")
        if not hmac.compare_digest(row.hash, chain_hash(prev, leaf, hf)):
            raise Tampered(row.seq, "modified", "chain hash does not match")
        acc.append(leaf)
        prev = row.hash
        last = row.seq
        expected += 1
        if row.seq in wanted:
            heads[row.seq] = (acc.root(), prev)

    # 5b. the tail: the head row (and checkpoints) must not be beyond the last row
    if last == 0:
        raise Tampered(None, "truncated", "the trail is empty; there is nothing to verify")
    if head.seq > last:
        raise Tampered(last + 1, "truncated", f"the head says {head.seq} events, rows end at {last}")
    for cp in cps:
        if head.base + cp.tree_size > last:
            raise Tampered(
                last + 1, "truncated",
                f"a signed checkpoint covers {head.base + cp.tree_size} events, rows end at "
                f"{last}",
            )
    _check_head(head, anchor_only=False)
    if not (hmac.compare_digest(prev, head.hash) and hmac.compare_digest(acc.root(), head.root(hf))):
        raise Tampered(last, "modified", "the head row does not match the rows")
    # 6b. every checkpoint's tree head equals the one recomputed from the rows
    for cp in cps:
        root, chained = heads[head.base + cp.tree_size]
        if not hmac.compare_digest(root, cp.root) or not hmac.compare_digest(
            chained, cp.chain_hash
        ):
            raise Tampered(
                cp.tree_size, "modified",
                f"events {gen.first_seq}..{head.base + cp.tree_size} do not match the "
                f"checkpoint signed {cp.timestamp.isoformat()} (rows were rewritten)",
            )


def _check_head(head: Head, *, anchor_only: bool) -> None:
    """Steps 0 and 5: the head row's sizes and frontiers agree (else no root derived from
    them means anything). ``anchor_only`` checks the retention anchor alone."""
    parts = [("retention frontier", head.pruned_below, head.pruned_frontier,
              "retention chain hash", head.pruned_hash)]
    if not anchor_only:
        parts.append(("frontier", head.seq, head.frontier, "chain hash", head.hash))
    problems = []
    if not head.base <= head.pruned_below <= head.seq:
        problems.append(f"retention anchor {head.pruned_below} is beyond the head {head.seq}")
    for name, gsize, frontier, hash_name, value in parts:
        size = max(gsize - head.base, 0)
        if len(frontier) != size.bit_count() or any(len(h) != _HASH for h in frontier):
            problems.append(f"its {name} holds {len(frontier)} subtree root(s), a tree of "
                            f"{size} events has {size.bit_count()}")
        if len(value) != _HASH:
            problems.append(f"its {hash_name} is {len(value)} bytes, not {_HASH}")
    if problems:
        raise Tampered(head.seq, "modified", "the head row is inconsistent: "
                       + "; ".join(problems))


def _parse(row: StoredEvent) -> AuditEvent:
    try:
        return AuditEvent.from_json(row.body)
    except InvalidEvent as exc:
        raise Tampered(row.seq, "modified", f"body is not a valid event ({exc})") from exc


def _body_seq(body: str) -> int | None:
    try:
        value = json.loads(body).get("event", {}).get("sequence")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _misplaced(session: Session, store: AuditStore, row: StoredEvent, event: AuditEvent) -> None:
    """A body names another seq: tell deletion, insertion and reordering apart."""
    claimed = event.seq
    if claimed is None:
        raise Tampered(row.seq, "modified", "body carries no sequence number")
    if claimed < row.seq:
        raise Tampered(row.seq, "inserted", f"holds the event of seq {claimed}: rows were "
                       "inserted before it")
    ahead: Sequence[StoredEvent] = list(
        store.iter_range(session, row.seq + 1, row.seq + _LOOKAHEAD)
    )
    if any(_body_seq(r.body) == row.seq for r in ahead):
        raise Tampered(row.seq, "reordered", f"holds the event of seq {claimed}")
    raise Tampered(row.seq, "deleted", f"the event of seq {row.seq} is missing "
                   f"(this row holds seq {claimed})")
