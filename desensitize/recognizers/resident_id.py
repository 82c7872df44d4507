"""CN_RESIDENT_ID — citizen identity number, GB 11643-1999.

18 characters: 6-digit address code (GB/T 2260; the first two digits must be a real
province-level code), 8-digit birth date (a real calendar date, not in the future),
3-digit sequence, and an ISO 7064 MOD 11-2 check character (``0-9`` or ``X``).
The 15-digit numbers issued before 1999 (``YYMMDD`` birth date, no check character)
are matched at a low score that needs context words to be reported.

Written forms: plain, grouped ``6-8-4``, ``6-8-3-1`` or ``6-4-4-4`` by separators of up to three
characters (``370104-19460313-0991``, ``370104 19460313 0991``, dots, and every other separator
of :data:`~desensitize.standards.SEPARATORS`; each gap may be written its own way, as in
``370104-19460313 0991``), full-width digits
(``３７０１…``) and a lower-case ``x``.

Confidence: a valid number whose address code is in the GB/T 2260 county table
(``data/area_codes_gb2260.tsv``, current and retired codes, since old cards keep the
code of their day) scores 1.0; one whose county code is in no list keeps the pattern
score and needs context words, like the 15-digit form.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import ClassVar

from desensitize.recognizers._base import (
    BOUND_L,
    BOUND_R,
    SEP,
    SEP_RE2,
    ChinesePatternRecognizer,
    D,
)
from desensitize.standards import Division, compact, division, gb11643_check, provinces

_X = "[0-9\uff10-\uff19Xx\uff38\uff58]"
_P = "[1-8\uff11-\uff18]"
_D_RE2 = "[0-9\uff10-\uff19]"
# between two groups: up to three separator characters (``370102 - 19500101 - 0003``),
# each gap its own (a clerk's ``370102-19500101 0003``); inside the birth date, after the
# year, one (``370102 1950 0101 0003``)
_GAP = SEP + "{0,3}"
_GAP_YEAR = SEP + "?"
_GAP_RE2 = SEP_RE2 + "{0,3}"
# around a whole cell: up to three marks that are no letter or digit — a spreadsheet's
# text mark (``'``), its formula form (``="…"``), brackets, quotes, ``#`` — and before
# it a short label
_NOT_ALNUM = "[^0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]"
_MARKS_RE2 = _NOT_ALNUM + "{0,3}"
_LABEL_RE2 = "[^0-9\uff10-\uff19]{0,3}"  # before it, letters too (``ID:``, ``No.``)
_MARKS = re.compile(r"^[^0-9]{1,3}|[^0-9A-Z]{1,3}$")


def check_character(body: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return gb11643_check(body)


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        born = _dt.date(year, month, day)
    except ValueError:
        return False
    return _dt.date(1900, 1, 1) <= born <= _dt.date.today()


def is_valid_id(value: str) -> bool:
    """GB 11643: province code, real birth date and (18 digits) the check character.

    Any written form (separators, full-width digits, lower-case ``x``) is accepted, and a
    few marks around it (``'370102…``, ``="370102…"``, ``[370102…]``)."""
    v = _MARKS.sub("", compact(value))
    if not v.isascii() or v[:2] not in provinces():
        return False
    if len(v) == 18 and v[:17].isdigit() and (v[17].isdigit() or v[17] == "X"):
        if not _real_date(int(v[6:10]), int(v[10:12]), int(v[12:14])):
            return False
        return gb11643_check(v[:17]) == v[17]
    if len(v) == 15 and v.isdigit():
        return _real_date(1900 + int(v[6:8]), int(v[8:10]), int(v[10:12]))
    return False


def county_known(value: str) -> bool:
    """Whether the address code of an ID number is a GB/T 2260 county code (any era)."""
    return division(compact(value)[:6]) is Division.COUNTY


class ResidentIdRecognizer(ChinesePatternRecognizer):
    """GB 11643 resident identity numbers (18 digits with check character; legacy 15)."""

    ENTITY = "CN_RESIDENT_ID"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        # groups 6-8-4, 6-8-3-1 or 6-4-4-4, each gap written its own way (``110101-19900307 7571``)
        ("gb11643_18", BOUND_L + _P + D + "{5}" + _GAP + D + "{4}" + _GAP_YEAR + D + "{4}" + _GAP
         + D + "{3}" + _GAP + _X + BOUND_R, 0.5),
        ("gb11643_15", BOUND_L + _P + D + "{5}" + _GAP + D + "{6}" + _GAP + D + "{3}" + BOUND_R, 0.3),
    )
    # a whole cell is one number whatever its grouping: separators between any digits
    COLUMN_PATTERN = (
        "^" + _LABEL_RE2 + "(?:"
        + _P + "(?:" + _GAP_RE2 + _D_RE2 + "){16}" + _GAP_RE2 + "[0-9\uff10-\uff19Xx\uff38\uff58]"
        + "|" + _P + "(?:" + _GAP_RE2 + _D_RE2 + "){14}"
        + ")" + _MARKS_RE2 + "$"
    )
    CHECKSUM = True

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_id(value)

    def validate_result(self, pattern_text: str) -> bool | None:
        if not is_valid_id(pattern_text):
            return False
        # only the 18-character form carries a check character; an address code that no
        # GB/T 2260 list ever held leaves the pattern score (context words must confirm)
        if len(compact(pattern_text)) == 18 and county_known(pattern_text):
            return True
        return None
