"""``quanguard report``: the officers' monthly report as one HTML file (and a PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import console


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
    Run it with an officer's or auditor's key in QUANGUARD_API_KEY."""
    from quanguard.gate import RequestContext
    from quanguard.report import html_to_pdf
    from quanguard.report_html import render_html
    from quanguard.usecases.report import monthly_report

    with use_container() as container:
        principal = cli_principal(container)
        data = monthly_report(container, principal, month, RequestContext(),
                              fmt="html+pdf" if pdf else "html")
    html = render_html(data)
    out.write_text(html, encoding="utf-8")
    console().print(f"wrote {out} ({len(html.encode())} bytes)")
    if pdf is not None:
        html_to_pdf(html, pdf)
        console().print(f"wrote {pdf}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
