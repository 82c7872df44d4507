"""Publishing a new private file (a key) so that no reader ever sees it half written.

``open(O_CREAT | O_EXCL)`` then ``write`` leaves a moment where the file exists and is
empty: a second process (another ``serve`` worker starting at the same time) that finds
it then reads an empty key and fails, or loses the race to create and goes on with a key
that is not the one on disk. Here the bytes are written to a private temporary file in the
same folder, synced, and hard-linked into place: the link is atomic and fails when a file
is already there, so a reader sees either no file or the whole of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def publish_private_file(path: Path, data: bytes) -> bool:
    """Write ``data`` at ``path`` (mode 0600, a new folder 0700) unless a file is already
    there; True when this call published it, False when another one had (its file stays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")  # 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)
