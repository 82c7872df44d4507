"""Key files made by several processes at once (``serve --workers N`` starting): every
process gets the one key on disk, none reads a half-written file."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path

import pytest

from gmcrypto.keyfile import publish_private_file

WORKERS = 6
ROUNDS = 8


def test_publish_writes_once_whole_and_private(tmp_path: Path) -> None:
    target = tmp_path / "keys" / "a.key"
    assert publish_private_file(target, b"first")
    assert not publish_private_file(target, b"second")  # the first stays
    assert target.read_bytes() == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.key"]  # no temporary left


def _load(kind: str, key_dir: str, start: object, out: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        d = Path(key_dir)
        if kind == "mask":
            from desensitize.keys import load_key_dir
            got = load_key_dir(d).derive("hash").hex()
        elif kind == "watermark":
            from quanguard.services.watermark import load_secret
            got = load_secret(d).hex()
        elif kind == "exchange":
            from exchange.crypto import load_or_create_secret
            got = load_or_create_secret(d / "exchange.key").hex()
        else:
            from gmcrypto import GM, INTL
            from monitor.checkpoint import load_or_create_signer
            signer = load_or_create_signer(d, GM if kind == "sm2" else INTL)
            got = signer.public_raw().hex()
        out.put(("ok", got))  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out.put(("error", f"{type(exc).__name__}: {exc}"))  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["mask", "watermark", "exchange", "ed25519", "sm2"])
def test_workers_starting_together_share_one_whole_key(tmp_path: Path, kind: str) -> None:
    ctx = mp.get_context("fork")
    for r in range(ROUNDS):
        key_dir = tmp_path / f"round{r}"
        start, out = ctx.Barrier(WORKERS), ctx.Queue()
        procs = [ctx.Process(target=_load, args=(kind, str(key_dir), start, out))
                 for _ in range(WORKERS)]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
        errors = [msg for status, msg in results if status != "ok"]
        assert not errors, f"round {r}: {errors}"
        assert len({msg for _, msg in results}) == 1, f"round {r}: workers got different keys"
        assert not [p for p in key_dir.iterdir() if p.name.startswith(".")]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in key_dir.iterdir()
                   if p.is_file()), os.listdir(key_dir)
