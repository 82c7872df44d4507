"""Recognizers of Chinese personal information, one module per family.

``build_recognizers()`` returns fresh instances of every recognizer; ``STRUCTURED``
lists the pattern recognizers whose whole-cell patterns and validators the table
scanner runs on Arrow columns.
"""

from __future__ import annotations

from desensitize.recognizers._base import ChinesePatternRecognizer
from desensitize.recognizers.bank_card import BankCardRecognizer
from desensitize.recognizers.email import EmailRecognizer
from desensitize.recognizers.ip import IpAddressRecognizer
from desensitize.recognizers.location import ChineseAddressRecognizer
from desensitize.recognizers.passport import PassportRecognizer
from desensitize.recognizers.person import ChinesePersonRecognizer
from desensitize.recognizers.phone import PhoneRecognizer
from desensitize.recognizers.plate import LicensePlateRecognizer
from desensitize.recognizers.resident_id import ResidentIdRecognizer
from desensitize.recognizers.uscc import UsccRecognizer

# Order is the tie-break when one span is valid for two entities: the stricter
# validator first (a resident ID also passes Luhn one time in ten).
STRUCTURED: tuple[type[ChinesePatternRecognizer], ...] = (
    ResidentIdRecognizer,
    UsccRecognizer,
    BankCardRecognizer,
    PhoneRecognizer,
    LicensePlateRecognizer,
    PassportRecognizer,
    EmailRecognizer,
    IpAddressRecognizer,
)

PRIORITY: tuple[str, ...] = tuple(r.ENTITY for r in STRUCTURED) + ("PERSON", "LOCATION")


def build_recognizers() -> list[object]:
    """One instance of every recognizer (structured ones first)."""
    return [cls() for cls in STRUCTURED] + [ChinesePersonRecognizer(), ChineseAddressRecognizer()]


__all__ = [
    "PRIORITY",
    "STRUCTURED",
    "BankCardRecognizer",
    "ChineseAddressRecognizer",
    "ChinesePatternRecognizer",
    "ChinesePersonRecognizer",
    "EmailRecognizer",
    "IpAddressRecognizer",
    "LicensePlateRecognizer",
    "PassportRecognizer",
    "PhoneRecognizer",
    "ResidentIdRecognizer",
    "UsccRecognizer",
    "build_recognizers",
]
