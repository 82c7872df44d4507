"""Recognizers of Chinese personal information, one module per family.

``build_recognizers()`` returns fresh instances of every recognizer; ``STRUCTURED``
lists the pattern recognizers whose whole-cell patterns and validators the table
scanner runs on Arrow columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desensitize.recognizers._base import ChinesePatternRecognizer
from desensitize.recognizers.bank_card import BankCardRecognizer
from desensitize.recognizers.email import EmailRecognizer
from desensitize.recognizers.ip import IpAddressRecognizer
from desensitize.recognizers.location import ChineseAddressRecognizer
from desensitize.recognizers.passport import PassportRecognizer
from desensitize.recognizers.phone import PhoneRecognizer
from desensitize.recognizers.plate import LicensePlateRecognizer
from desensitize.recognizers.resident_id import ResidentIdRecognizer
from desensitize.recognizers.uscc import UsccRecognizer

if TYPE_CHECKING:
    from desensitize.recognizers.person import ChinesePersonRecognizer

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
    from desensitize.recognizers.person import ChinesePersonRecognizer

    return [cls() for cls in STRUCTURED] + [ChinesePersonRecognizer(), ChineseAddressRecognizer()]


def __getattr__(name: str) -> object:
    # The person recognizer is built on desensitize.name_candidates, which reads this
    # package's data tables: imported here eagerly, importing name_candidates first
    # would be circular.
    if name == "ChinesePersonRecognizer":
        from desensitize.recognizers.person import ChinesePersonRecognizer

        return ChinesePersonRecognizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
