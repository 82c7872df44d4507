"""``quanguard spark scan|mask|watermark``: the table kernels on a Spark cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Protocol

import typer
from rich.table import Table

from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import OutputFormat, console, emit

spark_app = typer.Typer(
    help="Scan, mask and watermark big tables on Spark (Parquet or CSV in, Parquet out).",
    no_args_is_help=True)

_Format = Annotated[OutputFormat, typer.Option("--format", help="table (people) or json (machines)")]
_Master = Annotated[str | None, typer.Option(
    "--master", help="Spark master (local[2], yarn, k8s://...); default: spark-submit's or local[*]")]
_InFormat = Annotated[str | None, typer.Option(
    "--input-format", help="parquet, csv or tsv (default: from the path; a folder is Parquet)")]
_Encoding = Annotated[str | None, typer.Option("--encoding", help="CSV encoding (default UTF-8)")]
_Src = Annotated[str, typer.Argument(metavar="IN", help="Parquet file or folder, or CSV/TSV")]
_Out = Annotated[str, typer.Option("-o", "--output", help="Parquet folder to write (must not exist)")]
_Dataset = Annotated[str | None, typer.Option("--dataset", help="Dataset name for policy and audit")]


class _Result(Protocol):
    def to_dict(self) -> dict[str, object]: ...


def _report(fmt: OutputFormat, result: _Result, line: Callable[[], str]) -> None:
    """The job's result as JSON (machines) or ``line()`` (people)."""
    if fmt is OutputFormat.json:
        emit(result.to_dict())
    else:
        console().print(line())


@spark_app.command("scan")
def scan(
    src: _Src,
    sample: Annotated[int, typer.Option("--sample", help="Rows to sample (seeded random)")] = 10_000,
    full: Annotated[bool, typer.Option("--full", help="Scan every row instead of a sample")] = False,
    master: _Master = None,
    input_format: _InFormat = None,
    encoding: _Encoding = None,
    dataset: _Dataset = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Classify and grade the columns of IN on Spark (every partition runs the table
    scanner's kernels), store the report in the asset inventory, record one audit event."""
    from quanguard.usecases import spark as uc

    with use_container() as container:
        out = uc.scan(container, cli_principal(container), src, master=master, fmt=input_format,
                      encoding=encoding, sample=sample, full=full, dataset=dataset)
    if fmt is OutputFormat.json:
        emit(out.to_dict())
        return
    table = Table("column", "entity", "grade", "confidence", "kind",
                  title=f"{src}: {out.report.rows_scanned:,} rows on {out.partitions} partitions, "
                        f"grade {out.report.dataset_grade}")
    for c in out.report.columns:
        table.add_row(c.name, c.entity or "-", c.grade or "-", f"{c.confidence:.2f}", c.kind)
    console().print(table)


@spark_app.command("mask")
def mask(
    src: _Src,
    out: _Out,
    profile: Annotated[str | None, typer.Option("--profile", help="Masking profile (开放, 共享 default, 分析)")] = None,
    plan: Annotated[str | None, typer.Option("--plan", help="Plan file (YAML/JSON) overriding columns")] = None,
    key_file: Annotated[str | None, typer.Option("--key-file", help="32-byte key file (default: key dir)")] = None,
    sample: Annotated[int, typer.Option("--sample", help="Rows sampled to build the plan")] = 10_000,
    master: _Master = None,
    input_format: _InFormat = None,
    encoding: _Encoding = None,
    dataset: _Dataset = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Mask IN on Spark into the Parquet folder OUT with the service's keys and profiles;
    every cell equals what `quanguard mask` writes with the same keys and plan."""
    from quanguard.usecases import spark as uc

    with use_container() as container:
        result = uc.mask(container, cli_principal(container), src, out, master=master,
                         fmt=input_format, encoding=encoding, profile=profile, plan_file=plan,
                         key_file=key_file, sample=sample, dataset=dataset)
    _report(fmt, result, lambda: f"{out}: {result.rows_out:,} rows, {result.cells_masked:,} cells "
                                 f"masked (profile {result.profile}, {result.partitions} partitions, "
                                 f"{result.seconds:.1f} s)")


@spark_app.command("watermark")
def watermark(
    src: _Src,
    out: _Out,
    recipient: Annotated[str, typer.Option("--recipient", help="Who receives this copy (id)")],
    gamma: Annotated[int, typer.Option("--gamma", help="About one cell in GAMMA of a marked column carries a bit")] = 8,
    key_column: Annotated[list[str] | None, typer.Option("--key-column", help="Primary-key column (repeatable)")] = None,
    column: Annotated[list[str] | None, typer.Option("--column", help="Column to mark (repeatable)")] = None,
    master: _Master = None,
    input_format: _InFormat = None,
    encoding: _Encoding = None,
    dataset: _Dataset = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Mark IN for RECIPIENT on Spark into the Parquet folder OUT and register the copy;
    `quanguard watermark detect` traces a leak of it."""
    from quanguard.usecases import spark as uc
    from watermark import Params

    params = Params(gamma=gamma, key_columns=tuple(key_column or ()), columns=tuple(column or ()))
    with use_container() as container:
        result = uc.watermark(container, cli_principal(container), src, out,
                              recipient=recipient, master=master, fmt=input_format,
                              encoding=encoding, dataset=dataset, params=params)
    _report(fmt, result, lambda: f"{out}: copy {result.copy_id} of {result.dataset} for {recipient}: "
                                 f"{result.report.rows:,} rows, {result.report.marked_cells:,} marked "
                                 f"cells ({result.partitions} partitions, {result.seconds:.1f} s)")


def register(app: typer.Typer) -> None:
    app.add_typer(spark_app, name="spark")
