"""The ``mask`` operator's ``variants`` coin is keyed: without a key it is refused.

The coin is a function of the original value.  Keyed by a constant, anyone could compute
it for every candidate of the hidden characters (the 10⁴ middles of ``138****5678``) and
drop the half whose coin disagrees with the form the copy shows: one bit of each masked
value given away.  Like every keyed operator, ``variants`` needs the keyring.
"""

from __future__ import annotations

import hmac

import pyarrow as pa
import pytest

from desensitize.errors import KeyMaterialError
from desensitize.keys import Keyring
from desensitize.operators import OpContext, apply_operator

PHONES = [f"138{i:04d}5678" for i in range(0, 10_000, 97)]


def test_variants_without_a_keyring_is_refused() -> None:
    values = pa.array(PHONES, pa.string())
    with pytest.raises(KeyMaterialError):
        apply_operator("mask", values, {"variants": True}, OpContext(entity="PHONE_NUMBER"))


def test_the_coin_is_not_computable_without_the_key() -> None:
    """With the key, the forms are no function of the value an outsider can compute."""
    values = pa.array(PHONES, pa.string())
    ctx = OpContext(keyring=Keyring(b"s" * 32), entity="PHONE_NUMBER")
    plain = apply_operator("mask", values, {}, ctx).to_pylist()
    mixed = apply_operator("mask", values, {"variants": True}, ctx).to_pylist()
    hidden = [m != p for p, m in zip(plain, mixed, strict=True)]
    public = [bool(hmac.new(b"mask-variants", v.encode(), "sha256").digest()[0] & 1) for v in PHONES]
    agree = sum(h == c for h, c in zip(hidden, public, strict=True)) / len(PHONES)
    assert 0.3 < agree < 0.7  # a guess, not the coin
    assert 0.3 < sum(hidden) / len(hidden) < 0.7


def test_variants_without_a_keyring_is_refused_for_a_single_value() -> None:
    values = pa.array(["13812345678"], pa.string())
    with pytest.raises(KeyMaterialError):
        apply_operator("mask", values, {"variants": True}, OpContext(entity="PHONE_NUMBER"))
