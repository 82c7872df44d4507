"""Evaluating alert rules on appended events, and the alert book (list / transition).

``AlertEngine.process(session, events)`` runs in the appender's transaction, right
after ``AuditStore.append``: rules look at the new events and, where a rule needs
history (baselines, first access, daily sums), at the stored trail through the
``(actor, ts)`` indexes. Hits with the same dedup key (rule, actor and the rule's
bucket: window, local day or dataset) collapse into one alert while it is open or
acknowledged: its count grows and its linked seqs are extended.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from monitor.alert_state import ActorCounters, ActorState, _Series
from monitor.alerts import (
    STATUSES,
    AlertRules,
    DenialBurst,
    ExportVolume,
    FirstAccess,
    OffHours,
    Rule,
    VolumeSpike,
)
from monitor.errors import AlertConflict, AlertNotFound, InvalidEvent
from monitor.events import AuditEvent, random_bits, utc_now
from monitor.store import ALERTS, EVENTS, driver_insert, from_us, to_us

MAX_LINKED = 200


@dataclass(frozen=True)
class Hit:
    rule: Rule
    actor: str
    bucket: str
    window_start: datetime
    window_end: datetime
    seqs: tuple[int, ...]
    summary: str

    @property
    def dedup_key(self) -> str:
        return f"{self.rule.id}|{self.actor}|{self.bucket}"


def _hit(rule: Rule, actor: str, bucket: str, window_start: datetime, window_end: datetime,
         seqs: tuple[int, ...], summary: str) -> Hit:
    """``Hit(...)`` without the frozen dataclass's setattr calls (an alert-heavy batch
    makes thousands)."""
    hit = object.__new__(Hit)
    hit.__dict__.update(rule=rule, actor=actor, bucket=bucket, window_start=window_start,
                        window_end=window_end, seqs=seqs, summary=summary)
    return hit


@dataclass(frozen=True)
class Alert:
    id: str
    rule: str
    severity: str
    actor: str
    window_start: datetime
    window_end: datetime
    seqs: tuple[int, ...]
    count: int
    summary: str
    status: str
    note: str | None
    created: datetime
    updated: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "rule": self.rule, "severity": self.severity, "actor": self.actor,
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "seqs": list(self.seqs), "count": self.count, "summary": self.summary,
            "status": self.status, "note": self.note,
            "created": self.created.isoformat(), "updated": self.updated.isoformat(),
        }


def _ok(e: AuditEvent) -> bool:
    """An access that happened (not denied, not failed)."""
    d = e.decision
    return (d is None or d.effect != "deny") and e.outcome == "success"


def _denied(e: AuditEvent) -> bool:
    d = e.decision
    return d is not None and d.effect == "deny"


_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US
_UNIX_DAY0 = date(1970, 1, 1).toordinal()
_UNKNOWN = object()
_ONE_US = timedelta(microseconds=1)


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


class _LocalClock:
    """UTC µs -> (local day number since 1970-01-01, µs into that local day) in one zone,
    as ``datetime.astimezone(zone)`` would give, from a per-hour cache of the zone's UTC
    offset (an hour whose two ends have different offsets holds a transition and is
    converted event by event)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._offsets: dict[int, int | None] = {}
        self._dates: dict[int, str] = {}

    def _offset_at(self, us: int) -> int:
        offset = from_us(us).astimezone(self.zone).utcoffset()
        return 0 if offset is None else offset // _ONE_US

    def split(self, us: int) -> tuple[int, int]:
        hour = us // _HOUR_US
        offset = self._offsets.get(hour, _UNKNOWN)
        if offset is _UNKNOWN:
            start = self._offset_at(hour * _HOUR_US)
            offset = start if start == self._offset_at((hour + 1) * _HOUR_US - 1) else None
            if len(self._offsets) > 200_000:
                self._offsets.clear()
            self._offsets[hour] = offset
        local = us + (self._offset_at(us) if offset is None else offset)  # type: ignore[operator]
        return local // _DAY_US, local % _DAY_US

    def iso_date(self, day: int) -> str:
        text = self._dates.get(day)
        if text is None:
            if len(self._dates) > 100_000:
                self._dates.clear()
            text = self._dates[day] = date.fromordinal(day + _UNIX_DAY0).isoformat()
        return text

    @staticmethod
    def weekday(day: int) -> int:
        """ISO weekday (Monday 1) of a day number (1970-01-01 was a Thursday)."""
        return (day + 3) % 7 + 1


OwnerLookup = Callable[[Session, str], "str | None"]


_ROLLBACK_DROPS = "quanguard_alert_rollback_drops"


@sa_event.listens_for(Session, "after_commit")
def _keep_counters(session: Session) -> None:
    session.info.pop(_ROLLBACK_DROPS, None)


@sa_event.listens_for(Session, "after_rollback")
def _drop_counters(session: Session) -> None:
    for engine in session.info.pop(_ROLLBACK_DROPS, ()):
        engine._drop()


class AlertEngine:
    """Evaluates the rules on each appended batch from running counters per actor
    (:mod:`monitor.alert_state`); the trail is asked only for what the counters do not
    hold (an actor's first batch, old time ranges, a dataset not seen yet)."""

    def __init__(self, rules: AlertRules, tz: str = "UTC", *,
                 owner_org: OwnerLookup | None = None):
        self.rules = rules
        self.zone = ZoneInfo(tz)
        self._clock = _LocalClock(self.zone)
        # dataset -> owning organisation (the exchange catalog), for exclude_own_org.
        self.owner_org = owner_org
        span = timedelta(days=1)
        for r in rules:
            if isinstance(r, VolumeSpike):
                span = max(span, timedelta(hours=r.baseline_hours), timedelta(minutes=r.window_minutes))
            elif isinstance(r, DenialBurst):
                span = max(span, timedelta(minutes=r.window_minutes))
        self.counters = ActorCounters(span // timedelta(microseconds=1) + 1)
        self._seen: int | None = None  # the last seq these counters include
        self._lock = threading.Lock()
        self._owners: dict[str, str | None] = {}  # dataset -> owner, for the batch at hand
        self._excluded_roles = frozenset(
            role for r in rules if isinstance(r, (OffHours, FirstAccess)) for role in r.exclude_own_org)
        self._exports = tuple(r for r in rules if isinstance(r, ExportVolume))
        self._export_actions = frozenset(self._exports[0].actions) if len(self._exports) == 1 \
            else frozenset()

    def _own_org(self, s: Session, rule: OffHours | FirstAccess, e: AuditEvent) -> bool:
        """True when ``e`` is an access by one of the rule's ``exclude_own_org`` roles to
        data of its own organisation (an unknown owner is never "own")."""
        dataset = e.dataset
        if e.actor.role not in rule.exclude_own_org or not dataset:
            return False
        owner = None
        if self.owner_org is not None:
            # one look-up per dataset and batch: the catalog does not change under it
            if dataset not in self._owners:
                self._owners[dataset] = self.owner_org(s, dataset)
            owner = self._owners[dataset]
        if owner is None:
            owner = e.labels.get("dataset_org")
        return owner is not None and owner == e.actor.org

    def process(self, session: Session, events: Sequence[AuditEvent],
                *, now: datetime | None = None) -> list[Alert]:
        """Evaluate ``events`` (already appended, seqs set) and record alerts."""
        hits = self.evaluate(session, events)
        return record_hits(session, hits, now=now or utc_now())

    def reset(self) -> None:
        with self._lock:
            self.counters.clear()
            self._seen = None

    def evaluate(self, session: Session, events: Sequence[AuditEvent]) -> list[Hit]:
        if not events:
            return []
        with self._lock:
            try:
                return self._evaluate(session, events)
            finally:
                self._owners = {}  # never trusted beyond the batch it was read for

    def _evaluate(self, session: Session, events: Sequence[AuditEvent]) -> list[Hit]:
        seqs = [e.seq for e in events if e.seq is not None]
        if seqs:
            # Counters are complete only if they saw every append: another process's
            # batch (or one rolled back) in between means starting over from the trail.
            if self._seen is None or min(seqs) != self._seen + 1:
                self.counters.clear()
            self._seen = max(seqs)
            # a rollback of this session drops the counters (the hook below, on the Session
            # class once, rather than a listener added to every session)
            engines: set[AlertEngine] = session.info.setdefault(_ROLLBACK_DROPS, set())
            engines.add(self)
        # In seq order already (as the store returns a batch)? Then no per-actor sorting.
        ordered = len(seqs) == len(events) and all(a < b for a, b in pairwise(seqs))
        by_actor: dict[str, list[AuditEvent]] = defaultdict(list)
        for e in events:
            by_actor[e.actor.id].append(e)
        hits: list[Hit] = []
        rules = self.rules
        # actors with an event of a role some rule excludes from its own organisation's
        # data (one pass over the batch; for the others no exclusion can apply)
        excluding = self._excluded_roles
        excluders = {e.actor.id for e in events if e.actor.role in excluding} if excluding else set()
        for actor, evs in by_actor.items():
            by_seq = evs if ordered else sorted(evs, key=_seq_key)
            latest = max([e.ts_us for e in evs])
            st = self._state(session, actor, by_seq, latest)
            # events left after each rule's exclude_own_org (computed once per role set)
            kept: dict[tuple[str, ...], tuple[list[AuditEvent], list[AuditEvent]]] = {}
            may_exclude = actor in excluders
            for rule in rules:
                found = self._rule(session, rule, actor, evs, st, by_seq, latest, kept,
                                   may_exclude=may_exclude)
                if found:
                    hits.extend(found)
            st.datasets.update([e.dataset for e in evs if e.dataset and _ok(e)])
            self.counters.prune(st, latest)
        return hits

    def _drop(self) -> None:
        self.counters.clear()
        self._seen = None

    def _state(self, s: Session, actor: str, by_seq: list[AuditEvent], latest: int
               ) -> ActorState:
        """The actor's counters including ``by_seq`` (the actor's new events in seq order;
        loaded after the append, or updated); ``latest`` is their largest ts (µs)."""
        st = self.counters.get(actor)
        if st is None:
            rows = s.execute(_RECENT, {"actor": actor, "lo": latest - self.counters.span}).all()
            st = self.counters.new_state(latest, [
                (int(r.ts), int(r.seq), r.effect == "deny",
                 self._export_rows(r.action, r.effect, r.outcome, r.rows)) for r in rows])
            self.counters.put(actor, st)
            return st
        add = self.counters.add
        exports = self._export_actions
        for e in by_seq:
            d = e.decision
            denied = d is not None and d.effect == "deny"
            add(st, e.ts_us, e.seq or 0, denied=denied,
                export_rows=None if e.action not in exports or denied or e.outcome != "success"
                else int(e.rows or 0))
        return st

    def _export_rows(self, action: str, effect: str | None, outcome: str,
                     rows: int | None) -> int | None:
        """Rows an event adds to the (single) export rule's daily sum; None if it does not count."""
        if len(self._exports) != 1 or action not in self._exports[0].actions:
            return None
        if effect == "deny" or outcome != "success":
            return None
        return int(rows or 0)

    def _rule(self, session: Session, rule: Rule, actor: str, evs: list[AuditEvent],
              st: ActorState, by_seq: list[AuditEvent], latest: int,
              kept: dict[tuple[str, ...], tuple[list[AuditEvent], list[AuditEvent]]] | None = None,
              *, may_exclude: bool = True) -> list[Hit]:
        """``may_exclude`` False: no event of ``evs`` has a role any rule excludes."""
        if isinstance(rule, VolumeSpike):
            return self._spike(session, rule, actor, evs, st, latest)
        if may_exclude and isinstance(rule, (OffHours, FirstAccess)) and rule.exclude_own_org:
            if len(evs) == 1 and len(by_seq) == 1:
                # one event (an API call's): the owner is looked up only if the rule could
                # raise on it (it is ignored by the rule otherwise), so most accesses need
                # no catalog look-up; not kept, since whether it could hit is this rule's
                e = evs[0]
                if self._could_hit(rule, e, st) and self._own_org(session, rule, e):
                    return []
            else:
                roles = rule.exclude_own_org
                pair = kept.get(roles) if kept is not None else None
                if pair is None:
                    pair = (evs, by_seq)
                    if any(e.actor.role in roles for e in evs):
                        left = [e for e in evs if not self._own_org(session, rule, e)]
                        pair = (left, left if by_seq is evs else [
                            e for e in by_seq if not self._own_org(session, rule, e)])
                    if kept is not None:
                        kept[roles] = pair
                evs, by_seq = pair
            if not evs:
                return []
        if isinstance(rule, OffHours):
            return self._off_hours(rule, actor, evs)
        if isinstance(rule, DenialBurst):
            return self._denials(session, rule, actor, evs, st)
        if isinstance(rule, FirstAccess):
            return self._first(session, rule, actor, by_seq, st)
        return self._export(session, rule, actor, evs, st)

    def _could_hit(self, rule: OffHours | FirstAccess, e: AuditEvent, st: ActorState) -> bool:
        """Whether ``rule`` could raise on ``e`` (its own-org exclusion aside)."""
        if e.grade not in rule.grades or not e.dataset or not _ok(e):
            return False
        if isinstance(rule, FirstAccess):
            return e.dataset not in st.datasets
        local = e.ts.astimezone(self.zone)
        return not (local.isoweekday() in rule.workdays
                    and rule.work_start <= local.time() < rule.work_end)

    # -- rules -------------------------------------------------------------------
    def _spike(self, s: Session, rule: VolumeSpike, actor: str,
               evs: list[AuditEvent], st: ActorState, latest: int) -> list[Hit]:
        # Cheapest test first: most actors are nowhere near min_events in a window (the
        # counters answer in µs without building times).
        lo = latest - rule.window_minutes * 60_000_000
        if st.events.covers(lo) and st.events.count(lo, latest) < rule.min_events:
            return []
        t = from_us(latest)  # the newest event's time
        window = timedelta(minutes=rule.window_minutes)
        current = _count(s, st.events, actor, t - window, t)
        if current < rule.min_events:
            return []
        if st.first_ts is None:
            first = s.execute(_MIN_TS, {"actor": actor}).scalar()
            if first is None:
                return []
            st.first_ts = int(first)
        if t - from_us(st.first_ts) < timedelta(hours=rule.warmup_hours):
            return []  # warm-up: not enough history to know this actor's normal
        base_start = t - timedelta(hours=rule.baseline_hours)
        baseline = _count(s, st.events, actor, base_start, t - window)
        windows = max(1.0, (timedelta(hours=rule.baseline_hours) - window) / window)
        average = baseline / windows
        if current < rule.min_events or current <= rule.factor * max(average, 1.0):
            return []
        start = t - window
        return [Hit(rule, actor, _bucket(t, window), start, t,
                    _seqs(s, st.events, actor, start, t),
                    f"{current} events in {rule.window_minutes} min, "
                    f"{rule.factor}x over the usual {average:.1f}")]

    def _off_hours(self, rule: OffHours, actor: str, evs: list[AuditEvent]) -> list[Hit]:
        # local day and time of day as ``e.ts.astimezone(self.zone)`` gives them
        grades, workdays = rule.grades, rule.workdays
        candidates = [e for e in evs if e.grade in grades and _ok(e)]
        if not candidates:
            return []
        by_day: dict[int, list[AuditEvent]] = defaultdict(list)
        start, end = _time_us(rule.work_start), _time_us(rule.work_end)
        clock = self._clock
        for e in candidates:
            day, tod = clock.split(e.ts_us)
            if not (clock.weekday(day) in workdays and start <= tod < end):
                by_day[day].append(e)
        hits = []
        for day, day_evs in by_day.items():
            iso = clock.iso_date(day)
            stamps = [e.ts_us for e in day_evs]
            hits.append(_hit(
                rule, actor, iso, from_us(min(stamps)), from_us(max(stamps)),
                tuple([e.seq for e in day_evs if e.seq is not None]),
                f"{len(day_evs)} off-hours access(es) to "
                f"{', '.join(sorted({str(e.grade) for e in day_evs}))} data on {iso}"))
        return hits

    def _denials(self, s: Session, rule: DenialBurst, actor: str,
                 evs: list[AuditEvent], st: ActorState) -> list[Hit]:
        denied = [e for e in evs if _denied(e)]
        if not denied:
            return []
        t = from_us(max([e.ts_us for e in denied]))
        window = timedelta(minutes=rule.window_minutes)
        start = t - window
        n = _count(s, st.denied, actor, start, t, denied=True)
        if n < rule.threshold:
            return []
        return [Hit(rule, actor, _bucket(t, window), start, t,
                    _seqs(s, st.denied, actor, start, t, denied=True),
                    f"{n} denied requests in {rule.window_minutes} min")]

    def _first(self, s: Session, rule: FirstAccess, actor: str,
               by_seq: list[AuditEvent], st: ActorState) -> list[Hit]:
        # ``st.datasets``: datasets the actor is known to have accessed before this batch
        # (a cache: a dataset not in it is asked of the trail, which is the authority).
        known = st.datasets
        grades = rule.grades
        new: set[str] = set()
        hits = []
        for e in by_seq:
            ok = _ok(e)
            if (e.grade in grades and e.dataset and ok and e.dataset not in known
                    and e.dataset not in new):
                earlier = s.execute(_FIRST, {"actor": actor, "dataset": e.dataset,
                                              "seq": e.seq or 0}).first()
                if earlier is None:
                    hits.append(Hit(rule, actor, e.dataset, e.ts, e.ts,
                                    (e.seq,) if e.seq else (),
                                    f"first access to {e.grade} dataset {e.dataset!r}"))
            if ok and e.dataset:
                new.add(e.dataset)
        return hits

    def _export(self, s: Session, rule: ExportVolume, actor: str,
                evs: list[AuditEvent], st: ActorState) -> list[Hit]:
        actions = rule.actions
        counted = [e for e in evs if e.action in actions and e.rows and _ok(e)]
        if not counted:
            return []
        clock = self._clock
        days = {date.fromordinal(clock.split(e.ts_us)[0] + _UNIX_DAY0) for e in counted}
        hits = []
        for day in sorted(days):
            start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            end = start + timedelta(days=1)
            lo, hi = to_us(start), to_us(end)
            # counters hold exports only when one rule defines what counts as an export
            if len(self._exports) == 1 and st.exports.covers(lo):
                total, seqs = st.exports.day(lo, hi)
            else:
                params = {"actor": actor, "lo": lo, "hi": hi, "actions": list(rule.actions)}
                total = int(s.execute(_EXPORT_SUM, params).scalar_one())
                seqs = tuple(int(r[0]) for r in s.execute(_EXPORT_SEQS, params))
            if total > rule.max_rows_per_day:
                hits.append(Hit(rule, actor, day.isoformat(), start, end, seqs,
                                f"{total} rows exported on {day} "
                                f"(limit {rule.max_rows_per_day})"))
        return hits


def _seq_key(e: AuditEvent) -> int:
    return e.seq or 0


def _bucket(t: datetime, window: timedelta) -> str:
    return str(to_us(t) // (window // timedelta(microseconds=1)))


# Statements are built once and executed with parameters: alert evaluation runs on
# every append, and building SQL per call cost more than running it.
_ACTOR = EVENTS.c.actor == sa.bindparam("actor")
_OPEN_RANGE = (EVENTS.c.ts > sa.bindparam("lo"), EVENTS.c.ts <= sa.bindparam("hi"))
_CLOSED_RANGE = (EVENTS.c.ts >= sa.bindparam("lo"), EVENTS.c.ts < sa.bindparam("hi"))
_DENIED = EVENTS.c.effect == "deny"
_HAPPENED = (sa.or_(EVENTS.c.effect.is_(None), EVENTS.c.effect != "deny"),
             EVENTS.c.outcome == "success")
_COUNT = {
    False: sa.select(sa.func.count()).select_from(EVENTS).where(_ACTOR, *_OPEN_RANGE),
    True: sa.select(sa.func.count()).select_from(EVENTS).where(_ACTOR, *_OPEN_RANGE, _DENIED),
}
_SEQS = {
    False: sa.select(EVENTS.c.seq).where(_ACTOR, *_OPEN_RANGE).order_by(EVENTS.c.seq)
    .limit(MAX_LINKED),
    True: sa.select(EVENTS.c.seq).where(_ACTOR, *_OPEN_RANGE, _DENIED).order_by(EVENTS.c.seq)
    .limit(MAX_LINKED),
}
_MIN_TS = sa.select(sa.func.min(EVENTS.c.ts)).where(_ACTOR)
_RECENT = sa.select(EVENTS.c.ts, EVENTS.c.seq, EVENTS.c.effect, EVENTS.c.action,
                    EVENTS.c.outcome, EVENTS.c.rows).where(
    _ACTOR, EVENTS.c.ts >= sa.bindparam("lo"))
_FIRST = sa.select(EVENTS.c.seq).where(
    _ACTOR, EVENTS.c.dataset == sa.bindparam("dataset"), EVENTS.c.seq < sa.bindparam("seq"),
    *_HAPPENED).limit(1)
_EXPORTS = (_ACTOR, *_CLOSED_RANGE, *_HAPPENED,
            EVENTS.c.action.in_(sa.bindparam("actions", expanding=True)))
_EXPORT_SUM = sa.select(sa.func.coalesce(sa.func.sum(EVENTS.c.rows), 0)).where(*_EXPORTS)
_EXPORT_SEQS = sa.select(EVENTS.c.seq).where(*_EXPORTS).order_by(EVENTS.c.seq).limit(MAX_LINKED)
_OPEN_ALERT = (
    sa.select(ALERTS).where(ALERTS.c.dedup_key == sa.bindparam("key"),
                            ALERTS.c.status.in_(("open", "acknowledged")))
    .order_by(ALERTS.c.created.desc()).limit(1)
)


def _count(s: Session, series: _Series, actor: str, start: datetime, end: datetime, *,
           denied: bool = False) -> int:
    lo, hi = to_us(start), to_us(end)
    if series.covers(lo):
        return series.count(lo, hi)
    return int(s.execute(_COUNT[denied], {"actor": actor, "lo": lo, "hi": hi}).scalar_one())


def _seqs(s: Session, series: _Series, actor: str, start: datetime, end: datetime, *,
          denied: bool = False) -> tuple[int, ...]:
    lo, hi = to_us(start), to_us(end)
    if series.covers(lo):
        return series.seqs(lo, hi)
    rows = s.execute(_SEQS[denied], {"actor": actor, "lo": lo, "hi": hi})
    return tuple(int(r[0]) for r in rows)


def record_hits(session: Session, hits: Sequence[Hit], *, now: datetime) -> list[Alert]:
    """:func:`record_hit` for many hits: one lookup of the open alerts, one insert and one
    update statement (executemany) for the batch."""
    if not hits:
        return []
    hit_keys = [h.dedup_key for h in hits]
    keys = list(dict.fromkeys(hit_keys))
    current: dict[str, dict[str, Any]] = {}
    for i in range(0, len(keys), 500):
        for row in session.execute(_OPEN_ALERTS, {"keys": keys[i:i + 500]}):
            m = dict(row._mapping)
            prev = current.get(m["dedup_key"])
            if prev is None or m["created"] > prev["created"]:
                current[m["dedup_key"]] = m
    stamp = to_us(now)
    stamp_dt = from_us(stamp)
    inserts: dict[str, dict[str, Any]] = {}
    updates: dict[str, dict[str, Any]] = {}
    out: list[Alert] = []
    parsed: dict[str, list[int]] = {}  # alert id -> its "seqs" column, decoded once
    for hit, key in zip(hits, hit_keys, strict=True):
        values = current.get(key)
        if values is None:
            values = _new_alert(hit, stamp, key)
            inserts[values["id"]] = current[key] = values
            parsed[values["id"]] = list(hit.seqs)
            # the times from_us would give back, without the round trip
            out.append(_alert_from(values, parsed[values["id"]], (
                _as_stored(hit.window_start, values["window_start"]),
                _as_stored(hit.window_end, values["window_end"]), stamp_dt, stamp_dt)))
            continue
        _collapse(values, hit, stamp, parsed)
        if values["id"] not in inserts:
            updates[values["id"]] = values
        out.append(_alert_from(values, parsed.get(values["id"])))
    if inserts:
        _insert_alerts(session, list(inserts.values()))
    if updates:
        session.execute(_UPDATE_ALERT, [
            {"b_id": v["id"], "b_count": v["count"], "b_seqs": v["seqs"], "b_summary": v["summary"],
             "b_ws": v["window_start"], "b_we": v["window_end"], "b_updated": stamp}
            for v in updates.values()])
    return out


_ALERT_COLUMNS = tuple(c.name for c in ALERTS.columns)


def _insert_alerts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new alerts with one driver-level executemany (a batch of reported events can
    raise thousands)."""
    driver_insert(session.connection(), "audit_alerts", _ALERT_COLUMNS,
                  [tuple([v[c] for c in _ALERT_COLUMNS]) for v in rows])


def _as_stored(dt: datetime, us: int) -> datetime:
    """``from_us(us)`` when ``us == to_us(dt)``: ``dt`` itself if it is already in UTC."""
    return dt if dt.tzinfo is UTC else from_us(us)


def _new_alert(hit: Hit, stamp: int, key: str) -> dict[str, Any]:
    return {
        "id": f"{random_bits():016x}", "rule": hit.rule.id, "severity": hit.rule.severity,
        "actor": hit.actor, "dedup_key": key,
        "window_start": to_us(hit.window_start), "window_end": to_us(hit.window_end),
        # json.dumps of the seqs (ints) as it writes them: "[1, 2]"
        "seqs": "[" + ", ".join(map(str, hit.seqs)) + "]", "count": 1, "summary": hit.summary,
        "status": "open", "note": None, "created": stamp, "updated": stamp,
    }


def _collapse(values: dict[str, Any], hit: Hit, stamp: int,
              parsed: dict[str, list[int]] | None = None) -> None:
    old = parsed.get(values["id"]) if parsed is not None else None
    if old is None:
        old = json.loads(values["seqs"])
    new = hit.seqs
    if (len(old) == MAX_LINKED and (not new or min(new) > old[-1])
            and len(set(old)) == len(old) and old == sorted(old)):
        # the linked seqs are full and the hit's are all later: the merge keeps them as they are
        merged, text = old, values["seqs"]
    else:
        merged = sorted(set(old) | set(new))[:MAX_LINKED]
        text = json.dumps(merged)
    if parsed is not None:
        parsed[values["id"]] = merged
    values.update(
        count=int(values["count"]) + 1,
        seqs=text,
        summary=hit.summary, window_start=min(values["window_start"], to_us(hit.window_start)),
        window_end=max(values["window_end"], to_us(hit.window_end)), updated=stamp,
    )


_OPEN_ALERTS = sa.select(ALERTS).where(
    ALERTS.c.dedup_key.in_(sa.bindparam("keys", expanding=True)),
    ALERTS.c.status.in_(("open", "acknowledged")))
_UPDATE_ALERT = sa.update(ALERTS).where(ALERTS.c.id == sa.bindparam("b_id")).values(
    count=sa.bindparam("b_count"), seqs=sa.bindparam("b_seqs"), summary=sa.bindparam("b_summary"),
    window_start=sa.bindparam("b_ws"), window_end=sa.bindparam("b_we"),
    updated=sa.bindparam("b_updated"))


def record_hit(session: Session, hit: Hit, *, now: datetime) -> Alert:
    """Insert a new alert, or collapse the hit into the open one with the same key."""
    row = session.execute(_OPEN_ALERT, {"key": hit.dedup_key}).first()
    stamp = to_us(now)
    values: dict[str, Any]
    if row is None:
        values = _new_alert(hit, stamp, hit.dedup_key)
        session.execute(ALERTS.insert(), values)
        return _alert_from(values)
    values = dict(row._mapping)
    values.update(
        count=int(values["count"]) + 1,
        seqs=json.dumps(sorted(set(json.loads(row.seqs)) | set(hit.seqs))[:MAX_LINKED]),
        summary=hit.summary, window_start=min(row.window_start, to_us(hit.window_start)),
        window_end=max(row.window_end, to_us(hit.window_end)), updated=stamp,
    )
    session.execute(sa.update(ALERTS).where(ALERTS.c.id == row.id).values(
        count=values["count"], seqs=values["seqs"], summary=values["summary"],
        window_start=values["window_start"], window_end=values["window_end"], updated=stamp,
    ))
    return _alert_from(values)


def _alert(row: sa.Row[tuple[object, ...]]) -> Alert:
    return _alert_from(row._mapping)


def _alert_from(m: Any, seqs: list[int] | None = None,
                times: tuple[datetime, datetime, datetime, datetime] | None = None) -> Alert:
    """The alert of a row; ``seqs`` may pass its ``seqs`` column already decoded, ``times``
    its window start and end, created and updated as :func:`from_us` gives them."""
    alert = object.__new__(Alert)  # the frozen dataclass's __init__, without its setattr calls
    if times is None:
        times = (from_us(m["window_start"]), from_us(m["window_end"]), from_us(m["created"]),
                 from_us(m["updated"]))
    alert.__dict__.update(
        id=m["id"], rule=m["rule"], severity=m["severity"], actor=m["actor"],
        window_start=times[0], window_end=times[1],
        seqs=tuple(json.loads(m["seqs"]) if seqs is None else seqs), count=int(m["count"]),
        summary=m["summary"],
        status=m["status"], note=m["note"], created=times[2], updated=times[3],
    )
    return alert


def get_alert(session: Session, alert_id: str) -> Alert:
    row = session.execute(sa.select(ALERTS).where(ALERTS.c.id == alert_id)).first()
    if row is None:
        raise AlertNotFound(f"no alert with id {alert_id!r}")
    return _alert(row)


def list_alerts(session: Session, *, status: str | None = None, rule: str | None = None,
                actor: str | None = None, limit: int = 100, offset: int = 0) -> list[Alert]:
    stmt = sa.select(ALERTS)
    if status is not None:
        if status not in STATUSES:
            raise InvalidEvent(f"status must be one of {', '.join(STATUSES)}", field="status")
        stmt = stmt.where(ALERTS.c.status == status)
    if rule is not None:
        stmt = stmt.where(ALERTS.c.rule == rule)
    if actor is not None:
        stmt = stmt.where(ALERTS.c.actor == actor)
    stmt = stmt.order_by(ALERTS.c.created.desc(), ALERTS.c.id).offset(offset).limit(limit)
    return [_alert(r) for r in session.execute(stmt)]


_TRANSITIONS = {
    "open": {"acknowledged", "closed"},
    "acknowledged": {"open", "closed"},
    "closed": set(),
}


def transition(session: Session, alert_id: str, status: str, *, note: str | None,
               now: datetime | None = None) -> Alert:
    """Move an alert to ``status`` with an optional note. A closed alert stays closed."""
    alert = get_alert(session, alert_id)
    if status not in STATUSES:
        raise InvalidEvent(f"status must be one of {', '.join(STATUSES)}", field="status")
    if status != alert.status and status not in _TRANSITIONS[alert.status]:
        raise AlertConflict(f"alert {alert_id} is {alert.status}; it cannot become {status}")
    session.execute(sa.update(ALERTS).where(ALERTS.c.id == alert_id).values(
        status=status, note=note if note is not None else alert.note,
        updated=to_us(now or utc_now()),
    ))
    return get_alert(session, alert_id)
