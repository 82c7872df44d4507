"""CN_RESIDENT_ID — citizen identity number, GB 11643-1999.

18 characters: 6-digit address code (GB/T 2260; the first two digits must be a real
province-level code), 8-digit birth date (a real calendar date, not in the future),
3-digit sequence, and an ISO 7064 MOD 11-2 check character (``0-9`` or ``X``).
The 15-digit numbers issued before 1999 (``YYMMDD`` birth date, no check character)
are matched at a low score that needs context words to be reported.
"""

from __future__ import annotations

import datetime as _dt
from typing import ClassVar

from desensitize.recognizers._base import BOUND_L, BOUND_R, ChinesePatternRecognizer
from desensitize.recognizers._tables import mapping

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"


def check_character(body: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return _CHECK[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        born = _dt.date(year, month, day)
    except ValueError:
        return False
    return _dt.date(1900, 1, 1) <= born <= _dt.date.today()


def is_valid_id(value: str) -> bool:
    """GB 11643: province code, real birth date and (18 digits) the check character."""
    v = value.strip().upper()
    provinces = mapping("province_codes.txt")
    if v[:2] not in provinces:
        return False
    if len(v) == 18 and v[:17].isdigit() and (v[17].isdigit() or v[17] == "X"):
        if not _real_date(int(v[6:10]), int(v[10:12]), int(v[12:14])):
            return False
        return check_character(v[:17]) == v[17]
    if len(v) == 15 and v.isdigit():
        return _real_date(1900 + int(v[6:8]), int(v[8:10]), int(v[10:12]))
    return False


class ResidentIdRecognizer(ChinesePatternRecognizer):
    """GB 11643 resident identity numbers (18 digits with check character; legacy 15)."""

    ENTITY = "CN_RESIDENT_ID"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("gb11643_18", BOUND_L + r"[1-8]\d{5}(?:18|19|20)\d{2}" + _DATE + r"\d{3}[0-9Xx]" + BOUND_R, 0.5),
        ("gb11643_15", BOUND_L + r"[1-8]\d{7}" + _DATE + r"\d{3}" + BOUND_R, 0.3),
    )
    COLUMN_PATTERN = r"^[1-8]\d{5}(?:(?:18|19|20)\d{2}\d{4}\d{3}[0-9Xx]|\d{2}\d{4}\d{3})$"
    CHECKSUM = True

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_id(value)

    def validate_result(self, pattern_text: str) -> bool | None:
        if not is_valid_id(pattern_text):
            return False
        # only the 18-character form carries a check character
        return True if len(pattern_text.strip()) == 18 else None
