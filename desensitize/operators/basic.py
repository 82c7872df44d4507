"""Character-level operators: mask, redact, replace, keep, suppress.

``mask`` keeps a prefix and a suffix and replaces the middle by ``char``:
``110101********1234`` (ID), ``138****5678`` (phone), ``张*`` / ``欧阳**`` (name: the
surname, compound ones included, is kept), ``济南市历下区****`` (address: the
province/city/district prefix is kept), ``z***@example.com`` (e-mail).  A value no
longer than prefix + suffix keeps less, so at least one character is always masked.
With ``variants: true`` about half of the values hide one more character (see
:func:`hide_one_more`): the two renderings the watermark chooses between.
All of it runs as Arrow compute kernels over whole columns; a few values (one record
sent to the masking API) are masked row by row with the same rules, cheaper than a
dozen kernel calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desensitize.operators._base import OpContext, Operator, Param

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # loaded on first use: declaring an operator needs no Arrow
    from desensitize.operators._libs import np, pa, pc

# entity → (mode, prefix, suffix) used when the profile does not say
MASK_DEFAULTS: dict[str | None, tuple[str, int, int]] = {
    "CN_RESIDENT_ID": ("chars", 6, 4),
    "PHONE_NUMBER": ("chars", 3, 4),
    "CN_BANK_CARD": ("chars", 6, 4),
    "CN_USCC": ("chars", 8, 2),
    "CN_LICENSE_PLATE": ("chars", 2, 1),
    "CN_PASSPORT": ("chars", 1, 2),
    "IP_ADDRESS": ("chars", 3, 0),
    "PERSON": ("name", 0, 0),
    "LOCATION": ("address", 0, 0),
    "EMAIL_ADDRESS": ("email", 1, 0),
    None: ("chars", 1, 1),
}

REGION_RE = (
    r"^(?P<r>(?:[^省市区县]{1,7}?(?:省|自治区|特别行政区))?"
    r"(?:[^省市区县]{1,7}?(?:市|自治州|州|盟|地区))?"
    r"(?:[^省市区县]{1,7}?(?:区|县|旗|市))?)"
)

_COMPOUND_FALLBACK = "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 独孤 南宫 呼延"


@lru_cache(maxsize=1)
def compound_surnames() -> pa.Array:
    path = Path(__file__).resolve().parent.parent / "data" / "surnames_compound.txt"
    words: set[str] = set(_COMPOUND_FALLBACK.split())
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            words.update(w for w in line.split() if len(w) == 2)
    return pa.array(sorted(words), pa.string())


SMALL = 64  # at most this many values (and no null) are masked row by row


@lru_cache(maxsize=1)
def _compound_set() -> frozenset[str]:
    return frozenset(compound_surnames().to_pylist())


def _small(values: pa.Array) -> bool:
    return len(values) <= SMALL and values.null_count == 0


def _chars_row(v: str, prefix: int, suffix: int, char: str, fixed: int | None) -> str:
    n = len(v)
    if n > prefix + suffix:
        p, s = prefix, suffix
    else:
        p, s = min(prefix, max(n - 1, 0)), 0
    count = fixed if fixed is not None else n - p - s
    return v[:p] + char * max(count, 0) + (v[n - s:] if s else "")


def _name_row(v: str, char: str) -> str:
    n = len(v)
    if n <= 1:
        return char * n
    keep = 2 if n > 2 and v[:2] in _compound_set() else 1
    return v[:keep] + char * (n - keep)


def _stars(char: str, counts: pa.Array) -> pa.Array:
    return pc.binary_repeat(char, pc.max_element_wise(counts, 0))


def _join(*parts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def mask_chars(values: pa.Array, prefix: int, suffix: int, char: str, fixed: int | None) -> pa.Array:
    """Keep ``prefix`` and ``suffix`` characters; vectorised."""
    if _small(values):
        return pa.array([_chars_row(v, prefix, suffix, char, fixed) for v in values.to_pylist()], pa.string())
    lengths = pc.utf8_length(values)
    bounds = pc.min_max(lengths).as_py()
    if len(values) and bounds["min"] > prefix + suffix:
        # fast path (the common case): every value is longer than what is kept
        head = pc.utf8_slice_codeunits(values, 0, prefix)
        if fixed is not None or bounds["min"] == bounds["max"]:
            count = fixed if fixed is not None else bounds["min"] - prefix - suffix
            stars: pa.Array | pa.Scalar = pa.scalar(char * count)
        else:
            stars = pc.binary_repeat(char, pc.subtract(lengths, prefix + suffix))
        if not suffix:
            return pc.binary_join_element_wise(head, stars, "")
        return pc.binary_join_element_wise(head, stars, pc.utf8_slice_codeunits(values, -suffix), "")
    length = lengths.to_numpy(zero_copy_only=False).astype(np.int64)
    long_ = length > prefix + suffix
    p = np.where(long_, prefix, np.minimum(prefix, np.maximum(length - 1, 0)))
    s = np.where(long_, suffix, 0)
    n = length - p - s if fixed is None else np.full_like(length, fixed)
    head = pc.utf8_slice_codeunits(values, 0, prefix)
    tail = pc.utf8_slice_codeunits(values, -suffix) if suffix else pa.array([""] * len(values))
    if not long_.all():
        # short values keep fewer characters: take per-row slices only for them
        short = np.flatnonzero(~long_)
        head_l = head.to_pylist()
        tail_l = tail.to_pylist()
        vals = values.take(pa.array(short)).to_pylist()
        for i, v in zip(short, vals, strict=True):
            head_l[i] = v[: p[i]]
            tail_l[i] = ""
        head, tail = pa.array(head_l, pa.string()), pa.array(tail_l, pa.string())
    return _join(head, _stars(char, pa.array(n)), tail)


def mask_name(values: pa.Array, char: str) -> pa.Array:
    """Keep the surname (compound surnames too); ``张三``→``张*``, ``欧阳娜娜``→``欧阳**``."""
    if _small(values):
        return pa.array([_name_row(v, char) for v in values.to_pylist()], pa.string())
    length = pc.utf8_length(values)
    two = pc.utf8_slice_codeunits(values, 0, 2)
    compound = pc.and_(pc.is_in(two, value_set=compound_surnames()), pc.greater(length, 2))
    keep = pc.if_else(compound, 2, 1)
    keep = pc.if_else(pc.less_equal(length, 1), 0, keep)
    head = pc.if_else(compound, two, pc.utf8_slice_codeunits(values, 0, 1))
    head = pc.if_else(pc.less_equal(length, 1), "", head)
    return _join(head, _stars(char, pc.subtract(length, keep)))


def region_prefix(values: pa.Array) -> pa.Array:
    """The province/city/district prefix of each address ('' when there is none)."""
    return pc.struct_field(pc.extract_regex(values, REGION_RE), [0])


def mask_address(values: pa.Array, char: str, fixed: int | None) -> pa.Array:
    region = region_prefix(values)
    rest = pc.subtract(pc.utf8_length(values), pc.utf8_length(region))
    # nothing recognisable as a region: mask everything but the first character
    no_region = pc.equal(pc.utf8_length(region), 0)
    fallback = mask_chars(values, 1, 0, char, fixed)
    count = rest if fixed is None else pa.array(np.full(len(values), fixed))
    masked = _join(region, _stars(char, count))
    return pc.if_else(pc.or_(no_region, pc.equal(rest, 0)), fallback, masked)


def mask_email(values: pa.Array, prefix: int, char: str) -> pa.Array:
    parts = pc.extract_regex(values, r"^(?P<l>[^@]+)@(?P<d>[^@]+)$")
    local = pc.struct_field(parts, [0])
    domain = pc.struct_field(parts, [1])
    ok = pc.is_valid(local)
    lp = mask_chars(pc.fill_null(local, "x"), prefix, 0, char, 3)
    joined = pc.binary_join_element_wise(lp, pc.fill_null(domain, ""), "@")
    return pc.if_else(ok, joined, mask_chars(values, prefix, 0, char, None))


_RUN = r"^(?P<h>[^*＊●]*)(?P<m>[*＊●]+)(?P<t>.*)$"
_WORD = r"[\pL\pN]"


def hide_one_more(masked: pa.Array) -> pa.Array:
    """Each masked value with one more character hidden next to its first mask run: the
    letter or digit right of the run, else the one left of it; a value where neither is,
    or that would show fewer than two characters, is returned as it is."""
    parts = pc.extract_regex(masked, _RUN)
    h, m, t = (pc.fill_null(pc.struct_field(parts, [i]), "") for i in range(3))
    right = pc.fill_null(pc.match_substring_regex(pc.utf8_slice_codeunits(t, 0, 1), _WORD), False)
    left = pc.fill_null(pc.match_substring_regex(pc.utf8_slice_codeunits(h, -1), _WORD), False)
    star = pc.utf8_slice_codeunits(m, 0, 1)
    hidden = pc.if_else(right, _join(h, m, star, pc.utf8_slice_codeunits(t, 1)),
                        _join(pc.utf8_slice_codeunits(h, 0, -1), star, m, t))
    shown = pc.subtract(pc.utf8_length(masked), pc.add(pc.utf8_length(m), 1))
    ok = pc.and_(pc.and_(pc.is_valid(parts), pc.or_(right, left)),
                 pc.greater_equal(pc.fill_null(shown, 0), 2))
    return pc.if_else(pc.fill_null(ok, False), hidden, masked)


def _variants(original: pa.Array, masked: pa.Array, ctx: OpContext) -> pa.Array:
    # Half of the values (a keyed coin of the value: the same value, the same rendering)
    # hide one more character: the two renderings a watermark chooses between, so a
    # marked copy and an unmarked one are the same mixture.
    from desensitize.operators.crypto import hmac_many

    # The coin is a function of the original value: keyed by anything public, it would
    # tell anyone one bit of the characters the mask hides (KeyMaterialError without keys).
    key = ctx.key("mask-variants")
    encoded = original.dictionary_encode()
    coins = [bool(d[0] & 1) for d in hmac_many(key, [v.encode() for v in
                                               encoded.dictionary.to_pylist()])]
    coin = pa.array(coins, pa.bool_()).take(encoded.indices)
    return pc.if_else(coin, hide_one_more(masked), masked)


def _mask(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    out = _mask_plain(values, params, ctx)
    return _variants(values, out, ctx) if params["variants"] else out


def _mask_plain(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    mode, dprefix, dsuffix = MASK_DEFAULTS.get(ctx.entity, MASK_DEFAULTS[None])
    mode = params["mode"] if params["mode"] != "auto" else mode
    prefix = dprefix if params["prefix"] is None else params["prefix"]
    suffix = dsuffix if params["suffix"] is None else params["suffix"]
    char, fixed = params["char"], params["fixed"]
    if mode == "name":
        return mask_name(values, char)
    if mode == "address":
        return mask_address(values, char, 4 if fixed is None else fixed)
    if mode == "email":
        return mask_email(values, max(prefix, 1), char)
    return mask_chars(values, max(prefix, 0), max(suffix, 0), char, fixed)


def _redact(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    return pa.array([""] * len(values), pa.string())


def _replace(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    token = str(params["token"]).replace("{entity}", ctx.entity or "PII")
    return pa.array([token] * len(values), pa.string())


def _keep(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    return values


MASK = Operator(
    "mask",
    "Keep a prefix and suffix, replace the middle by a mask character.",
    _mask,
    (
        Param("mode", (str,), "auto", "chars | name | address | email | auto (by entity)",
              ("auto", "chars", "name", "address", "email")),
        Param("prefix", (int,), None, "characters kept at the start (entity default)"),
        Param("suffix", (int,), None, "characters kept at the end (entity default)"),
        Param("char", (str,), "*", "the mask character"),
        Param("fixed", (int,), None, "write exactly this many mask characters (hides length)"),
        Param("variants", (bool,), False,
              "hide one more character in about half of the values (keyed, the same value "
              "always alike; needs the keyring): the mixture a watermarked copy of masked "
              "values is written in"),
    ),
)
REDACT = Operator("redact", "Remove the value (empty string).", _redact)
REPLACE = Operator(
    "replace",
    "Replace the value by a token; {entity} is substituted.",
    _replace,
    (Param("token", (str,), "<{entity}>", "replacement text"),),
)
KEEP = Operator("keep", "Leave the value unchanged.", _keep)
SUPPRESS = Operator(
    "suppress", "Drop the whole column (inside free text: remove the span).", _redact,
    drops_column=True,
)
