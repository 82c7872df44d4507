"""Approval flow, tenancy, consent and extracts."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pyarrow.csv as pacsv
import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange import AggregateQuery, Exchange, JobNotFound, JobStateError, Refused
from exchange.jobs import list_for
from exchange.ports import Caller
from tests.exchange.fakes import (
    CONSUMER,
    MANAGER,
    OTHER_CONSUMER,
    PROVIDER,
    FakeDecider,
    FakeMasker,
    FakeWatermarker,
    ListAudit,
    default_decider,
    population,
)


def _approval_exchange(make_exchange: Callable[..., Exchange], sessions: sessionmaker[Session]) -> Exchange:
    ob = {"epsilon_cap": 1.0, "delta_cap": 1e-6, "min_group_size": 10}
    dec = FakeDecider({
        ("provider", "dataset_register"): ("allow", {}),
        ("consumer", "aggregate"): ("approval_required", ob),
        ("consumer", "extract"): ("deny", {}),
        ("manager", "approve"): ("allow", {}),
    })
    ex = make_exchange(dec)
    with sessions() as s, s.begin():
        ex.register(s, ListAudit(), PROVIDER, name="residents", table=population(), key_columns=["id"])
    return ex


def test_approval_required_waits_then_manager_approves(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = _approval_exchange(make_exchange, sessions)
    audit = ListAudit()
    with sessions() as s, s.begin():
        job = ex.aggregate(s, audit, CONSUMER, dataset="residents",
                           query=AggregateQuery("count", by=("sex",), epsilon=0.5))
    assert job.status == "pending_approval" and job.result is None
    with sessions() as s, s.begin():
        assert ex.budget_state(s, audit, CONSUMER, dataset="residents").epsilon_spent == 0.0
    with sessions() as s, s.begin(), pytest.raises(Refused):
        ex.decide_job(s, audit, CONSUMER, job.id, approve=True, reason="self")
    with sessions() as s, s.begin():
        done = ex.decide_job(s, audit, MANAGER, job.id, approve=True, reason="用于普惠金融评估")
    pub = done.to_public()
    assert pub["status"] == "done" and pub["decided_by"] == MANAGER.id and len(pub["result"]) == 2
    assert pub["epsilon_spent"] == pytest.approx(0.5)
    with sessions() as s, s.begin(), pytest.raises(JobStateError):
        ex.decide_job(s, audit, MANAGER, job.id, approve=False, reason="late")
    assert ("exchange.approve", "success") in audit.actions()


def test_reject_needs_reason_and_spends_nothing(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = _approval_exchange(make_exchange, sessions)
    audit = ListAudit()
    with sessions() as s, s.begin():
        job = ex.aggregate(s, audit, CONSUMER, dataset="residents", query=AggregateQuery("count"))
    with sessions() as s, s.begin(), pytest.raises(Exception, match="reason"):
        ex.decide_job(s, audit, MANAGER, job.id, approve=False, reason="  ")
    with sessions() as s, s.begin():
        rej = ex.decide_job(s, audit, MANAGER, job.id, approve=False, reason="目的不明确")
        assert ex.budget_state(s, audit, CONSUMER, dataset="residents").epsilon_spent == 0.0
    assert rej.status == "rejected" and rej.reason == "目的不明确" and rej.receipt is None


def test_attack_consumer_cannot_read_another_consumers_jobs(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    ex, _ = registered
    with sessions() as s, s.begin():
        mine = ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents",
                            query=AggregateQuery("count", epsilon=0.1))
        theirs = ex.aggregate(s, ListAudit(), OTHER_CONSUMER, dataset="residents",
                              query=AggregateQuery("count", epsilon=0.1))
    with sessions() as s:
        with pytest.raises(JobNotFound):
            ex.job(s, ListAudit(), OTHER_CONSUMER, mine.id)
        with pytest.raises(JobNotFound):  # same answer as for an id that does not exist
            ex.job(s, ListAudit(), OTHER_CONSUMER, "job-doesnotexist")
        # same org, different principal: still not visible
        colleague = Caller("cons-9", "consumer", CONSUMER.org)
        with pytest.raises(JobNotFound):
            ex.job(s, ListAudit(), colleague, mine.id)
        assert [j.id for j in list_for(s, OTHER_CONSUMER)] == [theirs.id]
        assert {j.id for j in list_for(s, PROVIDER)} == {mine.id, theirs.id}
        assert {j.id for j in list_for(s, MANAGER)} == {mine.id, theirs.id}
        stranger = Caller("prov-x", "provider", "别的局")
        assert list_for(s, stranger) == []
        assert ex.job(s, ListAudit(), PROVIDER, mine.id).id == mine.id


def test_consent_withdrawal_excludes_subjects(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    ex, _ = registered
    table = population()
    lw = [i for i, d in zip(table.column("id").to_pylist(), table.column("district").to_pylist())
          if d == "历下"]
    with sessions() as s, s.begin():
        with pytest.raises(Refused):
            ex.set_consent(s, ListAudit(), CONSUMER, dataset="residents", subjects=lw,
                           purpose="credit", state="withdrawn")
        n = ex.set_consent(s, ListAudit(), PROVIDER, dataset="residents", subjects=lw,
                           purpose="credit", state="withdrawn")
    assert n == len(lw) > 100
    q = AggregateQuery("count", by=("district",), epsilon=0.4)
    with sessions() as s, s.begin():
        credit = ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents", query=q, purpose="credit")
        research = ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents", query=q, purpose="research")
    assert "历下" not in {r["group"]["district"] for r in credit.to_public()["result"]}
    assert "历下" in {r["group"]["district"] for r in research.to_public()["result"]}
    from sqlalchemy import text
    with sessions() as s:
        stored = [r[0] for r in s.execute(text("SELECT subject_hash FROM exchange_consent"))]
    assert lw[0] not in stored and all(len(h) == 64 for h in stored)


def test_extract_is_masked_and_watermarked(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    ex, _ = registered
    with sessions() as s, s.begin():
        job, out = ex.delivery.extract(s, ListAudit(), CONSUMER, dataset="residents")
    assert out is not None and job.receipt is not None
    t = pacsv.read_csv(io.BytesIO(out.data))
    assert t.num_rows == 2000 and set(t.column("_mark").to_pylist()) == {CONSUMER.id}
    assert all(str(v).endswith("**") for v in t.column("name").to_pylist())
    assert job.receipt["result_digest"] and job.status == "done"
    assert "居民5," not in out.data.decode()


@pytest.mark.parametrize("made_up", [None, ("phone",)])
def test_extract_passes_the_made_up_columns_to_the_watermark(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange],
                                                             made_up: tuple[str, ...] | None) -> None:
    """Columns the masking made up (fakes, keyed pseudonyms) are named to the watermark,
    which may mark them; a masker that returns a plain table names none."""
    wm = FakeWatermarker()
    ex = make_exchange(masker=FakeMasker(made_up), watermarker=wm)
    with sessions() as s, s.begin():
        ex.register(s, ListAudit(), PROVIDER, name="residents", table=population(50),
                    key_columns=["id"])
    with sessions() as s, s.begin():
        _, out = ex.delivery.extract(s, ListAudit(), CONSUMER, dataset="residents")
    assert out is not None and wm.datasets == ["residents"]
    assert wm.pseudonyms == [made_up or ()]


@pytest.mark.parametrize(("obligations", "masker", "reason"), [
    ({}, True, "masking profile"),
    ({"mask_profile": "共享"}, False, "masking is not available"),
    ({"mask_profile": "共享", "row_limit": 10}, True, "row_limit"),
])
def test_extract_refusals(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange], obligations: dict[str, Any], masker: bool, reason: str) -> None:
    dec = default_decider()
    dec.table[("consumer", "extract")] = ("allow", obligations)
    ex = make_exchange(dec, **({} if masker else {"masker": None}))
    with sessions() as s, s.begin():
        ex.register(s, ListAudit(), PROVIDER, name="residents", table=population(50),
                    key_columns=["id"])
    with sessions() as s, s.begin(), pytest.raises(Refused, match=reason):
        ex.delivery.extract(s, ListAudit(), CONSUMER, dataset="residents")


def test_extract_denied_by_policy_gives_reason(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = _approval_exchange(make_exchange, sessions)
    audit = ListAudit()
    with sessions() as s, s.begin(), pytest.raises(Refused, match="fake policy: deny"):
        ex.delivery.extract(s, audit, CONSUMER, dataset="residents")
    assert audit.actions() == [("exchange.extract", "denied")]
