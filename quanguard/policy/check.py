"""``check_policy_dir``: everything ``quanguard policy check`` reports, in one list."""

from __future__ import annotations

from pathlib import Path

from quanguard.policy.bundle import build_bundle
from quanguard.policy.cases import load_cases
from quanguard.policy.errors import PolicyNotFound
from quanguard.policy.files import read_policy_files
from quanguard.policy.loader import build_policy_set
from quanguard.policy.model import Problem

__all__ = ["check_policy_dir"]


def check_policy_dir(directory: Path, *, cases: bool = True) -> list[Problem]:
    """Every problem in ``directory``: the same pass a reload makes over every policy file
    (grades, grading, rules, masking profiles, alert rules, checked across files), plus
    the shape of the case files in ``tests/`` (``cases``).

    Raises PolicyNotFound when the directory does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyNotFound(f"policy directory {directory} does not exist")
    files = read_policy_files(directory)
    bundle, problems = build_bundle(files)
    if cases and (directory / "tests").is_dir():
        policy = bundle.policy if bundle is not None else build_policy_set(files)[0]
        if policy is not None:
            problems.extend(load_cases(directory / "tests", policy)[1])
    return sorted(set(problems))
