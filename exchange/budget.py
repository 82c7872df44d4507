"""Privacy budget per consumer × budget family, composed across queries (basic composition).

The ``dataset`` a budget row is kept under is the dataset's *budget family* (see
:mod:`exchange.family`), suffixed ``@N`` for the N-th period when policy renews budgets.

Spending is one conditional UPDATE (``spent + ε <= cap``), atomic on SQLite and
PostgreSQL alike, so two concurrent queries cannot both take the last of the budget.
Every charge also appends a ledger row naming the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.errors import BudgetExhausted, Refused
from exchange.tables import budgets, ledger

_SLACK = 1e-9  # float tolerance when a query takes exactly the rest of the budget


@dataclass(frozen=True)
class BudgetState:
    consumer: str
    dataset: str
    epsilon_spent: float
    delta_spent: float
    epsilon_cap: float
    delta_cap: float
    family: str | None = None  # the budget's key: the family (and period) it is kept under

    @property
    def epsilon_left(self) -> float:
        return max(0.0, self.epsilon_cap - self.epsilon_spent)


def _ensure_row(session: Session, consumer: str, dataset: str) -> None:
    exists = session.execute(
        select(budgets.c.id).where(budgets.c.consumer == consumer, budgets.c.dataset == dataset)
    ).first()
    if exists:
        return
    try:
        with session.begin_nested():
            session.execute(budgets.insert().values(
                consumer=consumer, dataset=dataset, epsilon_spent=0.0, delta_spent=0.0))
    except IntegrityError:  # a concurrent request created it first
        pass


def state(session: Session, consumer: str, dataset: str, *, epsilon_cap: float,
          delta_cap: float) -> BudgetState:
    row = session.execute(
        select(budgets.c.epsilon_spent, budgets.c.delta_spent)
        .where(budgets.c.consumer == consumer, budgets.c.dataset == dataset)
    ).first()
    eps, dlt = (float(row[0]), float(row[1])) if row else (0.0, 0.0)
    return BudgetState(consumer, dataset, eps, dlt, epsilon_cap, delta_cap)


def charge(
    session: Session, *, consumer: str, dataset: str, job_id: str, epsilon: float,
    delta: float, epsilon_cap: float, delta_cap: float, now: datetime,
) -> BudgetState:
    """Spend (ε, δ) or raise BudgetExhausted without spending anything."""
    if epsilon < 0 or delta < 0:
        raise Refused("negative privacy loss")
    _ensure_row(session, consumer, dataset)
    res = session.execute(
        budgets.update()
        .where(
            budgets.c.consumer == consumer, budgets.c.dataset == dataset,
            budgets.c.epsilon_spent + epsilon <= epsilon_cap + _SLACK,
            budgets.c.delta_spent + delta <= delta_cap + _SLACK * delta_cap,
        )
        .values(epsilon_spent=budgets.c.epsilon_spent + epsilon,
                delta_spent=budgets.c.delta_spent + delta)
    )
    if getattr(res, "rowcount", 0) != 1:  # CursorResult of an UPDATE
        now_state = state(session, consumer, dataset, epsilon_cap=epsilon_cap, delta_cap=delta_cap)
        raise BudgetExhausted(consumer=consumer, dataset=dataset, requested=epsilon,
                              left=now_state.epsilon_left)
    session.execute(ledger.insert().values(
        consumer=consumer, dataset=dataset, job_id=job_id, epsilon=epsilon, delta=delta, at=now))
    return state(session, consumer, dataset, epsilon_cap=epsilon_cap, delta_cap=delta_cap)


def precheck(session: Session, *, consumer: str, dataset: str, epsilon: float,
             epsilon_cap: float, delta_cap: float) -> BudgetState:
    """Refuse before touching the data when ε alone already does not fit."""
    st = state(session, consumer, dataset, epsilon_cap=epsilon_cap, delta_cap=delta_cap)
    if st.epsilon_spent + epsilon > epsilon_cap + _SLACK:
        raise BudgetExhausted(consumer=consumer, dataset=dataset, requested=epsilon,
                              left=st.epsilon_left)
    return st
