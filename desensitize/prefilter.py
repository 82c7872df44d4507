"""A fast, conservative test: could this text hold any entity the text scanner finds?

Running the full scanner (Presidio, jieba, every recognizer) costs about a millisecond a
text; most short free texts in audit events ("monthly report", "资格核验") hold nothing.
``could_hold_pii(text)`` is False only when no recognizer can match, because every one
of them needs at least one of these characters:

* a digit (ASCII, full-width or any Unicode digit): resident ID, bank card, USCC, phone,
  passport, licence plate, IPv4, house numbers;
* ``@`` / ``＠``: e-mail; ``:``: IPv6 (``::1``, ``fe80::``), or ``：`` next to ``：`` or a
  hex letter (``ｆｅ：：ａｂ``: the scanner folds full-width forms);
* a surname character (``surnames.txt``, every character of ``surnames_compound.txt``)
  or a name dot (``·•・``): PERSON;
* a character of an address term (``address_terms.tsv``): LOCATION.

False negatives are impossible by construction as long as the recognizers keep these
needs (a test checks the scanner finds nothing in texts the filter rejects); false
positives only cost the full scan.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

__all__ = ["could_hold_pii"]


def _table(name: str) -> str:
    text = resources.files("desensitize").joinpath("data", name).read_text(encoding="utf-8")
    return "\n".join(ln.split("\t", 1)[-1] for ln in text.splitlines()
                     if ln.strip() and not ln.lstrip().startswith("#"))


@cache
def _pattern() -> re.Pattern[str]:
    chars = set(_table("surnames.txt") + _table("surnames_compound.txt")
                + _table("address_terms.tsv"))
    chars -= set(" \t\r\n")
    cls = "".join(sorted(re.escape(c) for c in chars))
    # a full-width colon only next to a colon or a hex letter (``ｆｅ：：ａｂ``): a label's
    # colon (姓名：) alone holds nothing
    return re.compile(rf"[\d０-９@＠:·•・{cls}]|：[：:A-Fa-fＡ-Ｆａ-ｆ]|[A-Fa-fＡ-Ｆａ-ｆ]：")


def could_hold_pii(text: str) -> bool:
    """False only when the text cannot hold any entity the scanner reports."""
    return _pattern().search(text) is not None
