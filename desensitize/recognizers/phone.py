"""PHONE_NUMBER — mainland China telephone numbers (MIIT numbering plan, YD/T 2.0).

Mobiles: 11 digits whose first three are an allocated prefix (``mobile_prefixes.txt``),
plain, grouped ``3-4-4`` by hyphens or spaces, optionally after ``+86``/``0086``/``86``.
Landlines: trunk ``0`` + an area code from ``area_codes.txt`` + a 7-8 digit local number
(first digit 2-9), written ``0531-88886666``, ``(0531)88886666``, ``（0531）…`` or plain,
optionally followed by an extension (``-123``, ``转123``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from desensitize.recognizers._base import BOUND_L, BOUND_R, ChinesePatternRecognizer
from desensitize.recognizers._tables import area_codes, words

_MOBILE = r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d([ -]?)\d{4}\1\d{4}"
_LANDLINE = (
    r"(?:[(（]0\d{2,3}[)）][ \-－—]?|0\d{2,3}[ \-－—]?)[2-9]\d{6,7}(?:(?:-|转|－)\d{1,5})?"
)


def is_valid_mobile(value: str) -> bool:
    """11 digits (country code removed) with an allocated three-digit prefix."""
    digits = re.sub(r"\D", "", value)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    if len(digits) != 11:
        return False
    return digits[:3] in words("mobile_prefixes.txt")


def is_valid_landline(value: str) -> bool:
    """An allocated area code followed by a 7-8 digit local number."""
    main = re.split(r"转|(?<=\d{7})[-－](?=\d{1,5}$)", value.strip())[0]
    digits = re.sub(r"\D", "", main)
    codes = area_codes()
    for width in (3, 4):
        code, local = digits[:width], digits[width:]
        if code in codes and 7 <= len(local) <= 8 and local[0] in "23456789":
            return True
    return False


def is_valid_phone(value: str) -> bool:
    """Either a mobile or a landline number."""
    v = value.strip()
    return is_valid_landline(v) if v.lstrip("(（").startswith("0") and not v.startswith("00") else is_valid_mobile(v)


class PhoneRecognizer(ChinesePatternRecognizer):
    """Mainland mobile numbers (prefix table) and landlines with a real area code."""

    ENTITY = "PHONE_NUMBER"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("mobile", r"(?<![0-9A-Za-z+])" + _MOBILE + BOUND_R, 0.7),
        ("landline", BOUND_L + _LANDLINE + BOUND_R, 0.6),
    )
    COLUMN_PATTERN = (
        r"^(?:(?:\+|00)?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}$"
        r"|^(?:[(（]0\d{2,3}[)）][ \-－—]?|0\d{2,3}[ \-－—]?)[2-9]\d{6,7}(?:(?:-|转|－)\d{1,5})?$"
    )

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_phone(value)
