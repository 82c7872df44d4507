"""Differential-privacy mechanisms, all from OpenDP (no hand-rolled noise).

Counts go through OpenDP's Laplace *threshold* mechanism (propose-test-release over a
hashmap of group → count): a group is released only when its noisy count clears the
threshold, so which groups exist is itself private (Rogers 2023). Sums and per-bin
histograms of released groups get vector Laplace noise. The privacy loss of each release
is what OpenDP's privacy map reports for the declared sensitivity, not our arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import opendp.prelude as dp

from exchange.errors import InvalidQuery

_enabled = False


def _contrib() -> None:
    global _enabled
    if not _enabled:
        dp.enable_features("contrib")
        _enabled = True


@dataclass(frozen=True)
class Released:
    """Noisy values of the groups that cleared the threshold."""

    values: dict[str, float]
    scale: float
    threshold: float
    epsilon: float
    delta: float


def threshold_counts(
    counts: Mapping[str, float], *, epsilon: float, delta: float, min_group_size: int,
    contributions: int = 1,
) -> Released:
    """Release noisy counts of the groups whose noisy count reaches the threshold.

    The threshold is the smallest value (found against OpenDP's privacy map) at which an
    unseen group leaks with probability <= ``delta``, raised by ``min_group_size``
    because groups below it were dropped before noise (a dropped group can differ from a
    kept one by up to ``min_group_size`` rows, and the extra margin keeps that case
    inside the same δ). One subject contributes at most ``contributions`` rows, so it
    changes at most that many groups, each by at most that much: d_in = (k, k, k).
    """
    _contrib()
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise InvalidQuery("epsilon must be a positive number")
    if not 0 < delta < 1:
        raise InvalidQuery("delta must be in (0, 1)")
    k = max(1, int(contributions))
    scale = float(k) / epsilon
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=float, nan=False))
    metric = dp.l01inf_distance(dp.absolute_distance(T=float))
    d_in = (k, float(k), float(k))
    tau = float(k) + scale * math.log(1.0 / (2.0 * delta))
    while True:
        meas = dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=tau)
        eps_used, delta_used = meas.map(d_in)  # type: ignore[no-untyped-call]
        if delta_used <= delta:
            break
        tau *= 1.1
    # account with the δ of the un-raised threshold: the conservative figure
    threshold = tau + float(min_group_size)
    meas = dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)
    values = meas({k: float(v) for k, v in counts.items()}) if counts else {}
    return Released(dict(values), scale, threshold, float(eps_used), float(delta_used))


@dataclass(frozen=True)
class NoisyVector:
    values: list[float]
    scale: float
    epsilon: float


def laplace_vector(values: Sequence[float], *, sensitivity: float, epsilon: float) -> NoisyVector:
    """Vector Laplace with L1 sensitivity ``sensitivity`` (one row moves one cell)."""
    _contrib()
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise InvalidQuery("epsilon must be a positive number")
    sensitivity = max(float(sensitivity), 1e-12)
    scale = sensitivity / epsilon
    meas = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float), scale=scale
    )
    eps_used = float(meas.map(sensitivity))  # type: ignore[no-untyped-call]
    noisy = list(meas([float(v) for v in values])) if values else []
    return NoisyVector(noisy, scale, eps_used)


@dataclass(frozen=True)
class NoisyCount:
    value: int
    scale: float
    epsilon: float


def laplace_count(value: int, *, epsilon: float, sensitivity: int = 1) -> NoisyCount:
    """Discrete Laplace on an integer that one subject moves by at most ``sensitivity``."""
    _contrib()
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise InvalidQuery("epsilon must be a positive number")
    scale = float(sensitivity) / epsilon
    meas = dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)
    eps_used = float(meas.map(int(sensitivity)))  # type: ignore[no-untyped-call]
    return NoisyCount(int(meas(int(value))), scale, eps_used)
