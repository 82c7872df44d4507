"""quanguard: data-security supervision and privacy computation for a city's public-data platform.

The service package wires the four domain libraries (``monitor``, ``desensitize``,
``watermark``, ``exchange``) behind one HTTP API and one CLI. Nothing happens at import
time: build a container with :func:`quanguard.container.build_container` and an app with
:func:`quanguard.api.app.create_app`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
