"""One validation pass over every file of a policy directory, and what it builds.

``build_bundle`` reads the directory once (the bytes the version hash covers) and builds,
in a dry run, everything the service runs on: the decision engine (grades, grading,
rules), the masking profiles, the alert rules with their engine and the watermark
profiles (the usability bound of marked copies). It returns the
bundle only when every file validates — grades, roles, entities, operators and action
names checked across files — and otherwise every ``file:line: message`` found.
Nothing is activated here; :class:`~quanguard.services.policy.PolicyService` swaps a whole
bundle in, or keeps the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from desensitize.profiles import ProfileSet
from monitor import AlertEngine, AlertRules
from quanguard.policy.engine import PolicySet
from quanguard.policy.errors import PolicyInvalid, PolicyNotFound
from quanguard.policy.files import PolicyFiles, read_policy_files
from quanguard.policy.foreign import (
    check_grading_entities,
    check_mask_profiles,
    parse_alerts,
    parse_masking,
)
from quanguard.policy.loader import build_policy_set
from quanguard.policy.model import Problem
from quanguard.policy.watermark_profiles import WATERMARK_FILE, WatermarkPolicy, parse_watermark

__all__ = ["ALERTS_FILE", "MASKING_FILE", "WATERMARK_FILE", "PolicyBundle", "build_bundle",
           "load_bundle"]

MASKING_FILE = "masking.yaml"
ALERTS_FILE = "alerts.yaml"


@dataclass(frozen=True)
class PolicyBundle:
    """Everything one policy version runs on. ``masking`` is None when the directory has
    no masking.yaml (masking is then refused); no alerts.yaml means no alert rules; no
    watermark.yaml means the built-in usability bound of watermarks."""

    policy: PolicySet
    masking: ProfileSet | None
    alert_rules: AlertRules
    alert_engine: AlertEngine
    watermark: WatermarkPolicy | None = None

    @property
    def version(self) -> str:
        return self.policy.version


def build_bundle(files: PolicyFiles, *, tz: str = "UTC") -> tuple[PolicyBundle | None, list[Problem]]:
    """Validate every file of ``files`` and build the bundle; (bundle, []) or (None, problems)."""
    directory = files.directory
    policy, problems = build_policy_set(files)
    present = dict(files.contents)
    # Without a valid graded scheme the other files are still checked for their own
    # shape (grade names are then checked on the next pass, once grades.yaml is valid).
    grades = list(policy.grade_order) if policy is not None else None
    if policy is not None:
        problems.extend(check_grading_entities(policy))
    masking: ProfileSet | None = None
    if MASKING_FILE in present:
        path = str(directory / MASKING_FILE)
        masking, found = parse_masking(present[MASKING_FILE], path, grades)
        problems.extend(found)
        if masking is not None and policy is not None:
            problems.extend(check_mask_profiles(policy.rules, masking, path))
    elif policy is not None:
        problems.extend(
            Problem(rule.path, rule.line, f"rule '{rule.id}': mask_profile "
                    f"'{rule.obligations['mask_profile']}' but there is no {MASKING_FILE}")
            for rule in policy.rules if "mask_profile" in rule.obligations
        )
    alert_rules: AlertRules | None = AlertRules(())
    if ALERTS_FILE in present:
        alert_rules, found = parse_alerts(
            present[ALERTS_FILE], str(directory / ALERTS_FILE), grades
        )
        problems.extend(found)
    marks: WatermarkPolicy | None = None
    if WATERMARK_FILE in present:
        marks, found = parse_watermark(present[WATERMARK_FILE],
                                       str(directory / WATERMARK_FILE), grades)
        problems.extend(found)
    if problems or policy is None or alert_rules is None:
        return None, sorted(set(problems))
    # The dry run: build the alert engine exactly as the trail will use it.
    from quanguard.dataset_owner import catalog_owner

    engine = AlertEngine(alert_rules, tz, owner_org=catalog_owner)
    return PolicyBundle(policy, masking, alert_rules, engine, marks), []


def load_bundle(directory: Path, *, tz: str = "UTC") -> PolicyBundle:
    """Read and build ``directory``; raises PolicyInvalid (every problem) or PolicyNotFound."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyNotFound(f"policy directory {directory} does not exist")
    bundle, problems = build_bundle(read_policy_files(directory), tz=tz)
    if bundle is None:
        raise PolicyInvalid(problems)
    return bundle
