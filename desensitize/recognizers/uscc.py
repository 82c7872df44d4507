"""CN_USCC — unified social credit code of legal persons and organisations, GB 32100-2015.

18 characters over the alphabet ``0-9 A-H J-N P-R T U W X Y`` (no I, O, S, V, Z):
registration authority (``1``-``9``, and the letter-prefixed authorities ``A`` military,
``N`` agriculture, ``Y`` other), organisation type, 6-digit administrative division
code, 9-character organisation code, and a check character: weights ``3^i mod 31``,
check = ``31 - (sum mod 31)`` (31 maps to ``0``).
"""

from __future__ import annotations

from typing import ClassVar

from desensitize.recognizers._base import BOUND_L, BOUND_R, ChinesePatternRecognizer

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_AUTHORITIES = frozenset("123456789ANY")
_CLASS = "[0-9A-HJ-NP-RTUWXY]"


def check_character(body: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    total = sum(_VALUE[c] * w for c, w in zip(body, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(value: str) -> bool:
    """Alphabet, authority code, 6-digit division code and the mod-31 check character."""
    v = value.strip().upper()
    if len(v) != 18 or any(c not in _VALUE for c in v):
        return False
    if v[0] not in _AUTHORITIES or not v[2:8].isdigit():
        return False
    return check_character(v[:17]) == v[17]


class UsccRecognizer(ChinesePatternRecognizer):
    """GB 32100 unified social credit codes (统一社会信用代码)."""

    ENTITY = "CN_USCC"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("gb32100", BOUND_L + r"[1-9ANY]" + _CLASS + r"\d{6}" + _CLASS + "{10}" + BOUND_R, 0.4),
    )
    COLUMN_PATTERN = r"^[1-9ANY][0-9A-HJ-NP-RTUWXY]\d{6}[0-9A-HJ-NP-RTUWXY]{10}$"
    CHECKSUM = True

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_uscc(value)
