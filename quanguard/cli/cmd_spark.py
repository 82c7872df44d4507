"""``quanguard spark scan|mask|watermark``: the table kernels on a Spark cluster."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, get_type_hints

import typer
from rich.table import Table

from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import OutputFormat, console, emit

spark_app = typer.Typer(
    help="Scan, mask and watermark big tables on Spark (Parquet or CSV in, Parquet out).",
    no_args_is_help=True)

_Src = Annotated[str, typer.Argument(metavar="IN", help="Parquet file or folder, or CSV/TSV")]
_Out = Annotated[str, typer.Option("-o", "--output", help="Parquet folder to write (must not exist)")]


@dataclass(frozen=True)
class _Job:
    """The options every spark command takes after its own: where the job runs, how IN is
    read, the dataset's name, and how the result is shown."""

    master: Annotated[str | None, typer.Option(
        "--master", help="Spark master (local[2], yarn, k8s://...); default: spark-submit's or local[*]")] = None
    input_format: Annotated[str | None, typer.Option(
        "--input-format", help="parquet, csv or tsv (default: from the path; a folder is Parquet)")] = None
    encoding: Annotated[str | None, typer.Option("--encoding", help="CSV encoding (default UTF-8)")] = None
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset name for policy and audit")] = None
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="table (people) or json (machines)")] = OutputFormat.table


# typer reads a command's options from its signature only (fastapi/typer#153), so
# ``_job_command`` appends these to each command's own parameters.
_JOB_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=hint, default=getattr(_Job, name))
    for name, hint in get_type_hints(_Job, include_extras=True).items()
]


def _job_command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``body`` as ``quanguard spark NAME``: its own parameters, then the options
    of :class:`_Job`, which it receives as ``job``."""

    def register(body: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(body, eval_str=True).parameters.values() if p.name != "job"]

        def command(**params: Any) -> None:
            job = _Job(**{option.name: params.pop(option.name) for option in _JOB_OPTIONS})
            body(**params, job=job)

        command.__doc__ = body.__doc__
        command.__signature__ = inspect.Signature([*own, *_JOB_OPTIONS])  # type: ignore[attr-defined]
        spark_app.command(name)(command)
        return body

    return register


class _Result(Protocol):
    def to_dict(self) -> dict[str, object]: ...


def _report(fmt: OutputFormat, result: _Result, line: Callable[[], str]) -> None:
    """The job's result as JSON (machines) or ``line()`` (people)."""
    if fmt is OutputFormat.json:
        emit(result.to_dict())
    else:
        console().print(line())


@_job_command("scan")
def scan(
    src: _Src,
    sample: Annotated[int, typer.Option("--sample", help="Rows to sample (seeded random)")] = 10_000,
    full: Annotated[bool, typer.Option("--full", help="Scan every row instead of a sample")] = False,
    *,
    job: _Job,
) -> None:
    """Classify and grade the columns of IN on Spark (every partition runs the table
    scanner's kernels), store the report in the asset inventory, record one audit event."""
    from quanguard.usecases import spark as uc

    with use_container() as container:
        out = uc.scan(container, cli_principal(container), src, master=job.master,
                      fmt=job.input_format, encoding=job.encoding, sample=sample, full=full,
                      dataset=job.dataset)
    if job.fmt is OutputFormat.json:
        emit(out.to_dict())
        return
    table = Table("column", "entity", "grade", "confidence", "kind",
                  title=f"{src}: {out.report.rows_scanned:,} rows on {out.partitions} partitions, "
                        f"grade {out.report.dataset_grade}")
    for c in out.report.columns:
        table.add_row(c.name, c.entity or "-", c.grade or "-", f"{c.confidence:.2f}", c.kind)
    console().print(table)


@_job_command("mask")
def mask(
    src: _Src,
    out: _Out,
    profile: Annotated[str | None, typer.Option("--profile", help="Masking profile (开放, 共享 default, 分析)")] = None,
    plan: Annotated[str | None, typer.Option("--plan", help="Plan file (YAML/JSON) overriding columns")] = None,
    key_file: Annotated[str | None, typer.Option("--key-file", help="32-byte key file (default: key dir)")] = None,
    sample: Annotated[int, typer.Option("--sample", help="Rows sampled to build the plan")] = 10_000,
    *,
    job: _Job,
) -> None:
    """Mask IN on Spark into the Parquet folder OUT with the service's keys and profiles;
    every cell equals what `quanguard mask` writes with the same keys and plan."""
    from quanguard.usecases import spark as uc

    with use_container() as container:
        result = uc.mask(container, cli_principal(container), src, out, master=job.master,
                         fmt=job.input_format, encoding=job.encoding, profile=profile,
                         plan_file=plan, key_file=key_file, sample=sample, dataset=job.dataset)
    _report(job.fmt, result, lambda: f"{out}: {result.rows_out:,} rows, {result.cells_masked:,} cells "
                                 f"masked (profile {result.profile}, {result.partitions} partitions, "
                                 f"{result.seconds:.1f} s)")


@_job_command("watermark")
def watermark(
    src: _Src,
    out: _Out,
    recipient: Annotated[str, typer.Option("--recipient", help="Who receives this copy (id)")],
    gamma: Annotated[int, typer.Option("--gamma", help="About one cell in GAMMA of a marked column carries a bit")] = 8,
    key_column: Annotated[list[str] | None, typer.Option("--key-column", help="Primary-key column (repeatable)")] = None,
    column: Annotated[list[str] | None, typer.Option("--column", help="Column to mark (repeatable)")] = None,
    *,
    job: _Job,
) -> None:
    """Mark IN for RECIPIENT on Spark into the Parquet folder OUT and register the copy;
    `quanguard watermark detect` traces a leak of it."""
    from quanguard.usecases import spark as uc
    from watermark import Params

    params = Params(gamma=gamma, key_columns=tuple(key_column or ()), columns=tuple(column or ()))
    with use_container() as container:
        result = uc.watermark(container, cli_principal(container), src, out,
                              recipient=recipient, master=job.master, fmt=job.input_format,
                              encoding=job.encoding, dataset=job.dataset, params=params)
    _report(job.fmt, result, lambda: f"{out}: copy {result.copy_id} of {result.dataset} for {recipient}: "
                                 f"{result.report.rows:,} rows, {result.report.marked_cells:,} marked "
                                 f"cells ({result.partitions} partitions, {result.seconds:.1f} s)")


def register(app: typer.Typer) -> None:
    app.add_typer(spark_app, name="spark")
