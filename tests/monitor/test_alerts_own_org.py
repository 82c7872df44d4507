"""``exclude_own_org``: a provider reading its own organisation's data raises no
first-access or off-hours alert; anyone else's data, or an unknown owner, still does."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.alert_engine import AlertEngine
from monitor.alerts import load_alert_rules, parse_alert_rules
from monitor.errors import AlertRulesError
from monitor.events import Actor, AuditEvent, EventDecision
from monitor.store import AuditStore

REPO = Path(__file__).resolve().parents[2]
SAT_23_LOCAL = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # Saturday 23:00 in Shanghai
OWNERS = {"病历": "市卫健委", "社保": "市人社局"}


def _ev(role: str, org: str, dataset: str, **labels: str) -> AuditEvent:
    return AuditEvent(ts=SAT_23_LOCAL, actor=Actor(f"{role}-{org}", role, org, "n"),
                      action="query", reporter="r", dataset=dataset, grade="L4",
                      decision=EventDecision("allow"), labels=labels)


def _rules(engine: sa.Engine, events: list[AuditEvent], rules_text: str | None = None,
           lookup: bool = True) -> list[str]:
    rules = (parse_alert_rules(rules_text) if rules_text
             else load_alert_rules(REPO / "policies" / "alerts.yaml"))
    alert_engine = AlertEngine(rules, "Asia/Shanghai",
                               owner_org=(lambda s, d: OWNERS.get(d)) if lookup else None)
    with Session(engine) as s, s.begin():
        stored = AuditStore().append(s, events)
        return sorted(a.rule for a in alert_engine.process(s, stored, now=SAT_23_LOCAL))


def test_provider_reading_its_own_data_is_quiet(engine: sa.Engine) -> None:
    assert _rules(engine, [_ev("provider", "市卫健委", "病历")]) == []


@pytest.mark.parametrize(("role", "org", "dataset"), [
    ("provider", "市卫健委", "社保"),      # a provider reading someone else's data
    ("consumer", "市卫健委", "病历"),      # a consumer of the same org is not excluded
    ("provider", "市卫健委", "未登记"),    # unknown owner: never "own"
])
def test_everything_else_still_alerts(engine: sa.Engine, role: str, org: str,
                                      dataset: str) -> None:
    assert _rules(engine, [_ev(role, org, dataset)]) == ["first-l4-access",
                                                         "off-hours-sensitive"]


def test_the_reported_owner_label_counts_when_the_catalog_does_not_know(
        engine: sa.Engine) -> None:
    quiet = _ev("provider", "市卫健委", "本地文件", dataset_org="市卫健委")
    loud = _ev("provider", "市卫健委", "别人的文件", dataset_org="市公安局")
    assert _rules(engine, [quiet], lookup=False) == []
    assert _rules(engine, [loud], lookup=False) == ["first-l4-access", "off-hours-sensitive"]


def test_policy_file_decides(engine: sa.Engine) -> None:
    text = """rules:
  - {id: oh, type: off_hours, severity: medium, grades: [L4], exclude_own_org: false}
  - {id: fa, type: first_access, severity: medium, grades: [L4], exclude_own_org: [provider, manager]}
"""
    assert _rules(engine, [_ev("provider", "市卫健委", "病历")], text) == ["oh"]
    assert _rules(engine, [_ev("manager", "市人社局", "社保")], text) == ["oh"]


@pytest.mark.parametrize("value", ["maybe", "[1]", "{a: b}"])
def test_bad_option_names_its_line(value: str) -> None:
    with pytest.raises(AlertRulesError, match="exclude_own_org"):
        parse_alert_rules(f"rules:\n  - id: x\n    type: off_hours\n    exclude_own_org: {value}\n")


def test_not_an_option_of_other_rules() -> None:
    with pytest.raises(AlertRulesError, match="no option 'exclude_own_org'"):
        parse_alert_rules("rules:\n  - {id: x, type: denial_burst, exclude_own_org: true}\n")


def test_the_catalog_is_asked_once_per_dataset_and_batch(engine: sa.Engine) -> None:
    # A batch of many providers' accesses asks the owner of each dataset once; the next
    # batch asks again (the catalog may have changed in between).
    asked: list[str] = []

    def owner(_s: Session, dataset: str) -> str | None:
        asked.append(dataset)
        return OWNERS.get(dataset)

    alert_engine = AlertEngine(load_alert_rules(REPO / "policies" / "alerts.yaml"),
                               "Asia/Shanghai", owner_org=owner)
    for _ in range(2):
        batch = [_ev("provider", org, ds) for org in ("市卫健委", "市人社局", "市公安局")
                 for ds in ("病历", "社保") for _ in range(5)]
        with Session(engine) as s, s.begin():
            alert_engine.process(s, AuditStore().append(s, batch), now=SAT_23_LOCAL)
    assert sorted(asked) == ["病历", "病历", "社保", "社保"]
