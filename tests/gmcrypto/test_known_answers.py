"""Known-answer tests from the standards' published examples, and suite behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gmcrypto import (
    GM,
    INTL,
    SM2_DEFAULT_UID,
    AeadFailure,
    Ed25519Signer,
    Sm2Signer,
    Suite,
    UnknownSuite,
    get_suite,
    verify_signature,
)

# GB/T 32918.5-2017 (GM/T 0003.5) annex: signature over "message digest" on the
# recommended curve with the default user ID.
SM2_PUBLIC = bytes.fromhex(
    "04" "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
SM2_PRIVATE = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
SM2_SIG = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")


@pytest.mark.parametrize(("message", "digest"), [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
])
def test_sm3_gbt32905_examples(message: bytes, digest: str) -> None:
    assert GM.hash(message).hex() == digest


SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_gbt32907_example() -> None:
    enc = GM.block_encryptor(SM4_KEY)
    assert enc.update(SM4_KEY).hex() == "681edf34d206965e86b3e94f536e4246"
    dec = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).decryptor()
    assert dec.update(bytes.fromhex("681edf34d206965e86b3e94f536e4246")) == SM4_KEY


@pytest.mark.slow
def test_sm4_gbt32907_million_iterations() -> None:
    enc = GM.block_encryptor(SM4_KEY)
    block = SM4_KEY
    for _ in range(1_000_000):
        block = enc.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_sm2_gbt32918_example_verifies() -> None:
    assert SM2_DEFAULT_UID == b"1234567812345678"
    assert verify_signature("sm2-sm3", SM2_PUBLIC, SM2_SIG, b"message digest")
    assert Sm2Signer(SM2_PRIVATE).public_bytes() == SM2_PUBLIC


@pytest.mark.parametrize("tamper", ["message", "r", "s", "key"])
def test_sm2_example_tampered_fails(tamper: str) -> None:
    msg, sig, pub = b"message digest", bytearray(SM2_SIG), bytearray(SM2_PUBLIC)
    if tamper == "message":
        msg = b"message digesT"
    elif tamper == "r":
        sig[0] ^= 1
    elif tamper == "s":
        sig[63] ^= 1
    else:
        pub[64] ^= 1  # off the curve
    assert not verify_signature("sm2-sm3", bytes(pub), bytes(sig), msg)


def test_sm2_sign_verify_roundtrip_and_wrong_uid_fails() -> None:
    signer = Sm2Signer.generate()
    sig = signer.sign(b"checkpoint")
    assert len(sig) == 64
    assert verify_signature("sm2-sm3", signer.public_bytes(), sig, b"checkpoint")
    other = Sm2Signer(signer.secret, uid=b"another-user-id").sign(b"checkpoint")
    assert not verify_signature("sm2-sm3", signer.public_bytes(), other, b"checkpoint")


def test_signatures_never_cross_algorithms() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ed = Ed25519Signer(Ed25519PrivateKey.generate())
    sig = ed.sign(b"m")
    assert verify_signature("ed25519", ed.public_bytes(), sig, b"m")
    assert not verify_signature("sm2-sm3", ed.public_bytes(), sig, b"m")
    with pytest.raises(UnknownSuite):
        verify_signature("rsa", ed.public_bytes(), sig, b"m")


def test_hmac_sm3_rfc2104_shape() -> None:
    import hmac as std

    # HMAC-SM3 is RFC 2104 over SM3 (block 64 bytes): compare with cryptography's HMAC.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import hmac as chmac

    m = chmac.HMAC(b"key", hashes.SM3())
    m.update(b"data")
    assert GM.hmac(b"key", b"data") == m.finalize()
    assert INTL.hmac(b"key", b"data") == std.new(b"key", b"data", "sha256").digest()


@pytest.mark.parametrize("suite", [INTL, GM], ids=["intl", "gm"])
def test_aead_roundtrip_and_tamper(suite: Suite) -> None:
    key = suite.new_key()
    sealed = suite.seal(key, b"rows", b"dataset:a")
    assert suite.open(key, sealed, b"dataset:a") == b"rows"
    with pytest.raises(AeadFailure):
        suite.open(key, sealed, b"dataset:b")
    with pytest.raises(AeadFailure):
        suite.open(key, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"dataset:a")


def test_aead_suites_do_not_open_each_other() -> None:
    key = bytes(32)
    with pytest.raises(AeadFailure):
        GM.open(key, INTL.seal(key, b"x", b""), b"")
    with pytest.raises(AeadFailure):
        INTL.open(key, GM.seal(key, b"x", b""), b"")


def test_sm4_gcm_matches_the_cipher_directly() -> None:
    """SM4-GCM through the suite is plain SM4 in GCM mode (RFC 8998's AEAD)."""
    key = SM4_KEY
    sealed = GM.seal(key, b"hello", b"aad")
    nonce, body = sealed[:12], sealed[12:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, body[-16:])).decryptor()
    dec.authenticate_additional_data(b"aad")
    assert dec.update(body[:-16]) + dec.finalize() == b"hello"


def test_suite_names() -> None:
    assert get_suite(None) is INTL and get_suite("GM") is GM
    with pytest.raises(UnknownSuite, match="known: intl gm"):
        get_suite("nist")


def test_sm2_keys_with_a_leading_zero_byte_survive_the_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One generated key in 256 has a leading zero byte; gmalg drops it. The key file must
    still hold 32 bytes and load back to a signer that verifies."""
    import gmalg

    from gmcrypto.sign import Sm2Signer, load_or_create_sm2, verify_signature

    secret = b"\0" + bytes.fromhex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5")
    pk = gmalg.SM2().generate_pk(secret)
    monkeypatch.setattr(gmalg.SM2, "generate_keypair", lambda self: (secret.lstrip(b"\0"), pk))
    signer = load_or_create_sm2(tmp_path / "k.key")
    assert len(signer.secret) == 32
    again = load_or_create_sm2(tmp_path / "k.key")
    assert again.secret == signer.secret and isinstance(again, Sm2Signer)
    sig = again.sign(b"checkpoint")
    assert verify_signature("sm2-sm3", again.public_bytes(), sig, b"checkpoint")


def test_sm2_backend_cross_verifies_with_gmalg() -> None:
    """Signatures of the C backend (gmssl-pyx) verify under the pure-Python gmalg and the
    other way round, for fresh keys and the standard's example key: two independent
    implementations of GB/T 32918 with the default user ID agree."""
    import gmalg

    for signer in (Sm2Signer(SM2_PRIVATE), *(Sm2Signer.generate() for _ in range(8))):
        pub = signer.public_bytes()
        for msg in (b"", b"message digest", bytes(range(256)) * 3):
            ours = signer.sign(msg)
            assert gmalg.SM2(uid=SM2_DEFAULT_UID, pk=pub).verify(msg, ours[:32], ours[32:])
            r, s = gmalg.SM2(signer.secret, SM2_DEFAULT_UID, pub).sign(msg)
            theirs = r.rjust(32, b"\0") + s.rjust(32, b"\0")
            assert verify_signature("sm2-sm3", pub, theirs, msg)
            assert not verify_signature("sm2-sm3", pub, theirs, msg + b"!")


@pytest.mark.parametrize("public", [bytes(65), b"\x04" + bytes(64), b"\x04" + b"\xff" * 64])
def test_sm2_verification_of_a_point_off_the_curve_is_false_not_an_error(public: bytes) -> None:
    assert not verify_signature("sm2-sm3", public, SM2_SIG, b"message digest")
