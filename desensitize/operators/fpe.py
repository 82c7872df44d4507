"""``fpe``: format-preserving encryption with FF1 (NIST SP 800-38G), reversible.

Formats:
    CN_RESIDENT_ID (GB 11643): the whole identity — province, the 4 further region
        digits, the birth date (1900-01-01..2025-12-31) and the sequence number — is
        ranked into one integer and encrypted in that domain (cycle walking), so the
        output has a real province code and a real birth date; the check character
        is recomputed, so the output validates as an ID number.
    CN_USCC (GB 32100): characters 9–17 (organisation code) are encrypted over the
        31-character code alphabet; the mod-31 check character is recomputed.
    CN_BANK_CARD: the BIN (first 6 digits) is kept, the middle digits encrypted and
        the Luhn digit recomputed; spaces stay where they were.
    anything else (PHONE_NUMBER, ...): digits are encrypted in place, the first
        ``keep_prefix`` digits kept (phones: the last 8 digits are encrypted), other
        characters untouched.
A domain under 1,000,000 values is refused (:class:`DomainTooSmall`).  With
``on_error: mask`` (or ``redact``) a value that does not fit is masked (emptied)
instead of failing the run; the default ``fail`` raises :class:`OperatorError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from desensitize.errors import DomainTooSmall, OperatorError
from desensitize.operators._base import OpContext, Operator, Param
from desensitize.operators.crypto import per_distinct
from desensitize.operators.ff1 import FF1
from desensitize.operators.fpe_id import DATE_FIRST, DATE_LAST, DAYS, ids_from_ranks, ranks_from_ids
from desensitize.standards import (
    USCC_ALPHABET,
    luhn_digit,
    provinces,
)
from desensitize.standards import (
    gb11643_check as id_check_char,
)
from desensitize.standards import (
    gb32100_check as uscc_check_char,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # loaded on first use: declaring an operator needs no Arrow
    from desensitize.operators._libs import pa, pc

# re-exported for the other operators (fake) and the tests: one definition, in standards
__all__ = [
    "DATE_FIRST", "DATE_LAST", "DAYS", "FPE", "USCC_ALPHABET", "id_check_char", "luhn_digit",
    "provinces", "uscc_check_char",
]


@lru_cache(maxsize=4)
def _id_domain(nprov: int) -> tuple[int, int]:
    """(domain size, radix) for the ID rank: 4 numerals of the smallest radix that covers it,
    so cycle walking almost never needs a second step."""
    domain = nprov * 10_000 * DAYS * 1000
    radix = round(domain**0.25)
    while radix**4 < domain:
        radix += 1
    return domain, radix


# A parsed value: (integer to encrypt, numerals, tweak, how to render the result)
Parsed = tuple[int, int, bytes, Callable[[int], str]]


def _parse_id(v: str) -> Parsed:
    v = v.upper()
    if len(v) != 18 or not v[:17].isdigit() or v[17] not in "0123456789X":
        raise ValueError("not an 18-character resident ID")
    provs = provinces()
    if v[:2] not in provs:
        raise ValueError("unknown province code")
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise ValueError("no valid birth date") from None
    if not DATE_FIRST <= born <= DATE_LAST:
        raise ValueError("birth date outside 1900..2025")
    rank = ((provs.index(v[:2]) * 10_000 + int(v[2:6])) * DAYS + (born - DATE_FIRST).days) * 1000
    return rank + int(v[14:17]), 4, b"ID", _render_id


def _render_id(rank: int) -> str:
    provs = provinces()
    rest, seq = divmod(rank, 1000)
    rest, day = divmod(rest, DAYS)
    prov, region = divmod(rest, 10_000)
    body = f"{provs[prov]}{region:04d}{(DATE_FIRST + timedelta(days=day)):%Y%m%d}{seq:03d}"
    return body + id_check_char(body)


def _parse_uscc(v: str) -> Parsed:
    v = v.upper()
    if len(v) != 18 or any(c not in USCC_ALPHABET for c in v):
        raise ValueError("not an 18-character USCC")
    value = 0
    for c in v[8:17]:
        value = value * 31 + USCC_ALPHABET.index(c)
    head = v[:8]

    def render(x: int) -> str:
        chars = []
        for _ in range(9):
            x, r = divmod(x, 31)
            chars.append(USCC_ALPHABET[r])
        body = head + "".join(reversed(chars))
        return body + uscc_check_char(body)

    return value, 9, head.encode(), render


def _parse_digits(v: str, keep: int, last: int | None, luhn: bool, tag: bytes) -> Parsed:
    pos = [i for i, c in enumerate(v) if c.isascii() and c.isdigit()]
    if luhn:
        if not 16 <= len(pos) <= 19:
            raise ValueError("not a 16-19 digit card number")
        work = pos[keep:-1]
    else:
        work = pos[keep:] if last is None else pos[max(keep, len(pos) - last):]
    if 10 ** len(work) < 1_000_000:
        raise DomainTooSmall(
            f"fpe: only {len(work)} digits to encrypt (domain 10^{len(work)} < 1,000,000); "
            "use hash or encrypt for this column"
        )
    first = work[0]
    kept = "".join(v[i] for i in pos if i < first)
    n = len(work)

    def render(x: int) -> str:
        chars = list(v)
        for i, dch in zip(work, f"{x:0{n}d}", strict=True):
            chars[i] = dch
        if luhn:
            chars[pos[-1]] = luhn_digit("".join(chars[i] for i in pos[:-1]))
        return "".join(chars)

    return int("".join(v[i] for i in work)), n, tag + kept.encode(), render


def _parser(params: Mapping[str, Any], entity: str | None) -> Callable[[str], Parsed]:
    if entity == "CN_RESIDENT_ID":
        return _parse_id
    if entity == "CN_USCC":
        return _parse_uscc
    keep = params["keep_prefix"]
    last = params["encrypt_last"]
    if entity == "CN_BANK_CARD":
        k = 6 if keep is None else keep
        return lambda v: _parse_digits(v, k, None, True, b"C")
    if entity == "PHONE_NUMBER" and last is None and keep is None:
        last = 8
    return lambda v: _parse_digits(v, keep or 0, last, False, b"D")


def _cipher_for(key: bytes, entity: str | None, block: str = "aes") -> tuple[FF1, int | None]:
    if entity == "CN_RESIDENT_ID":
        domain, radix = _id_domain(len(provinces()))
        return FF1(key, radix, block=block), domain
    return FF1(key, 31 if entity == "CN_USCC" else 10, block=block), None


def _block(ctx: OpContext, forced: str | None) -> str:
    """``ff1-sm4`` forces SM4; ``fpe`` follows the key's crypto suite (gm keys: SM4)."""
    if forced:
        return forced
    suite = getattr(ctx.keyring, "suite", None)
    return "sm4" if suite is not None and suite.fpe_alg == "ff1-sm4" else "aes"


def _run(values: pa.Array, params: Mapping[str, Any], ctx: OpContext, decrypt: bool,
         block: str | None = None) -> pa.Array:
    parse = _parser(params, ctx.entity)
    blk = _block(ctx, block)
    cipher, domain = _cipher_for(ctx.key("fpe-sm4" if blk == "sm4" else "fpe"), ctx.entity, blk)

    def run_ids(items: list[str]) -> list[str]:
        try:
            ranks = ranks_from_ids(items).tolist()
        except ValueError as exc:
            raise OperatorError(
                f"fpe: a value of column {ctx.column or '?'} cannot be encrypted as "
                f"CN_RESIDENT_ID: {exc}"
            ) from None
        return ids_from_ranks(_walk(cipher, ranks, 4, [b"ID"] * len(ranks), domain, decrypt))

    def run(items: list[str]) -> list[str]:
        parsed = []
        for v in items:
            try:
                parsed.append(parse(v))
            except ValueError as exc:
                raise OperatorError(
                    f"fpe: a value of column {ctx.column or '?'} cannot be encrypted as "
                    f"{ctx.entity or 'digits'}: {exc}"
                ) from None
        out: list[int] = [0] * len(parsed)
        by_len: dict[int, list[int]] = {}
        for j, p in enumerate(parsed):
            by_len.setdefault(p[1], []).append(j)
        for n, idx in by_len.items():
            vals = [parsed[j][0] for j in idx]
            tweaks = [parsed[j][2] for j in idx]
            res = _walk(cipher, vals, n, tweaks, domain, decrypt)
            for j, x in zip(idx, res, strict=True):
                out[j] = x
        return [p[3](x) for p, x in zip(parsed, out, strict=True)]

    return per_distinct(values, run_ids if ctx.entity == "CN_RESIDENT_ID" else run)


def _walk(cipher: FF1, vals: list[int], n: int, tweaks: list[bytes], domain: int | None,
          decrypt: bool) -> list[int]:
    """FF1 over ``vals``; with a ``domain``, cycle walking until each result is inside it."""
    res = cipher.crypt_many(vals, n, tweaks, decrypt=decrypt)
    if domain is not None:
        todo = [k for k, x in enumerate(res) if x >= domain]
        while todo:
            again = cipher.crypt_many([res[k] for k in todo], n, [tweaks[k] for k in todo],
                                      decrypt=decrypt)
            for k, x in zip(todo, again, strict=True):
                res[k] = x
            todo = [k for k in todo if res[k] >= domain]
    return res


def _fpe(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    return _tolerant(values, params, ctx, decrypt=False)


def _tolerant(values: pa.Array, params: Mapping[str, Any], ctx: OpContext, *, decrypt: bool,
              block: str | None = None) -> pa.Array:
    if params["on_error"] == "fail":
        return _run(values, params, ctx, decrypt, block)
    try:
        return _run(values, params, ctx, decrypt, block)
    except OperatorError:
        pass
    # some values do not fit the format: encrypt the ones that do, mask/redact the rest
    parse = _parser(params, ctx.entity)
    fits = []
    for v in values.to_pylist():
        try:
            parse(v)
            fits.append(True)
        except (ValueError, OperatorError):
            fits.append(False)
    ok = pa.array(fits, pa.bool_())
    bad = values.filter(pc.invert(ok))
    if decrypt:  # values masked instead of encrypted cannot be restored: leave them
        fallback = bad
    elif params["on_error"] == "mask":
        from desensitize.operators.basic import MASK

        fallback = MASK.fn(bad, MASK.normalize({}), ctx)
    else:
        fallback = pa.array([""] * len(bad), pa.string())
    good = values.filter(ok)
    out = pc.replace_with_mask(values, pc.invert(ok), fallback)
    if len(good):
        out = pc.replace_with_mask(out, ok, _run(good, params, ctx, decrypt, block))
    return out


def _unfpe(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    return _tolerant(values, params, ctx, decrypt=True)


_FPE_PARAMS = (
    Param("keep_prefix", (int,), None, "digits kept in clear at the start (card: 6)"),
    Param("encrypt_last", (int,), None, "encrypt only the last N digits (phone: 8)"),
    Param("on_error", (str,), "fail",
          "fail: a value that does not fit the format is an error; mask/redact: that value "
          "is masked or emptied instead (it cannot be unmasked)", ("fail", "mask", "redact")),
)

FPE = Operator(
    "fpe",
    "FF1 format-preserving encryption; ID/USCC/card check characters recomputed; reversible. "
    "Block cipher: AES (intl keys) or SM4 (gm keys).",
    _fpe,
    _FPE_PARAMS,
    keyed=True,
    reversible=True,
    inverse=_unfpe,
)


def _fpe_sm4(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    return _tolerant(values, params, ctx, decrypt=False, block="sm4")


def _unfpe_sm4(values: pa.Array, params: Mapping[str, Any], ctx: OpContext) -> pa.Array:
    return _tolerant(values, params, ctx, decrypt=True, block="sm4")


FF1_SM4 = Operator(
    "ff1-sm4",
    "FF1 with SM4 as its block cipher (gm suite; NIST approves FF1 with AES only); "
    "same formats and check characters as fpe; reversible.",
    _fpe_sm4,
    _FPE_PARAMS,
    keyed=True,
    reversible=True,
    inverse=_unfpe_sm4,
)
