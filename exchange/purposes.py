"""The one written form of a purpose (用途), used wherever two purposes are compared.

A consumer states the purpose of a request as free text; a provider records consent per
purpose; an officer lists purposes in a rule (``conditions: {purposes: [营销]}``). Compared
byte for byte, ``营销 ``, ``营销\\u3000`` or ``营\\u200b销`` would be another purpose than
``营销`` and slip past a withdrawal or a deny rule. Every comparison therefore goes through
:func:`normalise_purpose` (the consent registry here, the policy engine in ``quanguard``):

1. NFKC: full-width letters, digits and ``＊`` become ``a``, ``1`` and ``*``; the
   ideographic and no-break spaces become spaces; compatibility ideographs unify.
2. Invisible characters are removed: format characters (category Cf: zero-width space and
   joiners, byte-order mark, soft hyphen, direction marks), control characters other than
   whitespace (Cc) and the other default-ignorable code points (variation selectors, the
   combining grapheme joiner, Hangul fillers; Unicode ``Default_Ignorable_Code_Point``).
3. Case folding (then NFKC again, as Unicode's NFKC_Casefold does): ``Marketing`` and
   ``MARKETING`` are ``marketing``. Chinese text is unchanged.
4. Every run of whitespace becomes one space; the ends are trimmed.

What is left empty is no purpose: :func:`normalise_purpose` returns None. The form is not
a synonym table: ``营销`` and ``市场推广`` stay two purposes.
"""

from __future__ import annotations

import unicodedata

__all__ = ["ALL_PURPOSES", "normalise_purpose", "without_invisibles"]

ALL_PURPOSES = "*"

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt) outside category Cf,
# which is removed by category. Inclusive ranges.
_IGNORABLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x034F, 0x034F),    # combining grapheme joiner
    (0x115F, 0x1160),    # Hangul choseong / jungseong fillers
    (0x17B4, 0x17B5),    # Khmer inherent vowels
    (0x180B, 0x180F),    # Mongolian free variation selectors
    (0x3164, 0x3164),    # Hangul filler
    (0xFE00, 0xFE0F),    # variation selectors
    (0xFFA0, 0xFFA0),    # half-width Hangul filler
    (0xFFF0, 0xFFF8),    # unassigned specials
    (0xE0000, 0xE0FFF),  # tags, variation selectors supplement
)


def _invisible(ch: str) -> bool:
    category = unicodedata.category(ch)
    if category == "Cf" or (category == "Cc" and not ch.isspace()):
        return True
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _IGNORABLE_RANGES)


def without_invisibles(text: str) -> str:
    """``text`` without the characters a reader cannot see (step 2 above)."""
    if text.isascii() and text.isprintable():  # the common case, e.g. every dataset key
        return text
    return "".join(ch for ch in text if not _invisible(ch))


def normalise_purpose(purpose: str | None) -> str | None:
    """The written form two spellings of one purpose share, or None for no purpose
    (None, empty, or only whitespace and invisible characters). Idempotent."""
    if purpose is None:
        return None
    text = without_invisibles(unicodedata.normalize("NFKC", purpose))
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(text.split()) or None
