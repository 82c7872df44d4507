"""``quanguard backup`` / ``quanguard restore``: the store, the keys and the data files."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import OutputFormat, console, emit


def backup(
    out: Annotated[Path, typer.Argument(help="The archive to write, e.g. quanguard-2026-11-26.tar.gz")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table (people) or json (machines)")] = OutputFormat.table,
) -> None:
    """Write the database, the key folder and the data files to OUT (a .tar.gz with a sha256 manifest)."""
    from quanguard.usecases import backup as uc

    with use_container() as container:
        actor = cli_principal(container)
        decision = uc.authorize_backup(container, actor, "backup")
        summary = uc.backup(container, out)
        uc.record(container, actor, "backup", {"archive": out.name, "sha256": summary.sha256},
                  decision)
    if fmt is OutputFormat.json:
        emit(asdict(summary))
        return
    table = Table("table", "rows", title=f"backup {summary.archive} ({summary.bytes} bytes, {summary.members} members)")
    for name, rows in sorted(summary.tables.items()):
        table.add_row(name, str(rows))
    console().print(table)
    console().print(f"sha256 {summary.sha256}")


def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by 'quanguard backup'")],
    force: Annotated[bool, typer.Option("--force", help="Replace a store that is not empty")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table (people) or json (machines)")] = OutputFormat.table,
) -> None:
    """Verify ARCHIVE against its manifest, then replace the store, keys and data files with it."""
    from quanguard.usecases import backup as uc

    with use_container() as container:
        actor = cli_principal(container)
        decision = uc.authorize_backup(container, actor, "restore")
        summary = uc.restore(container, archive, force=force)
        uc.record(container, actor, "restore", {"archive": archive.name}, decision)
    if fmt is OutputFormat.json:
        emit(asdict(summary))
        return
    console().print(
        f"restored {summary.archive}: {sum(summary.tables.values())} rows in {len(summary.tables)} tables, "
        f"{summary.keys} key files, {summary.data_files} data files"
    )


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
