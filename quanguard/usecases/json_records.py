"""JSON records as a table of leaves, and back: nested objects and arrays masked in place.

A record ``{"person": {"name": "张三"}, "tags": ["a"]}`` becomes the columns
``person.name`` and ``tags[0]``; a top-level key keeps its own name, so a header
such as ``姓名`` is still recognised.  Leaves are cells; after masking, only the
leaves a plan touched are replaced (with the masked string, ``None`` stays
``None``) and every other value keeps its JSON type.  No key is added.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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


def _walk(value: object, path: Path) -> Iterator[tuple[Path, object]]:
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


def leaves(record: object, index: int) -> dict[str, tuple[Path, object]]:
    """Column name → (path, leaf value) of one record (a JSON object)."""
    if not isinstance(record, dict):
        raise record_error(index, "is not a JSON object")
    out: dict[str, tuple[Path, object]] = {}
    try:
        for path, value in _walk(record, ()):
            name = _name(path)
            while name in out:  # a key spelled like a path ("a.b" beside {"a": {"b"}})
                name += "#"
            out[name] = (path, value)
    except InvalidInput as exc:
        raise record_error(index, exc.message) from None
    return out


def _parent(record: object, path: Sequence[str | int]) -> dict[str, object] | list[object]:
    """The object or array holding the leaf at ``path`` (as ``leaves`` found it)."""
    node: object = record
    for part in path[:-1]:
        if isinstance(node, dict):
            node = node[part]
        elif isinstance(node, list):
            node = node[int(part)]
    if not isinstance(node, dict | list):
        raise TypeError(f"no container at {_name(tuple(path[:-1]))}")
    return node


def put(record: object, path: Sequence[str | int], value: object) -> None:
    """Replace the leaf at ``path`` (which exists) in ``record``, in place."""
    node = _parent(record, path)
    if isinstance(node, dict):
        node[str(path[-1])] = value
    else:
        node[int(path[-1])] = value


def drop(record: object, path: Sequence[str | int]) -> None:
    """Remove the leaf at ``path``: a key is deleted, an array element becomes ``None``."""
    node = _parent(record, path)
    if isinstance(node, dict):
        node.pop(str(path[-1]), None)
    else:
        node[int(path[-1])] = None
