"""CN_USCC — unified social credit code of legal persons and organisations, GB 32100-2015.

18 characters over the alphabet ``0-9 A-H J-N P-R T U W X Y`` (no I, O, S, V, Z):
registration authority (``1``-``9``, and the letter-prefixed authorities ``A`` military,
``N`` agriculture, ``Y`` other), organisation type, 6-digit administrative division
code, 9-character organisation code, and a check character: weights ``3^i mod 31``,
check = ``31 - (sum mod 31)`` (31 maps to ``0``) — see :mod:`desensitize.standards`.

Written forms: upper or lower case, ASCII or full-width, plain or split where writers split
it (groups of four, after the division code, before a check character), each gap written
its own way.  An all-digit code after a
resident-ID cue is a mistyped ID, not a credit code
(:class:`~desensitize.recognizers._base.NotAnIdRecognizer`).
"""

from __future__ import annotations

from typing import ClassVar

from desensitize.recognizers._base import BOUND_L, BOUND_R, SEP, SEP_RE2, D, NotAnIdRecognizer
from desensitize.standards import (
    USCC_ALPHABET,
    USCC_AUTHORITIES,
    compact,
    gb32100_check,
    uscc_chars_ok,
)

__all__ = ["ALPHABET", "UsccRecognizer", "check_character", "is_valid_uscc"]

ALPHABET = USCC_ALPHABET
_LETTERS = "A-HJ-NP-RTUWXY"
_FW_UPPER = "\uff21-\uff28\uff2a-\uff2e\uff30-\uff32\uff34\uff35\uff37-\uff39"
_FW_LOWER = "\uff41-\uff48\uff4a-\uff4e\uff50-\uff52\uff54\uff55\uff57-\uff59"
_CLASS = f"[0-9{_LETTERS}{_LETTERS.lower()}\uff10-\uff19{_FW_UPPER}{_FW_LOWER}]"
_AUTH = "[1-9ANYany\uff11-\uff19\uff21\uff2e\uff39\uff41\uff4e\uff59]"


def _shape(digit: str, sep: str) -> str:
    """The 18 characters, with an optional gap (up to three separator characters) where
    writers split a code: after the first two characters and every four (``9135 0100
    M000 100Y 43``), after the division code (``91350100-M000100Y43``), and before the
    check characters of the organisation code and of the whole (``91350100
    M000100Y-4 3``)."""
    gap = sep + "{0,3}"
    return (_AUTH + _CLASS + gap + digit + "{2}" + gap + digit + "{4}" + gap + _CLASS + "{4}"
            + gap + _CLASS + "{4}" + gap + _CLASS + gap + _CLASS)


def check_character(body: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    return gb32100_check(body)


def is_valid_uscc(value: str) -> bool:
    """Alphabet, authority code, 6-digit division code and the mod-31 check character."""
    v = compact(value)
    if len(v) != 18 or not uscc_chars_ok(v):
        return False
    if v[0] not in USCC_AUTHORITIES or not v[2:8].isdigit():
        return False
    return gb32100_check(v[:17]) == v[17]


class UsccRecognizer(NotAnIdRecognizer):
    """GB 32100 unified social credit codes (统一社会信用代码)."""

    ENTITY = "CN_USCC"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("gb32100", BOUND_L + _shape(D, SEP) + BOUND_R, 0.4),
    )
    COLUMN_PATTERN = "^" + _shape("[0-9\uff10-\uff19]", SEP_RE2) + "$"
    CHECKSUM = True

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_uscc(value)
