"""The root command. Every ``quanguard/cli/cmd_<area>.py`` adds its commands via ``register``.

Errors are translated here, once: a service or domain error prints ``error: message`` on
stderr and exits with the code from :data:`quanguard.errors.ERROR_TABLE`; anything else
prints a one-line internal error (no traceback) and exits 70.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import typer
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from quanguard.errors import classify
from quanguard.logs import scrub

__all__ = ["build_app", "main"]


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the one border where errors become exit codes
            info = classify(exc)
            if info is None:
                typer.echo(f"error: internal error ({type(exc).__name__}): {scrub(str(exc))}", err=True)
                raise typer.Exit(70) from None
            typer.echo(f"error: {scrub(info.message)}", err=True)
            raise typer.Exit(info.exit_code) from None


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
    import quanguard.cli as pkg

    for name in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_")):
        importlib.import_module(f"quanguard.cli.{name}").register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    app = build_app()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="quanguard")


if __name__ == "__main__":  # pragma: no cover
    main()
