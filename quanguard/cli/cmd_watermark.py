"""``quanguard watermark``: mark a table for a recipient, trace a leaked copy, list copies."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import OutputFormat, bar, console, count_records, emit
from quanguard.usecases import watermark as uc
from watermark import EmbedReport, Params, Verdict, check_alpha
from watermark.models import ALPHA_MIN, CANARIES_MAX, GAMMA_MAX

wm_app = typer.Typer(help="Watermark delivered tables and trace leaked copies (数据水印, 溯源).",
                     no_args_is_help=True)

_Format = Annotated[OutputFormat, typer.Option("--format", help="table (people) or json (machines)")]


@wm_app.command("embed")
def embed(
    src: Annotated[str, typer.Argument(help="Table to mark (.csv .tsv .jsonl .parquet .xlsx)")],
    out: Annotated[str, typer.Option("-o", "--output", help="Marked copy to write (format from its extension)")],
    recipient: Annotated[str, typer.Option("--recipient", help="Who receives this copy (id)")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset name in the registry (default: file name)")] = None,
    gamma: Annotated[int, typer.Option("--gamma", help=f"About one cell in GAMMA of a marked column carries a bit (1 to {GAMMA_MAX})")] = 8,
    key_column: Annotated[list[str] | None, typer.Option("--key-column", help="Primary-key column (repeatable); default: an ID column, else a virtual key")] = None,
    column: Annotated[list[str] | None, typer.Option("--column", help="Column to mark (repeatable); default: every column that can carry a mark")] = None,
    canaries: Annotated[int, typer.Option("--canaries", help=f"Per-recipient fake rows to append to a table too small to carry marks (0 to {CANARIES_MAX})")] = 0,
    pseudonym_column: Annotated[list[str] | None, typer.Option("--pseudonym-column", help="Column of values the masking made up (repeatable): fakes from the fake operator (phone, ID, bank card numbers) or hash pseudonyms; they carry marks in a keyed choice of one character (ID and card check characters recomputed). Hex pseudonyms are marked without it. The plan records the column: detect needs no hint")] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Write a copy of SRC marked for RECIPIENT to OUT and register it. Every column that
    can carry a mark does, within the watermark policy's bound: a measure moves by one
    unit of a digit chosen per cell (by default never more than 2% of the value, column
    sums kept), a date by a day inside its month, a category between equivalent spellings
    it already uses; in a masked column about half of the values hide one more character
    (138****5678 or 138*****678), the same mixture the mask operator's `variants` option
    writes for unmarked copies; a hash pseudonym or a named fake (--pseudonym-column)
    changes one keyed character. The row key never changes. Rows are found again by the
    key or by quasi-identifier sets, so a copy without its key still names its recipient.
    Fails (and writes nothing) if the table is too small to carry a mark."""
    from desensitize.tableio import check_output

    params = Params(gamma=gamma, key_columns=tuple(key_column or ()),
                    columns=tuple(column or ()), canaries=canaries,
                    pseudonyms=tuple(pseudonym_column or ()))
    check_output(out, probe=True)  # a folder, or one that takes no files: before the input is read
    with use_container() as container, bar("marking", count_records(src)) as progress:
        result = uc.embed(container, cli_principal(container), src, out, recipient=recipient,
                          dataset=dataset, params=params, progress=progress)
    if fmt is OutputFormat.json:
        emit(result.to_dict())
        return
    _print_report(result.report, f"{result.output}: copy {result.copy_id} of {result.dataset} "
                                 f"for {recipient}")


@wm_app.command("detect")
def detect(
    suspect: Annotated[str, typer.Argument(help="The suspect table (any supported format)")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Test only copies of this dataset")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help=f"Accuse only below this corrected p-value (at least {ALPHA_MIN:g}, below 1)")] = 1e-6,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Find whose copy SUSPECT is: votes on every recovered codeword bit and tests each
    registered recipient (exact binomial tail, Bonferroni-corrected). Prints "match"
    with the recipient and evidence, or "none" (no watermark found)."""
    check_alpha(alpha, "--alpha")  # before the store is opened; recorded as cli.watermark.detect
    with use_container() as container, bar("reading", count_records(suspect)) as progress:
        verdict = uc.detect(container, cli_principal(container), suspect, dataset=dataset,
                            alpha=alpha, progress=progress)
    if fmt is OutputFormat.json:
        emit(verdict.to_dict())
        return
    _print_verdict(verdict)


@wm_app.command("copies")
def copies(
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only copies of this dataset")] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """List the registered (issued) copies: recipient, dataset, time, columns, digest."""
    with use_container() as container:
        rows = [r.to_dict() for r in uc.copies(container, cli_principal(container), dataset)]
    if fmt is OutputFormat.json:
        emit(rows)
        return
    table = Table("issued", "dataset", "recipient", "rows", "marked", "by", "digest",
                  title="issued watermarked copies")
    for r in rows:
        table.add_row(r["issued_at"][:19], r["dataset"], r["recipient"], str(r["rows"]),
                      str(r["marked_cells"]), r["issued_by"], r["output_digest"][:12])
    console().print(table)


def _print_report(report: EmbedReport, title: str) -> None:
    table = Table("column", "kind", "values", "marked", "changed", "mean shift", title=title)
    for c in report.columns:
        shift = "-" if c.relative_shift is None else f"{c.relative_shift:.2e}"
        table.add_row(c.name, c.kind, str(c.values), str(c.marked), str(c.changed), shift)
    console().print(table)
    console().print(f"rows {report.rows}, marked cells {report.marked_cells}, changed "
                    f"{report.changed_cells}, canary rows {report.canary_rows}; key "
                    f"{report.plan.key_mode} ({', '.join(report.plan.key_columns)})")


def _print_verdict(verdict: Verdict) -> None:
    colour = "red" if verdict.verdict == "match" else "green"
    console().print(f"[bold {colour}]{verdict.verdict}[/]: {verdict.message}")
    table = Table("recipient", "datasets", "agreement", "p-value", "corrected", "accused",
                  title="candidates")
    for c in verdict.candidates:
        table.add_row(c.recipient, ", ".join(c.datasets), f"{c.agreement}/{c.bits}",
                      f"{c.p_value:.3g}", f"{c.p_adjusted:.3g}", "yes" if c.accused else "no")
    console().print(table)
    ev = verdict.evidence
    console().print(f"rows seen {ev.get('rows_seen')}, marked cells {ev.get('marked_cells_seen')}, "
                    f"bits recovered {ev.get('bits_recovered')} (needed {ev.get('bits_needed')}); "
                    f"{ev.get('correction')}")
    carriers = ev.get("carriers") or {}
    if carriers:
        console().print(f"rows used {ev.get('rows_used')}"
                        + (f" ({ev['share_of_copy']:.0%} of the issued copy)"
                           if ev.get("share_of_copy") else "") + "; per carrier: "
                        + ", ".join(f"{k} {d['agreement']}/{d['bits']} p={d['p_value']:.3g}"
                                    for k, d in carriers.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(wm_app, name="watermark")
