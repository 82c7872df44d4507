"""``quanguard keys``: issue, list and revoke API keys (administrators)."""

from __future__ import annotations

import typer
from rich.table import Table

from quanguard.auth import KEY_ROLES
from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import FORMAT_HELP, OutputFormat, console, emit, show
from quanguard.usecases import keys as uc

keys_app = typer.Typer(help="Issue, list and revoke API keys.", no_args_is_help=True)


@keys_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(KEY_ROLES)}"),
    org: str = typer.Option(..., "--org", help="The principal's organisation, e.g. 市人社局"),
    name: str = typer.Option(..., "--name", help="A unique name for the key holder"),
) -> None:
    """Create a principal and print its new API key (only the key, on stdout; shown once)."""
    with use_container() as container:
        issued = uc.issue_key(container, cli_principal(container), role=role, org=org, name=name)
    typer.echo(issued.key)


@keys_app.command("list")
def list_(fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help=FORMAT_HELP)) -> None:
    """List key holders with role, org and status (never the keys)."""
    with use_container() as container:
        infos = uc.keys_overview(container, cli_principal(container))
    rows = [
        {
            "name": i.principal.name,
            "role": i.principal.role,
            "org": i.principal.org,
            "prefix": f"qg_{i.prefix}_…",
            "status": i.status,
            "created_at": i.created_at.isoformat(timespec="seconds"),
        }
        for i in infos
    ]
    if fmt is OutputFormat.json:
        emit(rows)
        return
    table = Table("name", "role", "org", "prefix", "status", "created", title="API keys")
    for column in table.columns:
        column.overflow = "fold"  # a narrow terminal wraps; nothing is cut with an ellipsis
    for r in rows:
        table.add_row(r["name"], r["role"], r["org"], r["prefix"], r["status"], r["created_at"])
    console().print(table)


@keys_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The key holder's name")) -> None:
    """Revoke the key of NAME; it stops working at once."""
    with use_container() as container:
        subject = uc.revoke(container, cli_principal(container), name)
    typer.echo(f"revoked {subject.name} ({subject.role}, {subject.org})")


@keys_app.command("rotate-master")
def rotate_master(fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help=FORMAT_HELP)) -> None:
    """Re-wrap every dataset key under a new master key (audited). The old key id and the
    new one are printed, never the keys. Stop other service processes first: a running
    service keeps the old key in memory until it restarts."""
    from quanguard.usecases.rotate import rotate_master as rotate

    with use_container() as container:
        done = rotate(container, cli_principal(container))
    if fmt is OutputFormat.json:
        emit(done.to_dict())
        return
    show(done.to_dict(), title="master key rotated")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
