"""Every local command that fails leaves an event (ARCHITECTURE.md, "Fail closed": every
attempt leaves one event — allowed, denied or failed, including bad input).

A use case records what it decides and does. A command that fails before or outside
that — a file that cannot be read, a name that is not text, a use case's bug — is
recorded here, once, when it left no event of its own: action ``cli.<command path>``
(e.g. ``cli.watermark.embed``), effect ``error`` (``deny`` for a refused key or a
throttle), outcome failure, the error message as reason (redacted like every free text)
and the exit code in ``labels.exit_code``. The actor is the caller of
:func:`quanguard.cli.common.cli_principal`; a ``QUANGUARD_API_KEY`` that does not
authenticate is ``anonymous`` with the key's fingerprint.

Not recorded: the ``policy`` commands (they lint a folder of files and open no store),
the ``exchange`` commands (clients of a running service, which records each of their
requests in its own trail; the local store is not theirs), ``serve`` and ``restore``
(their refusals judge the key folder and the store before anything is opened, and must
leave them unopened) and a verifier's finding of damage (kind ``integrity``: a damaged trail is never
appended to). When the failure cannot be recorded (the store itself is what failed)
a note says so on stderr; the command's exit code is kept.
"""

from __future__ import annotations

import os

from quanguard.errors import ErrorInfo, Unauthenticated

__all__ = ["NOT_RECORDED", "record_failure"]

#: command groups whose failures are not recorded here (no store of their own)
NOT_RECORDED = frozenset({"exchange", "policy", "restore", "serve"})


def record_failure(command: tuple[str, ...], exc: BaseException, info: ErrorInfo | None,
                   exit_code: int) -> int | None:
    """Record the failed command ``command`` (its path, e.g. ``("watermark", "embed")``);
    returns the event's seq, None when this failure is not recorded. Raises whatever the
    store raises."""
    if not command or command[0] in NOT_RECORDED:
        return None
    if info is not None and info.kind == "integrity":
        return None
    from quanguard.auth import anonymous, key_fingerprint
    from quanguard.cli.common import cli_principal, use_container
    from quanguard.gate import record_denial

    labels = {"channel": "cli", "exit_code": str(exit_code)}
    reason = info.message if info is not None else f"internal error ({type(exc).__name__})"
    with use_container() as container:
        try:
            principal = cli_principal(container)
        except Unauthenticated:
            principal = anonymous()
            labels["key_fingerprint"] = key_fingerprint(os.environ.get("QUANGUARD_API_KEY", ""))
        return record_denial(container, principal, "cli." + ".".join(command), None,
                             reason=reason[:300], labels=labels, error=exc)
