"""JSON Lines: one object a line; values kept as JSON text when they are not strings."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from desensitize.errors import TableError
from desensitize.tableio._common import MAX_LINE, _AtomicFile, _LineFile


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


# The encodings JSON Lines are read and written in: UTF-8 (their own) and the GB family
# (a bureau's GBK export), read as GB18030, which contains GBK and GB 2312. Each keeps
# "\n" a byte of its own, so a file splits into lines before it is decoded.
_UTF8 = ("utf-8", "utf-8-sig")
_GB = ("gbk", "gb2312", "gb18030", "cp936")


def jsonl_codec(encoding: str | None) -> str:
    """The codec JSON Lines named ``encoding`` are read or written in; TableError for one
    they cannot be."""
    if encoding is None:
        return "utf-8"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise TableError(f"unknown encoding {encoding!r}") from None
    if name in _UTF8:
        return name
    if name in _GB or encoding.replace("_", "-").lower() in _GB:
        return "gb18030"
    raise TableError(f"JSON Lines are read and written in UTF-8 or GBK/GB18030, not {encoding!r}")


class JsonlSource(_LineFile):
    """JSON Lines: one object per line; values read as strings (JSON text)."""

    format = "jsonl"

    def __init__(self, path: Path, *, encoding: str | None = None) -> None:
        self.path = str(path)
        self._p = path
        self.encoding = jsonl_codec(encoding)
        names: dict[str, None] = {}
        with path.open("rb") as fh:
            head = fh.read(4096)
            if b"\x00" in head:
                raise TableError(f"{path.name}: binary file (NUL bytes), not JSON Lines")
            fh.seek(0)
            for lineno, obj in self._objects(fh, limit=1000):
                names.update(dict.fromkeys(obj))
        if not names:
            raise TableError(f"{path.name}: empty file")
        self._set_names(list(names))

    def _objects(self, fh: Any, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        seen = 0
        for lineno, line in enumerate(iter(lambda: fh.readline(MAX_LINE + 1), b""), 1):
            if len(line) > MAX_LINE:
                raise TableError(f"{self._p.name}:{lineno}: line longer than {MAX_LINE // 2**20} MiB")
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8-sig" if lineno == 1 else "utf-8") if (
                    self.encoding in _UTF8) else line.decode(self.encoding)
                if lineno == 1 and text.startswith("\ufeff"):
                    text = text[1:]  # GB18030's byte order mark (84 31 95 33)
            except UnicodeDecodeError as exc:
                raise TableError(self._not_text(lineno, line, exc)) from None
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TableError(f"{self._p.name}:{lineno}: not JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise TableError(f"{self._p.name}:{lineno}: expected a JSON object per line")
            if (b"\\ud" in line or b"\\uD" in line) and _lone_surrogate(obj):
                # "\ud800" without its pair decodes to text no file or column can hold
                raise TableError(f"{self._p.name}:{lineno}: a text holds a lone UTF-16 "
                                 "surrogate (\\ud800-\\udfff without its pair)")
            yield lineno, obj
            seen += 1
            if limit is not None and seen >= limit:
                return

    def _not_text(self, lineno: int, line: bytes, exc: UnicodeDecodeError) -> str:
        label = "UTF-8" if self.encoding in _UTF8 else self.encoding.upper()
        where = (f"{self._p.name}:{lineno}: not {label} text "
                 f"(byte 0x{line[exc.start:exc.start + 1].hex()} at byte {exc.start + 1} of the line)")
        if label != "UTF-8":
            return where
        return (f"{where}; JSON Lines are UTF-8: name the file's encoding (gbk or gb18030 "
                "for a GBK export) or convert it (iconv -f GB18030 -t UTF-8)")

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]:
        known = set(self._names)
        cols: list[list[str | None]] = [[] for _ in self._names]
        with self._p.open("rb") as fh:
            for lineno, obj in self._objects(fh):
                extra = obj.keys() - known
                if extra:
                    raise TableError(
                        f"{self._p.name}:{lineno}: field(s) {', '.join(sorted(extra))} "
                        "not present in the first 1000 lines"
                    )
                for i, n in enumerate(self._names):
                    cols[i].append(_json_text(obj.get(n)))
                if len(cols[0]) >= batch_size:
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(c, pa.string()) for c in cols], schema=self._schema
                    )
                    cols = [[] for _ in self._names]
        if cols[0]:
            yield pa.RecordBatch.from_arrays(
                [pa.array(c, pa.string()) for c in cols], schema=self._schema
            )

    def _window(self, fh: BinaryIO, first: bool, per: int) -> Iterator[pa.RecordBatch]:
        known = set(self._names)
        cols: list[list[str | None]] = [[] for _ in self._names]
        for _lineno, obj in self._objects(fh, limit=per):
            if obj.keys() - known:
                continue
            for i, name in enumerate(self._names):
                cols[i].append(_json_text(obj.get(name)))
        if cols[0]:
            yield pa.RecordBatch.from_arrays(
                [pa.array(c, pa.string()) for c in cols], schema=self._schema
            )

def _lone_surrogate(obj: dict[str, Any]) -> bool:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


class JsonlWriter(_AtomicFile):
    """JSON Lines, one object per row, keys in column order, in UTF-8 (or GB18030 when
    ``encoding`` names the GB family)."""

    def __init__(self, path: Path, schema: pa.Schema | None, encoding: str | None = None) -> None:
        self._codec = jsonl_codec(encoding)
        super().__init__(path, schema)

    def _open(self) -> None:
        self._fh = self._tmp.open("w", encoding=self._codec, newline="\n")

    def _write(self, batch: pa.RecordBatch | pa.Table) -> None:
        names = batch.schema.names
        cols = [c.to_pylist() for c in batch.columns]
        for row in zip(*cols, strict=True):
            obj = {n: _jsonable(v) for n, v in zip(names, row, strict=True)}
            try:
                self._fh.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
            except UnicodeEncodeError:
                raise TableError(f"{self.path.name}: a value is not valid Unicode text") from None

    def _finish(self) -> None:
        self._fh.close()

    def _close_handle(self) -> None:
        self._fh.close()
