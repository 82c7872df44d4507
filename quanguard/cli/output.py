"""Output for people and machines, relative times and progress bars; imports only Rich.

Every command prints either a Rich table/panel (``--format table``, the default for people)
or exactly one JSON document (``--format json``). :func:`show` renders any JSON-shaped value
as tables: a dict becomes a two-column field/value table (nested lists of records become
their own tables), a list of records becomes one table. Nothing is printed as a Python repr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeGuard, TypeVar

from rich.console import Console
from rich.table import Table

T = TypeVar("T")

__all__ = [
    "OutputFormat",
    "bar",
    "console",
    "count_records",
    "emit",
    "err_console",
    "panel",
    "parse_when",
    "progress",
    "show",
    "table_of",
]


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


FORMAT_HELP = "table (Rich table for people) or json (one JSON object for machines)"


def console() -> Console:
    """Rich console on stdout. Not a terminal -> no width limit, so nothing is cut at 80."""
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, soft_wrap=True, width=None if tty else 10_000)


def err_console() -> Console:
    return Console(file=sys.stderr, soft_wrap=True)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int | Enum):
        return str(getattr(value, "value", value))
    return json.dumps(value, ensure_ascii=False, default=str)


def _records(value: object) -> TypeGuard[list[dict[str, object]]]:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def table_of(rows: list[dict[str, object]], title: str | None = None) -> Table:
    """One table of records; the columns are the union of their keys, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table


def show(obj: object, title: str | None = None, out: Console | None = None) -> None:
    """Render a JSON-shaped value as Rich tables (never a repr)."""
    out = out or console()
    if _records(obj):
        out.print(table_of(obj, title))
        return
    if isinstance(obj, dict):
        nested = {k: v for k, v in obj.items() if _records(v)}
        fields = {k: v for k, v in obj.items() if k not in nested}
        if fields:
            table = Table(title=title, show_header=False)
            table.add_column("field", style="bold")
            table.add_column("value", overflow="fold")
            for key, value in fields.items():
                table.add_row(str(key), _cell(value))
            out.print(table)
        for key, value in nested.items():
            out.print(table_of(value, str(key)))
        if not obj:
            out.print(Table(title=title or "(empty)"))
        return
    if isinstance(obj, list):
        table = Table(title=title, show_header=False)
        table.add_column("value", overflow="fold")
        for item in obj:
            table.add_row(_cell(item))
        out.print(table)
        return
    out.print(_cell(obj), markup=False, highlight=False)


def panel(text: str, title: str | None = None, style: str = "green") -> None:
    """A one-message result for people (a Rich panel; ``text`` may use Rich markup)."""
    from rich.panel import Panel

    console().print(Panel(text, title=title, border_style=style, expand=False))


def emit(obj: object, fmt: OutputFormat | str = OutputFormat.json, title: str | None = None) -> None:
    """Exactly one JSON document on stdout (``json``), or Rich tables (``table``)."""
    if str(getattr(fmt, "value", fmt)) == "json":
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    else:
        show(obj, title)


def parse_when(value: str | None, *, option: str = "--since", now: datetime | None = None) -> datetime | None:
    """``15m``/``24h``/``7d``/``2w`` (that long before now) or an RFC 3339 time, as UTC.

    A bad value raises :class:`typer.BadParameter`, which the CLI turns into exit 2.
    """
    if value is None or value == "":
        return None
    import typer

    from monitor.errors import InvalidEvent
    from monitor.events import parse_ago  # the API's reading of relative times too

    try:
        ago = parse_ago(value, now)
    except InvalidEvent as exc:
        raise typer.BadParameter(exc.message, param_hint=option) from exc
    if ago is not None:
        return ago
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or "T" not in text.upper() and " " not in text:
        raise typer.BadParameter(
            f"{value!r} is neither a relative time (15m, 24h, 7d, 2w) nor an RFC 3339 time "
            "(2026-01-31T08:00:00Z)", param_hint=option)
    if when.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no time zone (add Z or +08:00)", param_hint=option)
    return when.astimezone(UTC)


_LINE_SUFFIXES = {".txt": 0, ".jsonl": 0, ".ndjson": 0, ".csv": 1, ".tsv": 1}


def count_records(path: str) -> int | None:
    """Records in a local line-based file (lines, less the header of a CSV/TSV), for a
    progress total; None when it cannot be known cheaply. Counted only for a terminal."""
    import os

    suffix = os.path.splitext(path)[1].lower()
    if not sys.stderr.isatty() or suffix not in _LINE_SUFFIXES or not os.path.isfile(path):
        return None
    lines, last = 0, b"\n"
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return None
    lines += last != b"\n"
    return max(lines - _LINE_SUFFIXES[suffix], 0)


@contextmanager
def bar(label: str, total: int | None, *, unit: str = "rows", absolute: bool = False
        ) -> Iterator[Any]:
    """A bar on stderr when stderr is a terminal, else ``None`` (nothing drawn). With a
    known ``total``: percentage, done/total and ETA; without: the count and elapsed time.
    The callback takes a count done so far (``absolute``) or an increment."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    known = total is not None and total > 0
    columns: list[ProgressColumn | str] = [TextColumn(label), BarColumn(bar_width=None)]
    if known:
        columns += [TaskProgressColumn(), MofNCompleteColumn(), TextColumn(unit), TextColumn("ETA"),
                    TimeRemainingColumn()]
    else:
        columns += [TextColumn("{task.completed:,} " + unit), TimeElapsedColumn()]
    with Progress(*columns, console=err_console(), transient=True) as shown:
        task = shown.add_task(label, total=total if known else None)

        def update(n: int) -> None:
            if absolute:
                shown.update(task, completed=n)
            else:
                shown.advance(task, n)

        yield update


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Any]:
    """A bar with percentage and ETA on stderr, only when stderr is a terminal and the
    total is known; otherwise a no-op. Yields ``advance(n)``."""
    if total is None or total <= 0 or not sys.stderr.isatty():
        yield lambda n=1: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=err_console(),
                  transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)


def iter_progress(items: Iterable[T], label: str, total: int | None) -> Iterator[T]:
    with progress(label, total) as advance:
        for item in items:
            yield item
            advance(1)
