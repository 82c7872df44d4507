"""The container's policy service: every decision counted by effect in the metrics."""

from __future__ import annotations

from quanguard.metrics import Metrics
from quanguard.policy.model import Decision, Resource, Subject
from quanguard.policy.service import PolicyService

__all__ = ["CountingPolicy"]


class CountingPolicy(PolicyService):
    """A :class:`PolicyService` that counts each decision in ``metrics`` (when set)."""

    metrics: Metrics | None = None

    def decide(self, principal: Subject, action: str, resource: Resource | None = None) -> Decision:
        decision = super().decide(principal, action, resource)
        if self.metrics is not None:
            self.metrics.decisions.labels(effect=str(decision.effect)).inc()
        return decision
