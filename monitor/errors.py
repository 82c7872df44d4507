"""Errors of the monitor package.

Every class carries ``kind`` (see CONTRIBUTING.md); the service maps it to an HTTP
status and a CLI exit code.

    MonitorError
    ├── InvalidEvent          invalid      one event or one NDJSON line is malformed
    ├── InvalidQuery          invalid      a search query is malformed
    ├── AlertRulesError       invalid      policies/alerts.yaml is malformed (path, line)
    ├── CheckpointError       invalid      a checkpoint or key file is missing / unreadable
    ├── BatchTooLarge         too_large    more than the allowed lines in one batch
    ├── AlertNotFound         not_found    no alert with that id
    ├── EventNotFound         not_found    no event with that seq
    ├── AlertConflict         conflict     a closed alert cannot change status
    ├── RetentionRefused      conflict     purge would drop events no exported checkpoint covers
    ├── SuiteMismatch         conflict     the trail runs another crypto suite, or was handed over
    ├── StoreBusy             unavailable  the database stayed locked after retries
    ├── Tampered              integrity    the trail was altered (seq, damage, detail)
    └── ProofInvalid          integrity    an inclusion / consistency proof does not verify
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class of every error raised by ``monitor``."""

    kind = "invalid"


class InvalidEvent(MonitorError):
    """An event (or one NDJSON line) does not satisfy the event model."""

    kind = "invalid"

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        self.message = message
        self.line = line
        self.field = field
        prefix = f"line {line}: " if line is not None else ""
        super().__init__(f"{prefix}{message}")


class InvalidQuery(MonitorError):
    """A search query has an unknown sort, aggregation, page size or time range."""

    kind = "invalid"


class AlertRulesError(MonitorError):
    """The alert rules file does not validate; carries ``path``, ``line`` and ``message``."""

    kind = "invalid"

    def __init__(self, path: str, line: int, message: str):
        self.path = path
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}")


class CheckpointError(MonitorError):
    """A checkpoint or signing-key file is missing, unreadable or malformed."""

    kind = "invalid"


class BatchTooLarge(MonitorError):
    """A batch holds more lines than allowed; nothing of it is stored."""

    kind = "too_large"

    def __init__(self, lines: int, limit: int):
        self.lines = lines
        self.limit = limit
        super().__init__(f"batch has {lines} lines, the limit is {limit}; split it")


class AlertNotFound(MonitorError):
    kind = "not_found"


class EventNotFound(MonitorError):
    kind = "not_found"


class AlertConflict(MonitorError):
    kind = "conflict"


class RetentionRefused(MonitorError):
    """Purging would drop events that no exported checkpoint covers."""

    kind = "conflict"


class SuiteMismatch(MonitorError):
    """The trail was created under another crypto suite (or sealed by a hand-over).

    Appending or verifying under the wrong suite would mix hashes silently; refused."""

    kind = "conflict"

    def __init__(self, trail_suite: str, running: str, detail: str = ""):
        self.trail_suite = trail_suite
        self.running = running
        super().__init__(detail or (
            f"the audit trail was created under crypto suite '{trail_suite}', this deployment "
            f"runs '{running}'; set QUANGUARD_CRYPTO={trail_suite} to keep using this trail, or "
            f"hand it over with 'quanguard audit handover --to {running}' (run under "
            f"QUANGUARD_CRYPTO={trail_suite}): the next trail generation then runs "
            f"'{running}' in the same database"))


class StoreBusy(MonitorError):
    """The database stayed locked after all retries; nothing was written."""

    kind = "unavailable"


class Tampered(MonitorError):
    """The trail was altered. ``damage`` is one of DAMAGE_KINDS, ``seq`` the first bad seq.

    (The error *kind* of this class is ``integrity``; the kind of damage is ``damage``.)
    """

    kind = "integrity"
    DAMAGE_KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "bad_signature")

    def __init__(self, seq: int | None, damage: str, detail: str):
        if damage not in self.DAMAGE_KINDS:
            raise ValueError(f"unknown damage kind {damage!r}")
        self.seq = seq
        self.damage = damage
        self.detail = detail
        where = f"seq {seq}" if seq is not None else "trail"
        super().__init__(f"{where}: {damage}: {detail}")


class ProofInvalid(MonitorError):
    """An inclusion or consistency proof does not verify against the given tree head."""

    kind = "integrity"
