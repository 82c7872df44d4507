from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.alert_engine import Alert, AlertEngine, list_alerts, transition
from monitor.alerts import load_alert_rules, parse_alert_rules
from monitor.errors import AlertConflict, AlertNotFound, AlertRulesError
from monitor.events import Actor, AuditEvent, EventDecision
from monitor.store import AuditStore

REPO = Path(__file__).resolve().parents[2]
# 2026-11-23 is a Monday. 10:00 in Shanghai = 02:00 UTC.
MON_10_LOCAL = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def ev(actor: str = "alice", *, at: datetime = MON_10_LOCAL, **kw: object) -> AuditEvent:
    base: dict[str, object] = {"ts": at, "actor": Actor(actor, "consumer", "市局"), "action": "query",
                                   "reporter": "r", "dataset": "ds", "grade": "L2",
                                   "decision": EventDecision("allow")}
    base.update(kw)
    return AuditEvent(**base)  # type: ignore[arg-type]


@pytest.fixture
def engine_rules() -> AlertEngine:
    return AlertEngine(load_alert_rules(REPO / "policies" / "alerts.yaml"), "Asia/Shanghai")


@pytest.fixture
def run(engine: sa.Engine, store: AuditStore, engine_rules: AlertEngine
        ) -> Callable[[list[AuditEvent]], list[str]]:
    def go(events: list[AuditEvent]) -> list[str]:
        with Session(engine) as s, s.begin():
            stored = store.append(s, events)
            return [a.rule for a in engine_rules.process(s, stored, now=MON_10_LOCAL)]
    return go


def alerts(engine: sa.Engine, **kw: Any) -> list[Alert]:
    with Session(engine) as s:
        return list_alerts(s, **kw)


def test_policy_file_loads() -> None:
    rules = load_alert_rules(REPO / "policies" / "alerts.yaml")
    assert {type(r).__name__ for r in rules} == {
        "VolumeSpike", "OffHours", "DenialBurst", "FirstAccess", "ExportVolume"}


def test_quiet_activity_raises_nothing(run: Callable[..., list[str]]) -> None:
    assert run([ev(at=MON_10_LOCAL + timedelta(minutes=i)) for i in range(10)]) == []


@pytest.mark.parametrize(("hour_local", "weekday_offset", "grade", "fires"), [
    (3, 0, "L3", True),        # 03:00 Monday
    (21, 0, "L4", True),       # 21:00 Monday
    (10, 5, "L3", True),       # Saturday 10:00
    (10, 0, "L3", False),      # working hours
    (3, 0, "L2", False),       # not sensitive
    (19, 0, "core", False),    # 19:59 is inside 08:00-20:00
])
def test_off_hours(run: Callable[..., list[str]], hour_local: int, weekday_offset: int,
                   grade: str, fires: bool) -> None:
    at = datetime(2026, 11, 23 + weekday_offset, hour_local, 0, tzinfo=UTC) - timedelta(hours=8)
    if hour_local == 19:
        at += timedelta(minutes=59)
    got = run([ev(at=at, grade=grade, dataset=f"d-{grade}-x")])
    assert ("off-hours-sensitive" in got) is fires


def test_off_hours_denied_is_not_access(run: Callable[..., list[str]]) -> None:
    at = MON_10_LOCAL - timedelta(hours=8)  # 02:00 local
    assert "off-hours-sensitive" not in run([ev(at=at, grade="L3",
                                                decision=EventDecision("deny"))])


def test_denial_burst_and_collapse(run: Callable[..., list[str]], engine: sa.Engine) -> None:
    deny = EventDecision("deny", "r1", "v")
    assert run([ev(at=MON_10_LOCAL + timedelta(seconds=i), decision=deny) for i in range(4)]
               ) == []
    assert "denial-burst" in run([ev(at=MON_10_LOCAL + timedelta(seconds=5), decision=deny)])
    assert "denial-burst" in run([ev(at=MON_10_LOCAL + timedelta(seconds=6), decision=deny)])
    found = alerts(engine, rule="denial-burst")
    assert len(found) == 1  # repeats collapse
    assert found[0].count == 2 and found[0].seqs == (1, 2, 3, 4, 5, 6)
    assert found[0].status == "open" and found[0].severity == "high"


def test_first_l4_access_once_per_dataset(run: Callable[..., list[str]],
                                          engine: sa.Engine) -> None:
    assert "first-l4-access" in run([ev(grade="L4", dataset="户籍")])
    assert "first-l4-access" not in run([ev(grade="L4", dataset="户籍")])
    assert "first-l4-access" in run([ev(grade="L4", dataset="社保")])
    assert "first-l4-access" in run([ev("bob", grade="L4", dataset="户籍")])
    assert len(alerts(engine, rule="first-l4-access")) == 3


def test_bulk_export_per_local_day(run: Callable[..., list[str]], engine: sa.Engine) -> None:
    assert run([ev(action="export", rows=60_000)]) == []
    assert "bulk-export" in run([ev(action="export", rows=50_000,
                                    at=MON_10_LOCAL + timedelta(hours=1))])
    # next local day starts fresh
    assert "bulk-export" not in run([ev(action="export", rows=60_000,
                                        at=MON_10_LOCAL + timedelta(days=1))])
    (alert,) = alerts(engine, rule="bulk-export")
    assert alert.seqs == (1, 2) and "110000 rows" in alert.summary


def test_volume_spike_needs_warmup_then_fires(run: Callable[..., list[str]]) -> None:
    # 2 days of history at ~2 events per hour
    history = [ev(at=MON_10_LOCAL - timedelta(hours=48) + timedelta(minutes=30 * i))
               for i in range(96)]
    assert "volume-spike" not in run(history)
    burst = [ev(at=MON_10_LOCAL + timedelta(seconds=20 * i)) for i in range(60)]
    assert "volume-spike" in run(burst)


def test_volume_spike_skipped_during_warmup(run: Callable[..., list[str]]) -> None:
    burst = [ev("newbie", at=MON_10_LOCAL + timedelta(seconds=i)) for i in range(200)]
    assert "volume-spike" not in run(burst)


def test_transitions(run: Callable[..., list[str]], engine: sa.Engine) -> None:
    run([ev(grade="L4", dataset="x")])
    (a,) = alerts(engine)
    with Session(engine) as s, s.begin():
        assert transition(s, a.id, "acknowledged", note="looking").status == "acknowledged"
        closed = transition(s, a.id, "closed", note="approved research project")
        assert closed.note == "approved research project"
        with pytest.raises(AlertConflict):
            transition(s, a.id, "open", note=None)
        with pytest.raises(AlertNotFound):
            transition(s, "nope", "closed", note=None)
    assert alerts(engine, status="closed")[0].id == a.id


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("rules: 3\n", 1, "'rules'"),
    ("nope: []\n", 1, "missing 'rules'"),
    ("rules:\n  - id: a\n    type: nope\n", 3, "unknown rule type"),
    ("rules:\n  - id: a\n    type: off_hours\n    severity: dire\n", 4, "severity"),
    ("rules:\n  - id: a\n    type: off_hours\n  - id: a\n    type: denial_burst\n", 4,
     "duplicate rule id"),
    ("rules:\n  - id: a\n    type: denial_burst\n    threshold: -1\n", 4, "positive"),
    ("rules:\n  - id: a\n    type: denial_burst\n    threshold: 2.5\n", 4, "whole number"),
    ("rules:\n  - id: a\n    type: off_hours\n    work_hours: late\n", 4, "work_hours"),
    ("rules:\n  - id: a\n    type: off_hours\n    workdays: [0]\n", 4, "weekday"),
    ("rules:\n  - id: a\n    type: export_volume\n    actions: [fly]\n", 4, "unknown action"),
    ("rules:\n  - id: a\n    type: denial_burst\n    grades: [L1]\n", 4, "no option"),
    ("rules:\n  - [unclosed\n", 3, "not valid YAML"),
])
def test_bad_rule_files(text: str, line: int, needle: str) -> None:
    with pytest.raises(AlertRulesError) as info:
        parse_alert_rules(text, "policies/alerts.yaml")
    err = info.value
    assert err.path == "policies/alerts.yaml" and err.line == line, str(err)
    assert needle in err.message
    assert str(err).startswith(f"policies/alerts.yaml:{line}: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AlertRulesError):
        load_alert_rules(tmp_path / "none.yaml")


@pytest.mark.parametrize(("text", "line", "needle"), [
    # finding 8: names that look fine to YAML but match nothing in the trail
    ("rules:\n  - id: a\n    type: export_volume\n    actions: [export, extract]\n", 4,
     "did you mean 'exchange.extract'"),
    ("rules:\n  - id: a\n    type: first_access\n    grades:\n      - L4\n      - L9\n", 6,
     "grade 'L9' is not defined"),
    ("rules:\n  - id: a\n    type: off_hours\n    grades: [L3, cor]\n", 4,
     "grade 'cor' is not defined (known: L1 L2 L3 L4 core)"),
])
def test_names_must_be_real(text: str, line: int, needle: str) -> None:
    with pytest.raises(AlertRulesError) as info:
        parse_alert_rules(text, "policies/alerts.yaml", grades=["L1", "L2", "L3", "L4", "core"])
    assert info.value.line == line, str(info.value)
    assert needle in info.value.message


def test_shipped_rules_name_recorded_actions() -> None:
    from monitor.actions import RECORDED_ACTIONS

    shipped = Path(__file__).resolve().parents[2] / "policies" / "alerts.yaml"
    rules = load_alert_rules(shipped, grades=["L1", "L2", "L3", "L4", "core"])
    export = next(r for r in rules if r.id == "bulk-export")
    assert "exchange.extract" in export.actions
    assert set(export.actions) <= RECORDED_ACTIONS
