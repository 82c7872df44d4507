"""EMAIL_ADDRESS — mailbox addresses (RFC 5321 ``local-part@domain``, the common
unquoted subset).  The top-level domain is checked for shape only: no public-suffix
download (tldextract) happens, so the recognizer works offline.
"""

from __future__ import annotations

import re
from typing import ClassVar

from desensitize.recognizers._base import ChinesePatternRecognizer

_LOCAL = r"[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
_EMAIL = _LOCAL + "@" + _DOMAIN


def is_valid_email(value: str) -> bool:
    """Unquoted local part without ``..``, dotted domain with an alphabetic TLD."""
    v = value.strip()
    return bool(re.fullmatch(_EMAIL, v)) and ".." not in v and len(v) <= 254


class EmailRecognizer(ChinesePatternRecognizer):
    """E-mail addresses, validated offline."""

    ENTITY = "EMAIL_ADDRESS"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("email", r"(?<![A-Za-z0-9._%+-])" + _EMAIL + r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])", 0.85),
    )
    COLUMN_PATTERN = "^" + _EMAIL + "$"

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_email(value)
