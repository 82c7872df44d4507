"""``quanguard serve``: start the HTTP service (what ``make run`` runs)."""

from __future__ import annotations

import logging

import typer

from quanguard.auth import LOCAL_OPERATOR
from quanguard.cli.common import open_container
from quanguard.cli.output import err_console
from quanguard.config import load_settings
from quanguard.logs import configure_logging


def serve(
    host: str | None = typer.Option(None, "--host", help="Address to bind (default QUANGUARD_HOST or 127.0.0.1)"),
    port: int | None = typer.Option(None, "--port", help="Port (default QUANGUARD_PORT or 8000)"),
    workers: int | None = typer.Option(
        None, "--workers", help="Worker processes (default: one per core on PostgreSQL, one on SQLite, which allows no more)"),
) -> None:
    """Migrate the store and serve the API; on the first start print a bootstrap admin key.
    Refuses to start while a key file is readable by group or others."""
    import os

    import uvicorn

    from quanguard.api.app import create_app
    from quanguard.usecases.keys import bootstrap_admin
    from quanguard.usecases.rotate import check_key_files

    # Everything the service writes (database, blobs, keys, exports) is private to its user.
    os.umask(0o077)

    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    # Judge the key folder before anything is opened, migrated or written (a wrong
    # QUANGUARD_* value is reported by open_container below, in one line).
    try:
        key_dir = load_settings(**overrides).key_dir
    except ValueError:
        key_dir = None
    if key_dir is not None:
        check_key_files(key_dir)
    container = open_container(**overrides)
    settings = container.settings
    configure_logging(settings.log_level)
    from quanguard.services.shipper import preflight_es

    # A cluster of an unsupported major version is refused here, in one line.
    preflight_es(container)
    issued = bootstrap_admin(container, LOCAL_OPERATOR)
    out = err_console()
    url = f"http://{settings.host}:{settings.port}"
    out.print(f"quanguard serving on {url}  (docs: {url}/docs, console: {url}/console)")
    out.print(f"store: {settings.db_url}   policies: {settings.policy_dir}")
    if issued is not None:
        # Shown once, on the first start only; it is not stored anywhere in clear.
        typer.echo(f"bootstrap admin key (shown once, keep it safe): {issued.key}")
    from quanguard.workers import check_workers, default_workers

    count, why = (workers, "--workers") if workers else default_workers(settings.db_url)
    check_workers(settings.db_url, count)
    out.print(f"workers: {count} ({why})")
    logging.getLogger("quanguard.workers").info("serving with %d worker(s): %s", count, why)
    if count > 1:
        container.close()  # each worker builds its own from the same environment
        os.environ["QUANGUARD_HOST"], os.environ["QUANGUARD_PORT"] = settings.host, str(settings.port)
        uvicorn.run("quanguard.workers:worker_app", factory=True, workers=count, host=settings.host,
                    port=settings.port, log_config=None, access_log=False)
        return
    app = create_app(container)
    from quanguard.workers import serving_collector

    serving_collector()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    finally:
        container.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
