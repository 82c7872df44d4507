"""Graded policy engine: load and validate ``policies/``, decide, explain, test cases.

Public surface: :class:`Resource` and :class:`Decision` (what callers pass and get),
:class:`PolicySet` (one version's rules and ``decide``), :class:`PolicyBundle` /
:func:`build_bundle` (one validation pass over every file, in a dry run),
:func:`load_policy_dir` / :func:`check_policy_dir` (validation for the CLI) and the case
runner. The service that holds the active version and reloads it is
:class:`quanguard.services.policy.PolicyService`.
"""

from __future__ import annotations

from quanguard.policy.bundle import PolicyBundle, build_bundle, load_bundle
from quanguard.policy.cases import Case, CaseResult, load_cases, run_cases
from quanguard.policy.check import check_policy_dir
from quanguard.policy.engine import PolicySet, Trace
from quanguard.policy.errors import PolicyError, PolicyInvalid, PolicyNotFound, UnknownName
from quanguard.policy.loader import load_policy_dir, validate_policy_dir
from quanguard.policy.model import Decision, Problem, Resource, Rule, SubjectRef
from quanguard.policy.vocab import ACTIONS, OBLIGATIONS, ROLES

__all__ = [
    "ACTIONS",
    "OBLIGATIONS",
    "ROLES",
    "Case",
    "CaseResult",
    "Decision",
    "PolicyBundle",
    "PolicyError",
    "PolicyInvalid",
    "PolicyNotFound",
    "PolicySet",
    "Problem",
    "Resource",
    "Rule",
    "SubjectRef",
    "Trace",
    "UnknownName",
    "build_bundle",
    "check_policy_dir",
    "load_bundle",
    "load_cases",
    "load_policy_dir",
    "run_cases",
    "validate_policy_dir",
]
