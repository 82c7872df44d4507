"""Which files make a policy set, their fingerprint and their version hash."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FOREIGN_FILES",
    "PolicyFiles",
    "fingerprint",
    "list_policy_files",
    "read_policy_files",
    "version_of",
]

# Files in the policy directory validated by other areas' loaders (see ``foreign.py``).
FOREIGN_FILES: tuple[str, ...] = ("alerts.yaml", "masking.yaml", "watermark.yaml")
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PolicyFiles:
    """The bytes of every top-level YAML file of a policy directory, sorted by name."""

    directory: Path
    contents: tuple[tuple[str, bytes], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.contents)

    @property
    def version(self) -> str:
        return version_of(self.contents)


def list_policy_files(directory: Path) -> list[Path]:
    """Top-level ``*.yaml``/``*.yml`` files (``tests/`` holds cases, not policy)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in _SUFFIXES)


def read_policy_files(directory: Path) -> PolicyFiles:
    return PolicyFiles(
        directory, tuple((p.name, p.read_bytes()) for p in list_policy_files(directory))
    )


def version_of(contents: tuple[tuple[str, bytes], ...]) -> str:
    """sha256 over the sorted (name, bytes) pairs, each length-prefixed so that moving
    bytes from one file to the next changes the hash."""
    digest = hashlib.sha256()
    for name, data in sorted(contents):
        raw_name = name.encode("utf-8")
        digest.update(len(raw_name).to_bytes(8, "big") + raw_name)
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, mtime_ns, size) of each policy file: a cheap "did anything change" probe."""
    out = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_file() and entry.name.endswith(_SUFFIXES):
                    st = entry.stat()
                    out.append((entry.name, st.st_mtime_ns, st.st_size))
    except OSError:
        return ()
    return tuple(sorted(out))
