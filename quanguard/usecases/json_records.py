"""JSON records as a table of leaves, and back: nested objects and arrays masked in place.

A record ``{"person": {"name": "张三"}, "tags": ["a"]}`` becomes the columns
``person.name`` and ``tags[0]``; a top-level key keeps its own name, so a header
such as ``姓名`` is still recognised.  Leaves are cells; after masking, only the
leaves a plan touched are replaced (with the masked string, ``None`` stays
``None``) and every other value keeps its JSON type.  No key is added.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from quanguard.errors import InvalidInput

__all__ = ["Path", "drop", "leaves", "put", "record_error"]

Path = tuple[str | int, ...]
MAX_DEPTH = 32


def record_error(index: int, message: str) -> InvalidInput:
    """An error about one record, carrying its 0-based ``index``."""
    return InvalidInput(f"record {index}: {message}", index=index)


def _name(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if len(path) > MAX_DEPTH:
        raise InvalidInput(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))
    else:
        yield path, value


def leaves(record: Any, index: int) -> dict[str, tuple[Path, Any]]:
    """Column name → (path, leaf value) of one record (a JSON object)."""
    if not isinstance(record, dict):
        raise record_error(index, "is not a JSON object")
    out: dict[str, tuple[Path, Any]] = {}
    try:
        for path, value in _walk(record, ()):
            name = _name(path)
            while name in out:  # a key spelled like a path ("a.b" beside {"a": {"b"}})
                name += "#"
            out[name] = (path, value)
    except InvalidInput as exc:
        raise record_error(index, exc.message) from None
    return out


def put(record: Any, path: Sequence[str | int], value: Any) -> None:
    """Replace the leaf at ``path`` (which exists) in ``record``, in place."""
    node = record
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def drop(record: Any, path: Sequence[str | int]) -> None:
    """Remove the leaf at ``path``: a key is deleted, an array element becomes ``None``."""
    node = record
    for part in path[:-1]:
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = None
