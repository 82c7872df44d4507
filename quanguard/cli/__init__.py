"""The ``quanguard`` command line: a thin skin over the use cases (see ``main``)."""

from __future__ import annotations

__all__: list[str] = []
