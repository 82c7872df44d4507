"""Prometheus metrics of one service instance (a registry per container, none global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """The service-wide instruments; areas register theirs on ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "quanguard_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "quanguard_http_request_seconds",
            "HTTP request latency by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.decisions = Counter(
            "quanguard_policy_decisions_total",
            "Policy decisions by effect",
            ["effect"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "quanguard_auth_failures_total",
            "Rejected API keys",
            registry=self.registry,
        )
        self.info = Gauge(
            "quanguard_up", "1 while the service runs", registry=self.registry
        )
        self.info.set(1)
