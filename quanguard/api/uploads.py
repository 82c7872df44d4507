"""Spooling an uploaded file to disk with a size cap (scan, watermark)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from quanguard.errors import TooLarge

__all__ = ["MAX_UPLOAD", "spool_upload"]

MAX_UPLOAD = 200 * 1024 * 1024


async def spool_upload(upload: Any, *, folder: Path, suffix: str, limit: int = MAX_UPLOAD) -> str:
    """Copy ``upload`` to a new temp file in ``folder``; return its path.

    Raises TooLarge past ``limit`` bytes; the temp file never outlives an error.
    """
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=folder)
    try:
        size = 0
        with os.fdopen(fd, "wb") as fh:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"upload larger than {limit // (1024 * 1024)} MB")
                fh.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp
