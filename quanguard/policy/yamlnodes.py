"""Read a YAML file into composed nodes and check shapes, keeping line numbers.

PyYAML's ``compose`` keeps a start mark on every node, so each problem can name the line
the officer has to fix. A :class:`Sheet` collects every problem of one file instead of
stopping at the first; it never raises for bad content.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from quanguard.policy.model import Problem

__all__ = ["Sheet", "read_sheet"]

# libyaml composes ~10x faster and keeps the same marks; pure Python when it is absent
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TYPE_NAMES = {
    "tag:yaml.org,2002:str": "a string",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true/false",
    "tag:yaml.org,2002:null": "nothing (null)",
    "tag:yaml.org,2002:timestamp": "a date",
}


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    name = _TYPE_NAMES.get(node.tag, node.tag)
    return f"{name} {node.value!r}" if node.value != "" else name


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Sheet:
    """One policy file: its display path, its root node and the problems found in it."""

    def __init__(self, path: str, root: Node | None, problems: list[Problem]) -> None:
        self.path = path
        self.root = root
        self.problems = problems
        self._loader = yaml.SafeLoader("")

    # -- reporting ---------------------------------------------------------------------

    def error(self, at: Node | int, message: str) -> None:
        line = at if isinstance(at, int) else at.start_mark.line + 1
        self.problems.append(Problem(self.path, line, message))

    @staticmethod
    def line(node: Node) -> int:
        return int(node.start_mark.line) + 1

    # -- shapes --------------------------------------------------------------------------

    def mapping(self, node: Node, what: str) -> dict[str, tuple[Node, Node]] | None:
        """Keys → (key node, value node); None (and a problem) if ``node`` is no mapping."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping (key: value), got {_describe(node)}")
            return None
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, f"{what}: keys must be plain names")
                continue
            key = str(key_node.value)
            if key in out:
                first = self.line(out[key][0])
                self.error(key_node, f"{what}: duplicate key '{key}' (first at line {first})")
                continue
            out[key] = (key_node, value_node)
        return out

    def keys(
        self,
        items: dict[str, tuple[Node, Node]],
        node: Node,
        what: str,
        *,
        allowed: Iterable[str],
        required: Iterable[str] = (),
    ) -> None:
        allowed = tuple(allowed)
        for key, (key_node, _) in items.items():
            if key not in allowed:
                self.error(key_node, f"{what}: unknown key '{key}' (known: {' '.join(allowed)})")
        for key in required:
            if key not in items:
                self.error(node, f"{what}: missing required key '{key}'")

    def record(
        self, node: Node, what: str, *, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, tuple[Node, Node]] | None:
        """``mapping`` whose keys are then checked against ``allowed`` and ``required``."""
        found = self.mapping(node, what)
        if found is not None:
            self.keys(found, node, what, allowed=allowed, required=required)
        return found

    def sequence(self, node: Node, what: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list, got {_describe(node)}")
            return None
        return list(node.value)

    def scalar(self, node: Node) -> Any:
        """The Python value of a scalar node (int, float, bool, str, None, date)."""
        return self._loader.construct_object(node, deep=True)

    def string(self, node: Node, what: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            if str(node.value).strip():
                return str(node.value)
            self.error(node, f"{what} must not be empty")
            return None
        self.error(node, f"{what} must be a string, got {_describe(node)}")
        return None

    def names(self, node: Node, what: str) -> list[tuple[str, Node]] | None:
        """A list of strings, or a single string taken as a list of one."""
        items = [node] if isinstance(node, ScalarNode) else self.sequence(node, what)
        if items is None:
            return None
        out: list[tuple[str, Node]] = []
        for item in items:
            value = self.string(item, f"{what} entry")
            if value is not None:
                out.append((value, item))
        if not out and not items:
            self.error(node, f"{what} must not be empty")
        return out

    def integer(self, node: Node, what: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:int":
            return int(self.scalar(node))
        self.error(node, f"{what} must be an integer, got {_describe(node)}")
        return None

    def number(self, node: Node, what: str) -> float | None:
        if isinstance(node, ScalarNode) and node.tag in (
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
        ):
            value = float(self.scalar(node))
            if not math.isfinite(value):
                self.error(node, f"{what} must be a finite number")
                return None
            return value
        hint = ""
        if isinstance(node, ScalarNode) and _looks_numeric(str(node.value)):
            hint = " (YAML reads 1e-5 as text: write 1.0e-5)"
        self.error(node, f"{what} must be a number, got {_describe(node)}{hint}")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return bool(self.scalar(node))
        self.error(node, f"{what} must be true or false, got {_describe(node)}")
        return None


def _utf8_problem(display: str, data: bytes, exc: UnicodeDecodeError) -> Problem:
    line = data.count(b"\n", 0, exc.start) + 1
    byte = data[exc.start]
    return Problem(
        display,
        line,
        f"file is not UTF-8 (byte 0x{byte:02x} at offset {exc.start}); save it as UTF-8",
    )


def read_sheet(path: Path, display: str, data: bytes | None = None) -> Sheet:
    """Decode (strict UTF-8) and compose ``path``; problems land on the sheet, never raise.

    ``data`` may be passed when the caller already read the bytes (for hashing)."""
    if data is None:
        data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Sheet(display, None, [_utf8_problem(display, data, exc)])
    text = text.removeprefix("\ufeff")
    try:
        root = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or exc.context or "malformed YAML"
        if exc.problem and exc.context:
            where = ""
            if exc.context_mark is not None and exc.context_mark.line + 1 != line:
                where = f", started at line {exc.context_mark.line + 1}"
            what = f"{exc.problem} ({exc.context}{where})"
        return Sheet(display, None, [Problem(display, line, f"malformed YAML: {what}")])
    except yaml.reader.ReaderError as exc:  # control characters and the like
        line = text.count("\n", 0, exc.position) + 1
        message = f"malformed YAML: {exc.reason} (character #x{exc.character:04x})"
        if isinstance(exc.character, bytes):
            message = f"malformed YAML: {exc.reason}"
        return Sheet(display, None, [Problem(display, line, message)])
    except yaml.YAMLError as exc:
        return Sheet(display, None, [Problem(display, 1, f"malformed YAML: {exc}")])
    if root is None:
        return Sheet(display, None, [Problem(display, 1, "file is empty")])
    return Sheet(display, root, [])
