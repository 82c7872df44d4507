"""Every module of the name path imports on its own, first, in a fresh interpreter.

``desensitize`` loads its names lazily, so nothing else is imported before a module a
caller names: a circular import between ``name_candidates`` and the recognizers package
(which builds the person recognizer, itself built on ``name_candidates``) fails then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["desensitize.name_candidates", "desensitize.scan_plan",
                                    "desensitize.recognizers.person_rules",
                                    "desensitize.recognizers"])
def test_the_module_imports_first(module: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
