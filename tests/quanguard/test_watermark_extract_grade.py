"""An exchange extract is marked within the watermark policy's bound for the dataset's
grade: an L4 extract moves values by at most 1% and ±1 and leaves dates alone (the
严格 profile of ``policies/watermark.yaml``), not by the default profile's 2%, ±10 and a
day. The exchange passes the grade through its Watermarker port."""

from __future__ import annotations

import pyarrow as pa

from exchange.extract import make_extract
from exchange.ports import MaskedTable
from quanguard.container import Container
from quanguard.services.exchange import build_exchange
from tests.watermark.attacks import issue_table


def _plan_of(container: Container, dataset: str) -> tuple[float, int, bool]:
    with container.session() as session:
        (copy,) = container.watermarker.copies(session, dataset)
    plan = copy.plan
    top = max((c.levels[-1] for c in plan.carriers if c.kind == "numeric"), default=-99)
    return plan.max_rel_error, top, any(c.kind == "date" for c in plan.carriers)


def test_the_service_marks_an_l4_extract_within_the_strict_bound(container: Container) -> None:
    table = issue_table(3000, seed=4)
    container.watermarker.embed_table(table, "consumer-l4", dataset="grade-l4", grade="L4")
    container.watermarker.embed_table(table, "consumer-l2", dataset="grade-l2", grade="L2")
    rel, top, dates = _plan_of(container, "grade-l4")
    assert (rel, dates) == (0.01, False) and top <= 0
    rel2, top2, _ = _plan_of(container, "grade-l2")
    assert rel2 == 0.02 and top2 >= top


class _Keep:
    def mask_table(self, table: pa.Table, profile: str) -> MaskedTable:
        return MaskedTable(table)

    def leaks(self, table: pa.Table, profile: str) -> list[str]:
        return []


class _Recorder:
    def __init__(self) -> None:
        self.grades: list[str | None] = []

    def embed_table(self, table: pa.Table, recipient: str, *, dataset: str,
                    pseudonyms: tuple[str, ...] = (), grade: str | None = None) -> pa.Table:
        self.grades.append(grade)
        return table


def test_make_extract_hands_the_grade_to_the_watermarker() -> None:
    rec = _Recorder()
    make_extract(pa.table({"x": ["1", "2"]}), masker=_Keep(), watermarker=rec, profile="共享",
                 recipient="c", watermark=True, fmt="csv", dataset="d", grade="L4")
    assert rec.grades == ["L4"]


def test_the_exchange_adapter_passes_the_grade_on(container: Container) -> None:
    ex = build_exchange(container)
    assert ex.watermarker is not None
    ex.watermarker.embed_table(issue_table(3000, seed=6), "consumer-a", dataset="grade-a",
                               grade="L4")
    assert _plan_of(container, "grade-a")[0] == 0.01
