"""The encoding of a text table (UTF-8 with or without BOM, the GB family, ...)."""

from __future__ import annotations

import codecs

from desensitize.errors import TableError

PREFIX = 1024 * 1024  # bytes looked at to detect the encoding

_GB_FAMILY = {"gb2312", "gbk", "gb18030", "hz", "cp936", "euc_cn"}


def text_codec(encoding: str) -> str:
    """The codec name of the text encoding ``encoding``; TableError for a name Python does
    not know and for a codec that is not a character encoding (``rot13``, ``base64``,
    ``zlib``: they turn bytes into bytes or text into text)."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, ValueError):  # ValueError: a name holding NUL
        raise TableError(f"unknown encoding {encoding[:60]!r}; name a character encoding "
                         "such as utf-8, gb18030 or utf-16") from None
    if not getattr(info, "_is_text_encoding", True):
        raise TableError(f"{encoding[:60]!r} is not a text encoding (it transforms data, it "
                         "does not encode characters); name the file's character encoding, "
                         "e.g. utf-8, gb18030 or utf-16")
    return info.name


_codec_name = text_codec  # the name the format modules import

# the encodings whose code units are wider than a byte: their text holds NUL bytes, and
# "\n" is not one byte of its own
WIDE = {"utf-16": 2, "utf-16-le": 2, "utf-16-be": 2, "utf-32": 4, "utf-32-le": 4, "utf-32-be": 4}

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def wide_codec(codec: str, prefix: bytes) -> str:
    """The byte order of a UTF-16/32 ``codec`` made explicit: ``utf-16`` stays when the
    file starts with its byte-order mark (which the decoder consumes) and is read as
    ``utf-16-le`` (as Python and Windows do) when it has none."""
    if codec in ("utf-16", "utf-32") and not any(
            prefix.startswith(bom) for bom, name in _BOMS if name == codec):
        return f"{codec}-le"
    return codec


def detect_encoding(prefix: bytes, name: str) -> str:
    """Encoding of a CSV prefix: utf-8, utf-8-sig or gb18030; TableError otherwise."""
    if prefix.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for bom, wide in _BOMS:
        if prefix.startswith(bom):
            raise TableError(f"{name}: {wide.upper()} text (it starts with a {wide.upper()} "
                             "byte-order mark); re-save it as UTF-8, or name its encoding "
                             f"({wide}) where an encoding can be given")
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
