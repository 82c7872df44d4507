"""Use cases: authenticate → decide by policy → call the domain → record → commit."""

from __future__ import annotations

__all__: list[str] = []
