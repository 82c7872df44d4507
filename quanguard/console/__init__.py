"""The console: server-rendered pages (Jinja2 templates, one stylesheet, no JavaScript)
for auditors and managers. Routes live in ``quanguard.api.routes_console``."""

from __future__ import annotations
