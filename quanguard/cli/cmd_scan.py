"""``quanguard scan PATH``: find and grade personal information in a table or text file."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import OutputFormat, bar, console, count_records, emit
from quanguard.usecases import scan as uc

_BIG = 8 * 1024 * 1024


@contextmanager
def _progress(path: str, unit: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for large local files (never on stdout; only on a terminal),
    with percentage and ETA when the number of records is known."""
    if not sys.stderr.isatty() or "://" in path or not os.path.isfile(path) or os.path.getsize(path) < _BIG:
        yield None
        return
    with bar("scanning", count_records(path), unit=unit, absolute=True) as update:
        yield update


def scan(
    path: Annotated[str, typer.Argument(help="A table (.csv .tsv .jsonl .parquet .xlsx), a SQLAlchemy "
                                              "URL (sqlite:///f.db#table), or a .txt file (one record per line)")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table (people) or json (machines)")] = OutputFormat.table,
    sample: Annotated[int, typer.Option("--sample", help="Rows to sample, spread over the file")] = 10_000,
    full: Annotated[bool, typer.Option("--full", help="Scan every row instead of a sample")] = False,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Inventory name (default: file name)")] = None,
) -> None:
    """Find personal information in PATH, type and grade each column, and record the result
    in the asset inventory. A .txt file is scanned line by line (each line one record)."""
    with use_container() as container:
        principal = cli_principal(container)
        if uc.is_text_path(path):
            with _progress(path, "lines") as progress:
                result = uc.scan_text_file(container, principal, path, dataset=dataset, progress=progress)
            if fmt is OutputFormat.json:
                emit(result.to_dict())
                return
            _print_text(result)
            return
        if full:
            _lean_arrow_pool()
        with _progress(path, "rows") as progress:
            report, stored = uc.scan_table(container, principal, path, sample=sample, full=full,
                                           dataset=dataset, progress=progress)
    if fmt is OutputFormat.json:
        emit({**report.to_dict(), "asset_id": stored.id, "dataset": stored.dataset,
              "version": stored.version})
        return
    table = Table("column", "entity", "confidence", "hit rate", "grade", "notes",
                  title=f"{stored.dataset} v{stored.version}: dataset grade {report.dataset_grade}")
    for col in report.columns:
        notes = []
        if col.contains:
            notes.append("contains " + ", ".join(f"{e}×{n}" for e, n in col.contains))
        if col.quasi_identifier:
            notes.append(f"quasi-identifier ({col.quasi_identifier})")
        table.add_row(col.name, col.entity or "-", f"{col.confidence:.2f}", f"{col.hit_rate:.0%}",
                      col.grade or "-", "; ".join(notes))
    out = console()
    out.print(table)
    mode = "sample" if report.sampled else "full scan"
    out.print(f"rows scanned: {report.rows_scanned:,} ({mode})")
    if report.quasi_identifiers:
        out.print(f"quasi-identifiers: {', '.join(report.quasi_identifiers)}; "
                  f"smallest equivalence class k = {report.k_anonymity}")


def _lean_arrow_pool() -> None:
    """A full scan of a multi-GB file streams batches; jemalloc hands freed batch memory
    back sooner than Arrow's default pool here (peak RSS ~35 MB lower on a 300 MB CSV)."""
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, AttributeError):  # build without jemalloc
        pass


def _print_text(result: uc.TextFileResult) -> None:
    table = Table("line", "start", "end", "entity", "score",
                  title=f"{len(result.findings)} finding(s) in {result.lines} line(s)")
    for lf in result.findings:
        f = lf.finding
        table.add_row(str(lf.line), str(f.start), str(f.end), f.entity, f"{f.score:.2f}")
    console().print(table)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
