"""The root command. The command modules are listed in :data:`COMMANDS` and imported only
when one of their commands runs (or shows its own ``--help``), so ``quanguard --help`` and
the HTTP-client commands start without loading Presidio, spaCy, pyarrow or DuckDB.

Errors are translated here, once: a service or domain error prints ``error: message`` on
stderr and exits with the code from :data:`quanguard.errors.ERROR_TABLE`; anything else
prints a one-line internal error (no traceback) and exits 70. A usage error of a command
(exit 2) and an interruption (Ctrl-C: 130; SIGTERM, turned into the same interruption so
the writers remove their temp files: 143) are recorded like any failure; help is not.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import signal
import sys
import threading
from types import FrameType
from typing import Any

import typer
from typer._click.core import Command, Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup

__all__ = ["COMMANDS", "build_app", "main"]

#: command name -> (module under quanguard.cli, one-line help for the root ``--help``).
#: Every command is listed here, in one place (``tests/quanguard/test_registration.py``
#: checks that no ``cmd_*`` module is left out).
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("cmd_audit", "The audit trail: ingest, verify, checkpoints, proofs, search."),
    "backup": ("cmd_backup", "Write the database, the key folder and the data files to an archive."),
    "exchange": ("cmd_exchange", "Privacy exchange: catalog, DP aggregates, PSI, extracts, approvals."),
    "keys": ("cmd_keys", "Issue, list and revoke API keys."),
    "mask": ("cmd_mask", "Mask the personal information of a file by a profile."),
    "policy": ("cmd_policy", "Check, test and explain the graded policy files."),
    "report": ("cmd_report", "Write the monthly report of a month as one HTML file (and a PDF)."),
    "restore": ("cmd_backup", "Verify an archive against its manifest, then replace the store."),
    "scan": ("cmd_scan", "Find personal information in a file, type and grade each column."),
    "serve": ("cmd_serve", "Migrate the store and serve the API."),
    "spark": ("cmd_spark", "Scan, mask and watermark big tables on Spark (Parquet or CSV in, Parquet out)."),
    "unmask": ("cmd_mask", "Restore encrypt/fpe columns of a file."),
    "watermark": ("cmd_watermark", "Watermark delivered tables and trace leaked copies (数据水印, 溯源)."),
}


class _Group(TyperGroup):
    """The root group: commands load on first use; errors become exit codes."""

    _loaded_modules: set[str]
    _own: dict[str, Command]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loaded_modules = set()
        self._own = {}
        super().__init__(*args, **kwargs)

    # ``commands`` is read by Click/Typer and by tools walking the tree: reading it loads all.
    @property  # type: ignore[override]
    def commands(self) -> dict[str, Command]:
        for module, _help in COMMANDS.values():
            self._load(module)
        return self._own

    @commands.setter
    def commands(self, value: dict[str, Command]) -> None:
        self._own = dict(value)

    def add_command(self, cmd: Command, name: str | None = None) -> None:
        self._own[name or str(cmd.name)] = cmd

    def _load(self, module: str) -> None:
        if module in self._loaded_modules:
            return
        self._loaded_modules.add(module)
        sub = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
        importlib.import_module(f"quanguard.cli.{module}").register(sub)
        sub.callback()(_noop)
        for name, cmd in typer.main.get_group(sub).commands.items():
            self._own.setdefault(name, cmd)

    def list_commands(self, ctx: Context) -> list[str]:
        return sorted(set(self._own) | set(COMMANDS))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self._own and cmd_name in COMMANDS:
            self._load(COMMANDS[cmd_name][0])
        return self._own.get(cmd_name)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        for name in names:
            cmd = self._own.get(name)
            if cmd is not None:
                if not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit)))
            elif name in COMMANDS:
                rows.append((name, COMMANDS[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: Context) -> Any:
        from quanguard.gate import reset_recorded, stop_tracking

        tracking = reset_recorded(None)  # counts the events this command commits
        argv = [*ctx._protected_args, *ctx.args]  # the invocation consumes them
        try:
            _refuse_undecodable(argv)
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError):
            raise
        except ClickException as exc:  # a usage error of a command: typer prints it
            if exc.exit_code != 0 and argv and argv[0] in COMMANDS:
                from quanguard.errors import ErrorInfo

                usage = ErrorInfo("invalid", 400, exc.exit_code, f"usage: {exc.format_message()}", {})
                _record_failure(ctx, argv, exc, usage, exc.exit_code)
            raise
        except KeyboardInterrupt as exc:
            from quanguard.errors import ErrorInfo

            code, name = (143, "SIGTERM") if isinstance(exc, Terminated) else (130, "SIGINT")
            message = f"interrupted ({name}) before it finished"
            typer.echo(f"error: {message}", err=True)
            _record_failure(ctx, argv, exc, ErrorInfo("unavailable", 503, code, message, {}), code)
            raise typer.Exit(code) from None
        except Exception as exc:  # noqa: BLE001 - the one border where errors become exit codes
            from quanguard.errors import classify
            from quanguard.logs import scrub

            info = classify(exc)
            code = 70 if info is None else info.exit_code
            if info is None:
                typer.echo(f"error: internal error ({type(exc).__name__}): {scrub(_printable(str(exc)))}",
                           err=True)
            else:
                typer.echo(f"error: {scrub(_printable(info.message))}", err=True)
            _record_failure(ctx, argv, exc, info, code)
            raise typer.Exit(code) from None
        finally:
            stop_tracking(tracking)


def _refuse_undecodable(args: list[str]) -> None:
    """Refuse an argument that is not text: bytes that are not UTF-8 reach Python as lone
    surrogates (PEP 383), which no name, record or file can hold."""
    from quanguard.errors import InvalidInput

    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"argument {_printable(arg)[:120]!r} is not valid UTF-8 text; rename the file "
                "(or give it a UTF-8 name with a link) and pass text names") from None


def _printable(text: str) -> str:
    """``text`` with each lone surrogate shown as its escape (it cannot be printed)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _record_failure(ctx: Context, argv: list[str], exc: BaseException, info: Any, code: int) -> None:
    """Record the failed command unless it already left an event (quanguard.cli.recording)."""
    from quanguard.gate import was_recorded

    if was_recorded() or not argv:
        return
    path = [argv[0]]
    group = COMMANDS.get(argv[0]) and ctx.command
    sub = group.get_command(ctx, argv[0]) if isinstance(group, TyperGroup) else None
    if isinstance(sub, TyperGroup) and len(argv) > 1 and not argv[1].startswith("-"):
        path.append(argv[1])
    try:
        from quanguard.cli.recording import record_failure

        record_failure(tuple(_printable(p)[:60] for p in path), exc, info, code)
    except Exception as record_exc:  # noqa: BLE001 - the command failed already; say so
        typer.echo(f"note: this failed attempt could not be recorded in the audit trail "
                   f"({type(record_exc).__name__})", err=True)


def _noop() -> None:
    """(commands of one module)"""


def build_app() -> typer.Typer:
    app = typer.Typer(
        cls=_Group,
        name="quanguard",
        help="Data-security supervision and privacy computation for the city's public-data platform.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )
    app.callback()(_root)
    return app


def _root() -> None:
    """Data-security supervision and privacy computation for the city's public-data platform."""


# Once a command is done the interpreter's last collections walk every object it made
# (0.1 s and more after an ingest of 100,000 events) to free what the process gives back
# anyway: files and connections are closed by then, so they are skipped.
atexit.register(gc.freeze)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, like Ctrl-C: the writers' clean-up runs (no
    ``.part`` file is left) and the attempt is recorded (exit 143)."""


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)  # ``serve`` installs its server's own
    app = build_app()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="quanguard")


if __name__ == "__main__":  # pragma: no cover
    main()
