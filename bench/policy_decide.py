"""Decision latency of the policy engine: shipped policy vs generated large rule sets.

For each policy set: median and p99 of one ``decide()`` (timed call by call with
``perf_counter_ns``), through the compiled index (ours) and through a naive linear scan
of every rule (the anchor: what an engine without an index does), plus the load+validate
time. Prints a Markdown table and writes ``bench/results/policy_decide.json``.

    .venv/bin/python bench/policy_decide.py [--quick] [--requests 20000] [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _common import parse_sizes

from quanguard.policy import PolicySet, Resource, load_policy_dir
from quanguard.policy.engine import _conditions_hold, decision_order
from quanguard.policy.vocab import ACTIONS, ROLES
from quanguard.services.policy import PolicyService

GRADES = ["L1", "L2", "L3", "L4", "core"]


@dataclass(frozen=True)
class Who:
    role: str
    org: str


def naive_decide(policy: PolicySet, who: Who, action: str, resource: Resource) -> str | None:
    """Anchor: scan every rule, keep the winner by the same combining rule."""
    best = None
    best_key = None
    for rule in policy.rules:
        if who.role not in rule.roles or action not in rule.actions:
            continue
        if rule.grades is not None and resource.grade not in rule.grades:
            continue
        if rule.conditions and _conditions_hold(rule, who, resource) is not None:
            continue
        key = (rule.effect != "deny", *decision_order(rule))
        if best_key is None or key < best_key:
            best, best_key = rule, key
    return best.id if best is not None else None


def generate(directory: Path, n: int, seed: int = 7) -> None:
    """Copy the shipped grades/grading and write ``n`` random, mutually unshadowed rules."""
    rng = random.Random(seed)
    for name in ("grades.yaml", "grading.yaml"):
        (directory / name).write_bytes((REPO / "policies" / name).read_bytes())
    lines = ["rules:"]
    for i in range(n):
        effect = rng.choice(["allow", "allow", "approval_required", "deny"])
        roles = rng.sample(ROLES, rng.randint(1, 2))
        grades = rng.sample(GRADES[:4], rng.randint(1, 4))
        lines += [
            f"  - id: gen-{i}",
            f"    priority: {rng.randint(1, 500)}",
            f"    roles: [{', '.join(roles)}]",
            f"    actions: [{rng.choice(ACTIONS)}]",
            f"    grades: [{', '.join(grades)}]",
            # a distinct org per rule: no rule covers another, so none is unreachable
            f"    conditions: {{orgs: [机构{i}]}}",
            f"    effect: {effect}",
        ]
        if effect != "deny":
            lines.append(f"    obligations: {{row_limit: {rng.randint(1, 10**6)}}}")
    (directory / "roles.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def requests(n: int, orgs: int, seed: int = 11) -> list[tuple[Who, str, Resource]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        org = f"机构{rng.randrange(max(orgs, 1))}" if rng.random() < 0.8 else "市人社局"
        who = Who(rng.choice(ROLES), org)
        grade = rng.choice([*GRADES, None])
        out.append((who, rng.choice(ACTIONS), Resource(grade=grade, owner_org="市人社局")))
    return out


def _timed(fn: Callable[[Who, str, Resource], object], reqs: list[tuple[Who, str, Resource]]) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for who, action, resource in reqs:
        t0 = clock()
        fn(who, action, resource)
        samples.append(clock() - t0)
    return samples


def _stats(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median_us": statistics.median(ordered) / 1000, "p99_us": p99 / 1000}


def measure(label: str, directory: Path, n_requests: int, orgs: int) -> dict[str, object]:
    t0 = time.perf_counter()
    policy = load_policy_dir(directory)
    load_s = time.perf_counter() - t0
    service = PolicyService.load(directory)
    reqs = requests(n_requests, orgs)
    for who, action, resource in reqs[:1000]:  # agree before timing anything
        assert policy.decide(who, action, resource).rule_id == naive_decide(
            policy, who, action, resource
        )
    _timed(policy.decide, reqs[:2000])  # warm-up
    ours = _stats(_timed(policy.decide, reqs))
    via_service = _stats(_timed(service.decide, reqs))
    anchor_reqs = reqs[:1000]
    anchor = _stats(_timed(lambda w, a, r: naive_decide(policy, w, a, r), anchor_reqs))
    return {
        "policy": label,
        "rules": len(policy.rules),
        "load_validate_s": round(load_s, 3),
        "requests": n_requests,
        "decide_median_us": round(ours["median_us"], 2),
        "decide_p99_us": round(ours["p99_us"], 2),
        "service_median_us": round(via_service["median_us"], 2),
        "service_p99_us": round(via_service["p99_us"], 2),
        "naive_median_us": round(anchor["median_us"], 2),
        "naive_p99_us": round(anchor["p99_us"], 2),
        "speedup_vs_naive": round(anchor["median_us"] / max(ours["median_us"], 1e-9), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    args = parse_sizes(parser, {"requests": 5_000}, requests=20_000)
    rows = [measure("shipped policies/", REPO / "policies", args.requests, orgs=1)]
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in args.sizes.split(",") if s]:
            directory = Path(tmp) / f"gen{size}"
            directory.mkdir()
            generate(directory, size)
            rows.append(measure(f"generated {size}", directory, args.requests, orgs=size))
    header = (
        "| policy | rules | load+validate s | median µs | p99 µs | service median µs "
        "| naive median µs | naive p99 µs | speed-up |"
    )
    print(header)
    print("|" + "---|" * 9)
    for r in rows:
        print(
            f"| {r['policy']} | {r['rules']} | {r['load_validate_s']} | {r['decide_median_us']} "
            f"| {r['decide_p99_us']} | {r['service_median_us']} | {r['naive_median_us']} "
            f"| {r['naive_p99_us']} | {r['speedup_vs_naive']}× |"
        )
    base = rows[0]["decide_median_us"]
    growth = {str(r["rules"]): round(r["decide_median_us"] / base, 2) for r in rows}  # type: ignore[operator]
    print(f"\nmedian growth relative to the shipped set: {growth}")
    goal = "met" if base < 50 else "NOT met"  # type: ignore[operator]
    print(f"goal median < 50 µs at default size: {goal} ({base} µs)")
    out = REPO / "bench" / "results" / "policy_decide.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "bench": "policy_decide",
                "rows": _summary_rows(rows),
                "notes": (
                    f"{args.requests} random requests per set, timed call by call; anchor = "
                    "linear scan of every rule with the same combining rule (1,000 requests); "
                    f"median growth vs shipped set by rule count: {growth}; "
                    f"python {platform.python_version()} {platform.machine()}; one run"
                ),
                "detail": rows,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


def _summary_rows(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Rows in the bench/README.md schema: ours vs the naive-scan anchor, per policy set."""
    out: list[dict[str, object]] = []
    for i, r in enumerate(rows):
        for stat in ("median", "p99"):
            ours = r[f"decide_{stat}_us"]
            anchor = r[f"naive_{stat}_us"]
            goal = "< 50 µs" if (i == 0 and stat == "median") else None
            out.append(
                {
                    "metric": f"decide {stat}, {r['policy']} ({r['rules']} rules), "
                    "ratio = ours ÷ naive scan",
                    "ours": ours,
                    "anchor": anchor,
                    "ratio": round(float(ours) / float(anchor), 4) if anchor else None,  # type: ignore[arg-type]
                    "goal": goal,
                    "unit": "µs",
                    "met": (float(ours) < 50) if goal else None,  # type: ignore[arg-type]
                }
            )
        out.append(
            {
                "metric": f"load + validate, {r['policy']} ({r['rules']} rules)",
                "ours": r["load_validate_s"],
                "anchor": None,
                "ratio": None,
                "goal": None,
                "unit": "s",
                "met": None,
            }
        )
    return out


if __name__ == "__main__":
    main()
