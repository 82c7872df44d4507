"""Builders of each area's service object, called lazily by the container."""

from __future__ import annotations

__all__: list[str] = []
