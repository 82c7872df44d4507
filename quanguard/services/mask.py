"""Mask service: profiles from the policy directory, key material, the span finder.

``build_masker(container)`` returns one :class:`MaskService` per container.  Profiles
are reloaded when ``masking.yaml`` changes on disk (a broken file keeps the previous
profiles and raises on first load only).  Keys come from a key file given by the
caller or from ``settings.key_dir`` (created 0600); they are never logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from desensitize.keys import Keyring, load_keyring
from desensitize.masker import SpanFinder
from desensitize.pipeline import columns_from_report, quasi_from_report, span_finder_for
from desensitize.plan import MaskPlan, build_plan
from desensitize.profiles import ProfileSet, load_profiles

PROFILE_FILE = "masking.yaml"


class MaskService:
    """Masking resources shared by one container."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self._profiles: ProfileSet | None = None
        self._stamp: float | None = None

    @property
    def profile_path(self) -> Path:
        return Path(self._container.settings.policy_dir) / PROFILE_FILE

    def profiles(self) -> ProfileSet:
        path = self.profile_path
        stamp = os.stat(path).st_mtime if path.exists() else None
        if self._profiles is None or stamp != self._stamp:
            grades = list(getattr(self._container.policy, "grade_order", []) or []) or None
            loaded = load_profiles(path, grades=grades)
            self._profiles, self._stamp = loaded, stamp
        return self._profiles

    def keyring(self, key_file: str | os.PathLike[str] | None = None) -> Keyring:
        return load_keyring(key_file=key_file, key_dir=self._container.settings.key_dir)

    def span_finder(self) -> SpanFinder:
        return span_finder_for(self._container.scanner.text)

    def plan(self, report: Any, profile: str | None, overrides: dict[str, Any] | None = None) -> MaskPlan:
        columns = columns_from_report(report, entity_grade=self._container.scanner.entity_grade)
        return build_plan(columns, self.profiles().get(profile), overrides=overrides)

    @staticmethod
    def quasi_identifiers(report: Any) -> list[str]:
        return quasi_from_report(report)


def build_masker(container: Any) -> MaskService:
    return MaskService(container)
