"""watermark: invisible per-recipient marks in tables, and leak tracing (数据水印, 溯源).

A domain library: plain values in, plain values out; no web framework, no service imports.
Embed with :func:`embed_table` / :class:`Embedder` (streaming), detect with
:func:`detect_table` / :class:`Detector`; :mod:`watermark.registry` holds the issued copies.
Carriers are chosen by their values (:mod:`watermark.profile`), rows are found by the key
or by quasi-identifier sets (:mod:`watermark.identity`), and detection tests each carrier
and all of them combined (:mod:`watermark.scoring`).
"""

from __future__ import annotations

from watermark.codes import binomial_tail, bits_needed
from watermark.detect import Detector, detect_batches, detect_table
from watermark.embed import Embedder, embed_batches, embed_table, needed_marks
from watermark.errors import (
    KeyMismatch,
    MissingKeyColumns,
    NoCommonColumns,
    NoMarkableColumns,
    TableTooSmall,
    UnknownDataset,
    WatermarkError,
)
from watermark.hashing import codeword, key_fingerprint
from watermark.models import (
    Candidate,
    Carrier,
    ColumnReport,
    EmbedReport,
    IssuedCopy,
    Params,
    Plan,
    Source,
    Verdict,
    check_alpha,
)

__all__ = [
    "Candidate",
    "Carrier",
    "ColumnReport",
    "Detector",
    "EmbedReport",
    "Embedder",
    "IssuedCopy",
    "KeyMismatch",
    "MissingKeyColumns",
    "NoCommonColumns",
    "NoMarkableColumns",
    "Params",
    "Plan",
    "Source",
    "TableTooSmall",
    "UnknownDataset",
    "Verdict",
    "WatermarkError",
    "binomial_tail",
    "bits_needed",
    "check_alpha",
    "codeword",
    "detect_batches",
    "detect_table",
    "embed_batches",
    "embed_table",
    "key_fingerprint",
    "needed_marks",
]
