"""The gm suite in masking: ff1-sm4, FF1 on SM4 under gm keys, HMAC-SM3 pseudonyms, key records."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from desensitize.errors import KeyMaterialError
from desensitize.keys import Keyring, load_key_dir, load_keyring
from desensitize.operators import OpContext, apply_operator, invert_operator
from desensitize.operators.ff1 import FF1
from desensitize.operators.fpe import id_check_char, luhn_digit
from gmcrypto import GM, INTL, Suite

IDS = ["11010519491231002X", "440301199001011234", "310104198807150027", "51010719700101001X"]
IDS = [i[:17] + id_check_char(i[:17]) for i in IDS]  # valid check characters
SUITES = [pytest.param(INTL, id="intl"), pytest.param(GM, id="gm")]


def ctx(suite: Suite = INTL, entity: str = "CN_RESIDENT_ID") -> OpContext:
    return OpContext(keyring=Keyring(bytes(range(32)), suite), entity=entity, column="id")


@pytest.mark.parametrize("suite", SUITES)
def test_ff1_sm4_round_trips_resident_ids_with_the_check_character_recomputed(suite: Suite) -> None:
    out = apply_operator("ff1-sm4", pa.array(IDS), {}, ctx(suite)).to_pylist()
    for src, enc in zip(IDS, out, strict=True):
        assert enc != src and len(enc) == 18 and re.fullmatch(r"\d{17}[\dX]", enc)
        assert enc[17] == id_check_char(enc[:17])  # still a valid GB 11643 number
    assert invert_operator("ff1-sm4", pa.array(out), {}, ctx(suite)).to_pylist() == IDS


def test_ff1_sm4_is_not_ff1_aes() -> None:
    aes = apply_operator("fpe", pa.array(IDS), {}, ctx(INTL)).to_pylist()
    sm4 = apply_operator("ff1-sm4", pa.array(IDS), {}, ctx(INTL)).to_pylist()
    assert aes != sm4
    # a gm key's fpe is FF1 on SM4: the same as ff1-sm4 under that key
    assert apply_operator("fpe", pa.array(IDS), {}, ctx(GM)).to_pylist() == \
        apply_operator("ff1-sm4", pa.array(IDS), {}, ctx(GM)).to_pylist()


@pytest.mark.parametrize("entity", ["PHONE_NUMBER", "CN_BANK_CARD", "CN_USCC"])
def test_ff1_sm4_round_trips_other_formats(entity: str) -> None:
    vals = {"PHONE_NUMBER": ["13812345678", "15900001111"],
            "CN_BANK_CARD": ["622202123456789012" + luhn_digit("622202123456789012")],
            "CN_USCC": ["91350100M000100Y43"]}[entity]
    out = apply_operator("ff1-sm4", pa.array(vals), {}, ctx(GM, entity))
    assert invert_operator("ff1-sm4", out, {}, ctx(GM, entity)).to_pylist() == vals


def test_ff1_sm4_cipher_round_trip_and_key_size() -> None:
    f = FF1(bytes(16), 10, block="sm4")
    x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    y = f.encrypt(x, b"t")
    assert y != x and f.decrypt(y, b"t") == x
    assert y != FF1(bytes(16), 10).encrypt(x, b"t")
    with pytest.raises(Exception, match="16 bytes"):
        FF1(bytes(32), 10, block="sm4")


def test_gm_pseudonyms_are_hmac_sm3_under_an_hkdf_sm3_subkey() -> None:
    ring = Keyring(bytes(range(32)), GM)
    sub = HKDF(algorithm=hashes.SM3(), length=32, salt=b"quanguard-desensitize-gm-v1",
               info=b"hash").derive(bytes(range(32)))
    out = apply_operator("hash", pa.array(["张三"]), {"length": 64},
                         OpContext(keyring=ring)).to_pylist()
    assert out == [GM.hmac(sub, "张三".encode()).hex()]
    intl = apply_operator("hash", pa.array(["张三"]), {"length": 64},
                          OpContext(keyring=Keyring(bytes(range(32))))).to_pylist()
    assert intl != out


def test_a_masking_key_record_never_changes_suite(tmp_path: Path) -> None:
    intl_dir, gm_dir = tmp_path / "intl", tmp_path / "gm"
    load_key_dir(intl_dir)  # the legacy format: no suite line (intl)
    with pytest.raises(KeyMaterialError, match="QUANGUARD_CRYPTO=intl"):
        load_keyring(key_dir=intl_dir, suite=GM)
    ring = load_keyring(key_dir=gm_dir, suite=GM)
    assert ring.suite is GM
    assert (gm_dir / "mask.key").read_bytes().startswith(b"suite=gm\n")
    assert load_keyring(key_dir=gm_dir, suite=GM).derive("hash") == ring.derive("hash")
    with pytest.raises(KeyMaterialError, match="QUANGUARD_CRYPTO=gm"):
        load_keyring(key_dir=gm_dir, suite=INTL)
