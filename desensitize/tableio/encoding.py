"""The encoding of a text table (UTF-8 with or without BOM, the GB family, ...)."""

from __future__ import annotations

import codecs

from desensitize.errors import TableError

PREFIX = 1024 * 1024  # bytes looked at to detect the encoding

_GB_FAMILY = {"gb2312", "gbk", "gb18030", "hz", "cp936", "euc_cn"}


def _codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise TableError(f"unknown encoding {encoding!r}") from None


def detect_encoding(prefix: bytes, name: str) -> str:
    """Encoding of a CSV prefix: utf-8, utf-8-sig or gb18030; TableError otherwise."""
    if prefix.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in prefix:
        raise TableError(f"{name}: binary file (NUL bytes), not a text table")
    cut = prefix
    if len(prefix) >= PREFIX:  # do not judge a character cut at the boundary
        cut = prefix[: prefix.rfind(b"\n") + 1] or prefix
    try:
        cut.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    utf8_lines = other_lines = 0
    for line in cut.splitlines():
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_lines += 1
        except UnicodeDecodeError:
            other_lines += 1
    if utf8_lines and other_lines:
        raise TableError(
            f"{name}: mixed encodings ({utf8_lines} UTF-8 lines and {other_lines} others "
            "in the first MiB); re-save the file in one encoding"
        )
    from charset_normalizer import from_bytes

    best = from_bytes(cut).best()
    if best is None:
        raise TableError(f"{name}: cannot determine the text encoding; pass an encoding")
    enc = _codec_name(best.encoding)
    if enc in _GB_FAMILY:
        return "gb18030"
    raise TableError(
        f"{name}: unsupported text encoding {enc!r} (expected UTF-8 or GBK/GB18030); "
        "pass an encoding explicitly"
    )
