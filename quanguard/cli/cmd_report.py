"""``quanguard report``: the officers' monthly report as one HTML file (and a PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import console

if TYPE_CHECKING:
    from quanguard.errors import ErrorInfo


def report(
    month: Annotated[str, typer.Option("--month", help="The calendar month, e.g. 2026-11 "
                                                       "(in the service's zone)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write")],
    pdf: Annotated[Path | None, typer.Option(
        "--pdf", help="Also print the report to this PDF (needs headless Chromium)")] = None,
) -> None:
    """Write the monthly report of MONTH: accesses by organisation, dataset and grade,
    denials, alerts by severity and time to close, exchange jobs and ε per consumer
    organisation, top datasets, trail integrity. Reading it is recorded in the trail.
    Run it with an officer's or auditor's key in QUANGUARD_API_KEY.

    Nothing is written unless everything is: the files are made beside their targets
    before the month is read (a path that cannot be written is refused first) and
    renamed into place once the HTML and the PDF are both done."""
    from quanguard.errors import InvalidInput
    from quanguard.gate import RequestContext
    from quanguard.report import StagedFile, print_pdf
    from quanguard.report_html import render_html
    from quanguard.usecases.report import monthly_report

    staged: list[StagedFile] = []
    try:
        html_out = StagedFile(out, "report")
        staged.append(html_out)
        pdf_out = None
        if pdf is not None:
            pdf_out = StagedFile(pdf, "PDF")
            staged.append(pdf_out)
            if pdf_out.target.resolve() == html_out.target.resolve():
                raise InvalidInput("--pdf names the HTML report's own file; give the PDF a name "
                                   "of its own", field="pdf")
        with use_container() as container:
            principal = cli_principal(container)
            data = monthly_report(container, principal, month, RequestContext(),
                                  fmt="html+pdf" if pdf else "html")
        try:  # the reading is recorded (audit_report): a failure from here on is recorded too
            html = render_html(data)
            html_out.write(html.encode("utf-8"))
            if pdf_out is not None:
                pdf_out.write(print_pdf(html))
            for file in staged:
                file.commit()
        except Exception as exc:
            _record_unwritten(exc)
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (quanguard.cli.main.Terminated)
            from quanguard.cli.main import Terminated
            from quanguard.errors import ErrorInfo

            code, name = (143, "SIGTERM") if isinstance(exc, Terminated) else (130, "SIGINT")
            _record_unwritten(exc, ErrorInfo("unavailable", 503, code, f"interrupted ({name}) "
                                             "before the report was written", {}))
            raise
    finally:
        for file in staged:
            file.discard()
    console().print(f"wrote {out} ({len(html.encode())} bytes)")
    if pdf is not None:
        console().print(f"wrote {pdf}")


def _record_unwritten(exc: BaseException, info: ErrorInfo | None = None) -> None:
    """Record that the report read (and recorded as read) was not written: the event of
    the failed command (``cli.report``, outcome failure, the error as reason), which the
    root command leaves out once the use case has recorded an event."""
    from quanguard.cli.recording import record_failure
    from quanguard.errors import classify

    info = info or classify(exc)
    try:
        record_failure(("report",), exc, info, 70 if info is None else info.exit_code)
    except Exception as record_exc:  # noqa: BLE001 - the command failed already; say so
        typer.echo(f"note: this failed attempt could not be recorded in the audit trail "
                   f"({type(record_exc).__name__})", err=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
