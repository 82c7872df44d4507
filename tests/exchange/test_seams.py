"""The exchange's seams at the domain level, on SQLite and PostgreSQL: approvals bound to
the stored request and expiring, PSI limits and count noise, budget families, numbers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pyarrow as pa
import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange import AggregateQuery, Dataset, Exchange, Job, PsiClient
from exchange.errors import BudgetExhausted, InvalidDataset, InvalidQuery, JobStateError, Refused
from exchange.family import jaccard, normalise, sketch
from exchange.numbers import check_bounds, check_epsilon
from tests.exchange.fakes import (
    CONSUMER,
    MANAGER,
    PROVIDER,
    FakeDecider,
    ListAudit,
    StepClock,
    population,
)


def _decider(**psi: object) -> FakeDecider:
    ob = {"epsilon_cap": 2.0, "delta_cap": 1e-6, "min_group_size": 10, "psi_reveal": "count"}
    return FakeDecider({
        ("provider", "dataset_register"): ("allow", {}),
        ("consumer", "aggregate"): ("allow", ob),
        ("consumer", "psi"): ("approval_required", {**ob, **psi}),
        ("manager", "approve"): ("allow", {}),
    })


def _register(ex: Exchange, sessions: sessionmaker[Session], name: str = "residents",
              table: pa.Table | None = None, **kw: Any) -> Dataset:
    with sessions() as s, s.begin():
        return ex.register(s, ListAudit(), PROVIDER, name=name, table=table or population(),
                           key_columns=["id"], **kw)


def test_a_pending_psi_runs_only_as_approved_and_expires(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange(_decider(approval_ttl_days=2))
    _register(ex, sessions)
    client = PsiClient([f"3701{i:010d}" for i in range(12)], reveal="count")
    req = client.request()
    with sessions() as s, s.begin():
        job, answer = ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents", request=req)
    assert answer is None and job.request_size == 12 and job.request_digest
    with sessions() as s, s.begin():
        approved = ex.decide_job(s, ListAudit(), MANAGER, job.id, approve=True, reason="ok")
    assert approved.expires_at is not None
    other = PsiClient([f"3701{i:010d}" for i in range(500)], reveal="count").request()
    audit = ListAudit()
    with sessions() as s, s.begin(), pytest.raises(Refused, match="approved"):
        ex.delivery.psi(s, audit, CONSUMER, dataset="residents", request=other, job_id=job.id)
    assert audit.actions() == [("exchange.psi", "denied")]
    with sessions() as s, s.begin(), pytest.raises(Refused, match="purpose"):
        ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents", request=None, job_id=job.id,
               purpose="营销")
    cast(StepClock, ex.clock).t += timedelta(days=3)
    with sessions() as s, s.begin(), pytest.raises(Refused, match="expired"):
        ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents", request=None, job_id=job.id)
    with sessions() as s:
        from exchange import jobs

        assert jobs.get(s, job.id).status == "expired"


def test_the_stored_request_runs_when_none_is_sent(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange(_decider())
    _register(ex, sessions)
    client = PsiClient([f"3701{i:010d}" for i in range(7)] + ["x1", "x2", "x3"], reveal="count")
    with sessions() as s, s.begin():
        job, _ = ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents", request=client.request())
    with sessions() as s, s.begin():
        ex.decide_job(s, ListAudit(), MANAGER, job.id, approve=True, reason="ok")
    with sessions() as s, s.begin():
        done, answer = ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents", request=None,
                              job_id=job.id)
    assert answer is not None
    assert done.status == "done" and client.finish(answer.setup, answer.response).intersection_size == 7
    with sessions() as s, s.begin(), pytest.raises(JobStateError):
        ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents", request=None, job_id=job.id)


def test_psi_limits_refuse_small_sets_and_too_many_requests(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange(_decider(psi_min_set_size=5, psi_max_requests=3, psi_max_items=100))
    cast(FakeDecider, ex.decider).table[("consumer", "psi")] = ("allow", cast(FakeDecider, ex.decider).table[("consumer", "psi")][1])
    _register(ex, sessions)
    audit = ListAudit()
    with sessions() as s, s.begin(), pytest.raises(Refused, match="psi_min_set_size"):
        ex.delivery.psi(s, audit, CONSUMER, dataset="residents",
               request=PsiClient(["3701" + "0" * 10], reveal="count").request())
    for i in range(3):
        with sessions() as s, s.begin():
            ex.delivery.psi(s, audit, CONSUMER, dataset="residents",
                   request=PsiClient([f"p{i}-{j}" for j in range(5)], reveal="count").request())
    with sessions() as s, s.begin(), pytest.raises(Refused, match="psi_max_requests"):
        ex.delivery.psi(s, audit, CONSUMER, dataset="residents",
               request=PsiClient([f"q{j}" for j in range(5)], reveal="count").request())
    assert audit.actions().count(("exchange.psi", "denied")) == 2


def test_count_noise_is_charged_to_the_budget(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange(_decider(psi_count_epsilon=0.8))
    cast(FakeDecider, ex.decider).table[("consumer", "psi")] = ("allow", cast(FakeDecider, ex.decider).table[("consumer", "psi")][1])
    _register(ex, sessions)
    for _ in range(2):
        with sessions() as s, s.begin():
            job, answer = ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents",
                                 request=PsiClient([f"3701{i:010d}" for i in range(20)],
                                                   reveal="count").request())
        assert answer is not None and job.result is not None
        assert answer.noise is not None and job.result["noise"]["epsilon"] == 0.8
    with sessions() as s, s.begin(), pytest.raises(BudgetExhausted):
        ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents",
               request=PsiClient([f"3701{i:010d}" for i in range(20)], reveal="count").request())
    with sessions() as s:
        st = ex.budget_state(s, ListAudit(), CONSUMER, dataset="residents")
    assert st.epsilon_spent == pytest.approx(1.6)


def test_a_renamed_copy_joins_the_family_and_shares_the_budget(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange(_decider())
    _register(ex, sessions)
    copy = population(seed=11)  # same ids, other values
    ds = _register(ex, sessions, name="residents_2026", table=copy)
    assert ds.budget_family == "residents"
    fresh = population(seed=12).set_column(0, "id", pa.array([f"9901{i:010d}" for i in range(2000)]))
    fresh = fresh.set_column(1, "name", pa.array([f"他人{i}" for i in range(2000)]))
    assert _register(ex, sessions, name="others", table=fresh).budget_family == "others"
    q = AggregateQuery("count", epsilon=2.0)
    with sessions() as s, s.begin():
        ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents", query=q)
    with sessions() as s, s.begin(), pytest.raises(BudgetExhausted):
        ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents_2026", query=q)
    with sessions() as s, s.begin():
        ex.aggregate(s, ListAudit(), CONSUMER, dataset="others", query=q)


def test_family_sketches_normalise_and_estimate() -> None:
    key = b"k" * 32
    assert normalise("３７０１０４-1946 0313.0991") == "370104194603130991"
    a = sketch((f"id{i}" for i in range(5000)), key)
    b = sketch((f"id{i}" for i in range(2500, 7500)), key)
    assert len(a) == 1024 and jaccard(a, b) == pytest.approx(1 / 3, abs=0.06)
    assert jaccard(a, sketch((f"x{i}" for i in range(100)), key)) == 0.0


@pytest.mark.parametrize("lo, hi", [(float("-inf"), float("inf")), (1e308, float("inf")),
                                    (0, 1e308), (float("nan"), 1), (3, 3), ("a", 1)])
def test_bounds_out_of_range(lo: float | str, hi: float) -> None:
    with pytest.raises(InvalidDataset, match="bounds"):
        check_bounds("income", lo, hi)


@pytest.mark.parametrize("eps", [5e-324, 0.0, -1.0, float("nan"), float("inf"), "x"])
def test_epsilon_out_of_range(eps: float | str) -> None:
    with pytest.raises(InvalidQuery, match="epsilon"):
        check_epsilon(eps)
    with pytest.raises(Refused, match="cap"):
        check_epsilon(3.0, cap=2.0)


def test_declared_grade_floor(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange(_decider())
    order = ("L1", "L2", "L3", "L4", "core")
    no_ids = population().drop_columns(["id", "name"])
    ds = _register(ex, sessions, name="plain", table=no_ids.append_column("id", population().column("id")),
                   declared_grade="L4", grade_order=order)
    assert ds.grade == "L4" and ds.declared_grade == "L4"
    with pytest.raises(InvalidDataset, match="declared grade"):
        _register(ex, sessions, name="bad", declared_grade="L9", grade_order=order)


def test_budgets_renew_each_period_when_policy_says_so(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange(_decider())
    agg_ob = dict(cast(FakeDecider, ex.decider).table[("consumer", "aggregate")][1], budget_period_days=30)
    cast(FakeDecider, ex.decider).table[("consumer", "aggregate")] = ("allow", agg_ob)
    _register(ex, sessions)
    q = AggregateQuery("count", epsilon=2.0)
    with sessions() as s, s.begin():
        ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents", query=q)
    with sessions() as s, s.begin(), pytest.raises(BudgetExhausted):
        ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents", query=q)
    cast(StepClock, ex.clock).t += timedelta(days=31)
    with sessions() as s, s.begin():
        ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents", query=q)


def test_an_approved_extract_runs_only_in_the_approved_format(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    ex = make_exchange(_decider())
    cast(FakeDecider, ex.decider).table[("consumer", "extract")] = (
        "approval_required", {"mask_profile": "共享", "watermark": True})
    _register(ex, sessions)
    with sessions() as s, s.begin():
        job = ex.delivery.extract_prepare(s, ListAudit(), CONSUMER, dataset="residents", fmt="csv",
                                 purpose="统计")
    assert isinstance(job, Job)
    assert job.status == "pending_approval" and job.request_view()["purpose"] == "统计"
    with sessions() as s, s.begin():
        ex.decide_job(s, ListAudit(), MANAGER, job.id, approve=True, reason="ok")
    with sessions() as s, s.begin(), pytest.raises(Refused, match="approved"):
        ex.delivery.extract(s, ListAudit(), CONSUMER, dataset="residents", fmt="parquet", job_id=job.id)
    with sessions() as s, s.begin():
        done, out = ex.delivery.extract(s, ListAudit(), CONSUMER, dataset="residents", fmt="csv",
                               job_id=job.id)
    assert done.status == "done" and out is not None and done.purpose == "统计"
