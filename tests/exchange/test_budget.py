from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from exchange import BudgetExhausted, budget

NOW = datetime(2026, 11, 26, tzinfo=UTC)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asks=st.lists(st.floats(0.01, 1.5), min_size=1, max_size=20), cap=st.floats(0.5, 3.0))
def test_composition_never_exceeds_the_cap(sessions: sessionmaker[Session], asks: list[float], cap: float) -> None:
    consumer = f"org-{abs(hash((tuple(asks), cap)))}"
    granted = 0.0
    for i, eps in enumerate(asks):
        with sessions() as s, s.begin():
            before = budget.state(s, consumer, "d", epsilon_cap=cap, delta_cap=1e-6).epsilon_spent
            try:
                st_ = budget.charge(s, consumer=consumer, dataset="d", job_id=f"j{i}", epsilon=eps,
                                    delta=1e-9, epsilon_cap=cap, delta_cap=1e-6, now=NOW)
            except BudgetExhausted as exc:
                assert before + eps > cap - 1e-9 and exc.left == pytest.approx(cap - before)
                continue
        granted += eps
        assert st_.epsilon_spent == pytest.approx(granted) and st_.epsilon_spent <= cap + 1e-9


def test_delta_is_a_budget_too(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        budget.charge(s, consumer="c", dataset="d", job_id="1", epsilon=0.1, delta=6e-7,
                      epsilon_cap=10, delta_cap=1e-6, now=NOW)
    with sessions() as s, s.begin(), pytest.raises(BudgetExhausted):
        budget.charge(s, consumer="c", dataset="d", job_id="2", epsilon=0.1, delta=6e-7,
                      epsilon_cap=10, delta_cap=1e-6, now=NOW)


def test_concurrent_queries_cannot_both_take_the_last_budget(sessions: sessionmaker[Session], db_backend: tuple[str, str | None]) -> None:
    with sessions() as s, s.begin():
        budget.charge(s, consumer="c", dataset="d", job_id="0", epsilon=0.5, delta=0,
                      epsilon_cap=1.0, delta_cap=1e-6, now=NOW)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            with sessions() as s, s.begin():
                budget.charge(s, consumer="c", dataset="d", job_id=f"w{i}", epsilon=0.4,
                              delta=0, epsilon_cap=1.0, delta_cap=1e-6, now=NOW)
            results.append("ok")
        except BudgetExhausted:
            results.append("refused")
        except Exception as exc:  # noqa: BLE001 - SQLite may report "database is locked"
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1
    with sessions() as s:
        assert budget.state(s, "c", "d", epsilon_cap=1.0, delta_cap=1e-6).epsilon_spent == pytest.approx(0.9)
