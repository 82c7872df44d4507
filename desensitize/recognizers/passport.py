"""CN_PASSPORT — People's Republic of China passports (ordinary passports issued by
the National Immigration Administration): ``E`` + 8 digits, ``E`` + a letter (not I/O)
+ 7 digits (from 2017), and the older ``G`` + 8 digits.  No check digit exists in the
printed number, so matches keep a middling score that context words raise.
"""

from __future__ import annotations

import re
from typing import ClassVar

from desensitize.recognizers._base import BOUND_L, BOUND_R, ChinesePatternRecognizer

_PASSPORT = r"(?:E[A-HJ-NP-Z0-9]\d{7}|G\d{8})"


def is_valid_passport(value: str) -> bool:
    """One of the three printed shapes; not a run of one repeated digit."""
    v = value.strip()
    if not re.fullmatch(_PASSPORT, v):
        return False
    return len(set(v[2:])) > 1


class PassportRecognizer(ChinesePatternRecognizer):
    """PRC ordinary passport numbers."""

    ENTITY = "CN_PASSPORT"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("prc_passport", BOUND_L + _PASSPORT + BOUND_R, 0.55),
    )
    COLUMN_PATTERN = "^" + _PASSPORT + "$"

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_passport(value)
