"""Upload spooling: the size cap holds and no temp file outlives an error."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import UploadFile

from quanguard.api.uploads import spool_upload
from quanguard.errors import TooLarge


def _run(make_coro: Callable[[], Coroutine[Any, Any, str]]) -> str:
    # In a thread of its own: another test of the session may leave this thread's loop running.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


class _Upload:
    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    async def read(self, n: int) -> bytes:
        return self._buf.read(n)


@pytest.mark.parametrize("size, limit", [(0, 10), (10, 10), (3 << 20, 4 << 20)])
def test_spooled_copy_is_byte_identical(tmp_path: Path, size: int, limit: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = _run(lambda: spool_upload(cast(UploadFile, _Upload(data)), folder=tmp_path, suffix=".csv", limit=limit))
    assert path.endswith(".csv")
    with open(path, "rb") as fh:
        assert fh.read() == data


@pytest.mark.parametrize("size, limit", [(11, 10), ((2 << 20) + 1, 2 << 20)])
def test_over_the_limit_is_refused_and_leaves_nothing(tmp_path: Path, size: int, limit: int) -> None:
    with pytest.raises(TooLarge):
        _run(lambda: spool_upload(cast(UploadFile, _Upload(b"a" * size)), folder=tmp_path, suffix=".csv", limit=limit))
    assert list(tmp_path.iterdir()) == []
