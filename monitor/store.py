"""The append-only audit store (SQLAlchemy Core; SQLite and PostgreSQL).

Tables live on ``METADATA``; the service's migration 0002 creates exactly these.
``AuditStore`` offers ``append``, ``iter_range``, ``head`` and read helpers — no
update and no delete of events (a test proves it). Retention lives in
``monitor.retention``. The caller owns the transaction: nothing here commits.

Appenders are serialised on the single ``audit_head`` row: ``append`` first UPDATEs
that row, which takes SQLite's write lock and a PostgreSQL row lock until the
caller commits, so ``seq`` and the chain stay gap-free and consistent. The head row
also carries the Merkle frontier (``monitor.merkle.Accumulator``), so a checkpoint
needs no scan, and the retention anchor (``pruned_below`` and the chain hash and
frontier at that seq) so verification still works after a purge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from gmcrypto import INTL, Suite
from monitor.chain import GENESIS
from monitor.errors import EventNotFound, SuiteMismatch
from monitor.events import AuditEvent, canonical_text, format_ts, utc_now
from monitor.merkle import Accumulator, Digest, sha256

METADATA = sa.MetaData()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

EVENTS = sa.Table(
    "audit_events",
    METADATA,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("ts", sa.BigInteger, nullable=False),  # µs since the epoch, UTC
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("org", sa.String(200), nullable=False),
    sa.Column("reporter", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("dataset", sa.String(200)),
    sa.Column("grade", sa.String(32)),
    sa.Column("effect", sa.String(32)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("rows", sa.BigInteger),
    sa.Column("purpose", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("body", sa.Text, nullable=False),  # canonical JSON: the leaf hash input
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    # Added by migration 0013 (at the end, where ALTER TABLE puts them on older trails):
    sa.Column("actor_name", sa.String(200)),  # the key's name at the time of the event
    sa.Column("source_ip", sa.Text),  # client address as recorded
    sa.Index("ix_audit_events_ts", "ts"),
    sa.Index("ix_audit_events_actor_ts", "actor", "ts"),
    sa.Index("ix_audit_events_action_ts", "action", "ts"),
    sa.Index("ix_audit_events_effect_ts", "effect", "ts"),
    sa.Index("ix_audit_events_org_ts", "org", "ts"),
    sa.Index("ix_audit_events_role_ts", "role", "ts"),
    sa.Index("ix_audit_events_dataset_ts", "dataset", "ts"),
    sa.Index("ix_audit_events_grade_ts", "grade", "ts"),
    sa.Index("ix_audit_events_actor_dataset", "actor", "dataset"),
    sa.Index("ix_audit_events_source_ip_ts", "source_ip", "ts"),
)

# One row per trail generation (``id`` = the generation, 1 for the first trail). Sizes in
# the Merkle sense are local to the generation: its tree holds events ``base+1..seq``.
# Row 1 is also the appenders' lock row, whatever the current generation.
HEAD = sa.Table(
    "audit_head",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    sa.Column("frontier", sa.LargeBinary, nullable=False),
    sa.Column("pruned_below", sa.BigInteger, nullable=False),  # events 1..this are purged
    sa.Column("pruned_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("pruned_frontier", sa.LargeBinary, nullable=False),
    # Added by migration 0015: the seq before the generation's first event (0 for the first)
    sa.Column("base", sa.BigInteger, nullable=False, server_default="0"),
)

CHECKPOINTS = sa.Table(
    "audit_checkpoints",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tree_size", sa.BigInteger, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # Checkpoint.to_json()
    sa.Column("exported", sa.BigInteger),  # µs when exported, NULL if never
    sa.Index("ix_audit_checkpoints_tree_size", "tree_size"),
    # Added by migration 0015: the trail generation the checkpoint signs (NULL: the first)
    sa.Column("generation", sa.Integer),
)

# The crypto suite of each trail generation (``id`` = the generation, as in ``audit_head``).
# Generation 1's row is written by the first append; absent on a trail older than the
# suites, which is "intl". ``sealed`` (µs) is set by a hand-over: the generation's final
# checkpoint names ``successor``, nothing is appended to it after that, and the next
# generation (the successor's suite) starts in the same transaction.
SUITE = sa.Table(
    "audit_suite",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("suite", sa.String(16), nullable=False),
    sa.Column("sealed", sa.BigInteger),
    sa.Column("successor", sa.String(16)),
)

VERIFY_RUNS = sa.Table(
    "audit_verify_runs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("tree_size", sa.BigInteger, nullable=False),
    sa.Column("bad_seq", sa.BigInteger),
    sa.Column("damage", sa.String(32)),
    sa.Column("detail", sa.Text),
)

ALERTS = sa.Table(
    "audit_alerts",
    METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("rule", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("dedup_key", sa.String(400), nullable=False),
    sa.Column("window_start", sa.BigInteger, nullable=False),
    sa.Column("window_end", sa.BigInteger, nullable=False),
    sa.Column("seqs", sa.Text, nullable=False),  # JSON list of linked event seqs
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.BigInteger, nullable=False),
    sa.Index("ix_audit_alerts_dedup", "dedup_key", "status"),
    sa.Index("ix_audit_alerts_status_created", "status", "created"),
)

SHIPPER_STATE = sa.Table(
    "shipper_state",
    METADATA,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),  # high-water mark: shipped through seq
    sa.Column("updated", sa.BigInteger, nullable=False),
)


def to_us(ts: datetime) -> int:
    return (ts - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def pack(hashes: Sequence[bytes]) -> bytes:
    return b"".join(hashes)


def unpack(blob: bytes) -> tuple[bytes, ...]:
    return tuple(bytes(blob[i : i + 32]) for i in range(0, len(blob), 32))


def event_columns(event: AuditEvent) -> dict[str, object]:
    """The indexed columns derived from an event (verification compares them to body)."""
    return {
        "id": event.id,
        "ts": to_us(event.ts),
        "actor": event.actor.id,
        "role": event.actor.role,
        "org": event.actor.org,
        "actor_name": event.actor.name,
        "reporter": event.reporter,
        "action": event.action,
        "dataset": event.dataset,
        "grade": event.grade,
        "effect": event.effect,
        "outcome": event.outcome,
        "rows": event.rows,
        "purpose": event.purpose,
        "reason": event.reason,
        "source_ip": event.source_ip,
    }


def create_schema(bind: Engine | Connection) -> None:
    """Create the tables and the head row (tests; the service uses migration 0002)."""
    METADATA.create_all(bind)
    with bind.begin() if isinstance(bind, Engine) else contextlib.nullcontext(bind) as conn:
        ensure_head(conn)


def ensure_head(conn: Connection | Session) -> None:
    if conn.execute(sa.select(HEAD.c.id).where(HEAD.c.id == 1)).first() is None:
        conn.execute(
            HEAD.insert().values(
                id=1, seq=0, hash=GENESIS, frontier=b"", base=0,
                pruned_below=0, pruned_hash=GENESIS, pruned_frontier=b"",
            )
        )


@dataclass(frozen=True)
class Head:
    """The head row of one trail generation. ``seq``/``pruned_below`` are global seqs;
    the generation's tree holds events ``base+1..seq`` (``size`` leaves)."""

    seq: int
    hash: bytes
    frontier: tuple[bytes, ...]
    pruned_below: int
    pruned_hash: bytes
    pruned_frontier: tuple[bytes, ...]
    generation: int = 1
    base: int = 0

    @property
    def size(self) -> int:
        """Leaves in this generation's tree (its checkpoints' ``tree_size``)."""
        return self.seq - self.base

    @property
    def pruned_size(self) -> int:
        """Leaves of this generation purged by retention."""
        return self.pruned_below - self.base

    def root(self, h: Digest = sha256) -> bytes:
        return Accumulator(self.size, self.frontier, h=h).root()


@dataclass(frozen=True)
class Generation:
    """One trail generation: its crypto suite, seal and head row."""

    id: int
    suite: str
    sealed: int | None
    successor: str | None
    head: Head

    @property
    def first_seq(self) -> int:
        return self.head.base + 1


@dataclass(frozen=True)
class StoredEvent:
    """One row as stored (columns as read; verification recomputes and compares)."""

    seq: int
    body: str
    leaf_hash: bytes
    prev_hash: bytes
    hash: bytes
    columns: dict[str, object]


class AuditStore:
    """Append and read audit events. There is no update or delete of events.

    ``suite`` is the crypto suite this process runs. Events go to the current (newest)
    generation of the trail; appending to a generation of another suite, or to one sealed
    by a hand-over, raises SuiteMismatch (never mixes hashes). Seqs run on across
    generations, so readers (search, console, shipper) see one numbering.
    """

    def __init__(self, suite: Suite = INTL) -> None:
        self.suite = suite
        self.hash: Digest = sha256 if suite.hash_alg == "sha256" else suite.hash

    def trail_suite(self, session: Session) -> tuple[str, int | None, str | None]:
        """``(suite, sealed_us, successor)`` of the current generation (legacy: intl, open;
        an empty trail takes the suite of its first append: this store's)."""
        return self._suite_of(session, self.head(session))

    def _suite_of(self, session: Session, head: Head) -> tuple[str, int | None, str | None]:
        row = session.execute(_SELECT_SUITE, {"gen": head.generation}).first()
        if row is None:
            return (INTL.name if head.size else self.suite.name), None, None
        return str(row[0]), row[1], row[2]

    def check_suite(self, session: Session, *, head: Head | None = None) -> None:
        """Refuse a generation of another suite or a sealed one; record the suite of a new
        trail. ``head`` is the current generation's head when the caller has it."""
        head = self.head(session) if head is None else head
        found = session.execute(_SELECT_SUITE, {"gen": head.generation}).first()
        self._check_suite(session, head, None if found is None else (found[0], found[1], found[2]))

    def _check_suite(self, session: Session, head: Head, found: tuple[object, object, object] | None) -> None:
        """``check_suite`` on the suite row ``found`` of ``head``'s generation (None: no row)."""
        if found is None or found[0] is None:
            recorded = self.suite.name if head.size == 0 else INTL.name
            session.execute(SUITE.insert().values(id=head.generation, suite=recorded))
            suite, sealed, successor = recorded, None, None
        else:
            suite, sealed, successor = str(found[0]), found[1], found[2]
        if suite != self.suite.name:
            raise SuiteMismatch(suite, self.suite.name)
        if sealed is not None:
            raise SuiteMismatch(suite, self.suite.name, (
                f"generation {head.generation} of the audit trail was handed over to crypto "
                f"suite '{successor}' and is sealed; nothing is appended to it"))

    def head(self, session: Session) -> Head:
        """The head of the current (newest) generation."""
        return _head(session.execute(_SELECT_HEAD).one())

    def generations(self, session: Session) -> list[Generation]:
        """Every generation, oldest first, with its suite and head row."""
        suites = {int(r.id): (str(r.suite), r.sealed, r.successor)
                  for r in session.execute(sa.select(SUITE))}
        out = []
        for row in session.execute(sa.select(HEAD).order_by(HEAD.c.id)):
            head = _head(row)
            suite, sealed, successor = suites.get(
                head.generation, (INTL.name if head.size else self.suite.name, None, None))
            out.append(Generation(head.generation, suite, sealed, successor, head))
        return out

    def seal(self, session: Session, *, successor: str, at: int) -> None:
        """Mark the current generation handed over to ``successor`` (no append after this)."""
        head = self.head(session)
        self.check_suite(session, head=head)
        session.execute(sa.update(SUITE).where(SUITE.c.id == head.generation)
                        .values(sealed=at, successor=successor))

    def start_generation(self, session: Session, suite: Suite) -> Generation:
        """Open the next generation under ``suite`` after a sealed one (same transaction as
        the seal). Its events continue the seq numbering; its chain starts at GENESIS and
        its tree at size 0. Refused unless the current generation is sealed to ``suite``."""
        session.execute(_LOCK_HEAD)
        head = self.head(session)
        suite_name, sealed, successor = self._suite_of(session, head)
        if sealed is None or successor != suite.name:
            raise SuiteMismatch(suite_name, suite.name, (
                f"generation {head.generation} ({suite_name}) is not sealed for a hand-over "
                f"to '{suite.name}'; a new generation starts only after one"))
        gen = head.generation + 1
        session.execute(HEAD.insert().values(
            id=gen, seq=head.seq, hash=GENESIS, frontier=b"", base=head.seq,
            pruned_below=head.seq, pruned_hash=GENESIS, pruned_frontier=b""))
        session.execute(SUITE.insert().values(id=gen, suite=suite.name))
        return Generation(gen, suite.name, None, None, self.head(session))

    def append(
        self, session: Session, events: Sequence[AuditEvent], *, now: datetime | None = None
    ) -> list[AuditEvent]:
        """Append ``events`` in order; returns them with ``seq`` (and ``ingested``) set.

        Hashing happens in the same pass as building the rows; one executemany. The
        head row is locked first (see module docstring) and updated last.
        """
        if not events:
            return []
        # Core statements on the session's connection (same transaction): the ORM's
        # execute adds nothing for them, and this runs for every audited request
        conn = session.connection()
        conn.execute(_LOCK_HEAD)
        # the head and its generation's suite row in one statement
        row = conn.execute(_SELECT_HEAD_SUITE).one()
        head = _head(row)
        self._check_suite(session, head, (row.suite_name, row.suite_sealed, row.suite_successor))
        stamp = (now or utc_now()).astimezone(UTC)
        stamp_text = format_ts(stamp)
        hf = self.hash
        acc = Accumulator(head.size, head.frontier, h=hf)
        add_leaf = acc.append
        prev, seq = head.hash, head.seq
        rows: list[tuple[object, ...]] = []
        stored: list[AuditEvent] = []
        new = object.__new__
        for event in events:
            seq += 1
            # ``event.stamped(seq, stamp)`` inlined: this loop runs once per appended event
            ev = new(AuditEvent)
            d = ev.__dict__
            d.update(event.__dict__)
            d["seq"] = seq
            ts_us = d.get("ts_us")
            if ts_us is None:
                ts_us = d["ts_us"] = to_us(d["ts"])
            if d["ingested"] is None:
                d["ingested"] = stamp
                text = canonical_text(ev, ingested=stamp_text)
            else:
                text = canonical_text(ev)
            leaf = hf(b"\x00" + text.encode("utf-8"))  # leaf_hash (RFC 6962)
            h = hf(b"\x02" + prev + leaf)  # chain_hash
            add_leaf(leaf)
            c = d["actor"]
            dec = d["decision"]
            rows.append((
                seq, d["id"], ts_us, c.id, c.role, c.org, c.name, d["reporter"], d["action"],
                d["dataset"], d["grade"], dec.effect if dec else None, d["outcome"], d["rows"],
                d["purpose"], d["reason"], d["source_ip"], text, leaf, prev, h,
            ))
            stored.append(ev)
            prev = h
        _insert_rows(conn, rows)
        conn.execute(_MOVE_HEAD, {"seq": seq, "hash": prev, "frontier": pack(acc.frontier),
                                     "gen": head.generation})
        return stored

    def iter_range(
        self, session: Session, start: int = 1, end: int | None = None, *, chunk: int = 5000
    ) -> Iterator[StoredEvent]:
        """Stored rows with ``start <= seq <= end`` in seq order (keyset-paged)."""
        cursor = start - 1
        while True:
            stmt = sa.select(EVENTS).where(EVENTS.c.seq > cursor)
            if end is not None:
                stmt = stmt.where(EVENTS.c.seq <= end)
            batch = session.execute(stmt.order_by(EVENTS.c.seq).limit(chunk)).all()
            if not batch:
                return
            for row in batch:
                m = row._mapping
                yield StoredEvent(
                    seq=m["seq"], body=m["body"], leaf_hash=bytes(m["leaf_hash"]),
                    prev_hash=bytes(m["prev_hash"]), hash=bytes(m["hash"]),
                    columns={k: m[k] for k in _COLUMN_NAMES},
                )
            cursor = batch[-1]._mapping["seq"]

    def get(self, session: Session, seq: int) -> AuditEvent:
        row = session.execute(sa.select(EVENTS.c.body).where(EVENTS.c.seq == seq)).first()
        if row is None:
            raise EventNotFound(f"no audit event with seq {seq}")
        return AuditEvent.from_json(row[0])

    def leaf_hashes(self, session: Session, start: int, end: int) -> list[bytes]:
        """Stored leaf hashes of seq ``start..end`` (inclusive) in order."""
        out: list[bytes] = []
        for (leaf,) in session.execute(
            sa.select(EVENTS.c.leaf_hash)
            .where(EVENTS.c.seq >= start, EVENTS.c.seq <= end)
            .order_by(EVENTS.c.seq)
        ):
            out.append(bytes(leaf))
        return out

    def count(self, session: Session) -> int:
        return int(session.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar_one())

    def max_seq(self, session: Session) -> int:
        return int(session.execute(sa.select(sa.func.max(EVENTS.c.seq))).scalar() or 0)


# Built once: append runs for every audited request.
# The current generation is the newest head row.
_SELECT_HEAD = sa.select(HEAD).order_by(HEAD.c.id.desc()).limit(1)
_SELECT_HEAD_SUITE = (
    sa.select(HEAD, SUITE.c.suite.label("suite_name"), SUITE.c.sealed.label("suite_sealed"),
              SUITE.c.successor.label("suite_successor"))
    .select_from(HEAD.outerjoin(SUITE, SUITE.c.id == HEAD.c.id))
    .order_by(HEAD.c.id.desc()).limit(1))
_SELECT_SUITE = sa.select(SUITE.c.suite, SUITE.c.sealed, SUITE.c.successor).where(
    SUITE.c.id == sa.bindparam("gen"))
# Taking row 1's lock first serialises appenders (SQLite write lock, PG row lock) in every
# generation: a hand-over takes it too before it opens the next generation's row.
_LOCK_HEAD = sa.update(HEAD).where(HEAD.c.id == 1).values(seq=HEAD.c.seq)
_MOVE_HEAD = sa.update(HEAD).where(HEAD.c.id == sa.bindparam("gen")).values(
    seq=sa.bindparam("seq"), hash=sa.bindparam("hash"), frontier=sa.bindparam("frontier"))

_COLUMN_NAMES = (
    "id", "ts", "actor", "role", "org", "actor_name", "reporter", "action", "dataset", "grade",
    "effect", "outcome", "rows", "purpose", "reason", "source_ip",
)
_INSERT_COLUMNS = ("seq", *_COLUMN_NAMES, "body", "leaf_hash", "prev_hash", "hash")


def driver_insert(conn: Connection, table: str, columns: Sequence[str],
                  rows: list[tuple[object, ...]]) -> None:
    """``INSERT INTO table (columns)`` of ``rows`` (tuples in column order) with one
    driver-level executemany: the statement is fixed, so SQLAlchemy's per-row parameter
    processing is skipped (the trail's and the alerts' bulk paths)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cols = ", ".join(f'"{c}"' for c in columns)
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({cols}) VALUES ({', '.join(mark for _ in columns)})", rows)


# Batches at least this large go through PostgreSQL's COPY (below it, the round trips of
# starting a COPY cost more than the pipelined executemany saves).
COPY_MIN_ROWS = 64


def _insert_rows(conn: Connection, rows: list[tuple[object, ...]]) -> None:
    """Insert the built rows: ``COPY ... FROM STDIN`` on PostgreSQL (psycopg 3), a
    driver-level executemany elsewhere — the statement is fixed, so SQLAlchemy's per-row
    parameter processing is skipped (this is the ingest hot path)."""
    driver = getattr(conn.connection, "driver_connection", None)
    if (conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS and driver is not None
            and type(driver).__module__.split(".")[0] == "psycopg"):
        cols = ", ".join(f'"{c}"' for c in _INSERT_COLUMNS)
        with driver.cursor() as cur, cur.copy(f"COPY audit_events ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    driver_insert(conn, "audit_events", _INSERT_COLUMNS, rows)


def _head(row: sa.Row[tuple[object, ...]]) -> Head:
    m = row._mapping
    return Head(
        seq=int(m["seq"]),
        hash=bytes(m["hash"]),
        frontier=unpack(bytes(m["frontier"])),
        pruned_below=int(m["pruned_below"]),
        pruned_hash=bytes(m["pruned_hash"]),
        pruned_frontier=unpack(bytes(m["pruned_frontier"])),
        generation=int(m["id"]),
        base=int(m["base"] or 0),
    )
