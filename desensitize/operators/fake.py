"""``fake``: a realistic Faker ``zh_CN`` surrogate chosen by a keyed hash.

The surrogate of a value is a function of (key, entity, value): the same person
gets the same fake name in every file, a different key gives different fakes.
Names are drawn from Faker zh_CN's own surname (frequency-weighted) and given-name
tables by the digest; addresses and e-mail user names come from a pool of ``POOL``
Faker draws (slot = HMAC mod POOL, the slot's Faker seeded from the key), so the
cost is one HMAC per distinct value plus at most POOL Faker calls.  Identifiers are built from the HMAC digest
so they stay (nearly) unique and well-formed: ID numbers carry a real province,
a real date and a correct check character; bank cards pass Luhn; USCCs pass mod 31.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desensitize.operators._base import OpContext, Operator
from desensitize.operators.crypto import hmac_many, per_distinct
from desensitize.operators.fpe import (
    DATE_FIRST,
    DAYS,
    USCC_ALPHABET,
    id_check_char,
    luhn_digit,
    provinces,
    uscc_check_char,
)

if TYPE_CHECKING:
    import pyarrow as pa
else:  # loaded on first use: declaring an operator needs no Arrow
    from desensitize.operators._libs import pa

POOL = 1 << 14
_PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_MOBILE_FALLBACK = "130 131 132 133 135 136 137 138 139 150 151 152 155 156 157 158 159 186 187 188 189"


@lru_cache(maxsize=1)
def _faker() -> Any:
    from faker import Faker

    return Faker("zh_CN")


@lru_cache(maxsize=1)
def mobile_prefixes() -> tuple[str, ...]:
    path = Path(__file__).resolve().parent.parent / "data" / "mobile_prefixes.txt"
    found: list[str] = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            found += [w for w in line.split("#", 1)[0].split() if len(w) == 3 and w.isdigit()]
    return tuple(sorted(set(found))) or tuple(_MOBILE_FALLBACK.split())


class _Pool:
    """Lazily filled Faker draws for one (key, entity)."""

    def __init__(self, seed: int, make: Callable[[Any], str]) -> None:
        self._seed = seed
        self._make = make
        self._slots: dict[int, str] = {}

    def get(self, slot: int) -> str:
        value = self._slots.get(slot)
        if value is None:
            faker = _faker()
            faker.seed_instance(self._seed ^ (slot * 0x9E3779B1))
            value = self._make(faker)
            self._slots[slot] = value
        return value


@lru_cache(maxsize=16)
def _pool(seed: int, entity: str | None) -> _Pool:
    # cached per (key-derived seed, entity) so batches share the filled slots
    return _Pool(seed, POOLED.get(entity, POOLED[None]))


def _address(faker: Any) -> str:
    return f"{faker.province()}{faker.city()}{faker.district()}区{faker.street_address()}"


def _num(digest: bytes, start: int, digits: int) -> str:
    value = int.from_bytes(digest[start : start + 8], "big") % 10**digits
    return f"{value:0{digits}d}"


def _resident_id(d: bytes) -> str:
    provs = provinces()
    born = DATE_FIRST + timedelta(days=int.from_bytes(d[4:8], "big") % DAYS)
    body = f"{provs[d[0] % len(provs)]}{_num(d, 8, 4)}{born:%Y%m%d}{_num(d, 16, 3)}"
    return body + id_check_char(body)


def _phone(d: bytes) -> str:
    prefixes = mobile_prefixes()
    return prefixes[d[0] % len(prefixes)] + _num(d, 8, 8)


def _card(d: bytes) -> str:
    body = "622202" + _num(d, 8, 9)
    return body + luhn_digit(body)


def _uscc(d: bytes) -> str:
    body = "91" + "3701" + _num(d, 4, 2) + "".join(USCC_ALPHABET[b % 31] for b in d[12:21])
    return body + uscc_check_char(body)


def _plate(d: bytes) -> str:
    tail = "".join("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"[b % 34] for b in d[3:8])
    return _PLATE_PROVINCES[d[0] % len(_PLATE_PROVINCES)] + _PLATE_LETTERS[d[1] % 24] + tail


@lru_cache(maxsize=1)
def _name_tables() -> tuple[list[str], list[float], list[str]]:
    from faker.providers.person.zh_CN import Provider

    last = list(Provider.last_names)
    weights = list(itertools.accumulate(Provider.last_names.values()))
    return last, weights, list(Provider.first_names)


def _person(d: bytes) -> str:
    # Faker zh_CN's own tables and format ({{last_name}}{{first_name}}), surnames
    # drawn by their frequency weights, the draw taken from the keyed digest
    last, weights, first = _name_tables()
    u = int.from_bytes(d[:6], "big") / 2**48 * weights[-1]
    name = last[min(bisect.bisect_right(weights, u), len(last) - 1)] + first[d[6] % len(first)]
    if len(name) == 2 and d[7] % 2:
        name += first[d[8] % len(first)][0]
    return name


STRUCTURED: dict[str, Callable[[bytes], str]] = {
    "PERSON": _person,
    "CN_RESIDENT_ID": _resident_id,
    "PHONE_NUMBER": _phone,
    "CN_BANK_CARD": _card,
    "CN_USCC": _uscc,
    "CN_LICENSE_PLATE": _plate,
    "CN_PASSPORT": lambda d: "E" + _num(d, 8, 8),
    "IP_ADDRESS": lambda d: f"10.{d[0]}.{d[1]}.{d[2] or 1}",
}

POOLED: dict[str | None, Callable[[Any], str]] = {
    "LOCATION": _address,
    "EMAIL_ADDRESS": lambda f: f.user_name(),
    None: lambda f: f.word(),
}


def _fake(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    entity = ctx.entity
    key = ctx.key("fake")
    tag = (entity or "").encode() + b"\x00"
    if entity in STRUCTURED:
        make = STRUCTURED[entity]

        def run(items: list[str]) -> list[str]:
            return [make(d) for d in hmac_many(key, [tag + v.encode() for v in items])]

        return per_distinct(values, run)
    pool = _pool(int.from_bytes(hmac_many(key, [tag])[0][:8], "big"), entity)

    def run_pooled(items: list[str]) -> list[str]:
        out = []
        for d in hmac_many(key, [tag + v.encode() for v in items]):
            fake = pool.get(int.from_bytes(d[:4], "big") % POOL)
            if entity == "EMAIL_ADDRESS":
                fake = f"{fake}{d[4:6].hex()}@example.cn"
            out.append(fake)
        return out

    return per_distinct(values, run_pooled)


FAKE = Operator(
    "fake",
    "Deterministic Faker zh_CN surrogate (same value and key → same fake).",
    _fake,
    keyed=True,
)
