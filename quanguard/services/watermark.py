"""Watermark service: the key, streaming embed/detect over table files, the registry.

``build_watermarker(container)`` returns one :class:`WatermarkService`. The secret is
``<key_dir>/watermark.key`` (32 random bytes, created 0600 on first use). Files are read
and written through ``desensitize.tableio`` (CSV/TSV/JSONL/Parquet/XLSX, atomic writes).
``embed_table`` is the port the exchange uses for extracts.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy.orm import Session

from gmcrypto.keyfile import publish_private_file
from watermark import (
    Detector,
    Embedder,
    EmbedReport,
    IssuedCopy,
    NoMarkableColumns,
    Params,
    TableTooSmall,
    UnknownDataset,
    Verdict,
    WatermarkError,
)
from watermark import registry as reg

if TYPE_CHECKING:
    from quanguard.container import Container

KEY_FILE = "watermark.key"
KEY_BYTES = 32
SMALL_TABLE_CANARIES = 3


def load_secret(key_dir: Path) -> bytes:
    """Read the watermark key, creating it (0600, directory 0700) on first use."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = key_dir / KEY_FILE
    if not path.exists():  # whole or absent, whoever of several workers makes it
        publish_private_file(path, secrets.token_bytes(KEY_BYTES))
    data = path.read_bytes()
    if len(data) != KEY_BYTES:
        raise WatermarkError(f"{path}: a watermark key must be {KEY_BYTES} bytes, "
                             f"this file has {len(data)}")
    return data


def file_digest(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(frozen=True)
class EmbedOutcome:
    """An embedding written to ``path``."""

    report: EmbedReport
    path: str
    digest: str
    columns: tuple[str, ...]


class WatermarkService:
    """Embeds and detects marks for one container."""

    def __init__(self, container: Container) -> None:
        self._container = container

    @cached_property
    def secret(self) -> bytes:
        return load_secret(Path(self._container.settings.key_dir))

    def bounded(self, params: Params | None, grade: str | None = None) -> Params:
        """``params`` with the usability bound of the watermark policy (``watermark.yaml``:
        the profile of the dataset's grade, the default profile for a grade it does not
        map, the highest mapped grade's for no grade); callers choose the rest (gamma,
        columns, keys, canaries), never the bound."""
        policy = self._container.policy.bundle.watermark  # None: no watermark.yaml
        base = params or Params()
        return policy.for_grade(grade).params(base) if policy is not None else base

    # -- files ------------------------------------------------------------------------
    def embed_file(self, src: str, dst: str, recipient: str, params: Params,
                   progress: Callable[[int], None] | None = None) -> EmbedOutcome:
        """Mark ``src`` into ``dst`` (same format as ``dst``'s extension); nothing is
        written at ``dst`` if the table cannot carry a mark. ``progress`` gets the rows of
        each batch written."""
        from desensitize.tableio import open_table, open_writer

        source = open_table(src)
        encoding = source.encoding if source.format in ("csv", "tsv") else None
        emb = Embedder(self.secret, recipient, params)
        rolling = hashlib.sha256()  # for a SQL target, a digest of the rows written
        with open_writer(dst, encoding=encoding, schema=source.schema) as writer:
            for batch in source.iter_batches():
                marked = emb.mark(batch)
                writer.write(marked)
                _digest_batch(rolling, marked)
                if progress is not None:
                    progress(batch.num_rows)
            extra = emb.canaries()
            if extra is not None:
                writer.write(extra)
                _digest_batch(rolling, extra)
            report = emb.report()  # raises before the writer commits
        digest = file_digest(dst) if "://" not in dst else rolling.hexdigest()
        return EmbedOutcome(report, dst, digest, tuple(source.column_names))

    def detect_file(self, path: str, copies: list[IssuedCopy], alpha: float,
                    progress: Callable[[int], None] | None = None) -> Verdict:
        """Verdict on a suspect table file; ``progress`` gets the rows of each batch read."""
        from desensitize.tableio import open_table

        det = Detector(self.secret, copies, alpha=alpha)
        source = open_table(path)
        fed = False
        for batch in source.iter_batches():
            det.feed(batch)
            fed = True
            if progress is not None:
                progress(batch.num_rows)
        if not fed:
            det.feed(pa.RecordBatch.from_pylist([], schema=source.schema))
        return det.verdict()

    # -- registry ---------------------------------------------------------------------
    def copies(self, session: Session, dataset: str | None) -> list[IssuedCopy]:
        """Issued copies to test against; ``UnknownDataset`` if there are none."""
        found = reg.list_copies(session, dataset)
        if not found:
            raise UnknownDataset(dataset or "(any)", tuple(reg.datasets(session)))
        return [r.copy for r in found]

    def register(self, session: Session, *, dataset: str, report: EmbedReport,
                 columns: tuple[str, ...], digest: str, issued_by: str) -> str:
        return reg.add_copy(session, dataset=dataset, report=report, columns=list(columns),
                            output_digest=digest, issued_by=issued_by)

    # -- the exchange's port ----------------------------------------------------------
    def embed_table(self, table: pa.Table, recipient: str, *,
                    dataset: str = "exchange-extract",
                    pseudonyms: tuple[str, ...] = (), grade: str | None = None) -> pa.Table:
        """Mark an in-memory extract within the watermark policy's bound for ``grade``
        (the dataset's) and register the copy (own transaction).

        ``pseudonyms``: the columns the masking made up (``fake``, ``hash``); those whose
        values a pseudonym mark fits carry marks (recorded in the plan, so detection needs
        no hint). A table too small for a statistical mark, or with no column that can
        carry one, gets canary rows instead.
        """
        from dataclasses import replace

        from watermark.columns import pseudonym_columns

        params = self.bounded(None, grade)
        if params.mark_pseudonyms and pseudonyms:  # the policy may keep pseudonyms unchanged
            params = replace(params, pseudonyms=pseudonym_columns(table, tuple(pseudonyms)))
        out, report = self._embed_in_memory(table, recipient, params)
        digest = _table_digest(out)
        with self._container.unit_of_work() as session:
            self.register(session, dataset=dataset, report=report,
                          columns=tuple(table.column_names), digest=digest,
                          issued_by="exchange")
        return out

    def _embed_in_memory(self, table: pa.Table, recipient: str,
                         params: Params) -> tuple[pa.Table, EmbedReport]:
        from watermark import embed_table

        try:
            return embed_table(table, self.secret, recipient, params)
        except (TableTooSmall, NoMarkableColumns):
            if params.canaries:
                raise
            return embed_table(table, self.secret, recipient,
                               Params(**{**params.__dict__, "canaries": SMALL_TABLE_CANARIES}))


def _digest_batch(h: Any, batch: pa.RecordBatch) -> None:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    h.update(sink.getvalue())


def _table_digest(table: pa.Table) -> str:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def build_watermarker(container: Container) -> WatermarkService:
    return WatermarkService(container)
