"""The officers' monthly report (``quanguard report``, the console's report page).

The report itself (what is counted, the PDF printing) is :mod:`quanguard.report`; this
use case asks the gate (policy action ``audit_search``, a refusal recorded as
``audit_report``) and reads the month and records that it was read (``audit_report``,
with the month and the format) in one unit of work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quanguard.gate import RequestContext, authorize, origin
from quanguard.report import MonthlyReport, gather, month_range

if TYPE_CHECKING:
    from quanguard.auth import Principal
    from quanguard.container import Container

__all__ = ["monthly_report"]


def monthly_report(container: Container, principal: Principal, month: str, ctx: RequestContext,
                   *, fmt: str = "html") -> MonthlyReport:
    """The report of ``month`` (``YYYY-MM`` in the service's zone), its reading recorded."""
    from quanguard.usecases.audit import with_retry

    tz = container.settings.tz
    month_range(month, tz)  # a malformed month is bad input, not a question for the gate
    labels = {"month": month, "format": fmt}
    decision = authorize(container, principal, "audit_search", None, ctx,
                         audit_action="audit_report", labels=labels)
    who = f"{principal.name} ({principal.role}, {principal.org})"

    def work() -> MonthlyReport:
        with container.unit_of_work() as session:
            report = gather(session, month=month, tz=tz, generated_by=who)
            container.audit.record(session, actor=principal, action="audit_report",
                                   decision=decision, rows=report.total_events, labels=labels,
                                   **origin(ctx))
        return report

    return with_retry(work)  # the store may be busy with another writer (SQLite)
