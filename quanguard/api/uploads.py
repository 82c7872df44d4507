"""Spooling an upload or a raw request body to disk under the one body limit.

The limit is the setting ``max_body_bytes`` (``QUANGUARD_MAX_BODY_BYTES``); the
request middleware enforces it on every body, these helpers on the bytes they write.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.ingest import CHARSETS
from quanguard.errors import InvalidInput, TooLarge

if TYPE_CHECKING:
    from starlette.datastructures import UploadFile

__all__ = ["charset_of", "scrub_names", "spool_stream", "spool_upload"]


def charset_of(content_type: str) -> str | None:
    """The codec named by the ``charset`` parameter of a raw body's Content-Type: UTF-8 or
    the GB family (read as GB18030), by ``monitor.ingest.CHARSETS``; None when no charset is
    named (the caller then detects it, or takes UTF-8); 400 for any other charset."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            given = value.strip().strip('"').lower()
            if given not in CHARSETS:
                raise InvalidInput(f"charset {given[:40]!r} is not supported; send UTF-8, or "
                                   "GBK/GB18030 named as charset=gb18030")
            return CHARSETS[given]
    return None


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"body larger than the limit of {limit} bytes (setting max_body_bytes)", limit=limit)


async def spool_stream(chunks: AsyncIterator[bytes], *, folder: Path, suffix: str, limit: int) -> str:
    """Write ``chunks`` to a new temp file in ``folder``; return its path.

    Raises TooLarge past ``limit`` bytes; the temp file never outlives an error.
    """
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=folder)
    try:
        size = 0
        with os.fdopen(fd, "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                fh.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


async def _read(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


async def spool_upload(upload: UploadFile, *, folder: Path, suffix: str, limit: int) -> str:
    """Copy a multipart ``upload`` to a new temp file in ``folder``; return its path."""
    return await spool_stream(_read(upload), folder=folder, suffix=suffix, limit=limit)


def scrub_names(exc: BaseException, paths: dict[str, str]) -> None:
    """Replace internal temp file paths in ``exc``'s message by what the caller knows
    them as (``{tmp_path: "the uploaded CSV"}``), so no error shows a server file name."""
    def fix(text: str) -> str:
        for path, label in paths.items():
            text = text.replace(path, label).replace(Path(path).name, label)
        return text

    if isinstance(getattr(exc, "message", None), str):
        exc.message = fix(exc.message)  # type: ignore[attr-defined]
    exc.args = tuple(fix(a) if isinstance(a, str) else a for a in exc.args)
