"""Crypto-suite benchmark (issue 16): the gm suite against the intl one.

1. Audit ingest: ``AuditStore(GM).append`` (SM3 leaves, chain and tree) vs
   ``AuditStore(INTL)`` (SHA-256) of the same events, same SQLite settings, same batches.
   Goal: gm/intl >= 0.7.
2. Signatures per second: SM2 with SM3 (``gmalg``, pure Python) vs Ed25519 (OpenSSL),
   sign and verify of a checkpoint-sized message. No goal: reported for sizing.
3. Authenticated encryption MB/s: SM4-GCM vs AES-256-GCM of 1 MiB buffers (OpenSSL both).
4. Raw hash MB/s: SM3 vs SHA-256 (for reading 1).

Run from the repository root: ``python bench/crypto_suite.py [--quick]``; writes
``bench/results/crypto_suite.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rate(fn: Any, count: int, *, rounds: int = 3) -> float:
    """Best of ``rounds``: operations per second of ``count`` calls of ``fn``."""
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(count)
        best = max(best, count / (time.perf_counter() - t0))
    return best


def bench_ingest(n: int, batch: int, workdir: Path) -> dict[str, float]:
    from audit_ingest import generate_lines  # bench/audit_ingest.py
    from sqlalchemy.orm import Session

    from gmcrypto import GM, INTL
    from monitor.ingest import parse_batch
    from monitor.store import AuditStore, create_schema
    from quanguard.db import make_engine

    events = list(parse_batch(generate_lines(n), reporter="bench", now=datetime.now(UTC),
                              max_lines=None).events)
    best: dict[str, float] = {}
    for attempt in range(3):  # alternate the suites; keep each one's best run
        for suite in (INTL, GM):
            engine = make_engine(f"sqlite:///{workdir / f'{suite.name}-{attempt}.db'}")
            create_schema(engine)
            store = AuditStore(suite)
            t0 = time.perf_counter()
            for i in range(0, len(events), batch):
                with Session(engine) as s, s.begin():
                    store.append(s, events[i:i + batch])
            rate = n / (time.perf_counter() - t0)
            engine.dispose()
            best[suite.name] = max(best.get(suite.name, 0.0), rate)
    return best


def bench_signatures(count: int) -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gmcrypto import Ed25519Signer, Sm2Signer, verify_signature

    msg = b'{"chain_hash":"' + b"ab" * 32 + b'","format":"quanguard-checkpoint/2"}'
    out: dict[str, float] = {}
    for name, signer, n in (("ed25519", Ed25519Signer(Ed25519PrivateKey.generate()), count * 20),
                            ("sm2-sm3", Sm2Signer.generate(), count)):
        sig, pub = signer.sign(msg), signer.public_bytes()

        def sign(k: int, signer: Any = signer) -> None:
            for _ in range(k):
                signer.sign(msg)

        def verify(k: int, name: str = name, sig: bytes = sig, pub: bytes = pub) -> None:
            for _ in range(k):
                assert verify_signature(name, pub, sig, msg)

        out[f"{name}_sign"] = _rate(sign, n)
        out[f"{name}_verify"] = _rate(verify, n)
    return out


def bench_aead(mib: int) -> dict[str, float]:
    import os

    from gmcrypto import GM, INTL

    data = os.urandom(1 << 20)
    out: dict[str, float] = {}
    for suite in (INTL, GM):
        key = suite.new_key()

        def seal(k: int, suite: Any = suite, key: bytes = key) -> None:
            for _ in range(k):
                suite.open(key, suite.seal(key, data, b"dataset"), b"dataset")

        out[suite.aead_alg] = _rate(seal, mib)  # MiB sealed and opened per second

        def digest(k: int, suite: Any = suite) -> None:
            for _ in range(k):
                suite.hash(data)

        out[suite.hash_alg] = _rate(digest, mib)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    n = 5_000 if args.quick else 30_000
    with tempfile.TemporaryDirectory() as tmp:
        ingest = bench_ingest(n, 500, Path(tmp))
    sigs = bench_signatures(20 if args.quick else 60)
    aead = bench_aead(8 if args.quick else 32)
    ratio = ingest["gm"] / ingest["intl"]
    rows = [
        {"metric": "audit ingest events/s, SM3 trail vs SHA-256 trail (gm/intl)",
         "ours": round(ingest["gm"], 1), "anchor": round(ingest["intl"], 1),
         "ratio": round(ratio, 3), "goal": ">= 0.7", "unit": "events/s", "met": ratio >= 0.7},
        {"metric": "signatures/s: SM2-SM3 sign vs Ed25519 sign",
         "ours": round(sigs["sm2-sm3_sign"], 1), "anchor": round(sigs["ed25519_sign"], 1),
         "ratio": round(sigs["sm2-sm3_sign"] / sigs["ed25519_sign"], 4), "goal": None,
         "unit": "ops/s", "met": None},
        {"metric": "verifications/s: SM2-SM3 vs Ed25519",
         "ours": round(sigs["sm2-sm3_verify"], 1), "anchor": round(sigs["ed25519_verify"], 1),
         "ratio": round(sigs["sm2-sm3_verify"] / sigs["ed25519_verify"], 4), "goal": None,
         "unit": "ops/s", "met": None},
        {"metric": "MiB/s sealed+opened: SM4-GCM vs AES-256-GCM",
         "ours": round(aead["sm4-gcm"], 1), "anchor": round(aead["aes-256-gcm"], 1),
         "ratio": round(aead["sm4-gcm"] / aead["aes-256-gcm"], 3), "goal": None,
         "unit": "MiB/s", "met": None},
        {"metric": "MiB/s hashed: SM3 vs SHA-256",
         "ours": round(aead["sm3"], 1), "anchor": round(aead["sha256"], 1),
         "ratio": round(aead["sm3"] / aead["sha256"], 3), "goal": None,
         "unit": "MiB/s", "met": None},
    ]
    notes = (f"{n} events in batches of 500 on SQLite (best of 3 alternating runs); SM2 from "
             "gmalg (pure Python), Ed25519/SM3/SM4/AES from OpenSSL via cryptography. "
             "Checkpoints and receipts are signed once per batch or job, so SM2's rate bounds "
             "checkpoints, not ingest.")
    out = ROOT / "bench" / "results" / "crypto_suite.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "crypto_suite", "rows": rows, "notes": notes},
                              ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for row in rows:
        print(f"{row['metric']}: {row['ours']} vs {row['anchor']} (ratio {row['ratio']})")


if __name__ == "__main__":
    main()
