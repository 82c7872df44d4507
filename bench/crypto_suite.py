"""Crypto-suite benchmark (issue 16): the gm suite against the intl one.

1. Audit ingest: ``AuditStore(GM).append`` (SM3 leaves, chain and tree) vs
   ``AuditStore(INTL)`` (SHA-256) of the same events, same SQLite settings, same batches.
   Goal: gm/intl >= 0.7.
2. Signatures per second: SM2 with SM3 (``gmssl-pyx``, the C extension of GmSSL 3 the
   gm suite uses) vs Ed25519 (OpenSSL), sign and verify of a checkpoint-sized message.
   No goal: reported for sizing.
2b. SM2 candidates side by side (how the backend was chosen): every SM2 package found
   (``gmssl-pyx``, ``gmalg``, ``tongsuopy``, ``gmssl-fast``, ``gmssl``, ``snowland-smx``):
   installed size, sign/s, verify/s, whether it verifies the GB/T 32918 example signature
   and whether its signatures and ``gmalg``'s verify under each other. Candidates that
   are not project dependencies can be measured from a folder they were installed into
   (``pip install --target DIR NAME``) with ``--extra-path DIR``: they are appended to
   ``sys.path``, never installed into the project.
3. Authenticated encryption MB/s: SM4-GCM vs AES-256-GCM of 1 MiB buffers (OpenSSL both).
4. Raw hash MB/s: SM3 vs SHA-256 (for reading 1).

Run from the repository root: ``python bench/crypto_suite.py [--quick] [--extra-path DIR]``;
writes ``bench/results/crypto_suite.json``.
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

from gmcrypto import SM2_DEFAULT_UID
from tests.gmcrypto.test_known_answers import SM2_PRIVATE, SM2_PUBLIC, SM2_SIG


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


# -- SM2 candidates ------------------------------------------------------------------------
# The GB/T 32918 example (default user ID): the vector of tests/gmcrypto.
_KAT_PUB, _KAT_PRIV, _KAT_SIG = SM2_PUBLIC, SM2_PRIVATE, SM2_SIG
_UID = SM2_DEFAULT_UID


def _rs(der: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _der(sig: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


def _candidate(name: str, priv: bytes, pub: bytes) -> tuple[Any, Any]:
    """(sign(msg) -> r||s, verify(msg, r||s) -> bool) of one package, for one key."""
    if name == "gmssl-pyx":
        import gmssl_pyx

        return (lambda m: _rs(gmssl_pyx.sm2_sign(priv, pub[1:], m, signer_id=_UID)),
                lambda m, sig: bool(gmssl_pyx.sm2_verify(pub[1:], m, _der(sig), signer_id=_UID)))
    if name == "gmalg":
        import gmalg

        signer, verifier = gmalg.SM2(priv, _UID, pub), gmalg.SM2(uid=_UID, pk=pub)

        def sign(m: bytes) -> bytes:
            r, s = signer.sign(m)
            sig: bytes = r.rjust(32, b"\0") + s.rjust(32, b"\0")
            return sig
        return sign, lambda m, sig: bool(verifier.verify(m, sig[:32], sig[32:]))
    if name == "tongsuopy":
        from tongsuopy.crypto import hashes
        from tongsuopy.crypto.asymciphers import ec

        key = ec.derive_private_key(int.from_bytes(priv, "big"), ec.SM2())
        public = key.public_key()

        def verify(m: bytes, sig: bytes) -> bool:
            try:
                public.verify(_der(sig), m, ec.ECDSA(hashes.SM3()))
            except Exception:  # noqa: BLE001 - tongsuopy's InvalidSignature
                return False
            return True
        return lambda m: _rs(key.sign(m, ec.ECDSA(hashes.SM3()))), verify
    if name == "gmssl-fast":
        import gmssl_fast

        k = gmssl_fast.SM2(priv.hex(), pub.hex())
        return k.sign, lambda m, sig: bool(k.verify(m, sig))
    if name == "gmssl":
        from gmssl import func, sm2

        c = sm2.CryptSM2(private_key=priv.hex(), public_key=pub[1:].hex())
        return (lambda m: bytes.fromhex(c.sign_with_sm3(m, func.random_hex(c.para_len))),
                lambda m, sig: bool(c.verify_with_sm3(sig.hex(), m)))
    if name == "snowland-smx":
        from pysmx.SM2 import Sign, Verify

        return (lambda m: Sign(m, priv, _UID, 64),
                lambda m, sig: bool(Verify(sig, m, pub[1:], 64)))
    raise KeyError(name)


SM2_CANDIDATES = ("gmssl-pyx", "gmalg", "tongsuopy", "gmssl-fast", "gmssl", "snowland-smx")


def _installed_kib(dist: str) -> float | None:
    from importlib import metadata

    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return None
    return round(sum(f.size or 0 for f in files) / 1024, 1)


def bench_sm2_candidates(count: int) -> list[dict[str, Any]]:
    import gmalg

    msg = b'{"chain_hash":"' + b"ab" * 32 + b'","format":"quanguard-checkpoint/2"}'
    ref = gmalg.SM2(_KAT_PRIV, _UID, _KAT_PUB)
    out: list[dict[str, Any]] = []
    for name in SM2_CANDIDATES:
        row: dict[str, Any] = {"package": name, "installed_kib": _installed_kib(name)}
        try:
            sign, verify = _candidate(name, _KAT_PRIV, _KAT_PUB)
        except ImportError as exc:
            out.append({**row, "error": f"not installed ({exc.name})"})
            continue
        r, s = ref.sign(msg)
        theirs = r.rjust(32, b"\0") + s.rjust(32, b"\0")
        try:
            ours = sign(msg)
            row.update(
                gbt32918_example=verify(b"message digest", _KAT_SIG),
                verifies_gmalg=verify(msg, theirs),
                gmalg_verifies_it=bool(gmalg.SM2(uid=_UID, pk=_KAT_PUB).verify(
                    msg, ours[:32], ours[32:])),
                rejects_tampered=not verify(msg + b"!", theirs),
            )
        except Exception as exc:  # noqa: BLE001 - a candidate's own failure is a result
            out.append({**row, "error": f"{type(exc).__name__}: {exc}"})
            continue

        def signs(k: int, sign: Any = sign) -> None:
            for _ in range(k):
                sign(msg)

        def verifies(k: int, verify: Any = verify, sig: bytes = ours) -> None:
            for _ in range(k):
                verify(msg, sig)

        row.update(sign_per_s=round(_rate(signs, count), 1),
                   verify_per_s=round(_rate(verifies, count), 1))
        out.append(row)
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


def _side_by_side(metric: str, ours: float, anchor: float, unit: str, digits: int) -> dict[str, Any]:
    """A row with no goal: ours beside the anchor and their ratio (to ``digits`` places)."""
    return {"metric": metric, "ours": round(ours, 1), "anchor": round(anchor, 1),
            "ratio": round(ours / anchor, digits), "goal": None, "unit": unit, "met": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (CI)")
    parser.add_argument("--extra-path", action="append", default=[], metavar="DIR",
                        help="also look for SM2 candidates in DIR (pip install --target DIR)")
    args = parser.parse_args()
    sys.path.extend(args.extra_path)
    sys.path.insert(0, str(ROOT / "bench"))
    n = 5_000 if args.quick else 30_000
    with tempfile.TemporaryDirectory() as tmp:
        ingest = bench_ingest(n, 500, Path(tmp))
    sigs = bench_signatures(20 if args.quick else 60)
    candidates = bench_sm2_candidates(20 if args.quick else 100)
    aead = bench_aead(8 if args.quick else 32)
    ratio = ingest["gm"] / ingest["intl"]
    rows = [
        {"metric": "audit ingest events/s, SM3 trail vs SHA-256 trail (gm/intl)",
         "ours": round(ingest["gm"], 1), "anchor": round(ingest["intl"], 1),
         "ratio": round(ratio, 3), "goal": ">= 0.7", "unit": "events/s", "met": ratio >= 0.7},
        _side_by_side("signatures/s: SM2-SM3 sign vs Ed25519 sign",
                      sigs["sm2-sm3_sign"], sigs["ed25519_sign"], "ops/s", 4),
        _side_by_side("verifications/s: SM2-SM3 vs Ed25519",
                      sigs["sm2-sm3_verify"], sigs["ed25519_verify"], "ops/s", 4),
        _side_by_side("MiB/s sealed+opened: SM4-GCM vs AES-256-GCM",
                      aead["sm4-gcm"], aead["aes-256-gcm"], "MiB/s", 3),
        _side_by_side("MiB/s hashed: SM3 vs SHA-256", aead["sm3"], aead["sha256"], "MiB/s", 3),
    ]
    notes = (f"{n} events in batches of 500 on SQLite (best of 3 alternating runs); SM2 from "
             "gmssl-pyx (GmSSL 3, C), Ed25519/SM3/SM4/AES from OpenSSL via cryptography. "
             "Checkpoints and receipts are signed once per batch or job, so SM2's rate bounds "
             "checkpoints, not ingest. sm2_candidates: each SM2 package measured on the same "
             "message (best of 3), with the GB/T 32918 example and cross-verification "
             "against gmalg; a package that is missing says so.")
    out = ROOT / "bench" / "results" / "crypto_suite.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "crypto_suite", "rows": rows, "notes": notes,
                               "sm2_candidates": candidates},
                              ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for row in rows:
        print(f"{row['metric']}: {row['ours']} vs {row['anchor']} (ratio {row['ratio']})")
    print("\n| SM2 package | installed KiB | sign/s | verify/s | GB/T 32918 example | "
          "cross-verifies with gmalg |\n|---|---|---|---|---|---|")
    for c in candidates:
        if "error" in c:
            print(f"| {c['package']} | {c['installed_kib']} | – | – | {c['error']} | – |")
            continue
        cross = c["verifies_gmalg"] and c["gmalg_verifies_it"] and c["rejects_tampered"]
        print(f"| {c['package']} | {c['installed_kib']} | {c['sign_per_s']} | "
              f"{c['verify_per_s']} | {c['gbt32918_example']} | {cross} |")


if __name__ == "__main__":
    main()
