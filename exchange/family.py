"""Budget families: datasets that hold the same people share one privacy budget.

At registration the subject columns of a new dataset (its key columns, the columns the
scanner found to hold personal identifiers, and text columns whose values are all
distinct) are reduced to *bottom-k sketches* of keyed hashes: HMAC-SHA-256 under a
service key of each normalised value, of which the ``SKETCH_SIZE`` smallest are kept.
No raw identifier is stored or compared. Two sketches estimate the Jaccard similarity of
the underlying sets (exactly, when both sets are smaller than the sketch); a new dataset
whose overlap with an existing one reaches the policy's threshold joins that dataset's
family, and every ε it is charged is charged to the family.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

SKETCH_SIZE = 1024
DEFAULT_THRESHOLD = 0.5
MAX_SUBJECT_COLUMNS = 8
_SEPARATORS = re.compile(r"[\s\-.·]+")


def normalise(value: str) -> str:
    """The form two spellings of one identifier share: NFKC (full-width digits become
    ASCII), separators removed, upper case."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def _h(key: bytes, value: str) -> int:
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:7], "big") >> 4  # 52 bits: exact in any JSON reader


def sketch(values: Iterable[str], key: bytes, size: int = SKETCH_SIZE) -> list[int]:
    """The ``size`` smallest keyed hashes of the distinct normalised ``values``."""
    hashes = {_h(key, n) for n in (normalise(v) for v in values if v is not None) if n}
    return sorted(hashes)[:size]


def jaccard(a: Sequence[int], b: Sequence[int], size: int = SKETCH_SIZE) -> float:
    """Estimated Jaccard similarity of two sets from their bottom-k sketches."""
    if not a or not b:
        return 0.0
    sa, sb = set(a), set(b)
    union = sorted(sa | sb)[:size]
    both = sum(1 for h in union if h in sa and h in sb)
    return both / len(union)


def subject_columns(table: pa.Table, *, keys: Sequence[str], identifiers: Iterable[str]) -> list[str]:
    """Columns that name people: declared keys, scanner identifiers, unique text columns."""
    out = list(dict.fromkeys([*keys, *identifiers]))
    for field in table.schema:
        if len(out) >= MAX_SUBJECT_COLUMNS:
            break
        if field.name in out or not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        col = table.column(field.name).drop_null()
        if len(col) >= 2 and int(pc.count_distinct(col).as_py()) == len(col):
            out.append(field.name)
    return [c for c in out if c in table.column_names][:MAX_SUBJECT_COLUMNS]


def sketches(table: pa.Table, columns: Sequence[str], key: bytes) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name in columns:
        values = table.column(name).drop_null().cast(pa.string()).to_pylist()
        sk = sketch((str(v) for v in values), key)
        if sk:
            out[name] = sk
    return out


def overlap(a: Mapping[str, Sequence[int]], b: Mapping[str, Sequence[int]]) -> float:
    """The largest estimated Jaccard similarity between any subject column of ``a`` and of ``b``."""
    return max((jaccard(x, y) for x in a.values() for y in b.values()), default=0.0)


def choose_family(new: Mapping[str, Sequence[int]], existing: Iterable[tuple[str, str, Mapping[str, Sequence[int]]]],
                  *, threshold: float) -> tuple[str | None, float]:
    """``(family, overlap)`` of the existing dataset most like ``new`` when the overlap
    reaches ``threshold``, else ``(None, best overlap)``. ``existing`` yields
    ``(name, family, sketches)``."""
    best: tuple[str | None, float] = (None, 0.0)
    for _name, family, sk in existing:
        j = overlap(new, sk)
        if j > best[1]:
            best = (family, j)
    if best[0] is not None and best[1] >= threshold:
        return best
    return None, best[1]
