"""CN_BANK_CARD — payment card numbers (ISO/IEC 7812): 16 to 19 digits with the Luhn
check digit, written plain or grouped by four with separators (space, hyphen, dot; each gap
its own, as in ``6222 0212-3456 7890 128``), in ASCII or full-width digits.

UnionPay numbers (IIN ``62``) score higher than other issuers; a Luhn pass is one in
ten for random digits, so these keep their pattern score and rely on context words.
An ID-shaped number after a resident-ID cue (``身份证号``) is never a card: it is a
mistyped ID (:class:`~desensitize.recognizers._base.NotAnIdRecognizer`).
"""

from __future__ import annotations

from typing import ClassVar

from desensitize.recognizers._base import (
    BOUND_L,
    BOUND_R,
    SEP,
    SEP_RE2,
    D,
    NotAnIdRecognizer,
)
from desensitize.standards import SEPARATORS, compact, fold, luhn_ok

__all__ = ["BankCardRecognizer", "is_valid_card", "luhn_ok"]

# first group of four is written by each pattern; each gap between groups is written its
# own way (``6222 0212-3456 7890 128``)
_REST = SEP + "?" + D + "{4}" + SEP + "?" + D + "{4}" + SEP + "?" + D + "{4}(?:" + SEP + "?" + D + "{1,3})?"
_D_RE2 = "[0-9\uff10-\uff19]"
_SEPARATORS = frozenset(SEPARATORS)


def is_valid_card(value: str) -> bool:
    """16-19 digits after removing the separators, issuer digit 3-6 or 8-9, Luhn."""
    v = fold(value).strip()
    if not {c for c in v if not c.isdigit()} <= _SEPARATORS:
        return False
    digits = compact(v)
    if not (16 <= len(digits) <= 19) or not digits.isascii() or not digits.isdigit():
        return False
    if digits[0] in "0127" or len(set(digits)) <= 2:
        return False
    return luhn_ok(digits)


class BankCardRecognizer(NotAnIdRecognizer):
    """Luhn-checked bank card numbers, 16-19 digits, optional four-digit grouping."""

    ENTITY = "CN_BANK_CARD"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("unionpay", BOUND_L + "[6\uff16][2\uff12]" + D + "{2}" + _REST + BOUND_R, 0.7),
        ("card", BOUND_L + "[3-689\uff13-\uff16\uff18\uff19]" + D + "{3}" + _REST + BOUND_R, 0.55),
    )
    COLUMN_PATTERN = (
        "^[3-689\uff13-\uff16\uff18\uff19]" + _D_RE2 + "{3}(?:" + SEP_RE2 + "?" + _D_RE2 + "{4}){2}"
        + SEP_RE2 + "?" + _D_RE2 + "{4}(?:" + SEP_RE2 + "?" + _D_RE2 + "{1,3})?$"
    )

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_card(value)
