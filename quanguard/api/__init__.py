"""The HTTP API: :func:`quanguard.api.app.create_app` builds it from a container."""

from __future__ import annotations

__all__: list[str] = []
