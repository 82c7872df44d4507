"""Signed receipts of finished jobs (Ed25519, or SM2 with SM3 under the gm suite),
verifiable offline.

A receipt is a JSON object: the signed payload fields (job, kind, dataset,
dataset_digest, query, epsilon_spent, delta_spent, result_digest, issued_at, key_id;
from version 2 on ``hash_alg`` and ``signature_alg``; from version 3 on who received the
result and on what grounds: ``consumer`` and ``consumer_org``, ``purpose``, the deciding
``rule_id`` and ``policy_version``, and ``approved_by``, null when no approval was
needed) plus ``public_key`` (hex) and
``signature`` (hex) over the canonical JSON of the payload (sorted keys, no whitespace,
UTF-8). ``key_id`` and ``result_digest`` use the suite's hash (SHA-256 or SM3) of the
public key and of the result. A verifier reads the suite from the receipt; version 1
receipts (before the suites) are SHA-256 / Ed25519.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.crypto import RECEIPT_KEY_FILE, load_or_create_secret
from exchange.errors import KeyFileError, ReceiptInvalid
from gmcrypto import (
    INTL,
    CryptoSuiteError,
    Ed25519Signer,
    SignerLike,
    Sm2Signer,
    Suite,
    load_or_create_sm2,
    suite_of_signature,
    verify_signature,
)

RECEIPT_SM2_KEY_FILE = "exchange-receipt-sm2.key"
PAYLOAD_FIELDS = ("dataset", "dataset_digest", "delta_spent", "epsilon_spent", "issued_at",
                  "job", "key_id", "kind", "query", "result_digest", "version")
PAYLOAD_FIELDS_V2 = tuple(sorted((*PAYLOAD_FIELDS, "hash_alg", "signature_alg")))
PAYLOAD_FIELDS_V3 = tuple(sorted((*PAYLOAD_FIELDS_V2, "consumer", "consumer_org", "purpose",
                                  "rule_id", "policy_version", "approved_by")))
_FIELDS = {1: PAYLOAD_FIELDS, 2: PAYLOAD_FIELDS_V2, 3: PAYLOAD_FIELDS_V3}


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def result_digest(result: Any, suite: Suite = INTL) -> str:
    """The suite's hash (sha256 by default) of the canonical JSON of a job's result (bytes
    are hashed as they are)."""
    data = result if isinstance(result, bytes) else canonical(result)
    return hashlib.sha256(data).hexdigest() if suite is INTL else suite.hexdigest(data)


@dataclass(frozen=True)
class ReceiptSigner:
    """The service's receipt key: an Ed25519 seed (intl) or an SM2 key (gm)."""

    seed: bytes
    suite: Suite = INTL

    @classmethod
    def from_dir(cls, key_dir: Path, suite: Suite = INTL) -> ReceiptSigner:
        if suite.sign_alg == "sm2-sm3":
            try:
                sm2 = load_or_create_sm2(Path(key_dir) / RECEIPT_SM2_KEY_FILE)
            except CryptoSuiteError as exc:
                raise KeyFileError(f"{RECEIPT_SM2_KEY_FILE}: {exc}") from exc
            return cls(sm2.secret, suite)
        return cls(load_or_create_secret(Path(key_dir) / RECEIPT_KEY_FILE))

    @property
    def _key(self) -> SignerLike:
        if self.suite.sign_alg == "sm2-sm3":
            return Sm2Signer(self.seed)
        return Ed25519Signer(Ed25519PrivateKey.from_private_bytes(self.seed))

    @property
    def public_key(self) -> bytes:
        return self._key.public_bytes()

    def sign(self, *, job: str, kind: str, dataset: str, dataset_digest: str,
             query: dict[str, Any], epsilon_spent: float, delta_spent: float,
             result_digest: str, issued_at: str, consumer: str | None = None,
             consumer_org: str | None = None, purpose: str | None = None,
             rule_id: str | None = None, policy_version: str | None = None,
             approved_by: str | None = None) -> dict[str, Any]:
        """A version 3 receipt: the run, and who received it on what grounds."""
        pub = self.public_key
        payload = {
            "version": 3, "job": job, "kind": kind, "dataset": dataset,
            "dataset_digest": dataset_digest, "query": query,
            "epsilon_spent": float(epsilon_spent), "delta_spent": float(delta_spent),
            "result_digest": result_digest, "issued_at": issued_at,
            "key_id": self.suite.hexdigest(pub),
            "hash_alg": self.suite.hash_alg, "signature_alg": self.suite.sign_alg,
            "consumer": consumer, "consumer_org": consumer_org, "purpose": purpose,
            "rule_id": rule_id, "policy_version": policy_version, "approved_by": approved_by,
        }
        sig = self._key.sign(canonical(payload))
        return {**payload, "public_key": pub.hex(), "signature": sig.hex()}


def verify_receipt(receipt: dict[str, Any], *, result: Any = None,
                   public_key: bytes | None = None, data: bytes | None = None) -> None:
    """Check a receipt; return nothing or raise ReceiptInvalid (fails closed).

    ``public_key`` pins the service key (otherwise the embedded key is used, which only
    proves integrity, not origin); ``result`` or ``data`` are checked against
    ``result_digest`` when given.
    """
    if not isinstance(receipt, dict):
        raise ReceiptInvalid("receipt is not a JSON object")
    # 0. the version's signed fields, and the suite read from the receipt (version 1:
    # sha256 / ed25519)
    given = receipt.get("version")
    version = given if type(given) is int else 0
    fields = _FIELDS.get(version)
    if fields is None:
        raise ReceiptInvalid(f"unknown receipt version {given!r} (known: 1, 2, 3)")
    try:
        suite = suite_of_signature(str(receipt.get("signature_alg", "ed25519"))
                                   if version >= 2 else "ed25519")
    except CryptoSuiteError as exc:
        raise ReceiptInvalid(str(exc)) from exc
    if version >= 2 and receipt.get("hash_alg") != suite.hash_alg:
        raise ReceiptInvalid(f"hash_alg {receipt.get('hash_alg')!r} is not the hash of "
                             f"{suite.sign_alg} (expected {suite.hash_alg})")
    # 1. every signed field is present, and nothing else is claimed as signed
    missing = [f for f in fields if f not in receipt]
    if missing or "signature" not in receipt or "public_key" not in receipt:
        raise ReceiptInvalid(f"receipt lacks {' '.join(missing) or 'signature/public_key'}")
    try:
        pub = bytes.fromhex(str(receipt["public_key"]))
        sig = bytes.fromhex(str(receipt["signature"]))
    except ValueError as exc:
        raise ReceiptInvalid("public_key/signature are not hex") from exc
    # 2. the key is the pinned one, and key_id names it
    if public_key is not None and not hmac.compare_digest(pub, public_key):
        raise ReceiptInvalid("receipt was signed by a different key than the pinned service key")
    if not hmac.compare_digest(suite.hexdigest(pub), str(receipt["key_id"])):
        raise ReceiptInvalid("key_id does not match public_key")
    # 3. the signature (Ed25519 or SM2) over the canonical payload holds
    payload = {f: receipt[f] for f in fields}
    if not verify_signature(suite.sign_alg, pub, sig, canonical(payload)):
        raise ReceiptInvalid("receipt signature does not verify")
    # 4. the result (or delivered bytes) hash to the signed digest
    if result is not None and not hmac.compare_digest(result_digest(result, suite),
                                                      str(receipt["result_digest"])):
        raise ReceiptInvalid("result does not match the receipt's result_digest")
    if data is not None and not hmac.compare_digest(result_digest(data, suite),
                                                    str(receipt["result_digest"])):
        raise ReceiptInvalid("file does not match the receipt's result_digest")
