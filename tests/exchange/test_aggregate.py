"""DP aggregates through Exchange, including the attack list (each attack one test)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from exchange import AggregateQuery, BudgetExhausted, Exchange, InvalidQuery, Job, Refused
from exchange.aggregate import run_aggregate
from exchange.catalog import Dataset
from exchange.noise import threshold_counts
from exchange.ports import Caller
from tests.exchange.fakes import CONSUMER, ListAudit, default_decider, population


def run(ex: Exchange, sessions: sessionmaker[Session], q: AggregateQuery, caller: Caller = CONSUMER,
        purpose: str | None = None) -> Job:
    with sessions() as s, s.begin():
        return ex.aggregate(s, ListAudit(), caller, dataset="residents", query=q, purpose=purpose)


def true_counts(table: pa.Table, col: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in table.column(col).to_pylist():
        out[v] = out.get(v, 0) + 1
    return out


@pytest.mark.parametrize("agg", ["count", "sum", "mean", "quantile", "histogram"])
def test_each_aggregate_is_noisy_near_truth_and_accounted(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session], agg: str) -> None:
    ex, _ = registered
    col = None if agg == "count" else "income"
    job = run(ex, sessions, AggregateQuery(agg, column=col, by=("sex",) if agg != "histogram" else (),
                                           epsilon=0.8, bins=4))
    pub = job.to_public()
    assert pub["status"] == "done" and pub["receipt"]["epsilon_spent"] == pytest.approx(0.8)
    assert pub["epsilon_spent"] == pytest.approx(0.8) and pub["budget_left"] == pytest.approx(1.2)
    assert pub["noise_scale"]["count"] > 0
    t = population()
    incomes = [min(20_000.0, x) for x in t.column("income").to_pylist()]
    for row in pub["result"]:
        if agg == "count":
            truth = true_counts(t, "sex")[row["group"]["sex"]]
            assert abs(row["value"] - truth) < 60
        elif agg == "mean":
            assert 0 <= row["value"] <= 20_000
            assert abs(row["value"] - statistics.mean(incomes)) < 2_000
        elif agg == "quantile":
            assert abs(row["value"] - statistics.median(incomes)) < 2_000
        elif agg == "histogram":
            lo, hi = row["group"]["bin"]
            truth = sum(1 for x in incomes if lo <= x < hi or (hi == 20_000 and x == hi))
            assert abs(row["value"] - truth) < 60


def test_attack_count_filtered_to_one_id_is_refused(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    ex, _ = registered
    with pytest.raises(Refused, match="key column"):
        run(ex, sessions, AggregateQuery("count", where=(("id", "37010000000005"),)))
    with pytest.raises(Refused, match="not an allowed"):
        run(ex, sessions, AggregateQuery("count", where=(("name", "居民5"),)))


def test_attack_group_by_unique_column_is_refused(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    ex, _ = registered
    for col in ("id", "name", "income"):
        with pytest.raises(Refused):
            run(ex, sessions, AggregateQuery("count", by=(col,)))


def test_attack_one_person_group_is_suppressed(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    """莱芜 holds one resident: filtering or grouping to it releases nothing."""
    ex, _ = registered
    job = run(ex, sessions, AggregateQuery("count", by=("district",), epsilon=0.5)).to_public()
    released = {r["group"]["district"] for r in job["result"]}
    assert "莱芜" not in released and isinstance(job["suppressed_groups"], int)
    assert job["noise_scale"]["suppressed_groups"] == pytest.approx(1 / (0.5 * 0.1))
    only = run(ex, sessions, AggregateQuery("count", where=(("district", "莱芜"),), epsilon=0.5))
    assert only.to_public()["result"] == []


def test_unique_group_even_if_declared_groupable_is_all_suppressed(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    from tests.exchange.fakes import PROVIDER
    ex = make_exchange()
    with sessions() as s, s.begin():
        ex.register(s, ListAudit(), PROVIDER, name="residents", table=population(500),
                    key_columns=["id"], group_columns=["name"])  # a careless provider
        job = ex.aggregate(s, ListAudit(), CONSUMER, dataset="residents",
                           query=AggregateQuery("count", by=("name",), epsilon=1.0))
    pub = job.to_public()
    assert pub["result"] == [] and abs(pub["suppressed_groups"] - 500) < 150  # noised too


def test_attack_differencing_two_queries_differing_by_one_person() -> None:
    """count(D) − count(D without Bob): the attacker guesses Bob's presence no better than
    the DP bound allows (ε = 0.2 per query → accuracy ≤ e^0.4/(1+e^0.4) ≈ 0.6)."""
    ds = Dataset("residents", "o", "p", "L3", (), ("id",), ("district", "sex"), {}, ("count",),
                 500, "-", datetime.now(UTC))
    table = population(500)
    without_bob = table.slice(1)
    q = AggregateQuery("count", epsilon=0.2)
    hits, trials = 0, 400
    for i in range(trials):
        present = i % 2 == 0
        a = run_aggregate(table if present else without_bob, ds, q, min_group_size=10, delta=1e-8)
        b = run_aggregate(without_bob, ds, q, min_group_size=10, delta=1e-8)
        guess = (a.rows[0]["value"] - b.rows[0]["value"]) > 0.5
        hits += guess == present
    assert hits / trials < 0.68  # the non-private answer would give 1.0


def test_attack_suppressed_group_count_is_no_membership_oracle() -> None:
    """Filter to Bob's one-person district: the *number* of suppressed groups (1 with Bob,
    0 without) must not tell — it is noised like everything else."""
    ds = Dataset("residents", "o", "p", "L3", (), ("id",), ("district", "sex"), {}, ("count",),
                 500, "-", datetime.now(UTC))
    table = population(500)  # its last row is the only resident of 莱芜
    without_bob = table.slice(0, table.num_rows - 1)
    q = AggregateQuery("count", where=(("district", "莱芜"),), epsilon=1.0)
    hits, trials = 0, 300
    for i in range(trials):
        present = i % 2 == 0
        res = run_aggregate(table if present else without_bob, ds, q, min_group_size=10, delta=1e-8)
        assert res.rows == []
        hits += (res.suppressed_groups >= 1) == present
    assert hits / trials < 0.68  # the exact count would give 1.0


def test_attack_repeating_a_query_is_stopped_by_the_budget(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    ex, _ = registered
    q = AggregateQuery("count", by=("sex",), epsilon=0.3)
    answers = []
    with pytest.raises(BudgetExhausted):
        for _ in range(100):
            answers.append(run(ex, sessions, q).to_public())
    assert len(answers) == int(2.0 / 0.3)  # cap 2.0
    assert sum(a["epsilon_spent"] for a in answers) <= 2.0 + 1e-9
    assert answers[-1]["budget_left"] < 0.3
    # another consumer org has its own budget; the first stays exhausted
    from tests.exchange.fakes import OTHER_CONSUMER
    assert run(ex, sessions, q, caller=OTHER_CONSUMER).status == "done"
    left = answers[-1]["budget_left"]
    with pytest.raises(BudgetExhausted):
        run(ex, sessions, AggregateQuery("count", epsilon=left + 0.01))

def test_attack_no_aggregate_returns_rows(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    ex, _ = registered
    for agg in ("rows", "select", "list", "raw"):
        with pytest.raises(InvalidQuery):
            run(ex, sessions, AggregateQuery(agg))


def test_epsilon_above_cap_and_bad_inputs(registered: tuple[Exchange, ListAudit], sessions: sessionmaker[Session]) -> None:
    ex, _ = registered
    with pytest.raises(Refused, match="cap"):
        run(ex, sessions, AggregateQuery("count", epsilon=5.0))
    with pytest.raises(InvalidQuery):
        run(ex, sessions, AggregateQuery("count", epsilon=0.0))
    with pytest.raises(InvalidQuery, match="bins"):
        run(ex, sessions, AggregateQuery("histogram", column="income", bins=0))
    with pytest.raises(InvalidQuery, match="numeric"):
        run(ex, sessions, AggregateQuery("sum", column="district"))


def test_policy_deny_is_recorded_and_refused(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange]) -> None:
    from tests.exchange.fakes import PROVIDER
    ex = make_exchange(default_decider())
    audit = ListAudit()
    with sessions() as s, s.begin():
        ex.register(s, audit, PROVIDER, name="residents", table=population(100),
                    key_columns=["id"])
    with sessions() as s, s.begin(), pytest.raises(Refused, match="fake policy: deny"):
        ex.aggregate(s, audit, PROVIDER, dataset="residents", query=AggregateQuery("count"))
    assert audit.actions()[-1] == ("exchange.aggregate", "denied")


@settings(max_examples=40, deadline=None)
@given(counts=st.dictionaries(st.sampled_from(list("abcdefgh")), st.integers(0, 200)),
       k=st.integers(1, 30))
def test_threshold_never_releases_groups_below_min_size(counts: dict[str, int], k: int) -> None:
    kept = {g: float(n) for g, n in counts.items() if n >= k}
    rel = threshold_counts(kept, epsilon=1.0, delta=1e-7, min_group_size=k)
    assert set(rel.values) <= set(kept)
    assert rel.threshold >= k and all(v >= rel.threshold for v in rel.values.values())
    assert rel.epsilon == pytest.approx(1.0) and rel.delta <= 1e-7
