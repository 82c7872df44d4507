"""Mask service: profiles from the policy directory, key material, the span finder.

``build_masker(container)`` returns one :class:`MaskService` per container.  Profiles
are the active policy version's (``container.policy.masking``): they reload with the other
policy files, and a broken ``masking.yaml`` keeps the previous version of all of them.
Keys come from a key file given by the caller or from ``settings.key_dir`` (created 0600);
they are never logged. The key directory's keyring is kept while its file stays the
same (inode, size, modification time): a rotation that replaces the file is read at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from desensitize import DatasetReport
from desensitize.errors import ProfileError
from desensitize.keys import KEY_FILE_NAME, Keyring, load_keyring
from desensitize.masker import MaskStats, SpanFinder, mask_table
from desensitize.pipeline import columns_from_report, quasi_from_report, span_finder_for
from desensitize.plan import MaskPlan, build_plan
from desensitize.profiles import ProfileSet

if TYPE_CHECKING:
    from quanguard.container import Container

PROFILE_FILE = "masking.yaml"


class MaskService:
    """Masking resources shared by one container."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._keyring: tuple[tuple[object, ...], Keyring] | None = None

    @property
    def profile_path(self) -> Path:
        return Path(self._container.settings.policy_dir) / PROFILE_FILE

    def profiles(self) -> ProfileSet:
        """The profiles of the active policy version: validated with every other policy
        file and swapped in only when all of them are valid (see PolicyService.reload)."""
        profiles: ProfileSet | None = self._container.policy.masking
        if profiles is None:
            raise ProfileError(f"{self.profile_path} does not exist: no masking profiles",
                               path=str(self.profile_path))
        return profiles

    def keyring(self, key_file: str | os.PathLike[str] | None = None) -> Keyring:
        settings = self._container.settings
        if key_file is not None or settings.key_dir is None:
            return load_keyring(key_file=key_file, key_dir=settings.key_dir, suite=settings.suite)
        path = Path(settings.key_dir) / KEY_FILE_NAME
        sig = _signature(path, settings.suite.name)
        cached = self._keyring
        if sig is not None and cached is not None and cached[0] == sig:
            return cached[1]
        ring = load_keyring(key_dir=settings.key_dir, suite=settings.suite)
        # the file as it was before reading (a change since is seen next time), or as the
        # loader has just created it
        sig = sig or _signature(path, settings.suite.name)
        if sig is not None:
            self._keyring = (sig, ring)
        return ring

    def span_finder(self) -> SpanFinder:
        return span_finder_for(self._container.scanner.text)

    def plan(self, report: DatasetReport, profile: str | None, overrides: dict[str, object] | None = None) -> MaskPlan:
        columns = columns_from_report(report, entity_grade=self._container.scanner.entity_grade)
        return build_plan(columns, self.profiles().get(profile), overrides=overrides)

    def finder_for(self, plan: MaskPlan) -> SpanFinder | None:
        """The span finder when ``plan`` masks free text (op ``spans``), else None."""
        return self.span_finder() if any(c.op == "spans" for c in plan.columns) else None

    def mask_table(self, table: pa.Table, plan: MaskPlan) -> tuple[pa.Table, MaskStats]:
        """Apply ``plan`` to an in-memory string table with the container's keys."""
        return mask_table(table, plan, keyring=self.keyring(), span_finder=self.finder_for(plan))

    @staticmethod
    def quasi_identifiers(report: DatasetReport) -> list[str]:
        return quasi_from_report(report)


def _signature(path: Path, suite: str) -> tuple[object, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, suite)


def build_masker(container: Container) -> MaskService:
    return MaskService(container)
