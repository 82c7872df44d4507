"""Fixtures shared by the desensitize tests (the data generators: ``tests.desensitize.data``)."""

from __future__ import annotations

import pytest

from desensitize.text_scan import TextScanner


@pytest.fixture(scope="module")
def scanner() -> TextScanner:
    """A text scanner with the default settings (a module may define its own)."""
    return TextScanner()
