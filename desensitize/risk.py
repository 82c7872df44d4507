"""Re-identification risk: k-anonymity over quasi-identifiers (风险评估).

``KAnonymity`` counts equivalence classes (rows sharing the same quasi-identifier
values) batch by batch; ``k`` is the size of the smallest class.  A table whose
quasi-identifier columns were all suppressed has no quasi-identifiers left, and
``k`` is then the number of rows (every row looks the same).

Memory is bounded: past ``cap`` distinct classes counting stops and ``k`` is
reported as unknown (None).

``guess_quasi_identifiers(names)`` proposes quasi-identifier columns from their
headers (birth date, gender, age, district, occupation, ethnicity, education),
in Chinese, English and pinyin initials; the scanner's own flags take precedence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

_QI_HEADERS = re.compile(
    r"(出生|生日|性别|年龄|岁|区县|县区|所在区|行政区|街道|乡镇|职业|工作单位|民族|学历|婚姻|邮编|"
    r"birth|dob|gender|sex|^age$|district|county|occupation|job|ethnic|education|zip|postcode|"
    r"^csrq$|^xb$|^nl$|^zy$|^mz$|^xl$|^qx$|^jd$|^hyzk$|^yb$)",
    re.IGNORECASE,
)


def guess_quasi_identifiers(names: Iterable[str]) -> list[str]:
    return [n for n in names if _QI_HEADERS.search(n.strip())]


@dataclass(frozen=True)
class KResult:
    """Smallest equivalence class ``k``, number of classes, rows, and the columns used."""

    k: int | None
    classes: int
    rows: int
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"k": self.k, "classes": self.classes, "rows": self.rows,
                "quasi_identifiers": list(self.columns)}


class KAnonymity:
    """Streaming k-anonymity counter over ``columns``."""

    def __init__(self, columns: Sequence[str], *, cap: int = 2_000_000) -> None:
        self.columns = tuple(columns)
        self._counts: Counter[tuple[object, ...]] = Counter()
        self.rows = 0
        self.cap = cap
        self.overflow = False  # more classes than ``cap``: memory stays bounded, k unknown

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.rows += batch.num_rows
        present = [c for c in self.columns if c in batch.schema.names]
        if not present or batch.num_rows == 0 or self.overflow:
            return
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        grouped = table.select(present).group_by(present, use_threads=False).aggregate(
            [([], "count_all")]
        )
        keys = [grouped.column(c).to_pylist() for c in present]
        counts = grouped.column("count_all").to_pylist()
        for key, n in zip(zip(*keys, strict=True), counts, strict=True):
            self._counts[key] += n
        if len(self._counts) > self.cap:
            self.overflow = True
            self._counts.clear()

    def result(self, columns_left: Sequence[str] | None = None) -> KResult:
        used = tuple(c for c in self.columns if columns_left is None or c in columns_left)
        if not self.rows or self.overflow:
            return KResult(None, 0, self.rows, used)
        if not self._counts:
            return KResult(self.rows, 1, self.rows, used)
        return KResult(min(self._counts.values()), len(self._counts), self.rows, used)


def k_anonymity(batches: Iterable[pa.RecordBatch], columns: Sequence[str]) -> KResult:
    counter = KAnonymity(columns)
    for b in batches:
        counter.update(b)
    return counter.result()
