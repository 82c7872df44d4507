"""PHONE_NUMBER — mainland China telephone numbers (MIIT numbering plan, YD/T 2.0).

Mobiles: 11 digits whose first three are an allocated prefix (``mobile_prefixes.txt``),
plain or grouped ``3-4-4`` by separators (hyphen, space, dot; each gap its own, as in
``138-1234 5678``), optionally after
``+86``/``0086``/``86``.
Landlines: trunk ``0`` + an area code from ``area_codes.txt`` + a 7-8 digit local number
(first digit 2-9), written ``0531-88886666``, ``(0531)88886666``, ``（0531）…`` or plain,
optionally followed by an extension (``-123``, ``转123``).
Digits may be full-width (``１３８…``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from desensitize.recognizers._base import BOUND_R, SEP, SEP_RE2, ChinesePatternRecognizer, D
from desensitize.recognizers._tables import area_codes, words
from desensitize.standards import fold

_PLUS = "[+\uff0b]"
_MOBILE = (
    "(?:(?:" + _PLUS + "|[0０]{2})?[8８][6６]" + SEP + "?)?[1１][3-9３-９]" + D
    + SEP + "?" + D + "{4}" + SEP + "?" + D + "{4}"
)
_LANDLINE = (
    "(?:[(（][0０]" + D + "{2,3}[)）][ \\-－—]?|[0０]" + D + "{2,3}[ \\-－—]?)[2-9２-９]" + D
    + "{6,7}(?:(?:-|转|－)" + D + "{1,5})?"
)
_D_RE2 = "[0-9\uff10-\uff19]"


def is_valid_mobile(value: str) -> bool:
    """11 digits (country code removed) with an allocated three-digit prefix."""
    digits = re.sub(r"[^0-9]", "", fold(value))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    if len(digits) != 11:
        return False
    return digits[:3] in words("mobile_prefixes.txt")


def is_valid_landline(value: str) -> bool:
    """An allocated area code followed by a 7-8 digit local number."""
    main = re.split(r"转|(?<=\d{7})[-－](?=\d{1,5}$)", fold(value).strip())[0]
    digits = re.sub(r"[^0-9]", "", main)
    codes = area_codes()
    for width in (3, 4):
        code, local = digits[:width], digits[width:]
        if code in codes and 7 <= len(local) <= 8 and local[0] in "23456789":
            return True
    return False


def is_valid_phone(value: str) -> bool:
    """Either a mobile or a landline number."""
    v = fold(value).strip()
    return is_valid_landline(v) if v.lstrip("(（").startswith("0") and not v.startswith("00") else is_valid_mobile(v)


class PhoneRecognizer(ChinesePatternRecognizer):
    """Mainland mobile numbers (prefix table) and landlines with a real area code."""

    ENTITY = "PHONE_NUMBER"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("mobile", "(?<![0-9A-Za-z+\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\uff0b])" + _MOBILE + BOUND_R, 0.7),
        ("landline", "(?<![0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a])" + _LANDLINE + BOUND_R, 0.6),
    )
    COLUMN_PATTERN = (
        "^(?:(?:[+\uff0b]|[0\uff10]{2})?[8\uff18][6\uff16]" + SEP_RE2 + "?)?[1\uff11][3-9\uff13-\uff19]"
        + _D_RE2 + SEP_RE2 + "?" + _D_RE2 + "{4}" + SEP_RE2 + "?" + _D_RE2 + "{4}$"
        "|^(?:[(（][0\uff10]" + _D_RE2 + "{2,3}[)）][ \\-－—]?|[0\uff10]" + _D_RE2 + "{2,3}[ \\-－—]?)"
        "[2-9\uff12-\uff19]" + _D_RE2 + "{6,7}(?:(?:[-－]|转)" + _D_RE2 + "{1,5})?$"
    )

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_phone(value)
