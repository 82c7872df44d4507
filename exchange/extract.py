"""Extracts (可用可取): a masked copy, watermarked for its recipient, as CSV or Parquet.

Only reached when policy allows ``extract`` for the dataset's grade; the masking profile
and whether to watermark come from the decision's obligations.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from exchange.errors import InvalidQuery, Refused
from exchange.ports import MaskedTable, Masker, Watermarker

FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class ExtractOutput:
    data: bytes
    rows: int
    columns: tuple[str, ...]
    fmt: str
    watermarked: bool


def make_extract(
    table: pa.Table, *, masker: Masker | None, watermarker: Watermarker | None,
    profile: str | None, recipient: str, watermark: bool, fmt: str, dataset: str,
    row_limit: int | None = None, grade: str | None = None,
) -> ExtractOutput:
    """Mask, then watermark (the columns the masking made up included), then re-scan,
    then serialise ``table``.

    Raises Refused when masking or marking is required but unavailable, the table is
    larger than the policy's row limit, or the re-scan of the marked copy still finds an
    entity the profile does not let out; InvalidQuery for an unknown format.
    """
    if fmt not in FORMATS:
        raise InvalidQuery(f"extract format must be one of {' '.join(FORMATS)}")
    if row_limit is not None and table.num_rows > row_limit:
        raise Refused(f"dataset has {table.num_rows} rows; policy row_limit is {row_limit}")
    if not profile:
        raise Refused("policy names no masking profile for this extract; refusing an unmasked copy")
    if masker is None:
        raise Refused("masking is not available in this service; extract refused")
    masked = masker.mask_table(table, profile)
    out, pseudonyms = ((masked.table, masked.pseudonyms) if isinstance(masked, MaskedTable)
                       else (masked, ()))
    if watermark:
        if watermarker is None:
            raise Refused("watermarking is required by policy but not available; extract refused")
        try:
            # Made-up values (fakes, keyed pseudonyms) carry marks too: the masking plan
            # knows which columns they are, the leaked copy need not say.
            out = watermarker.embed_table(out, recipient, dataset=dataset,
                                          pseudonyms=pseudonyms, grade=grade)
        except Exception as exc:  # the port's refusal of this table (kind "invalid"): a decision
            if getattr(exc, "kind", None) != "invalid":
                raise
            raise Refused(f"watermarking is required by policy but this extract cannot carry "
                          f"a mark: {exc}") from exc
    found = masker.leaks(out, profile)
    if found:
        raise Refused("the re-scan of the copy before it leaves found what profile "
                      f"{profile!r} does not allow: {'; '.join(found)}; extract refused")
    buf = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(out, buf)
    else:
        pq.write_table(out, buf)
    return ExtractOutput(buf.getvalue(), out.num_rows, tuple(out.column_names), fmt, watermark)
