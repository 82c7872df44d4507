"""Signed Merkle checkpoints (Ed25519 via ``cryptography``).

A checkpoint signs ``{tree_size, root, chain_hash, timestamp, key_id}``: the RFC 6962
tree head over the first ``tree_size`` events, and the hash chain value at that seq.
The signed message is the canonical JSON of those fields (hex for bytes). Exported as
JSON with the public key, so that an outside party can keep it and verify offline;
``key_id`` is the first 16 hex digits of SHA-256 of the raw public key, which lets a
verifier pin the key it expects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from monitor.errors import CheckpointError, Tampered
from monitor.events import canonical_json, format_ts, parse_ts

KEY_FILE = "audit_ed25519.pem"
FORMAT = "quanguard-checkpoint/1"


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """The trail's signing key."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    def public_b64(self) -> str:
        raw = self.public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode()


def load_or_create_signer(key_dir: Path) -> Signer:
    """Load ``key_dir/audit_ed25519.pem``; create it (mode 0600) when absent."""
    path = Path(key_dir) / KEY_FILE
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable Ed25519 private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"{path}: not an Ed25519 key")
        return Signer(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Create with 0600 from the start: no window where the key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return Signer(key)


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root: bytes
    chain_hash: bytes
    timestamp: datetime
    key_id: str
    public_key: str  # base64 of the raw Ed25519 public key
    signature: bytes = b""

    def message(self) -> bytes:
        """The exact bytes that are signed."""
        return canonical_json(
            {
                "format": FORMAT,
                "tree_size": self.tree_size,
                "root": self.root.hex(),
                "chain_hash": self.chain_hash.hex(),
                "timestamp": format_ts(self.timestamp),
                "key_id": self.key_id,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "chain_hash": self.chain_hash.hex(),
            "timestamp": format_ts(self.timestamp),
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": base64.b64encode(self.signature).decode(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        try:
            if data.get("format") != FORMAT:
                raise CheckpointError(f"not a {FORMAT} document")
            return cls(
                tree_size=int(data["tree_size"]),
                root=bytes.fromhex(data["root"]),
                chain_hash=bytes.fromhex(data["chain_hash"]),
                timestamp=parse_ts(data["timestamp"]),
                key_id=str(data["key_id"]),
                public_key=str(data["public_key"]),
                signature=base64.b64decode(data["signature"], validate=True),
            )
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CheckpointError(f"checkpoint is not JSON: {exc}") from exc
        return cls.from_dict(data)


def sign_checkpoint(
    signer: Signer, *, tree_size: int, root: bytes, chain_hash: bytes, timestamp: datetime
) -> Checkpoint:
    unsigned = Checkpoint(
        tree_size=tree_size,
        root=root,
        chain_hash=chain_hash,
        timestamp=timestamp,
        key_id=signer.key_id,
        public_key=signer.public_b64(),
    )
    return Checkpoint(**{**unsigned.__dict__, "signature": signer.private.sign(unsigned.message())})


def verify_checkpoint(cp: Checkpoint, *, expected_key_id: str | None = None) -> None:
    """Check the signature (and the pinned key id). Raises Tampered(bad_signature)."""
    # 1. the embedded key must be a well-formed Ed25519 key whose id the checkpoint names
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(cp.public_key))
    except ValueError as exc:
        raise Tampered(cp.tree_size, "bad_signature", "public key is malformed") from exc
    if key_id_of(public) != cp.key_id:
        raise Tampered(cp.tree_size, "bad_signature", "key id does not match the public key")
    # 2. a pinned key id (from the trail's own signer) must match
    if expected_key_id is not None and cp.key_id != expected_key_id:
        raise Tampered(
            cp.tree_size, "bad_signature",
            f"signed by key {cp.key_id}, expected {expected_key_id}",
        )
    # 3. the signature over the canonical message
    try:
        public.verify(cp.signature, cp.message())
    except InvalidSignature as exc:
        raise Tampered(cp.tree_size, "bad_signature", "checkpoint signature is invalid") from exc


def read_checkpoint_file(path: Path) -> Checkpoint:
    """Load an exported checkpoint; a missing file is an error (fail closed)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc.strerror})") from exc
    return Checkpoint.from_json(text)
