"""Running counters behind the alert rules: per actor, what the rules ask of the trail.

The alert engine asks, for one actor: how many events (or denied events) fall in a time
range, their first seqs, the actor's first event time, the rows it exported on a local
day, and whether it touched a dataset before. Asking the database on every batch costs
more than the append itself, so :class:`ActorCounters` answers from memory:

* each actor's events of the last ``span`` (timestamps and seqs in two ``array('q')``
  kept in time order — 16 bytes an event), its denied events likewise;
* its counted exports of the last ``span`` (time, seq, rows), for daily export sums;
* the datasets it is known to have accessed; its first event time once known.

**Invariant**: for an actor in the cache, every stored event of that actor with
``ts >= horizon`` is in its arrays.
It holds because (1) an actor's counters are loaded from the trail *after* the batch was
appended (so they include it) and (2) every later appended event is added. Whoever owns
the cache must clear it when it may have missed an append (another process appended,
or a transaction rolled back) — :class:`monitor.alert_engine.AlertEngine` checks seq
continuity and listens for rollbacks. A question about a range before the horizon, or
a day that began before the horizon, is answered by the database, as before.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_LINKED = 200


@dataclass
class _Series:
    """Events (ts µs, seq) in time order, complete from ``horizon`` on."""

    horizon: int
    ts: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    seq: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]

    def add(self, ts: int, seq: int) -> None:
        if ts < self.horizon:
            return
        if not self.ts or ts >= self.ts[-1]:
            self.ts.append(ts)
            self.seq.append(seq)
            return
        i = bisect_right(self.ts, ts)
        self.ts.insert(i, ts)
        self.seq.insert(i, seq)

    def covers(self, lo: int) -> bool:
        return lo >= self.horizon

    def count(self, lo: int, hi: int) -> int:
        """Events with ``lo < ts <= hi``."""
        return bisect_right(self.ts, hi) - bisect_right(self.ts, lo)

    def seqs(self, lo: int, hi: int) -> tuple[int, ...]:
        a, b = bisect_right(self.ts, lo), bisect_right(self.ts, hi)
        return tuple(sorted(self.seq[a:b])[:MAX_LINKED])

    def prune(self, horizon: int) -> None:
        if horizon <= self.horizon:
            return
        cut = bisect_left(self.ts, horizon)
        if cut:
            del self.ts[:cut]
            del self.seq[:cut]
        self.horizon = horizon


@dataclass
class _RowSeries(_Series):
    """A series that also carries each event's row count (exports)."""

    rows: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]

    def add_rows(self, ts: int, seq: int, rows: int) -> None:
        if ts < self.horizon:
            return
        i = len(self.ts) if not self.ts or ts >= self.ts[-1] else bisect_right(self.ts, ts)
        self.ts.insert(i, ts)
        self.seq.insert(i, seq)
        self.rows.insert(i, rows)

    def day(self, lo: int, hi: int) -> tuple[int, tuple[int, ...]]:
        """Sum of rows and first seqs of the events with ``lo <= ts < hi``."""
        a, b = bisect_left(self.ts, lo), bisect_left(self.ts, hi)
        return sum(self.rows[a:b]), tuple(sorted(self.seq[a:b])[:MAX_LINKED])

    def prune(self, horizon: int) -> None:
        if horizon > self.horizon:
            cut = bisect_left(self.ts, horizon)
            del self.rows[:cut]
        super().prune(horizon)


@dataclass
class ActorState:
    events: _Series
    denied: _Series
    exports: _RowSeries
    first_ts: int | None = None
    datasets: set[str] = field(default_factory=set)


class ActorCounters:
    """An LRU cache of :class:`ActorState` (see the module docstring for the invariant)."""

    def __init__(self, span_us: int, *, max_actors: int = 20_000) -> None:
        self.span = span_us
        self.max_actors = max_actors
        self._actors: OrderedDict[str, ActorState] = OrderedDict()

    def clear(self) -> None:
        self._actors.clear()

    def get(self, actor: str) -> ActorState | None:
        st = self._actors.get(actor)
        if st is not None:
            self._actors.move_to_end(actor)
        return st

    def put(self, actor: str, state: ActorState) -> None:
        self._actors[actor] = state
        self._actors.move_to_end(actor)
        while len(self._actors) > self.max_actors:
            self._actors.popitem(last=False)

    def new_state(self, now_us: int, rows: list[tuple[int, int, bool, int | None]]
                  ) -> ActorState:
        """State from the trail's events of the last span: ``(ts, seq, denied, export_rows)``
        rows (``export_rows`` None for an event that is not a counted export)."""
        horizon = now_us - self.span
        st = ActorState(_Series(horizon), _Series(horizon), _RowSeries(horizon))
        for ts, seq, denied, export_rows in sorted(rows, key=lambda r: (r[0], r[1])):
            self.add(st, ts, seq, denied=denied, export_rows=export_rows)
        return st

    def add(self, st: ActorState, ts: int, seq: int, *, denied: bool,
            export_rows: int | None) -> None:
        """Count one appended event."""
        st.events.add(ts, seq)
        if denied:
            st.denied.add(ts, seq)
        if export_rows is not None:
            st.exports.add_rows(ts, seq, export_rows)
        if st.first_ts is not None and ts < st.first_ts:
            st.first_ts = ts

    def prune(self, st: ActorState, latest_us: int) -> None:
        horizon = latest_us - self.span
        st.events.prune(horizon)
        st.denied.prune(horizon)
        st.exports.prune(horizon)
