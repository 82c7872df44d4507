"""SQL tables (``<url>#<table>``): read in a spread sample or in batches, written in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from desensitize.errors import TableError
from desensitize.tableio._common import _cell_text, _Columns, _Writer, check_output_path


def split_sql_url(url: str, table: str | None) -> tuple[str, str]:
    """``sqlite:///f.db#table`` → (``sqlite:///f.db``, ``table``); the fragment wins."""
    base, _, frag = url.partition("#")
    name = frag or table
    if not name:
        raise TableError("a SQL source needs a table: append #table to the URL or pass --table")
    if not name.replace("_", "").replace(".", "").isalnum():
        raise TableError(f"invalid SQL table name {name!r}")
    return base, name


def sqlite_file(url: str) -> Path | None:
    """The database file a ``sqlite:///`` URL names; None for another database, an
    in-memory one or a ``file:`` URI (left to SQLite)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return None  # create_engine says what is wrong with it
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


class SqlSource(_Columns):
    """A table of a database reachable by SQLAlchemy URL, streamed in chunks."""

    format = "sql"
    encoding = None

    def __init__(self, url: str, table: str) -> None:
        import sqlalchemy as sa

        self.path = f"{url}#{table}"
        self._url = url
        self._table = table
        db = sqlite_file(url)
        if db is not None and not db.is_file():
            # SQLite would create an empty database at a missing path just to find no table
            what = "is a folder, not a database file" if db.is_dir() else "no such database file"
            raise TableError(f"{db}: {what}")
        try:
            self._engine = sa.create_engine(url)
            md = sa.MetaData()
            self._t = sa.Table(table, md, autoload_with=self._engine)
        except sa.exc.NoSuchTableError:
            raise TableError(f"no table {table!r} in the database") from None
        except (sa.exc.SQLAlchemyError, ValueError) as exc:
            raise TableError(f"cannot open SQL source: {str(exc).splitlines()[0]}") from None
        self._set_names([c.name for c in self._t.columns])

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]:
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(sa.select(self._t))
            while rows := result.fetchmany(batch_size):
                cols = list(zip(*rows, strict=True))
                yield pa.RecordBatch.from_arrays(
                    [pa.array([_cell_text(v) for v in c], pa.string()) for c in cols],
                    schema=self._schema,
                )

    def sample_batches(self, n: int = 10_000) -> Iterator[pa.RecordBatch]:
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(self._t)).scalar() or 0
            if total <= n:
                windows = [(0, total)]
            else:  # a few windows spread over the table
                per = max(1, n // 8)
                windows = [(int(total * w / 8), per) for w in range(8)]
            for offset, limit in windows:
                rows = conn.execute(sa.select(self._t).offset(offset).limit(limit)).fetchall()
                if rows:
                    cols = list(zip(*rows, strict=True))
                    yield pa.RecordBatch.from_arrays(
                        [pa.array([_cell_text(v) for v in c], pa.string()) for c in cols],
                        schema=self._schema,
                    )


class SqlWriter(_Writer):
    """Writes a new table (all TEXT columns) and swaps it in by rename in one transaction."""

    def __init__(self, url: str, table: str, schema: pa.Schema | None) -> None:
        import secrets

        import sqlalchemy as sa

        self._sa = sa
        self._url = url
        self._table = table
        self._tmp_name = f"_{table}_tmp_{secrets.token_hex(4)}"
        self._db = sqlite_file(url)
        if self._db is not None:
            check_output_path(self._db)  # a folder, or a folder that does not exist: not "retry"
        self.schema = schema
        self._engine = sa.create_engine(url)
        self._t: Any = None
        self._done = False
        self.rows = 0

    def _ensure(self, schema: pa.Schema) -> None:
        sa = self._sa
        if self._t is None:
            md = sa.MetaData()
            table = sa.Table(self._tmp_name, md, *[sa.Column(n, sa.Text) for n in schema.names])
            try:
                md.create_all(self._engine)
            except sa.exc.OperationalError as exc:
                if self._db is not None and "unable to open database file" in str(exc):
                    # a folder that takes no files (/proc, /sys, read-only): not "retry shortly"
                    raise TableError(f"{self._db}: cannot write the output there (SQLite "
                                     "cannot create the database file); choose a file in a "
                                     "folder you can write to") from None
                raise
            self._t = table

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.schema = self.schema or batch.schema
        self._ensure(self.schema)
        rows = batch.to_pylist()
        self.rows += len(rows)
        if rows:
            with self._engine.begin() as conn:
                conn.execute(self._t.insert(), [{k: (None if v is None else str(v)) for k, v in r.items()} for r in rows])

    def close(self) -> None:
        if self._done:
            return
        sa = self._sa
        if self.schema is None:
            raise TableError("nothing written and no schema given")
        self._ensure(self.schema)
        prep = self._engine.dialect.identifier_preparer
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {prep.quote(self._table)}"))
                conn.execute(
                    sa.text(
                        f"ALTER TABLE {prep.quote(self._tmp_name)} RENAME TO {prep.quote(self._table)}"
                    )
                )
        except sa.exc.SQLAlchemyError:
            self.abort()
            raise
        self._done = True
        self._engine.dispose()

    def abort(self) -> None:
        self._done = True
        if self._t is not None:
            self._t.drop(self._engine, checkfirst=True)
        self._engine.dispose()
