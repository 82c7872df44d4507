"""Ed25519-signed receipts of finished jobs, verifiable offline.

A receipt is a JSON object: the signed payload fields (job, kind, dataset,
dataset_digest, query, epsilon_spent, delta_spent, result_digest, issued_at, key_id)
plus ``public_key`` (hex) and ``signature`` (hex) over the canonical JSON of the payload
(sorted keys, no whitespace, UTF-8). ``key_id`` is sha256 of the public key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from exchange.crypto import RECEIPT_KEY_FILE, load_or_create_secret
from exchange.errors import ReceiptInvalid

PAYLOAD_FIELDS = ("dataset", "dataset_digest", "delta_spent", "epsilon_spent", "issued_at",
                  "job", "key_id", "kind", "query", "result_digest", "version")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def result_digest(result: Any) -> str:
    """sha256 of the canonical JSON of a job's result (bytes are hashed as they are)."""
    data = result if isinstance(result, bytes) else canonical(result)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ReceiptSigner:
    seed: bytes

    @classmethod
    def from_dir(cls, key_dir: Path) -> ReceiptSigner:
        return cls(load_or_create_secret(Path(key_dir) / RECEIPT_KEY_FILE))

    @property
    def public_key(self) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)

    def sign(self, *, job: str, kind: str, dataset: str, dataset_digest: str,
             query: dict[str, Any], epsilon_spent: float, delta_spent: float,
             result_digest: str, issued_at: str) -> dict[str, Any]:
        pub = self.public_key
        payload = {
            "version": 1, "job": job, "kind": kind, "dataset": dataset,
            "dataset_digest": dataset_digest, "query": query,
            "epsilon_spent": float(epsilon_spent), "delta_spent": float(delta_spent),
            "result_digest": result_digest, "issued_at": issued_at,
            "key_id": hashlib.sha256(pub).hexdigest(),
        }
        sig = Ed25519PrivateKey.from_private_bytes(self.seed).sign(canonical(payload))
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
    # 1. every signed field is present, and nothing else is claimed as signed
    missing = [f for f in PAYLOAD_FIELDS if f not in receipt]
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
    if not hmac.compare_digest(hashlib.sha256(pub).hexdigest(), str(receipt["key_id"])):
        raise ReceiptInvalid("key_id does not match public_key")
    # 3. the Ed25519 signature over the canonical payload holds
    payload = {f: receipt[f] for f in PAYLOAD_FIELDS}
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, canonical(payload))
    except (InvalidSignature, ValueError) as exc:
        raise ReceiptInvalid("receipt signature does not verify") from exc
    # 4. the result (or delivered bytes) hash to the signed digest
    if result is not None and not hmac.compare_digest(result_digest(result), str(receipt["result_digest"])):
        raise ReceiptInvalid("result does not match the receipt's result_digest")
    if data is not None and not hmac.compare_digest(result_digest(data), str(receipt["result_digest"])):
        raise ReceiptInvalid("file does not match the receipt's result_digest")
