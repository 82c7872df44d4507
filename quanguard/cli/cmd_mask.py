"""``quanguard mask IN -o OUT`` and ``quanguard unmask IN -o OUT --columns ...``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import OutputFormat, bar, console, count_records, emit
from quanguard.usecases import mask as uc

if TYPE_CHECKING:
    from desensitize.plan import MaskPlan


@contextmanager
def _progress(src: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr (rows done; percentage and ETA when the row count is known);
    only on a terminal, never on stdout."""
    with bar("masking", count_records(src)) as update:
        yield update


def _plan_table(plan: MaskPlan) -> Table:
    table = Table("column", "entity", "grade", "operator", "from", title=f"masking plan — profile {plan.profile.name}")
    for row in plan.describe():
        table.add_row(*row)
    return table


def _check_options(out: str, encoding: str | None, out_encoding: str | None) -> None:
    """Refuse an encoding that is not a text encoding and an output that cannot be a file
    (a folder, a folder that does not exist or takes no files) before the input is
    scanned; TableError."""
    from desensitize.tableio import check_output, text_codec

    for name in (encoding, out_encoding):
        if name is not None:
            text_codec(name)
    check_output(out, probe=True)


def mask(
    src: Annotated[str, typer.Argument(metavar="IN", help="Table to mask (.csv .tsv .jsonl .parquet .xlsx "
                                                             "or sqlite:///f.db#table), or a .txt file "
                                                             "(each line a record, masked span by span)")],
    out: Annotated[str, typer.Option("-o", "--output", help="Where to write the masked table (same format)")],
    profile: Annotated[str | None, typer.Option("--profile", help="Masking profile (开放, 共享 default, 分析)")] = None,
    plan: Annotated[str | None, typer.Option("--plan", help="Plan file (YAML/JSON) overriding columns")] = None,
    key_file: Annotated[str | None, typer.Option("--key-file", help="32-byte key file (default: key dir)")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Input encoding: CSV/TSV (default: detected); JSON Lines UTF-8 (default) or gbk/gb18030")] = None,
    out_encoding: Annotated[str | None, typer.Option("--out-encoding", help="Output encoding of CSV/TSV/JSON Lines (default: as input)")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset name for policy and audit")] = None,
    table: Annotated[str | None, typer.Option("--table", help="SQL table (when the URL has no #table)")] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="XLSX worksheet (default: the first)")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table (people) or json (machines)")] = OutputFormat.table,
) -> None:
    """Mask the personal information of IN into OUT by a profile, print the plan applied and
    the k-anonymity over quasi-identifiers before and after. Audited; OUT appears only on success."""
    def show(plan: MaskPlan) -> None:  # people see the plan before the (long) run starts
        if fmt is not OutputFormat.json:
            console().print(_plan_table(plan))

    with use_container() as container:
        principal = cli_principal(container)
        _check_options(out, encoding, out_encoding)
        with _progress(src) as progress:
            if uc.is_text_path(src):
                outcome = uc.mask_text_file(container, principal, src, out, profile=profile, key_file=key_file,
                                            encoding=encoding, dataset=dataset, progress=progress, on_plan=show)
            else:
                outcome = uc.mask_file(container, principal, src, out, profile=profile, plan_file=plan,
                                       key_file=key_file, encoding=encoding, out_encoding=out_encoding,
                                       dataset=dataset, progress=progress, on_plan=show,
                                       table=table, sheet=sheet)
    if fmt is OutputFormat.json:
        emit(outcome.to_dict())
        return
    r = outcome.result
    c = console()
    kb, ka = r.k_before, r.k_after
    c.print(f"rows: {r.stats.rows:,}  cells masked: {r.stats.cells:,}  spans masked in text: {r.stats.spans:,}")
    if kb.columns:
        c.print(f"k-anonymity over {', '.join(kb.columns)}: before k={kb.k}, after k={ka.k}")
    else:
        c.print("k-anonymity: no quasi-identifier columns found")
    c.print(f"wrote {out} (sha256 {outcome.output_sha256[:16]}…)")


def unmask(
    src: Annotated[str, typer.Argument(metavar="IN", help="A masked table")],
    out: Annotated[str, typer.Option("-o", "--output", help="Where to write the restored table")],
    columns: Annotated[list[str], typer.Option("--columns", help="Columns to restore: NAME or NAME:ENTITY, "
                                                                  "comma separated or repeated")],
    key_file: Annotated[str | None, typer.Option("--key-file", help="The key the table was masked with")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset name for policy and audit")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table (people) or json (machines)")] = OutputFormat.table,
) -> None:
    """Restore encrypt/fpe columns of IN. Allowed only when the policy allows `unmask` for the
    caller at the dataset's grade; every attempt, allowed or refused, is audited."""
    with use_container() as container:
        principal = cli_principal(container)
        outcome = uc.unmask_file(container, principal, src, out, columns, key_file=key_file, dataset=dataset)
    if fmt is OutputFormat.json:
        emit(outcome.to_dict())
        return
    console().print(f"restored {', '.join(outcome.columns)} in {outcome.rows:,} rows → {out}")


def register(app: typer.Typer) -> None:
    app.command("mask")(mask)
    app.command("unmask")(unmask)
