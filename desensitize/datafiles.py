"""Reading of the data tables under ``desensitize/data/``.

Tables are plain text (``#`` comments, whitespace separated) or TSV, read once and
cached.  A missing or malformed file raises :class:`RecognizerDataError`.  This module
imports nothing of the recognizers, so :mod:`desensitize.standards` can use it too.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from desensitize.errors import RecognizerDataError


def read_lines(name: str) -> list[str]:
    """The non-blank, non-comment lines of ``desensitize/data/<name>``."""
    try:
        text = resources.files("desensitize").joinpath("data", name).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError, OSError) as exc:
        raise RecognizerDataError(f"desensitize/data/{name}: cannot be read ({exc})") from exc
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@cache
def words(name: str) -> frozenset[str]:
    """Every whitespace-separated token of a ``.txt`` table."""
    return frozenset(tok for line in read_lines(name) for tok in line.split())


@cache
def mapping(name: str) -> dict[str, tuple[str, ...]]:
    """A TSV table ``key<TAB>values...`` as key -> tuple of whitespace-separated values."""
    out: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(read_lines(name), start=1):
        key, sep, rest = line.partition("\t")
        if not sep or not key.strip():
            raise RecognizerDataError(f"desensitize/data/{name}:{number}: expected key<TAB>values")
        out[key.strip()] = tuple(rest.split())
    return out
