"""Dataset catalog: metadata in the database, rows encrypted at rest as Parquet.

A consumer only ever sees :class:`Dataset` metadata (columns, grades, bounds, allowed
computations); the rows come out of :meth:`Catalog.load_table` inside the service, for
computation, and never through an endpoint.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.crypto import MasterKey, open_sealed, sealed_suite, sha256_hex
from exchange.errors import DatasetExists, DatasetNotFound, IntegrityFailure, InvalidDataset
from exchange.numbers import check_bounds
from exchange.ports import Caller, Grading
from exchange.tables import datasets
from gmcrypto import SuiteMismatch

COMPUTATIONS = ("count", "sum", "mean", "quantile", "histogram", "psi", "extract")
_NAME = re.compile(r"^[\w.\-]{1,200}$")
_MAX_GROUP_CARDINALITY = 1000
# the columns a Dataset is read from (the subject sketches are read only at registration)
_META = tuple(c for c in datasets.c if c.name != "subject_sketch")


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    grade: str | None
    numeric: bool


@dataclass(frozen=True)
class Dataset:
    """Public description of a registered dataset (what consumers may see)."""

    name: str
    owner_org: str
    owner_id: str
    grade: str
    columns: tuple[ColumnInfo, ...]
    key_columns: tuple[str, ...]
    group_columns: tuple[str, ...]
    bounds: Mapping[str, tuple[float, float]]
    computations: tuple[str, ...]
    rows: int
    digest: str
    created_at: datetime
    max_contributions: int = 1
    truncate_contributions: bool = False
    family: str | None = None
    declared_grade: str | None = None
    family_overlap: float | None = None

    @property
    def budget_family(self) -> str:
        """The name ε budgets are kept under: the family's first dataset (or this one)."""
        return self.family or self.name

    def column(self, name: str) -> ColumnInfo:
        for col in self.columns:
            if col.name == name:
                return col
        known = " ".join(c.name for c in self.columns)
        raise InvalidDataset(f"dataset {self.name!r} has no column {name!r} (known: {known})")

    def to_public(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "owner_org": self.owner_org,
            "grade": self.grade,
            "rows": self.rows,
            "max_contributions": self.max_contributions,
            "digest": self.digest,
            "columns": [
                {
                    "name": c.name, "type": c.type, "grade": c.grade,
                    "key": c.name in self.key_columns,
                    "groupable": c.name in self.group_columns,
                    "bounds": list(self.bounds[c.name]) if c.name in self.bounds else None,
                }
                for c in self.columns
            ],
            "key_columns": list(self.key_columns),
            "group_columns": list(self.group_columns),
            "computations": list(self.computations),
            "created_at": self.created_at.isoformat(),
            "declared_grade": self.declared_grade,
            "budget_family": self.budget_family,
        }


def _is_numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


MAX_CONTRIBUTIONS = 100


def _contributions(table: pa.Table, keys: tuple[str, ...], declared: int | None,
                   identifiers: Iterable[str] = ()) -> tuple[int, bool]:
    """Rows per subject the DP sensitivity must cover: the most rows any key value has,
    capped by ``declared`` (rows beyond it are dropped at query time).

    Without a key column the rows cannot be told apart by person, and every row is taken
    to be a different subject. That holds only where nothing names a person, so it fails
    closed: a table in which the scanner found columns naming people (``identifiers``:
    resident ID, passport, phone, bank card, name, ... under any header; not an
    organisation's code or an address) and no key column is refused, naming them — one
    person's many rows would each count toward ``min_group_size`` and the noise would
    assume one row each. Declaring the key is the way on: where every row is a different
    subject the observed rows per key value are 1 and nothing changes. A declared row cap
    without a key column is refused too: there is nothing to count or drop rows by."""
    if declared is not None and not 1 <= declared <= MAX_CONTRIBUTIONS:
        raise InvalidDataset(f"max rows per subject must be between 1 and {MAX_CONTRIBUTIONS}")
    if not keys:
        found = set(identifiers)
        named = [c for c in table.column_names if c in found]
        if named:
            cols = ", ".join(repr(c) for c in named)
            raise InvalidDataset(
                f"column(s) {cols} name people (the scanner recognised them), but no key "
                f"column is declared: every row would count as a different person, so one "
                f"person's many rows could make a group look large enough to release. "
                f"Declare the column that names whom each row is about as key_column "
                f"(key_column={named[0]}; CLI: --key-column {named[0]}) — if every row is a "
                f"different subject this changes no result, and the service checks it; if "
                f"a subject may have more than {MAX_CONTRIBUTIONS} rows, declare "
                f"max_rows_per_subject too. The key column is the PSI match column: leave "
                f"psi out of computation to offer none")
        if declared is not None:
            raise InvalidDataset(
                "max rows per subject needs a key column: rows are counted and dropped per "
                "key value; declare the column that names the person as key_column")
        return 1, False
    counts = pc.value_counts(table.column(keys[0]).drop_null()).field("counts")
    observed = int(pc.max(counts).as_py() or 1) if len(counts) else 1
    if declared is None and observed > MAX_CONTRIBUTIONS:
        raise InvalidDataset(
            f"a subject of {keys[0]!r} has {observed} rows; declare max rows per subject "
            f"(at most {MAX_CONTRIBUTIONS}) so each subject's influence is bounded")
    if declared is not None and observed > declared:
        return declared, True
    return observed, False


def _default_group_columns(
    table: pa.Table, *, exclude: set[str], identifiers: Iterable[str]
) -> tuple[str, ...]:
    """Low-cardinality, non-identifying, non-numeric columns may be grouped on."""
    banned = exclude | set(identifiers)
    limit = min(_MAX_GROUP_CARDINALITY, max(1, table.num_rows // 10))
    out = []
    for field in table.schema:
        if field.name in banned or _is_numeric(field.type):
            continue
        if int(pc.count_distinct(table.column(field.name)).as_py()) <= limit:
            out.append(field.name)
    return tuple(out)


class Catalog:
    """Registry of datasets. Methods take the caller's session and never commit."""

    def __init__(self, data_dir: Path, master: MasterKey, *, cache_size: int = 2) -> None:
        self._dir = Path(data_dir)
        self._master = master
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def register(
        self, session: Session, *, name: str, table: pa.Table, owner: Caller, grading: Grading,
        now: datetime, key_columns: Iterable[str] = (),
        bounds: Mapping[str, tuple[float, float]] | None = None,
        computations: Iterable[str] | None = None, group_columns: Iterable[str] | None = None,
        max_contributions: int | None = None, family: str | None = None,
        declared_grade: str | None = None, subject_sketch: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Validate, encrypt and store ``table``; return its metadata.

        Raises InvalidDataset (bad name, unknown column, bad bounds, empty table,
        identifier columns without a key column, a row cap without one) or DatasetExists.
        """
        if not _NAME.match(name):
            raise InvalidDataset(f"dataset name {name!r}: use letters, digits, '_', '-', '.'")
        if table.num_rows == 0:
            raise InvalidDataset(f"dataset {name!r} has no rows")
        if session.execute(select(datasets.c.name).where(datasets.c.name == name)).first():
            raise DatasetExists(name)
        names = set(table.column_names)
        keys = tuple(dict.fromkeys(key_columns))
        for col in keys:
            if col not in names:
                raise InvalidDataset(f"key column {col!r} is not in the table ({' '.join(table.column_names)})")
        clean_bounds: dict[str, tuple[float, float]] = {}
        for col, (lo, hi) in (bounds or {}).items():
            if col not in names:
                raise InvalidDataset(f"bounds for unknown column {col!r}")
            if not _is_numeric(table.schema.field(col).type):
                raise InvalidDataset(f"bounds given for non-numeric column {col!r}")
            clean_bounds[col] = check_bounds(col, lo, hi)
        comps = tuple(computations) if computations is not None else COMPUTATIONS
        for comp in comps:
            if comp not in COMPUTATIONS:
                raise InvalidDataset(f"unknown computation {comp!r} (known: {' '.join(COMPUTATIONS)})")
        if group_columns is None:
            groups = _default_group_columns(table, exclude=set(keys), identifiers=grading.identifiers)
        else:
            groups = tuple(group_columns)
            for col in groups:
                if col not in names:
                    raise InvalidDataset(f"group column {col!r} is not in the table")
                if col in keys:
                    raise InvalidDataset(f"key column {col!r} cannot be a group column")
        people = grading.identifiers if grading.people is None else grading.people
        contrib, truncate = _contributions(table, keys, max_contributions, people)
        columns = tuple(
            ColumnInfo(f.name, str(f.type), grading.columns.get(f.name), _is_numeric(f.type))
            for f in table.schema
        )
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        plain = buf.getvalue()
        data_key = self._master.new_data_key()
        blob = f"{sha256_hex(name.encode())[:24]}-{os.urandom(4).hex()}.bin"
        _write_private(self._dir / blob, self._master.seal_data(data_key, plain, name))
        ds = Dataset(
            name=name, owner_org=owner.org, owner_id=owner.id, grade=grading.grade,
            columns=columns, key_columns=keys, group_columns=groups, bounds=clean_bounds,
            computations=comps, rows=table.num_rows, digest=self._master.suite.hexdigest(plain), created_at=now,
            max_contributions=contrib, truncate_contributions=truncate,
            family=family or name, declared_grade=declared_grade,
        )
        session.execute(datasets.insert().values(
            name=name, owner_org=owner.org, owner_id=owner.id, grade=ds.grade,
            columns=[{"name": c.name, "type": c.type, "grade": c.grade, "numeric": c.numeric}
                     for c in columns],
            key_columns=list(keys), group_columns=list(groups),
            bounds={k: list(v) for k, v in clean_bounds.items()}, computations=list(comps),
            rows=ds.rows, max_contributions=contrib, truncate_contributions=truncate, digest=ds.digest, wrapped_key=self._master.wrap(data_key, name),
            blob=blob, created_at=now, family=ds.family, declared_grade=declared_grade,
            subject_sketch=dict(subject_sketch) if subject_sketch else None,
        ))
        return ds

    def sketches(self, session: Session) -> list[tuple[str, str, Mapping[str, Any]]]:
        """``(name, family, subject sketches)`` of every dataset that has sketches."""
        rows = session.execute(select(datasets.c.name, datasets.c.family, datasets.c.subject_sketch)
                               .order_by(datasets.c.created_at, datasets.c.name))
        return [(r[0], r[1] or r[0], r[2]) for r in rows if r[2]]

    def family_members(self, session: Session, family: str) -> list[str]:
        rows = session.execute(select(datasets.c.name).where(
            (datasets.c.family == family) | (datasets.c.name == family)))
        return sorted({str(r[0]) for r in rows})

    def get(self, session: Session, name: str) -> Dataset:
        row = session.execute(select(*_META).where(datasets.c.name == name)).mappings().first()
        if row is None:
            raise DatasetNotFound(name)
        return _to_dataset(row)

    def list(self, session: Session) -> list[Dataset]:
        rows = session.execute(select(*_META).order_by(datasets.c.name)).mappings()
        return [_to_dataset(r) for r in rows]

    def load_table(self, session: Session, name: str,
                   columns: Sequence[str] | None = None) -> pa.Table:
        """Decrypt and return the rows of ``name`` (only ``columns`` when given). For
        computation inside the service only. The decrypted Parquet bytes of the most
        recently used datasets are kept in memory; columns are decoded per call.

        Raises IntegrityFailure when the stored file fails authentication or its digest.
        """
        plain = self._plaintext(session, name)
        return pq.read_table(pa.BufferReader(plain), columns=list(columns) if columns is not None else None)

    def _plaintext(self, session: Session, name: str) -> bytes:
        row = session.execute(
            select(datasets.c.digest, datasets.c.wrapped_key, datasets.c.blob)
            .where(datasets.c.name == name)
        ).first()
        if row is None:
            raise DatasetNotFound(name)
        digest, wrapped, blob = row
        with self._lock:
            cached = self._cache.get((name, digest))
            if cached is not None:
                self._cache.move_to_end((name, digest))
                return cached
        data_key = self._master.unwrap(wrapped, name)
        try:
            sealed = (self._dir / blob).read_bytes()
        except OSError as exc:
            raise IntegrityFailure(f"encrypted file of {name!r} is missing: {exc}") from exc
        # the rows are sealed under the deployment's suite (a dataset never opens under a
        # suite it was not made for: switch with reseal_datasets)
        if sealed_suite(sealed).name != self._master.suite.name:
            raise SuiteMismatch(f"dataset {name!r}", sealed_suite(sealed).name,
                                self._master.suite.name,
                                "re-encrypt the datasets with 'quanguard keys rotate-master'")
        plain = open_sealed(data_key, sealed, name.encode())
        if self._master.suite.hexdigest(plain) != digest:
            raise IntegrityFailure(f"dataset {name!r} does not match its recorded digest")
        with self._lock:
            if self._cache_size > 0:
                self._cache[(name, digest)] = plain
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return plain

    def blob_path(self, session: Session, name: str) -> Path:
        row = session.execute(select(datasets.c.blob).where(datasets.c.name == name)).first()
        if row is None:
            raise DatasetNotFound(name)
        return self._dir / str(row[0])


def _write_private(path: Path, data: bytes) -> None:
    """Write an encrypted blob as 0600 in a 0700 folder (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def rewrap_keys(session: Session, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap every dataset's data key from ``old`` to ``new`` in the caller's transaction
    (the blobs stay as they are); returns how many. Raises IntegrityFailure when a key does
    not open with ``old`` — then nothing should be committed."""
    rows = session.execute(select(datasets.c.name, datasets.c.wrapped_key)).all()
    for name, wrapped in rows:
        data_key = old.unwrap(bytes(wrapped), name)
        session.execute(datasets.update().where(datasets.c.name == name)
                        .values(wrapped_key=new.wrap(data_key, name)))
    return len(rows)


def reseal_datasets(session: Session, data_dir: Path, old: MasterKey, new: MasterKey
                    ) -> list[Path]:
    """Move every dataset to ``new``'s crypto suite: open it with ``old``, seal its rows
    with a fresh data key under ``new.suite`` (SM4-GCM for gm), wrap that key with ``new``
    and record the new digest, in the caller's transaction. New blob files are written
    first; the old ones are returned for the caller to delete after the commit (a failed
    transaction leaves every old blob and key as it was). Raises IntegrityFailure when a
    dataset does not open with ``old`` — then nothing should be committed."""
    stale: list[Path] = []
    rows = session.execute(select(datasets.c.name, datasets.c.wrapped_key, datasets.c.blob,
                                  datasets.c.digest)).all()
    for name, wrapped, blob, digest in rows:
        sealed = (Path(data_dir) / str(blob)).read_bytes()
        suite = sealed_suite(sealed)
        plain = open_sealed(old.unwrap(bytes(wrapped), name), sealed, name.encode())
        if suite.hexdigest(plain) != digest:
            raise IntegrityFailure(f"dataset {name!r} does not match its recorded digest")
        key = new.new_data_key()
        fresh = f"{sha256_hex(name.encode())[:24]}-{os.urandom(4).hex()}.bin"
        _write_private(Path(data_dir) / fresh, new.seal_data(key, plain, name))
        session.execute(datasets.update().where(datasets.c.name == name).values(
            wrapped_key=new.wrap(key, name), blob=fresh, digest=new.suite.hexdigest(plain)))
        stale.append(Path(data_dir) / str(blob))
    return stale


def _to_dataset(row: Any) -> Dataset:
    return Dataset(
        name=row["name"], owner_org=row["owner_org"], owner_id=row["owner_id"],
        grade=row["grade"],
        columns=tuple(ColumnInfo(c["name"], c["type"], c.get("grade"), bool(c["numeric"]))
                      for c in row["columns"]),
        key_columns=tuple(row["key_columns"]), group_columns=tuple(row["group_columns"]),
        bounds={k: (float(v[0]), float(v[1])) for k, v in row["bounds"].items()},
        computations=tuple(row["computations"]), rows=int(row["rows"]), digest=row["digest"],
        created_at=row["created_at"], max_contributions=int(row["max_contributions"] or 1),
        truncate_contributions=bool(row["truncate_contributions"]),
        family=row.get("family") or row["name"], declared_grade=row.get("declared_grade"),
    )
