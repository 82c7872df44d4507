"""The arithmetic and code tables of the Chinese identifier standards, in one place.

* GB 11643-1999 (citizen identity number): weights ``2^(17-i) mod 11`` and the
  ISO 7064 MOD 11-2 check character ``10X98765432``.
* GB 32100-2015 (unified social credit code): 31-character alphabet (no I, O, S, V, Z),
  weights ``3^i mod 31``, check = ``31 - (sum mod 31)`` (31 maps to ``0``).
* ISO/IEC 7812 Luhn check digit of payment card numbers.
* GB/T 2260 administrative division codes: the province table and the county table
  (current and retired codes, ``data/area_codes_gb2260.tsv``).
* The written forms people use: full-width digits and letters (``３７０１``, ``Ｘ``) and
  separators (``-``, space, ``.`` and their full-width forms) are folded by :func:`fold`
  and removed by :func:`compact` before a checksum is computed.

The recognizers, the table scanner and the format-preserving operators all use these
functions; nothing else defines a weight table or a check character.
"""

from __future__ import annotations

import re
from enum import IntEnum
from functools import cache

from desensitize.datafiles import mapping

GB11643_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GB11643_CHECK = "10X98765432"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS: tuple[int, ...] = tuple(pow(3, i, 31) for i in range(17))
USCC_AUTHORITIES = frozenset("123456789ANY")
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_CHARS = frozenset(USCC_ALPHABET)

# Separators written inside identifiers: hyphen and dashes, spaces (the typographic ones
# and tab), characters that print as nothing (zero-width space, word joiner, byte-order
# mark, soft hyphen), dots and middle dots, slash and underscore (and full-width forms).
# An identifier written with a separator missing here is not found, so its column is not
# graded by it and masking does not touch it: when in doubt, a character belongs here.
# ``-`` comes first, and nothing here is special inside a character class, so
# ``[`` + SEPARATORS + ``]`` is the same class for RE2 and for ``regex``.
SEPARATORS = (
    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d"
    " \t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f\u3000"
    "\u00ad\u200b\u200c\u200d\u2060\ufeff"
    ".\uff0e\u00b7\u2027\u30fb\uff65"
    "/\uff0f_\uff3f"
)
_FOLD = {0xFF10 + i: 0x30 + i for i in range(10)}
_FOLD.update({0xFF21 + i: 0x41 + i for i in range(26)})
_FOLD.update({0xFF41 + i: 0x61 + i for i in range(26)})
_COMPACT = {ord(c): None for c in SEPARATORS}
# Full-width forms of printable ASCII (U+FF01..U+FF5E) and the ideographic space (U+3000),
# which Chinese input methods type: ``ｚｗ＠ｅｘａｍｐｌｅ．ｃｏｍ``.
_WIDE = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}
_WIDE_RUN = re.compile("[\uff01-\uff5e\u3000]+")


def fold(value: str) -> str:
    """Full-width digits and Latin letters as ASCII; everything else unchanged (same length)."""
    return value.translate(_FOLD)


def fold_width(text: str) -> str:
    """Every full-width form of printable ASCII and the ideographic space as ASCII, one
    character for one: the result has the length of ``text``, so an offset found in it is
    an offset into ``text`` (NFKC is no such fold: it expands ``㈱`` and ``ﬁ``)."""
    if text.isascii():
        return text
    # runs only: ``translate`` over a whole Chinese text costs ~140 ns a character, and
    # its full-width forms are mostly a sparse ``，`` or ``：``
    return _WIDE_RUN.sub(lambda m: m.group().translate(_WIDE), text)


def compact(value: str) -> str:
    """:func:`fold` ed, trimmed, without separators, upper case: the form checksums see."""
    if value.isascii():  # the common case, kept cheap: validators run on every candidate
        return (value if value.isalnum() else value.strip().translate(_COMPACT)).upper()
    return fold(value).strip().translate(_COMPACT).upper()


def id_shaped(value: str) -> bool:
    """15 digits, or 17 digits and a digit or X (any written form): the shape of a
    resident ID number, whatever its check character says."""
    v = compact(value)
    if len(v) == 15:
        return v.isascii() and v.isdigit()
    return len(v) == 18 and v.isascii() and v[:17].isdigit() and (v[17].isdigit() or v[17] == "X")


def gb11643_check(body17: str) -> str:
    """The GB 11643 check character of the first 17 digits (ASCII)."""
    return GB11643_CHECK[sum(int(c) * w for c, w in zip(body17, GB11643_WEIGHTS, strict=True)) % 11]


def gb32100_check(body17: str) -> str:
    """The GB 32100 check character of the first 17 characters (upper-case ASCII)."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_chars_ok(value: str) -> bool:
    """Every character is in the GB 32100 alphabet."""
    return _USCC_CHARS.issuperset(value)


def luhn_ok(digits: str) -> bool:
    """ISO/IEC 7812 Luhn check over an ASCII digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def luhn_digit(body: str) -> str:
    """The Luhn check digit to append to ``body``."""
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


@cache
def provinces() -> tuple[str, ...]:
    """GB/T 2260 province-level codes (two digits), sorted (``province_codes.txt``)."""
    return tuple(sorted(c for c in mapping("province_codes.txt") if len(c) == 2 and c.isdigit()))


@cache
def _divisions() -> dict[str, bool]:
    table = mapping("area_codes_gb2260.tsv")
    return {code: "current" in values for code, values in table.items()}


class Division(IntEnum):
    """How much of a six-digit GB/T 2260 code is known (ordered: more is better)."""

    NONE = 0        # not even the province exists
    PROVINCE = 1    # a real province, an unknown prefecture
    PREFECTURE = 2  # a real prefecture, a county code not in any list
    COUNTY = 3      # a county code in a current or past list


def division(code6: str) -> Division:
    """Look up a six-digit address code (current and retired codes both count)."""
    if len(code6) != 6 or not code6.isascii() or not code6.isdigit():
        return Division.NONE
    table = _divisions()
    if code6 in table:
        return Division.COUNTY
    if code6[:4] + "00" in table:
        return Division.PREFECTURE
    if code6[:2] in provinces():
        return Division.PROVINCE
    return Division.NONE


def division_current(code6: str) -> bool | None:
    """True for a code of the current list, False for a retired one, None when unknown."""
    return _divisions().get(code6)


__all__ = [
    "GB11643_CHECK",
    "GB11643_WEIGHTS",
    "SEPARATORS",
    "USCC_ALPHABET",
    "USCC_AUTHORITIES",
    "USCC_WEIGHTS",
    "Division",
    "compact",
    "division",
    "division_current",
    "fold",
    "fold_width",
    "gb11643_check",
    "gb32100_check",
    "id_shaped",
    "luhn_digit",
    "luhn_ok",
    "provinces",
    "uscc_chars_ok",
]
