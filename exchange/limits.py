"""Limits of one computation, read from a policy decision's obligations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exchange.psi import REVEALS


@dataclass(frozen=True)
class Defaults:
    """Used where the policy decision carries no obligation of that name."""

    epsilon_cap: float = 1.0
    delta_cap: float = 1e-6
    min_group_size: int = 10
    psi_max_ids: int = 100_000
    psi_reveal: str = "count"


@dataclass(frozen=True)
class Limits:
    epsilon_cap: float
    delta_cap: float
    min_group_size: int
    row_limit: int | None
    psi_reveal: str
    mask_profile: str | None
    watermark: bool

    @property
    def query_delta(self) -> float:
        return self.delta_cap / 100.0


def limits_of(obligations: Mapping[str, Any], d: Defaults) -> Limits:
    ob = dict(obligations or {})
    reveal = str(ob.get("psi_reveal") or d.psi_reveal)
    return Limits(
        epsilon_cap=float(ob.get("epsilon_cap", d.epsilon_cap)),
        delta_cap=float(ob.get("delta_cap", d.delta_cap)),
        min_group_size=int(ob.get("min_group_size", d.min_group_size)),
        row_limit=int(ob["row_limit"]) if ob.get("row_limit") is not None else None,
        psi_reveal=reveal if reveal in REVEALS else "count",
        mask_profile=ob.get("mask_profile"), watermark=bool(ob.get("watermark", True)),
    )
