"""CN_BANK_CARD — payment card numbers (ISO/IEC 7812): 16 to 19 digits with the Luhn
check digit, written plain or grouped by four with spaces or hyphens.

UnionPay numbers (IIN ``62``) score higher than other issuers; a Luhn pass is one in
ten for random digits, so these keep their pattern score and rely on context words.
"""

from __future__ import annotations

import re
from typing import ClassVar

from desensitize.recognizers._base import BOUND_L, BOUND_R, ChinesePatternRecognizer

# first group of four is written by each pattern; a single separator is reused (\1)
_REST = r"([ -]?)\d{4}\1\d{4}\1\d{4}(?:\1?\d{1,3})?"


def luhn_ok(digits: str) -> bool:
    """ISO/IEC 7812 Luhn check over a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_valid_card(value: str) -> bool:
    """16-19 digits after removing one consistent separator, issuer digit 3-6 or 8-9, Luhn."""
    v = value.strip()
    seps = {c for c in v if not c.isdigit()}
    if len(seps) > 1 or (seps and seps - {" ", "-"}):
        return False
    digits = re.sub(r"[ -]", "", v)
    if not (16 <= len(digits) <= 19) or not digits.isdigit() or digits[0] in "0127":
        return False
    if len(set(digits)) <= 2:
        return False
    return luhn_ok(digits)


class BankCardRecognizer(ChinesePatternRecognizer):
    """Luhn-checked bank card numbers, 16-19 digits, optional four-digit grouping."""

    ENTITY = "CN_BANK_CARD"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("unionpay", BOUND_L + r"62\d{2}" + _REST + BOUND_R, 0.7),
        ("card", BOUND_L + r"[3-689]\d{3}" + _REST + BOUND_R, 0.55),
    )
    COLUMN_PATTERN = r"^[3-689]\d{3}(?:[ -]?\d{4}){2}[ -]?\d{4}(?:[ -]?\d{1,3})?$"

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_card(value)
