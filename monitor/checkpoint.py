"""Signed Merkle checkpoints (Ed25519 or, under the gm crypto suite, SM2 with SM3).

A checkpoint signs ``{format, tree_size, root, chain_hash, timestamp, key_id}`` and, from
format 2 on, the names of its hash and signature algorithms (``hash_alg``: sha256 | sm3,
``signature_alg``: ed25519 | sm2-sm3) and ``handover`` (the suite a sealed trail was
handed over to, else null). The signed message is the canonical JSON of those fields
(hex for bytes). Exported as JSON with the public key, so that an outside party can keep
it and verify offline under either suite; ``key_id`` is the first 16 hex digits of the
suite's hash of the raw public key, which lets a verifier pin the key it expects.
Format 1 documents (before the suites) are SHA-256 / Ed25519 and still verify.

Format 3 is the checkpoint of a later trail generation (after a hand-over): it also signs
``generation`` and ``first_seq``, the seq of the generation's first event (its leaf 0), so
an inclusion proof of seq ``s`` is for leaf ``s - first_seq``. The first generation keeps
format 2 (generation 1, first seq 1).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gmcrypto import (
    INTL,
    CryptoSuiteError,
    Ed25519Signer,
    SignerLike,
    Suite,
    load_or_create_sm2,
    suite_of_signature,
    verify_signature,
)
from gmcrypto import key_id as suite_key_id
from gmcrypto.keyfile import publish_private_file
from monitor.errors import CheckpointError, Tampered
from monitor.events import canonical_json, format_ts, json_object, parse_ts

KEY_FILE = "audit_ed25519.pem"
SM2_KEY_FILE = "audit_sm2.key"
FORMAT_V1 = "quanguard-checkpoint/1"
FORMAT = "quanguard-checkpoint/2"
FORMAT_V3 = "quanguard-checkpoint/3"


@dataclass(frozen=True)
class Signer:
    """The trail's signing key: gmcrypto's Ed25519 or SM2 signer."""

    private: SignerLike

    @property
    def algorithm(self) -> str:
        return self.private.algorithm

    @property
    def suite(self) -> Suite:
        return suite_of_signature(self.algorithm)

    def public_raw(self) -> bytes:
        return self.private.public_bytes()

    @property
    def key_id(self) -> str:
        return suite_key_id(self.suite, self.public_raw())

    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw()).decode()

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def load_or_create_signer(key_dir: Path, suite: Suite = INTL) -> Signer:
    """The suite's trail key: ``audit_ed25519.pem`` (intl) or ``audit_sm2.key`` (gm).

    Created (mode 0600) when absent."""
    if suite.sign_alg == "sm2-sm3":
        try:
            return Signer(load_or_create_sm2(Path(key_dir) / SM2_KEY_FILE))
        except (CryptoSuiteError, OSError) as exc:
            raise CheckpointError(f"{Path(key_dir) / SM2_KEY_FILE}: {exc}") from exc
    path = Path(key_dir) / KEY_FILE
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable Ed25519 private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"{path}: not an Ed25519 key")
        return Signer(Ed25519Signer(key))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # 0600 from the start, whole or absent; another process may have made it first
    if not publish_private_file(path, pem):
        return load_or_create_signer(key_dir, suite)
    return Signer(Ed25519Signer(key))


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root: bytes
    chain_hash: bytes
    timestamp: datetime
    key_id: str
    public_key: str  # base64 of the raw public key (Ed25519: 32 bytes; SM2: 65, 04||x||y)
    signature: bytes = b""
    hash_alg: str = "sha256"
    signature_alg: str = "ed25519"
    handover: str | None = None  # the suite a sealed trail was handed over to
    format: str = FORMAT
    generation: int = 1  # the trail generation (format 3 from generation 2 on)
    first_seq: int = 1  # the seq of the generation's first event (leaf 0)

    def _signed_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "format": self.format,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "chain_hash": self.chain_hash.hex(),
            "timestamp": format_ts(self.timestamp),
            "key_id": self.key_id,
        }
        if self.format != FORMAT_V1:
            fields.update(hash_alg=self.hash_alg, signature_alg=self.signature_alg,
                          handover=self.handover)
        if self.format == FORMAT_V3:
            fields.update(generation=self.generation, first_seq=self.first_seq)
        return fields

    def message(self) -> bytes:
        """The exact bytes that are signed."""
        return canonical_json(self._signed_fields())

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._signed_fields(),
            "public_key": self.public_key,
            "signature": base64.b64encode(self.signature).decode(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        try:
            fmt = data.get("format")
            if fmt not in (FORMAT, FORMAT_V1, FORMAT_V3):
                raise CheckpointError(f"not a {FORMAT} document")
            v1 = fmt == FORMAT_V1
            generation, first_seq = (
                (int(data["generation"]), int(data["first_seq"])) if fmt == FORMAT_V3 else (1, 1))
            if generation < 1 or first_seq < 1:
                raise CheckpointError("malformed checkpoint: generation and first_seq are >= 1")
            handover = None if v1 else data["handover"]
            if handover is not None and not isinstance(handover, str):
                raise CheckpointError("malformed checkpoint: handover must be a suite name")
            return cls(
                tree_size=int(data["tree_size"]),
                root=bytes.fromhex(data["root"]),
                chain_hash=bytes.fromhex(data["chain_hash"]),
                timestamp=parse_ts(data["timestamp"]),
                key_id=str(data["key_id"]),
                public_key=str(data["public_key"]),
                signature=base64.b64decode(data["signature"], validate=True),
                hash_alg="sha256" if v1 else str(data["hash_alg"]),
                signature_alg="ed25519" if v1 else str(data["signature_alg"]),
                handover=handover,
                format=fmt,
                generation=generation,
                first_seq=first_seq,
            )
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        return cls.from_dict(json_object(text, CheckpointError, "checkpoint"))


def sign_checkpoint(
    signer: Signer, *, tree_size: int, root: bytes, chain_hash: bytes, timestamp: datetime,
    handover: str | None = None, generation: int = 1, first_seq: int = 1,
) -> Checkpoint:
    unsigned = Checkpoint(
        tree_size=tree_size,
        root=root,
        chain_hash=chain_hash,
        timestamp=timestamp,
        key_id=signer.key_id,
        public_key=signer.public_b64(),
        hash_alg=signer.suite.hash_alg,
        signature_alg=signer.algorithm,
        handover=handover,
        format=FORMAT if generation == 1 and first_seq == 1 else FORMAT_V3,
        generation=generation,
        first_seq=first_seq,
    )
    return Checkpoint(**{**unsigned.__dict__, "signature": signer.sign(unsigned.message())})


def verify_checkpoint(cp: Checkpoint, *, expected_key_id: str | None = None) -> None:
    """Check the signature (and the pinned key id). Raises Tampered(bad_signature).

    The suite is read from the document: its signature algorithm picks the verifier, and
    its hash algorithm must be the one that suite pairs with it (no mixed documents)."""
    # 0. the document names a known suite, consistently
    try:
        suite = suite_of_signature(cp.signature_alg)
    except CryptoSuiteError as exc:
        raise Tampered(cp.tree_size, "bad_signature", str(exc)) from exc
    if suite.hash_alg != cp.hash_alg:
        raise Tampered(cp.tree_size, "bad_signature",
                       f"{cp.signature_alg} is not paired with {cp.hash_alg} in any suite")
    # 1. the embedded key must be well-formed and its id the one the checkpoint names
    try:
        public = base64.b64decode(cp.public_key, validate=True)
    except ValueError as exc:
        raise Tampered(cp.tree_size, "bad_signature", "public key is malformed") from exc
    if suite_key_id(suite, public) != cp.key_id:
        raise Tampered(cp.tree_size, "bad_signature", "key id does not match the public key")
    # 2. a pinned key id (from the trail's own signer) must match
    if expected_key_id is not None and cp.key_id != expected_key_id:
        raise Tampered(
            cp.tree_size, "bad_signature",
            f"signed by key {cp.key_id}, expected {expected_key_id}",
        )
    # 3. the signature over the canonical message
    if not verify_signature(cp.signature_alg, public, cp.signature, cp.message()):
        raise Tampered(cp.tree_size, "bad_signature", "checkpoint signature is invalid")


def checkpoint_digest(cp: Checkpoint, suite: Suite) -> str:
    """Hex digest (``suite``'s hash) of the whole signed document: how the next
    generation's first event names the final checkpoint of the one it continues."""
    return suite.hexdigest(canonical_json(cp.to_dict()))


def read_checkpoint_file(path: Path) -> Checkpoint:
    """Load an exported checkpoint; a missing file is an error (fail closed)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc.strerror})") from exc
    return Checkpoint.from_json(text)
