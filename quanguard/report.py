"""The monthly report for compliance officers: one month of the trail at a glance.

``gather(session, month="2026-11", tz=..., generated_by=...)`` reads, for the calendar
month in the service's zone: accesses by organisation, dataset and grade; denials; alerts by
severity and their time to close; exchange jobs and ε spent per consumer organisation;
the top datasets; and the trail's integrity (last verification, last exported checkpoint
and its age). ``render_html`` (``quanguard.report_html``) turns it into one
self-contained HTML page (inline SVG charts, no external resources); ``html_to_pdf``
prints that page to PDF with headless Chromium where it is installed, into a fresh file
that must hold a PDF before it replaces the target; :class:`StagedFile` writes a report
file beside its target and renames it into place.

The use case :func:`quanguard.usecases.report.monthly_report` asks the gate (policy
action ``audit_search``) and records the reading (``audit_report``, with the month and
the format) in the same unit of work as the read.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from monitor.events import utc_now
from monitor.store import ALERTS, CHECKPOINTS, EVENTS, VERIFY_RUNS, from_us, to_us
from quanguard.errors import InvalidInput, ServiceError, Unavailable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["MonthlyReport", "StagedFile", "gather", "html_to_pdf", "month_range", "print_pdf"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
TOP = 10
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# a write that failed for want of room or a working disk, not for the path chosen
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def month_range(month: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of ``YYYY-MM`` in ``tz``; InvalidInput for anything else."""
    m = _MONTH.match(month or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 2999:
        raise InvalidInput(f"month {month[:20]!r} must look like 2026-11", field="month")
    year, mon = int(m.group(1)), int(m.group(2))
    zone = ZoneInfo(tz)
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return start, end


@dataclass(frozen=True)
class MonthlyReport:
    month: str
    tz: str
    generated: datetime
    generated_by: str
    total_events: int
    accesses: int
    by_org: list[tuple[str, int]]
    by_dataset: list[tuple[str, int]]
    by_grade: list[tuple[str, int]]
    denials: int
    denials_by_org: list[tuple[str, int]]
    denials_by_action: list[tuple[str, int]]
    alerts_by_severity: list[tuple[str, int]]
    close_hours: list[tuple[str, int, float | None]]  # severity, closed, median hours
    open_alerts: int
    jobs: list[tuple[str, int, int, float]]  # consumer org, jobs, finished, epsilon
    exchange_available: bool
    integrity: dict[str, Any] = field(default_factory=dict)


def _grouped(session: Session, col: sa.ColumnElement[Any], conds: list[sa.ColumnElement[bool]], limit: int | None = None
             ) -> list[tuple[str, int]]:
    n = sa.func.count()
    stmt = (sa.select(col, n).where(*conds, col.is_not(None)).group_by(col)
            .order_by(n.desc(), col))
    if limit:
        stmt = stmt.limit(limit)
    return [(str(k), int(c)) for k, c in session.execute(stmt)]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _exchange(session: Session, start: datetime, end: datetime
              ) -> tuple[bool, list[tuple[str, int, int, float]]]:
    from exchange.tables import jobs, ledger

    names = set(sa.inspect(session.connection()).get_table_names())
    if not {jobs.name, ledger.name} <= names:
        return False, []  # a build without the exchange area
    rows: dict[str, list[float]] = {}
    for org, status in session.execute(sa.select(jobs.c.consumer_org, jobs.c.status).where(
            jobs.c.created_at >= start, jobs.c.created_at < end)):
        entry = rows.setdefault(str(org), [0, 0, 0.0])
        entry[0] += 1
        entry[1] += status == "done"
    spent = sa.select(jobs.c.consumer_org, sa.func.sum(ledger.c.epsilon)).join(
        jobs, jobs.c.id == ledger.c.job_id).where(
        ledger.c.at >= start, ledger.c.at < end).group_by(jobs.c.consumer_org)
    for org, eps in session.execute(spent):
        rows.setdefault(str(org), [0, 0, 0.0])[2] = float(eps or 0.0)
    return True, sorted(((k, int(v[0]), int(v[1]), float(v[2])) for k, v in rows.items()),
                        key=lambda r: (-r[3], -r[1], r[0]))


def _integrity(session: Session, now: datetime) -> dict[str, Any]:
    run = session.execute(sa.select(VERIFY_RUNS).order_by(VERIFY_RUNS.c.id.desc()).limit(1)
                          ).first()
    # the newest exported one (tree sizes restart in each trail generation after a hand-over)
    cp = session.execute(sa.select(CHECKPOINTS).where(CHECKPOINTS.c.exported.is_not(None))
                         .order_by(CHECKPOINTS.c.generation.desc().nulls_last(),
                                   CHECKPOINTS.c.tree_size.desc()).limit(1)).first()
    out: dict[str, Any] = {"verify": None, "checkpoint": None}
    if run is not None:
        at = from_us(run.ts)
        out["verify"] = {"at": at, "ok": bool(run.ok), "tree_size": int(run.tree_size),
                         "damage": run.damage, "bad_seq": run.bad_seq,
                         "age_hours": (now - at).total_seconds() / 3600}
    if cp is not None:
        exported = from_us(cp.exported)
        out["checkpoint"] = {"tree_size": int(cp.tree_size), "exported": exported,
                             "created": from_us(cp.created),
                             "age_hours": (now - exported).total_seconds() / 3600}
    return out


def gather(session: Session, *, month: str, tz: str, generated_by: str) -> MonthlyReport:
    """The report of ``month`` (``YYYY-MM`` in ``tz``) from the trail in ``session``."""
    start, end = month_range(month, tz)
    now = utc_now()
    span = [EVENTS.c.ts >= to_us(start), EVENTS.c.ts < to_us(end)]
    access = [*span, EVENTS.c.dataset.is_not(None),
              sa.or_(EVENTS.c.effect.is_(None), EVENTS.c.effect != "deny")]
    denied = [*span, EVENTS.c.effect == "deny"]
    total = int(session.execute(sa.select(sa.func.count()).select_from(EVENTS)
                                .where(*span)).scalar_one())
    accesses = int(session.execute(sa.select(sa.func.count()).select_from(EVENTS)
                                   .where(*access)).scalar_one())
    by_org = _grouped(session, EVENTS.c.org, access, TOP)
    by_dataset = _grouped(session, EVENTS.c.dataset, access, TOP)
    by_grade = _grouped(session, EVENTS.c.grade, access)
    denials = int(session.execute(sa.select(sa.func.count()).select_from(EVENTS)
                                  .where(*denied)).scalar_one())
    denials_by_org = _grouped(session, EVENTS.c.org, denied, TOP)
    denials_by_action = _grouped(session, EVENTS.c.action, denied, TOP)
    # Alerts belong to the month of the events they are about (window start).
    in_month = [ALERTS.c.window_start >= to_us(start), ALERTS.c.window_start < to_us(end)]
    severities = dict(_grouped(session, ALERTS.c.severity, in_month))
    closing: dict[str, list[float]] = {}
    open_alerts = 0
    for sev, status, created, updated in session.execute(sa.select(
            ALERTS.c.severity, ALERTS.c.status, ALERTS.c.created, ALERTS.c.updated)
            .where(*in_month)):
        if status == "closed":
            closing.setdefault(str(sev), []).append((updated - created) / 3.6e9)
        else:
            open_alerts += 1
    exchange_ok, jobs = _exchange(session, start, end)
    integrity = _integrity(session, now)
    order = ("critical", "high", "medium", "low")
    return MonthlyReport(
        month=month, tz=tz, generated=now, generated_by=generated_by, total_events=total,
        accesses=accesses, by_org=by_org, by_dataset=by_dataset, by_grade=by_grade,
        denials=denials, denials_by_org=denials_by_org, denials_by_action=denials_by_action,
        alerts_by_severity=[(s, severities.get(s, 0)) for s in order],
        close_hours=[(s, len(closing.get(s, [])), _median(closing.get(s, []))) for s in order],
        open_alerts=open_alerts, jobs=jobs, exchange_available=exchange_ok,
        integrity=integrity)


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _write_error(target: Path, what: str, exc: OSError) -> ServiceError:
    reason = exc.strerror or str(exc)
    if exc.errno in _NO_ROOM:
        return Unavailable(f"cannot write the {what} {target} ({reason}); nothing was written: "
                           "free space and run it again")
    return InvalidInput(f"cannot write the {what} {target} there ({reason}); choose a file in a "
                        "folder you can write to", field="out")


class StagedFile:
    """A file written beside ``target`` (``.<name>.<random>.part``, created at once, so a
    target that cannot be written is refused before any work) and renamed over it by
    :meth:`commit`; :meth:`discard` removes what was not committed. InvalidInput for a
    target that is a folder or in a folder that does not exist or takes no files,
    Unavailable for a full disk."""

    def __init__(self, target: Path, what: str) -> None:
        target = Path(target)
        self.what = what
        if target.is_dir():
            raise InvalidInput(f"{target}: is a folder; name the {what} file to write "
                               f"(e.g. {target / ('report' + (target.suffix or '.html'))})",
                               field="out")
        if not target.parent.is_dir():
            state = "is not a folder" if target.parent.exists() else "does not exist"
            raise InvalidInput(f"{target}: the folder {target.parent} {state}; create it or "
                               f"choose another place for the {what}", field="out")
        self.target = target
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                       dir=target.parent)
        except OSError as exc:
            raise _write_error(target, what, exc) from None
        os.close(fd)
        self.tmp = Path(tmp)

    def write(self, data: bytes) -> None:
        try:
            self.tmp.write_bytes(data)
        except OSError as exc:
            raise _write_error(self.target, self.what, exc) from None

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.target)
        except OSError as exc:
            raise _write_error(self.target, self.what, exc) from None

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


def print_pdf(html: str, *, timeout: float = 60.0) -> bytes:
    """``html`` printed to PDF by headless Chromium (Debian package ``chromium``), into a
    fresh file of a private folder that must then hold a PDF (``%PDF-``): neither an exit
    status nor a file at some path is taken for one. Unavailable when no Chromium is
    installed or it prints nothing."""
    chromium = find_chromium()
    if chromium is None:
        raise Unavailable("PDF needs headless Chromium (apt-get install chromium; "
                          "`make browser` installs it); the HTML report needs nothing")
    with tempfile.TemporaryDirectory(prefix="qg-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        printed = Path(tmp) / "printed.pdf"
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-pdf-header-footer",
               f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={printed}", page.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"Chromium did not print the report: {exc}") from exc
        data = printed.read_bytes() if printed.is_file() else b""
    if done.returncode != 0 or not data.startswith(b"%PDF-"):
        what = "no PDF" if not data else "not a PDF"
        tail = done.stderr.decode(errors="replace")[-300:]
        raise Unavailable(f"Chromium did not print the report (exit {done.returncode}, "
                          f"{what}): {tail}")
    return data


def html_to_pdf(html: str, out: Path, *, timeout: float = 60.0) -> Path:
    """Print ``html`` to ``out`` with headless Chromium (:func:`print_pdf`), atomically:
    ``out`` is replaced only by a PDF, never touched otherwise. InvalidInput when ``out``
    is a folder (or in a missing one), Unavailable when no Chromium is installed or it
    fails."""
    staged = StagedFile(Path(out), "PDF")
    try:
        staged.write(print_pdf(html, timeout=timeout))
        staged.commit()
    finally:
        staged.discard()
    return staged.target.resolve()
