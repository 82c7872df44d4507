"""In-test fakes of the exchange ports and a small synthetic population."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exchange.ports import Caller, Grading, Grant, MaskedTable

PROVIDER = Caller("prov-1", "provider", "市卫健委")
CONSUMER = Caller("cons-1", "consumer", "某银行")
OTHER_CONSUMER = Caller("cons-2", "consumer", "某研究所")
MANAGER = Caller("mgr-1", "manager", "市大数据局")


class FakeDecider:
    """(role, action) → (effect, obligations); anything else is denied."""

    def __init__(self, table: Mapping[tuple[str, str], tuple[str, dict[str, Any]]] | None = None) -> None:
        self.table = dict(table or {})
        self.calls: list[tuple[str, str, str | None]] = []

    def decide(self, caller: Caller, action: str, *, grade: str | None, dataset: str | None,
               owner_org: str | None, purpose: str | None = None, audit_action: str | None = None,
               accept: tuple[str, ...] = ("allow", "approval_required")) -> Grant:
        self.calls.append((caller.role, action, grade))
        effect, obligations = self.table.get((caller.role, action), ("deny", {}))
        rule = f"fake-{caller.role}-{action}" if (caller.role, action) in self.table else None
        return Grant(effect, rule, "v-test", f"fake policy: {effect}", obligations)


def default_decider(**overrides: Any) -> FakeDecider:
    ob = {"epsilon_cap": 2.0, "delta_cap": 1e-6, "min_group_size": 10, "psi_reveal": "count"}
    ob.update(overrides)
    return FakeDecider({
        ("provider", "dataset_register"): ("allow", {}),
        ("consumer", "aggregate"): ("allow", ob),
        ("consumer", "psi"): ("allow", ob),
        ("consumer", "extract"): ("allow", {"mask_profile": "共享", "watermark": True}),
        ("manager", "approve"): ("allow", {}),
    })


class FakeScanner:
    def grade_table(self, table: pa.Table) -> Grading:
        ids = frozenset(c for c in table.column_names if c in ("id", "name", "phone"))
        return Grading("L3" if ids else "L2", {c: "L3" for c in ids}, ids)


class FakeMasker:
    """Masks ``name`` and ``phone``; with ``made_up``, also says those columns were made
    up (a :class:`MaskedTable`, as the service's masker does for ``fake``/``hash``)."""

    def __init__(self, made_up: tuple[str, ...] | None = None) -> None:
        self.profiles: list[str] = []
        self.made_up = made_up

    def mask_table(self, table: pa.Table, profile: str) -> pa.Table | MaskedTable:
        self.profiles.append(profile)
        for name in ("name", "phone"):
            if name in table.column_names:
                masked = pc.utf8_replace_slice(table.column(name).cast(pa.string()), 1, 1_000, "**")
                table = table.set_column(table.column_names.index(name), name, masked)
        return table if self.made_up is None else MaskedTable(table, self.made_up)

    def leaks(self, table: pa.Table, profile: str) -> list[str]:
        """Phone-like values left in clear anywhere in the copy."""
        out = []
        for name in table.column_names:
            values = table.column(name).cast(pa.string()).to_pylist()
            if any(v and len(v) == 11 and v.isdigit() and v.startswith("1") for v in values):
                out.append(f"column {name!r} holds PHONE_NUMBER")
        return out


class FakeWatermarker:
    def __init__(self) -> None:
        self.datasets: list[str] = []
        self.pseudonyms: list[tuple[str, ...]] = []
        self.grades: list[str | None] = []

    def embed_table(self, table: pa.Table, recipient: str, *, dataset: str,
                    pseudonyms: tuple[str, ...] = (), grade: str | None = None) -> pa.Table:
        self.datasets.append(dataset)
        self.pseudonyms.append(tuple(pseudonyms))
        self.grades.append(grade)
        return table.append_column("_mark", pa.array([recipient] * table.num_rows))


@dataclass
class ListAudit:
    events: list[dict[str, Any]] = field(default_factory=list)

    def record(self, **kw: Any) -> None:
        self.events.append(kw)

    def actions(self) -> list[tuple[str, str]]:
        return [(e["action"], e.get("outcome", "success")) for e in self.events]


class StepClock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


def population(n: int = 2000, seed: int = 7) -> pa.Table:
    """Residents: unique id/name, a few districts, one tiny district with a single person."""
    rnd = random.Random(seed)
    districts = ["历下", "市中", "槐荫", "天桥"]
    rows_d = [rnd.choice(districts) for _ in range(n - 1)] + ["莱芜"]  # 莱芜: one person
    return pa.table({
        "id": [f"3701{i:010d}" for i in range(n)],
        "name": [f"居民{i}" for i in range(n)],
        "district": rows_d,
        "sex": [rnd.choice(["男", "女"]) for _ in range(n)],
        "age": [rnd.randint(0, 100) for _ in range(n)],
        "income": [rnd.uniform(0, 30_000) for _ in range(n)],
    })
