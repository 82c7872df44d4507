"""Policy files are read with libyaml's loader when PyYAML has it (about ten times faster
than the pure-Python one, a fixed cost of every command); both loaders must read every
shipped policy file to the same values, with the same line numbers for error messages."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

import desensitize.profiles
import monitor.alerts
import quanguard.policy.foreign
import quanguard.policy.yamlnodes

POLICIES = Path(__file__).resolve().parents[2] / "policies"
FILES = sorted(POLICIES.rglob("*.yaml"))

needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")


def _lines(node: Node | None) -> list[tuple[str, int, int]]:
    """(tag, line, column) of every node, depth first."""
    if node is None:
        return []
    out = [(node.tag, node.start_mark.line, node.start_mark.column)]
    if isinstance(node, MappingNode):
        for key, value in node.value:
            out += _lines(key) + _lines(value)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            out += _lines(item)
    return out


def test_the_policy_folder_has_files() -> None:
    assert {"masking.yaml", "alerts.yaml", "roles.yaml"} <= {p.name for p in FILES}


@needs_libyaml
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(POLICIES)) for p in FILES])
def test_both_loaders_read_a_policy_file_alike(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.load(text, Loader=yaml.SafeLoader)
    assert _lines(yaml.compose(text, Loader=yaml.CSafeLoader)) == _lines(
        yaml.compose(text, Loader=yaml.SafeLoader))


@needs_libyaml
@pytest.mark.parametrize("text", ["a: [1, 2\nb: 3\n", "a: 1\n  b: 2\n", "x:\n  - 1\n - 2\n",
                                  "k: 'open\n"])
def test_both_loaders_place_a_syntax_error_on_the_same_line(text: str) -> None:
    marks = []
    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        with pytest.raises(yaml.MarkedYAMLError) as caught:
            yaml.load(text, Loader=loader)
        assert caught.value.problem_mark is not None
        marks.append(caught.value.problem_mark.line)
    assert marks[0] == marks[1]


@needs_libyaml
@pytest.mark.parametrize("module", [desensitize.profiles, monitor.alerts, quanguard.policy.foreign,
                                    quanguard.policy.yamlnodes])
def test_policy_readers_use_libyaml(module: ModuleType) -> None:
    loader = getattr(module, "_SAFE_LOADER", None) or getattr(module, "_COMPOSER", None)
    assert loader is yaml.CSafeLoader
