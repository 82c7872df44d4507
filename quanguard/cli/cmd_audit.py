"""``quanguard audit``: ingest, verify, checkpoint, proof, verify-proof, search, status,
purge — the audit trail from the command line."""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import typer
from rich.table import Table

from monitor.checkpoint import read_checkpoint_file
from monitor.errors import ProofInvalid
from monitor.ingest import CHARSETS
from monitor.search import AGGREGATIONS, SearchQuery
from monitor.trail import verify_consistency_document, verify_proof_document
from quanguard.cli.common import cli_principal, use_container
from quanguard.cli.output import OutputFormat, console, emit, panel, parse_when, progress, show
from quanguard.errors import InvalidInput
from quanguard.usecases import audit as uc

audit_app = typer.Typer(help="The audit trail: ingest, verify, checkpoints, proofs, search.",
                        no_args_is_help=True)

_AGG_HELP = "Aggregation (repeatable): " + ", ".join(AGGREGATIONS)
_FMT = typer.Option(OutputFormat.table, "--format", help="table (people) or json (machines)")


def _lines(path: Path) -> Iterator[bytes]:
    """The file's lines as they are read (bytes: a line that is not UTF-8 is a per-line
    error, not the end of the whole ingest)."""
    if str(path) == "-":
        yield from sys.stdin.buffer
        return
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from exc
    with fh:
        yield from fh


_YOUNG = 500_000  # the young generation's threshold during an ingest (default 700)


@contextmanager
def _bulk_collector() -> Iterator[None]:
    """What is loaded when the ingest starts lives until it ends: the cyclic collector need
    not walk it again on every full collection, and it runs less often (the parsed events
    hold no cycles; refcounting frees them chunk by chunk). Put back as it was afterwards.

    The young generation counts objects allocated and not yet freed, so a threshold above
    what one chunk of 10,000 events keeps alive (events, rows, alerts: some 100,000
    objects) means no collection walks a chunk's events in the middle of it only to
    promote them; the little garbage with cycles a chunk leaves (its transaction's) is
    still collected, a few chunks later."""
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(_YOUNG, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not frozen:  # a process that froze objects itself keeps them frozen
            gc.unfreeze()


@audit_app.command("ingest")
def ingest(
    file: Path = typer.Argument(..., help="NDJSON file (the line format of POST /v1/events/batch); - for stdin"),
    chunk: int = typer.Option(10_000, "--chunk", min=1, max=10_000,
                              help="Events per transaction"),
    encoding: str = typer.Option(
        "utf-8", "--encoding", metavar="NAME",
        help="The file's text encoding: utf-8 (NDJSON's own) or gbk/gb18030 (a GBK export)"),
    fmt: OutputFormat = _FMT,
) -> None:
    """Append every valid line of FILE to the trail; print the count and events/s.
    Invalid lines are listed with their line numbers and not stored."""
    codec = CHARSETS.get(encoding.strip().lower())
    if codec is None:
        raise typer.BadParameter(
            f"{encoding!r} is not an encoding ingest reads; use one of utf-8, gbk, gb18030",
            param_hint="--encoding")
    if str(file) != "-" and file.is_dir():
        raise InvalidInput(f"{file}: is a folder; give an NDJSON file (or - for stdin)")
    if str(file) != "-" and not file.is_file():
        raise InvalidInput(f"{file}: no such file")
    lines = _lines(file)
    started = time.perf_counter()
    with use_container() as container:
        principal = cli_principal(container)
        # a stream has no known length: no bar (the rate is printed at the end)
        with _bulk_collector(), progress("ingest", None) as advance:
            result = uc.ingest(container, principal, lines, max_lines=None, chunk=chunk,
                               progress=advance, codec=codec)
    elapsed = time.perf_counter() - started
    rate = result.accepted / elapsed if elapsed > 0 else 0.0
    doc = {**result.to_dict(), "seconds": round(elapsed, 3), "events_per_second": round(rate)}
    if fmt is OutputFormat.json:
        emit(doc)
    else:
        panel(f"ingested [bold]{result.accepted}[/] events "
              f"(seq {result.first_seq}..{result.last_seq}) in {elapsed:.2f}s — "
              f"[bold]{rate:,.0f}[/] events/s", title="audit ingest",
              style="yellow" if result.errors else "green")
        if result.errors:
            rejected = len(result.errors) if result.rejected_total is None else result.rejected_total
            bad = Table("line", "error", title=f"{rejected} invalid line(s), not stored")
            for err in result.errors[:50]:
                bad.add_row(str(err.line), err.message)
            if rejected > 50:
                bad.add_row("…", f"and {rejected - 50} more invalid lines")
            console().print(bad)
    if result.errors and not result.accepted:
        # nothing stored: a failed attempt (recorded as such by the CLI's border), exit 2
        raise InvalidInput(f"{file}: no valid line; every line was refused (listed above)")


@audit_app.command("verify")
def verify(
    checkpoint: list[Path] = typer.Option(
        [], "--checkpoint", help="An exported checkpoint file to hold the trail to (repeatable)"),
    fmt: OutputFormat = _FMT,
) -> None:
    """Verify the whole trail (chain, leaf hashes, signed checkpoints). Exit 0 when
    intact; exit 1 naming the first bad seq and the kind of damage otherwise."""
    external = [read_checkpoint_file(p) for p in checkpoint]
    with use_container() as container:
        result = uc.verify(container, cli_principal(container), external)
    if fmt is OutputFormat.json:
        emit(result)
    else:
        gens = cast("list[dict[str, object]]", result.get("generations", []))
        across = "" if len(gens) < 2 else " in " + ", ".join(
            f"generation {g['generation']} ({g['suite']}, seq {g['first_seq']}..{g['last_seq']})"
            for g in gens)
        panel(f"[green]intact[/]: {result['events']} events (last seq "
              f"{result['tree_size']}){across}, {len(external)} exported checkpoint(s), "
              f"{result['seconds']}s")


@audit_app.command("checkpoint")
def checkpoint(
    export: Path | None = typer.Option(None, "--export", help="Write the signed checkpoint here"),
    fmt: OutputFormat = _FMT,
) -> None:
    """Sign a checkpoint of the current head (tree size, Merkle root, chain hash)."""
    with use_container() as container:
        cp = uc.checkpoint(container, cli_principal(container), export=export,
                           exported=export is not None)
    if fmt is OutputFormat.json or export is None:
        emit(cp.to_dict())
    else:
        panel(f"checkpoint of {cp.tree_size} events, root {cp.root.hex()[:16]}…, "
              f"key {cp.key_id} → {export}")


@audit_app.command("handover")
def handover(
    to: str = typer.Option(..., "--to", help="The crypto suite of the next trail (intl or gm)"),
    export: Path = typer.Option(..., "--export", help="Write the final checkpoint here"),
    fmt: OutputFormat = _FMT,
) -> None:
    """Switch the trail to another crypto suite in the same database: the current
    generation is sealed by a signed final checkpoint naming the next suite, and the next
    generation starts with a record naming that checkpoint. Run under the trail's current
    QUANGUARD_CRYPTO, then restart with QUANGUARD_CRYPTO set to the new suite."""
    from quanguard.usecases.handover import handover as _handover

    with use_container() as container:
        cp = _handover(container, cli_principal(container), to, export)
    if fmt is OutputFormat.json:
        emit(cp.to_dict())
    else:
        console().print(f"generation {cp.generation} sealed at {cp.tree_size} events "
                        f"({cp.hash_alg}/{cp.signature_alg}); generation {cp.generation + 1} "
                        f"runs '{cp.handover}' from seq {cp.first_seq + cp.tree_size} — final "
                        f"checkpoint → {export}; restart with QUANGUARD_CRYPTO={cp.handover}")


@audit_app.command("proof")
def proof(seq: int = typer.Argument(..., min=1, help="The event's seq")) -> None:
    """Print (JSON, stdout) an inclusion proof of event SEQ with the checkpoint it is
    proven against."""
    with use_container() as container:
        doc = uc.proof(container, cli_principal(container), seq)
    emit(doc)


def _read_proof(path: Path) -> Any:
    """The JSON document of a proof file; ProofInvalid when it cannot be read as one."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProofInvalid(f"{path}: not a readable proof ({exc})") from exc


@audit_app.command("verify-proof")
def verify_proof(
    proof_file: Path = typer.Argument(..., help="A proof printed by 'quanguard audit proof'"),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="The exported checkpoint to trust"),
    key_id: str | None = typer.Option(None, "--key-id", help="Pin the signing key id"),
) -> None:
    """Check a proof offline (no database): signature of the checkpoint, the event body,
    and the RFC 6962 path to the signed root. Exit 0 valid, 1 invalid."""
    cp = read_checkpoint_file(checkpoint)
    doc = _read_proof(proof_file)
    verify_proof_document(doc, cp, expected_key_id=key_id)
    panel(f"[green]valid[/]: event {doc['seq']} is in the trail of {cp.tree_size} "
          f"events signed by key {cp.key_id} at {cp.timestamp.isoformat()}")


@audit_app.command("consistency")
def consistency(
    old: Path = typer.Option(..., "--from", help="An exported checkpoint file"),
) -> None:
    """Print (JSON) a proof that the trail only grew since the checkpoint in --from."""
    cp = read_checkpoint_file(old)
    with use_container() as container:
        doc = uc.consistency(container, cli_principal(container), cp.tree_size,
                             generation=cp.generation)
    emit(doc)


@audit_app.command("verify-consistency")
def verify_consistency_cmd(
    proof_file: Path = typer.Argument(..., help="A proof printed by 'quanguard audit consistency'"),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="The older exported checkpoint"),
    key_id: str | None = typer.Option(None, "--key-id", help="Pin the signing key id"),
) -> None:
    """Check offline (no database) that the newer signed checkpoint in PROOF extends the
    exported one: nothing before it was changed or removed. Exit 0 valid, 1 invalid."""
    cp = read_checkpoint_file(checkpoint)
    doc = _read_proof(proof_file)
    new = verify_consistency_document(doc, cp, expected_key_id=key_id)
    panel(f"[green]consistent[/]: the trail of {new.tree_size} events extends the "
          f"checkpoint of {cp.tree_size} events")


@audit_app.command("search")
def search(
    actor: str | None = typer.Option(None, help="Only events of this actor (user.id or key name)"),
    role: str | None = typer.Option(None, help="Only events of this role"),
    org: str | None = typer.Option(None, help="Only events of this organisation"),
    action: str | None = typer.Option(None, help="Only events of this action (e.g. mask, scan, query)"),
    dataset: str | None = typer.Option(None, help="Only events on this dataset"),
    grade: str | None = typer.Option(None, help="Only events of this grade (L1..L5)"),
    effect: str | None = typer.Option(None, help="Only events of this effect (allow, deny, approval_required, error)"),
    since: str | None = typer.Option(None, help="From this time on (inclusive): 15m, 24h, 7d, 2w ago or RFC 3339"),
    until: str | None = typer.Option(None, help="Before this time (exclusive): 15m, 24h, 7d, 2w ago or RFC 3339"),
    q: str | None = typer.Option(None, "--q", help="Free text: every word must occur in purpose or reason"),
    sort: str = typer.Option("-ts", help="Sort key, - for descending: ts, seq, actor, org, rows, ..."),
    page: int = typer.Option(1, help="Page number, from 1"),
    size: int = typer.Option(20, help="Events per page (at most 1000)"),
    agg: list[str] = typer.Option([], "--agg", help=_AGG_HELP),
    outcome: str | None = typer.Option(None, help="Only events of this outcome (success, failure, unknown)"),
    source_ip: str | None = typer.Option(
        None, "--source-ip", help="An address or a CIDR network"),
    exclude: list[str] = typer.Option([], "--exclude", help="field:value to leave out"),
    fmt: OutputFormat = _FMT,
) -> None:
    """Search the trail (recorded as an audit_search event). Filters are
    case-insensitive; --actor takes an id or a key name."""
    pairs = []
    for item in exclude:
        name, sep, value = item.partition(":")
        if not sep:
            raise InvalidInput(f"--exclude {item!r} must look like field:value")
        pairs.append((name, value))
    with use_container() as container:
        query = SearchQuery(actor=actor, role=role, org=org, action=action, dataset=dataset,
                            grade=grade, effect=effect, outcome=outcome, source_ip=source_ip,
                            since=parse_when(since, option="--since"),
                            until=parse_when(until, option="--until"), q=q,
                            sort=sort, page=page, size=size, aggs=tuple(agg),
                            tz=container.settings.tz, exclude=tuple(pairs))
        result = uc.search(container, cli_principal(container), query)
        backend = getattr(container.search, "last_backend", None) or getattr(
            container.search, "name", None)
    if fmt is OutputFormat.json:
        emit(uc.result_dict(result, query, backend))
        return
    table = Table("seq", "time", "user.name", "user.id", "role", "organization.name", "action",
                  "dataset", "grade", "effect", "outcome", "rows", "source.ip",
                  title=f"{result.total} events")
    for e in result.hits:
        table.add_row(str(e.seq), e.ts.isoformat(timespec="seconds"), e.actor.name or "",
                      e.actor.id, e.actor.role, e.actor.org, e.action, e.dataset or "",
                      e.grade or "", e.effect or "", e.outcome,
                      "" if e.rows is None else str(e.rows), e.source_ip or "")
    out = console()
    out.print(table)
    for name, buckets in result.aggs.items():
        agg_table = Table("key", "count" if name != "sum(rows)" else "rows", title=name)
        for b in buckets:
            agg_table.add_row(b.key, str(b.count))
        out.print(agg_table)


@audit_app.command("status")
def status(fmt: OutputFormat = _FMT) -> None:
    """Trail head, last checkpoint, last verification."""
    with use_container() as container:
        doc = uc.status(container, cli_principal(container))
    if fmt is OutputFormat.json:
        emit(doc)
        return
    for key in ("head", "last_checkpoint", "last_verify"):
        value: Any = doc.get(key)
        show(value if isinstance(value, dict) else {key: value}, title=key)


@audit_app.command("purge")
def purge(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would go"),
    force_partial: bool = typer.Option(
        False, "--force-partial", help="Purge the covered part when some old events are not"),
    fmt: OutputFormat = _FMT,
) -> None:
    """Retention: delete events older than QUANGUARD_RETENTION_DAYS (>= 180) that an
    exported checkpoint covers. Refuses (exit 6) when old events are not covered."""
    with use_container() as container:
        doc = uc.purge_old(container, cli_principal(container), dry_run=dry_run,
                           force_partial=force_partial)
    if fmt is OutputFormat.json:
        emit(doc)
    else:
        show(doc, title="retention")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
