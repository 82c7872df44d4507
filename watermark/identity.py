"""Row identity without a key: keyed hashes of quasi-identifier sets.

A mark's position (which cell, which codeword bit, which level) is a keyed function of the
row's identity and the column name. The primary key is one identity; because a leaker
may drop it, every copy is also marked under a few *quasi-identifier sets*: small sets of
columns whose values — or a coarse, mark-stable form of them (the leading bucket of an
amount, the month of a date) — tell rows apart well enough. The sets are chosen at
embed time from the values (how many distinct combinations they give), preferring
untouched columns and sets that share no column, so that dropping or editing one or two
columns leaves at least one set whole. They are stored in the plan (the registry record).

Two rows with the same quasi-identifiers simply carry the same bit in that column: that
is harmless; only the spread of bits over the codeword needs many distinct identities.
"""

from __future__ import annotations

import hashlib
from itertools import combinations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from watermark.category import normalise
from watermark.hashing import canonical_keys, canonical_name, row_hashes, subkey
from watermark.models import Source
from watermark.profile import DATE, ColumnProfile

_FLOAT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_MAX_CANDIDATES = 8
_MAX_SETS = 4


def form_values(arr: pa.Array, form: str) -> pa.Array:
    """The text a column contributes to an identity, in the given form."""
    if form.startswith("bucket:"):
        fast = _bucket_fast(arr, int(form.split(":", 1)[1]))
        if fast is not None:
            return fast
    if form == "class":
        return pa.array([normalise(v) if v is not None else "" for v in arr.to_pylist()],
                        type=pa.string())
    base = canonical_keys(arr)
    if form == "exact":
        return base
    if form.startswith("stem:"):
        return pc.utf8_slice_codeunits(base, 0, -int(form.split(":", 1)[1]))
    if form == "month":
        parts = pc.extract_regex(base, DATE)
        ok = pc.fill_null(pc.match_substring_regex(base, DATE), False)
        if not pc.any(ok).as_py():
            return base
        y = pc.struct_field(parts, [0])
        m = pc.utf8_lpad(pc.struct_field(parts, [2]), 2, "0")
        month = pc.binary_join_element_wise(y, m, "-")
        return pc.if_else(ok, month, base)
    if form.startswith("bucket:"):
        e = int(form.split(":", 1)[1])
        ok = np.asarray(pc.fill_null(pc.match_substring_regex(base, _FLOAT), False)
                        .to_numpy(zero_copy_only=False), dtype=bool)
        if not ok.any():
            return base
        safe = pc.if_else(pa.array(ok), base, pa.scalar("0"))
        v = pc.cast(safe, pa.float64()).to_numpy(zero_copy_only=False)
        b = np.floor(np.abs(v) / 10.0 ** e).astype(np.int64) * np.where(v < 0, -1, 1)
        return pc.if_else(pa.array(ok), pc.cast(pa.array(b), pa.string()), base)
    raise ValueError(f"unknown identity form {form!r}")


def _bucket_fast(arr: pa.Array, e: int) -> pa.Array | None:
    # Every cell a plain number (the usual case): cast once, no regular expressions.
    if arr.null_count:
        return None
    try:
        v = pc.cast(pc.utf8_trim_whitespace(arr) if arr.type == pa.string() else arr,
                    pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not np.isfinite(v).all():
        return None
    b = np.floor(np.abs(v) / 10.0 ** e).astype(np.int64) * np.where(v < 0, -1, 1)
    return pc.cast(pa.array(b), pa.string())


def source_salt(secret: bytes, source: Source) -> np.uint64:
    """Keyed salt of a source, so that two sources never share positions."""
    text = "\x1e".join(f"{canonical_name(c)}={f}" for c, f in zip(source.columns, source.forms,
                                                                 strict=True))
    d = hashlib.blake2b(text.encode(), key=subkey(secret, "source"), digest_size=8).digest()
    return np.uint64(int.from_bytes(d, "little"))


def identity_hashes(columns: list[pa.Array], source: Source, secret: bytes, *,
                    cache: dict[tuple[str, str], pa.Array] | None = None) -> np.ndarray:
    """One keyed 64-bit identity per row for ``source`` (columns in the source's order);
    ``cache`` keeps the forms of one batch for the other sources."""
    parts = []
    for name, c, f in zip(source.columns, columns, source.forms, strict=True):
        if cache is None:
            parts.append(form_values(c, f))
            continue
        if (name, f) not in cache:
            cache[(name, f)] = form_values(c, f)
        parts.append(cache[(name, f)])
    keys = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "\x1f")
    return row_hashes(keys, secret) ^ source_salt(secret, source)


def _stable_forms(profiles: dict[str, ColumnProfile], carriers: dict[str, str],
                  key: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for name, p in profiles.items():
        if name in key or p.kind == "empty":
            continue
        kind = carriers.get(name)
        if kind == "numeric":
            if p.bucket is not None:
                out.append((name, f"bucket:{p.bucket}"))
        elif kind == "date":
            out.append((name, "month"))
        elif kind == "category":
            out.append((name, "class"))
        elif kind is not None and kind.startswith("pseudonym:"):
            # the body of a pseudonym never moves (only its free character does)
            out.append((name, "stem:2" if kind.endswith(("luhn", "id18")) else "stem:1"))
        elif kind is None:  # an untouched column (an unmarked masked one too)
            out.append((name, "exact"))
    return out


def choose_sources(sample: dict[str, pa.Array], profiles: dict[str, ColumnProfile],
                   carriers: dict[str, str], key: tuple[str, ...]) -> tuple[Source, ...]:
    """Quasi-identifier sets for this table (possibly none), best first."""
    stable = _stable_forms(profiles, carriers, key)
    rows = len(next(iter(sample.values()))) if sample else 0
    if not stable or rows == 0:
        return ()
    forms = {name: form_values(sample[name], form) for name, form in stable}
    single = {name: int(pc.count_distinct(forms[name]).as_py() or 0) for name, _ in stable}
    ranked = sorted(stable, key=lambda nf: (-single[nf[0]], nf[1] != "exact", nf[0]))
    ranked = [nf for nf in ranked if single[nf[0]] >= 2][:_MAX_CANDIDATES]
    enough = max(min(512, rows // 4), 16)
    scored = []
    for size in (1, 2, 3):
        for combo in combinations(ranked, size):
            arrays = [forms[n] for n, _ in combo]
            joined = arrays[0] if size == 1 else pc.binary_join_element_wise(*arrays, "\x1f")
            distinct = int(pc.count_distinct(joined).as_py() or 0)
            inexact = sum(f != "exact" for _, f in combo)
            scored.append((distinct >= enough, -size, -inexact, distinct, combo))
    scored.sort(key=lambda s: (s[0], s[1], s[2], s[3]), reverse=True)
    good = [s for s in scored if s[0]] or scored[:1]
    if good[0][3] < 16:
        return ()
    return _cover(good)


def _cover(good: list[tuple[bool, int, int, int, tuple[tuple[str, str], ...]]]
              ) -> tuple[Source, ...]:
    # Greedy cover: every column, and every pair of columns, that a leaker might drop or
    # edit should leave at least one set whole (a set survives what it does not use).
    # A lost single column counts three times a lost pair.
    columns = sorted({n for s in good for n, _ in s[4]})
    targets = [frozenset([c]) for c in columns] + \
        [frozenset(p) for p in combinations(columns, 2)]
    value = {t: 3 if len(t) == 1 else 1 for t in targets}
    chosen: list[tuple[tuple[str, str], ...]] = [good[0][4]]
    covered = {t for t in targets if not t & {n for n, _ in good[0][4]}}
    while len(chosen) < _MAX_SETS:
        best, gain = None, 0
        for s in good:
            if s[4] in chosen:
                continue
            names = {n for n, _ in s[4]}
            g = sum(value[t] for t in targets if t not in covered and not t & names)
            if g > gain:
                best, gain = s, g
        if best is None:
            break
        chosen.append(best[4])
        covered |= {t for t in targets if not t & {n for n, _ in best[4]}}
    return tuple(Source(tuple(n for n, _ in c), tuple(f for _, f in c), "qi") for c in chosen)
