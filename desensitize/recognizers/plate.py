"""CN_LICENSE_PLATE — motor vehicle plates, GA 36-2018.

Province abbreviation (``plate_regions.txt``) + issuing-authority letter (A-Z without
I and O) + serial:
- ordinary plates: 5 characters of digits and letters (no I/O), at most three letters,
  or 4 characters + 挂/学/警/港/澳/领/使;
- new-energy plates (6-character serial): small cars ``D``/``F`` + a digit or letter
  + 4 digits; large vehicles 5 digits + ``D``/``F``.
A separator (``·``, ``-``, space) after the authority letter is accepted.
"""

from __future__ import annotations

import re
from typing import ClassVar

from desensitize.recognizers._base import BOUND_R, ChinesePatternRecognizer
from desensitize.recognizers._tables import mapping

_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L = "A-HJ-NP-Z"
_SERIAL = (
    rf"(?:[DF][{_L}0-9]\d{{4}}|\d{{5}}[DF]|[{_L}0-9]{{5}}|[{_L}0-9]{{4}}[挂学警港澳领使])"
)
_PLATE = rf"[{_PROVINCES}][{_L}][·・\- ]?{_SERIAL}"


def is_valid_plate(value: str) -> bool:
    """Known province, authority letter, and a serial of the GA 36-2018 shapes."""
    v = re.sub(r"[·・\- ]", "", value.strip())
    regions = mapping("plate_regions.txt")
    if len(v) not in (7, 8) or v[0] not in regions or not ("A" <= v[1] <= "Z") or v[1] in "IO":
        return False
    serial = v[2:]
    if any(c in "IO" for c in serial):
        return False
    if len(serial) == 6:  # new-energy
        return bool(re.fullmatch(rf"[DF][{_L}0-9]\d{{4}}|\d{{5}}[DF]", serial))
    letters = sum(c.isascii() and c.isalpha() for c in serial)
    digits = sum(c.isdigit() for c in serial)
    return letters <= 3 and digits >= 2


class LicensePlateRecognizer(ChinesePatternRecognizer):
    """GA 36-2018 plates, ordinary and new-energy."""

    ENTITY = "CN_LICENSE_PLATE"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("ga36", r"(?<![A-Za-z0-9])" + _PLATE + BOUND_R, 0.65),
    )
    COLUMN_PATTERN = "^" + _PLATE + "$"

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_plate(value)
