"""``quanguard policy``: check, test and explain the graded policy files (local, no DB)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quanguard.cli.output import OutputFormat, console, emit, err_console
from quanguard.usecases import policy as uc

policy_app = typer.Typer(
    help="Check, test and explain the graded policy files.", no_args_is_help=True
)

_DIR_HELP = "Policy directory (default: QUANGUARD_POLICY_DIR, else ./policies)"
_DirArg = Annotated[Path | None, typer.Argument(help=_DIR_HELP, show_default=False)]
_Format = Annotated[OutputFormat, typer.Option("--format", help="table (people) or json")]


def _show(outcome: uc.CheckReport | uc.TestRun, fmt: OutputFormat,
          people: Callable[[], None]) -> None:
    """JSON (machines), or each problem as file:line: message and then ``people()``; exit 1
    when the outcome is not ok."""
    if fmt is OutputFormat.json:
        emit(outcome.to_dict())
    else:
        for problem in outcome.problems:
            typer.echo(str(problem))
        people()
    if not outcome.ok:
        raise typer.Exit(1)


@policy_app.command("check")
def check(directory: _DirArg = None, fmt: _Format = OutputFormat.table) -> None:
    """Validate every policy file; print each problem as file:line: message (exit 1)."""
    report = uc.check(directory)

    def people() -> None:
        if report.ok:
            console().print(
                f"[green]ok[/green] {report.directory}: {report.rules} rules, "
                f"{len(report.files)} files, version {report.version[:12]}"
            )
        else:
            err_console().print(
                f"[red]{len(report.problems)} problem(s)[/red] in {report.directory}")

    _show(report, fmt, people)


@policy_app.command("test")
def test(directory: _DirArg = None, fmt: _Format = OutputFormat.table) -> None:
    """Run the cases in DIR/tests/*.yaml; pass/fail per case with the deciding rule."""
    run = uc.run_tests(directory)

    def people() -> None:
        if run.results:
            table = Table(
                "", "case", "request", "expected", "decided", title=f"policy cases ({run.directory})"
            )
            for result in run.results:
                case, decision = result.case, result.decision
                mark = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
                request = f"{case.principal.role} {case.action} {case.resource.grade or '-'}"
                expected = f"{case.effect} {case.rule or '(no rule)'}"
                got = f"{decision.effect} {decision.rule_id or '(no rule)'}"
                table.add_row(mark, case.name, request, expected, got)
            console().print(table)
            for result in run.results:
                for failure in result.failures:
                    typer.echo(f"{result.case.where}: {result.case.name}: {failure}")
        summary = f"{sum(r.passed for r in run.results)}/{len(run.results)} cases passed"
        if run.ok:
            console().print(f"[green]{summary}[/green]")
        else:
            err_console().print(f"[red]{summary}; {len(run.problems)} problem(s)[/red]")

    _show(run, fmt, people)


@policy_app.command("explain")
def explain(
    role: Annotated[str, typer.Option("--role", help="Role of the principal")],
    action: Annotated[str, typer.Option("--action", help="Action asked for, e.g. aggregate")],
    grade: Annotated[str | None, typer.Option("--grade", help="Grade of the data, e.g. L3")] = None,
    org: Annotated[str, typer.Option("--org", help="Organisation of the principal")] = "市大数据局",
    owner_org: Annotated[
        str | None, typer.Option("--owner-org", help="Organisation owning the data")
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset asked for (shown in the explanation)")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Declared purpose of the access")] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help=_DIR_HELP, show_default=False)
    ] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Show the decision for one request and why: every candidate rule in order."""
    result = uc.explain(
        directory,
        role=role,
        org=org,
        action=action,
        grade=grade,
        owner_org=owner_org,
        dataset=dataset,
        purpose=purpose,
    )
    if fmt is OutputFormat.json:
        emit(result.to_dict())
        return
    d = result.decision
    colour = {"allow": "green", "deny": "red", "approval_required": "yellow"}[d.effect]
    out = console()
    out.print(f"[bold {colour}]{d.effect}[/bold {colour}]  {d.reason}")
    out.print(
        f"rule: {d.rule_id or '(none — default deny)'}   version: {d.policy_version[:12]}"
    )
    if d.obligations:
        out.print("obligations: " + ", ".join(f"{k}={v}" for k, v in d.obligations.items()))
    table = Table(
        "rule",
        "effect",
        "priority",
        "where",
        "holds",
        "note",
        title="candidate rules in evaluation order",
    )
    for t in result.candidates:
        table.add_row(t.rule_id, t.effect, str(t.priority), t.where,
                      "yes" if t.holds else "no", t.note)
    if result.candidates:
        out.print(table)
    else:
        out.print("no rule mentions this role, action and grade")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
