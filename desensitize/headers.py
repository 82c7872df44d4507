"""Column-header hints: which entity or quasi-identifier a header suggests.

Government exports name columns in Chinese (姓名), English (name) or pinyin initials
(XM).  A hint is only a prior: the table scanner never types a column from its header
alone (see :mod:`desensitize.classify`).  Table: ``data/header_hints.tsv``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from desensitize.recognizers._tables import mapping

_STRIP = re.compile(r"[\s_\-./()（）:：#]+")


@dataclass(frozen=True, slots=True)
class HeaderHint:
    """What a header suggests: an entity name or a quasi-identifier kind, or neither."""

    entity: str | None = None
    quasi_identifier: str | None = None


# Cyrillic and Greek letters drawn like Latin ones: ``nаme`` with a Cyrillic ``а`` is
# ``name`` to a reader, so it is ``name`` to the hints too.
_LOOKALIKE = str.maketrans(
    "АВЕЅІЈКМНОРСТХУаеѕіјорсхуԁһӏԛԝүΑΒΕΖΗΙΚΜΝΟΡΤΥΧαιοκνρτυχ",
    "ABESIJKMHOPCTXYaesijopcxydhlqwyABEZHIKMNOPTYXaiokvptux",
)


def normalize(header: str) -> str:
    """Lower case without spaces, underscores, hyphens, dots and brackets — after NFKC
    (full-width ``ｎａｍｅ`` is ``name``), without characters that print as nothing (a
    zero-width space or soft hyphen inside ``姓名``) and with Latin lookalikes read as
    Latin: a header written to dodge its hint still gets it."""
    folded = unicodedata.normalize("NFKC", header).translate(_LOOKALIKE)
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    return _STRIP.sub("", visible).lower()


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    exact: dict[str, str] = {}
    han: list[tuple[str, str]] = []
    for target, names in mapping("header_hints.tsv").items():
        for name in names:
            key = normalize(name)
            exact.setdefault(key, target)
            if any("\u4e00" <= c <= "\u9fff" for c in key) and len(key) >= 2:
                han.append((key, target))
    han.sort(key=lambda kv: len(kv[0]), reverse=True)
    return exact, tuple(han)


def _target(header: str) -> str | None:
    key = normalize(header)
    if not key:
        return None
    exact, han = _table()
    if key in exact:
        return exact[key]
    # Chinese compounds put the head noun last: 联系人电话 is a phone, 法人身份证号 an ID
    for name, target in han:
        if key.endswith(name):
            return target
    for name, target in han:
        if name in key:
            return target
    return None


@lru_cache(maxsize=4096)
def hint_for(header: str) -> HeaderHint:
    """The hint of one header (cached)."""
    target = _target(header)
    if target is None:
        return HeaderHint()
    if target.startswith("qi:"):
        return HeaderHint(quasi_identifier=target[3:])
    return HeaderHint(entity=target)
