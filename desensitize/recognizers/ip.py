"""IP_ADDRESS — IPv4 dotted quads (RFC 791, no leading zeros) and IPv6 addresses
(RFC 4291 text forms, validated with :mod:`ipaddress`).  Version strings such as
``v1.2.3.4`` and longer dotted numbers are excluded by the boundaries.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from desensitize.recognizers._base import ChinesePatternRecognizer

_V4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_V6 = r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?|::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})"

# Not inside a longer colon-separated run; a label's colon next to the address is no part
# of it (``IP:fe80::1``, ``fe80::1:`` then text; a full-width ``：`` reads as ``:``).
_V6_LEFT = r"(?<![0-9A-Za-z])(?<!(?<![0-9A-Za-z])[0-9A-Fa-f]{1,4}:)(?<!::)"
_V6_RIGHT = r"(?![0-9A-Za-z]|:[0-9A-Fa-f:])"


def is_valid_ip(value: str) -> bool:
    """A parseable IPv4 (no leading zeros) or IPv6 address; not the unspecified ``::``."""
    v = value.strip()
    try:
        addr = ipaddress.ip_address(v)
    except ValueError:
        return False
    if addr.version == 4:
        return all(p == "0" or not p.startswith("0") for p in v.split("."))
    return v != "::" and sum(c.isalnum() for c in v) >= 2


class IpAddressRecognizer(ChinesePatternRecognizer):
    """IPv4 and IPv6 addresses."""

    ENTITY = "IP_ADDRESS"
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = (
        ("ipv4", r"(?<![0-9A-Za-z.])" + _V4 + r"(?![0-9A-Za-z]|\.\d)", 0.75),
        ("ipv6", _V6_LEFT + "(?:" + _V6 + ")" + _V6_RIGHT, 0.8),
    )
    COLUMN_PATTERN = "^(?:" + _V4 + "|" + _V6 + ")$"

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return is_valid_ip(value)
