"""``check_policy_dir``: everything ``quanguard policy check`` reports, in one list."""

from __future__ import annotations

from pathlib import Path

from quanguard.policy.cases import load_cases
from quanguard.policy.errors import PolicyNotFound
from quanguard.policy.files import read_policy_files
from quanguard.policy.foreign import check_mask_profiles, load_foreign
from quanguard.policy.loader import build_policy_set
from quanguard.policy.model import Problem

__all__ = ["check_policy_dir"]


def check_policy_dir(directory: Path, *, foreign: bool = True, cases: bool = True) -> list[Problem]:
    """Every problem in ``directory``: the engine's files, the other areas' files through
    their loaders (``foreign``) and the shape of the case files (``cases``).

    Raises PolicyNotFound when the directory does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyNotFound(f"policy directory {directory} does not exist")
    policy, problems = build_policy_set(read_policy_files(directory))
    if foreign:
        foreign_problems, loaded = load_foreign(directory)
        problems.extend(foreign_problems)
        if policy is not None and "masking.yaml" in loaded:
            masking = str(directory / "masking.yaml")
            problems.extend(check_mask_profiles(policy.rules, loaded["masking.yaml"], masking))
    if cases and policy is not None and (directory / "tests").is_dir():
        problems.extend(load_cases(directory / "tests", policy)[1])
    return sorted(problems)
