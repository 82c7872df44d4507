"""``quanguard exchange``: the privacy exchange, as an HTTP client of the service.

Runs on the provider's or consumer's own machine: ``QUANGUARD_URL`` (default
http://127.0.0.1:8000) and ``QUANGUARD_API_KEY``. PSI identifiers are blinded locally;
only the blinded request leaves the machine. ``verify-receipt`` works offline.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from quanguard.cli import client as _client
from quanguard.cli.output import FORMAT_HELP, OutputFormat, console, emit, show
from quanguard.errors import InvalidInput

if TYPE_CHECKING:
    from exchange import PsiClient

exchange_app = typer.Typer(help="Privacy exchange: catalog, DP aggregates, PSI, extracts, approvals.",
                           no_args_is_help=True)

_Format = Annotated[OutputFormat, typer.Option("--format", help=FORMAT_HELP)]


def _show(obj: object, fmt: OutputFormat, title: str | None = None) -> None:
    if fmt is OutputFormat.json:
        emit(obj)
        return
    out = console()
    if isinstance(obj, dict) and isinstance(obj.get("result"), list):
        table = Table(title=title or f"job {obj.get('job')} — {obj.get('status')}")
        table.add_column("group")
        table.add_column("value", justify="right")
        for row in obj["result"]:
            table.add_row(json.dumps(row["group"], ensure_ascii=False), f"{row['value']:.2f}")
        out.print(table)
        out.print(f"suppressed groups: {obj.get('suppressed_groups')}  ε spent: "
                  f"{obj.get('epsilon_spent')}  budget left: {obj.get('budget_left')}")
    else:
        show(obj, title, out)


def _ids(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or exc}") from exc
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise InvalidInput(f"{path}: no identifiers (one per line)")
    return ids


@exchange_app.command("register")
def register_dataset(
    file: Annotated[str, typer.Argument(help="Local CSV/XLSX/Parquet/JSONL file, a SQL URL, or (with --server-path) a file in the service's exchange-inbox")],
    name: Annotated[str, typer.Option("--name", help="Dataset name in the catalog")],
    key_column: Annotated[list[str] | None, typer.Option("--key-column", help="Join-key column (PSI)")] = None,
    bounds: Annotated[list[str] | None, typer.Option("--bounds", help="Public bounds COL=LO:HI")] = None,
    computation: Annotated[list[str] | None, typer.Option("--computation", help="Allowed computation (default all)")] = None,
    group_column: Annotated[list[str] | None, typer.Option("--group-column", help="Allowed group/filter column")] = None,
    server_path: Annotated[bool, typer.Option("--server-path", help="FILE is on the service")] = False,
    sql_table: Annotated[str | None, typer.Option("--sql-table", help="Table name for a SQL URL")] = None,
    max_rows_per_subject: Annotated[int | None, typer.Option("--max-rows-per-subject", help="Rows one key value may contribute (DP unit is the subject)")] = None,
    grade: Annotated[str | None, typer.Option("--grade", help="Declared grade: the dataset is never graded below it")] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Publish a dataset (provider): scanned, graded (never below ``--grade``), linked to
    the budget family of the same people, and stored encrypted by the service."""
    data: dict[str, object] = {"name": name, "key_column": key_column or [], "bounds": bounds or [],
                            "computation": computation or [], "group_column": group_column or []}
    if grade is not None:
        data["grade"] = grade
    if max_rows_per_subject is not None:
        data["max_rows_per_subject"] = str(max_rows_per_subject)
    files = None
    if "://" in file:
        data.update(sql_url=file, sql_table=sql_table or "")
    elif server_path:
        data["path"] = file
    else:
        p = Path(file)
        if not p.is_file():
            raise InvalidInput(f"{file}: no such file")
        files = {"file": (p.name, p.read_bytes(), "application/octet-stream")}
    meta = _client.connect().post("/v1/exchange/datasets", data=data, files=files)
    _show(meta, fmt)


@exchange_app.command("datasets")
def datasets(fmt: _Format = OutputFormat.table) -> None:
    """List the catalog: metadata and grades, never rows."""
    items = _client.connect().get("/v1/exchange/datasets")
    if fmt is OutputFormat.json:
        emit({"datasets": items})
        return
    table = Table("dataset", "owner", "grade", "rows", "key columns", "budget family",
                  "computations")
    for d in items:
        table.add_row(d["dataset"], d["owner_org"], d["grade"], str(d["rows"]),
                      " ".join(d["key_columns"]), str(d.get("budget_family") or d["dataset"]),
                      " ".join(d["computations"]))
    console().print(table)


@exchange_app.command("aggregate")
def aggregate(
    name: Annotated[str, typer.Argument(help="Dataset name")],
    agg: Annotated[str, typer.Option("--agg", help="count|sum|mean|quantile|histogram")],
    column: Annotated[str | None, typer.Option("--column", help="Numeric column (sum/mean/...)")] = None,
    by: Annotated[list[str] | None, typer.Option("--by", help="Group-by column")] = None,
    where: Annotated[list[str] | None, typer.Option("--where", help="Filter COL=VALUE")] = None,
    epsilon: Annotated[float, typer.Option("--epsilon", help="Privacy loss ε of this query")] = 0.5,
    q: Annotated[float, typer.Option("--q", help="Quantile (with --agg quantile)")] = 0.5,
    bins: Annotated[int, typer.Option("--bins", help="Bins (with --agg histogram)")] = 10,
    purpose: Annotated[str | None, typer.Option("--purpose", help="Purpose (consent)")] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Run a differentially private aggregate (consumer); pending when approval is needed."""
    filters: dict[str, str] = {}
    for item in where or []:
        col, sep, value = item.partition("=")
        if not sep or not col:
            raise InvalidInput(f"bad --where {item!r}: use COL=VALUE")
        filters[col] = value
    body = {"dataset": name, "agg": agg, "column": column, "by": by or [], "where": filters,
            "epsilon": epsilon, "q": q, "bins": bins, "purpose": purpose}
    _show(_client.connect().post("/v1/exchange/aggregate", json=body), fmt)


@exchange_app.command("result")
def result(job: Annotated[str, typer.Argument(help="Job id")], fmt: _Format = OutputFormat.table) -> None:
    """Show one of your jobs (or, for providers and managers, a job on their data)."""
    _show(_client.connect().get(f"/v1/exchange/jobs/{job}"), fmt)


@exchange_app.command("jobs")
def jobs(
    status: Annotated[str | None, typer.Option("--status", help="Only jobs in this status")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only jobs on this dataset")] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """List the jobs you may see."""
    params = {k: v for k, v in (("status", status), ("dataset", dataset)) if v}
    items = _client.connect().get("/v1/exchange/jobs", params=params)
    if fmt is OutputFormat.json:
        emit({"jobs": items})
        return
    table = Table("job", "kind", "dataset", "status", "consumer", "size", "ε", "purpose",
                  "digest", "created", "expires")
    for j in items:
        req = j.get("request") or {}
        eps = req.get("epsilon")
        table.add_row(j["job"], j["kind"], j["dataset"], j["status"], j["consumer"],
                      str(req.get("size") if req.get("size") is not None else "-"),
                      f"{eps:g}" if isinstance(eps, int | float) else "-",
                      str(req.get("purpose") or "-"), str(req.get("digest") or "-")[:12],
                      j["created_at"], str(req.get("expires_at") or "-"))
    console().print(table)


def _decide(job: str, reason: str, verb: str, fmt: OutputFormat) -> None:
    _show(_client.connect().post(f"/v1/exchange/jobs/{job}/{verb}", json={"reason": reason}), fmt)


@exchange_app.command("approve")
def approve(job: Annotated[str, typer.Argument(help="Job id")],
            reason: Annotated[str, typer.Option("--reason", help="Why (recorded)")],
            fmt: _Format = OutputFormat.table) -> None:
    """Approve a pending job (manager): exactly the stored request (its size, digest,
    purpose and ε are shown by ``exchange jobs``) may run, until the approval expires
    (policy ``approval_ttl_days``, default 7); an aggregate runs at once."""
    _decide(job, reason, "approve", fmt)


@exchange_app.command("reject")
def reject(job: Annotated[str, typer.Argument(help="Job id")],
           reason: Annotated[str, typer.Option("--reason", help="Why (recorded)")],
           fmt: _Format = OutputFormat.table) -> None:
    """Reject a pending job (manager)."""
    _decide(job, reason, "reject", fmt)


def _psi_state(ids: Path, job: str) -> Path:
    """Where a pending PSI's client key is kept: beside the identifiers file, 0600."""
    return ids.with_name(f"{ids.name}.{job}.psi-key")


def _save_psi_state(ids: Path, job: str, *, key: bytes, reveal: str, digest: str) -> Path:
    import os

    path = _psi_state(ids, job)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"job": job, "key": key.hex(), "reveal": reveal, "ids_sha256": digest}, fh)
    return path


def _load_psi_client(ids: Path, job: str, values: list[str]) -> PsiClient:
    import hashlib

    from exchange import PsiClient

    path = _psi_state(ids, job)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        key, reveal, digest = bytes.fromhex(state["key"]), state["reveal"], state["ids_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path}: no saved request for job {job} ({exc}); an approved PSI "
                           "runs from the machine and identifiers file that submitted it") from exc
    if hashlib.sha256("\n".join(values).encode()).hexdigest() != digest:
        raise InvalidInput(f"{ids}: the identifiers differ from the ones submitted for job {job}; "
                           "an approval covers only the request that was approved")
    return PsiClient(values, reveal=reveal, key=key)


@exchange_app.command("psi")
def psi(
    name: Annotated[str, typer.Argument(help="Dataset name")],
    ids: Annotated[Path, typer.Option("--ids", help="File with your identifiers, one per line")],
    purpose: Annotated[str | None, typer.Option("--purpose", help="Purpose (consent)")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Run an approved PSI job (the request approved, as submitted from this machine)")] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Private set intersection: your ids are blinded here and never sent in the clear.

    When approval is needed the blinded request is stored with the job and the blinding
    key is kept beside the ids file (``IDS.JOB.psi-key``, mode 0600); after approval
    ``--job JOB`` runs exactly the stored request and unblinds the answer here."""
    import hashlib

    from exchange import PsiClient

    svc = _client.connect()
    values = _ids(ids)
    if job is not None:
        local = _load_psi_client(ids, job, values)
        body: dict[str, object] = {"dataset": name, "request": None, "purpose": purpose, "job": job}
    else:
        terms = svc.get(f"/v1/exchange/datasets/{name}/psi")
        local = PsiClient(values, reveal=terms["reveal"])
        body = {"dataset": name, "request": base64.b64encode(local.request()).decode(),
                "purpose": purpose, "job": None}
    reply = svc.post("/v1/exchange/psi", json=body)
    if reply.get("status") != "done":
        shown: dict[str, object] = {"job": reply["job"], "status": reply["status"]}
        if reply.get("status") == "pending_approval":
            digest = hashlib.sha256("\n".join(values).encode()).hexdigest()
            shown["state"] = str(_save_psi_state(ids, reply["job"], key=local.key,
                                                 reveal=local.reveal, digest=digest))
            shown["request"] = reply.get("request")
        _show(shown, fmt)
        return
    outcome = local.finish(base64.b64decode(reply["setup"]), base64.b64decode(reply["response"]))
    out: dict[str, object] = {"job": reply["job"], "intersection_size": outcome.intersection_size}
    noise = reply.get("noise")
    if isinstance(noise, dict):  # randomised response: the count is noisy; de-bias it
        from exchange.psi import CountNoise

        rr = CountNoise(float(noise["epsilon"]), float(noise["flip"]))
        out["noise"] = noise
        out["intersection_estimate"] = round(rr.estimate(outcome.intersection_size,
                                                         len(local.ids)), 1)
    if outcome.matches is not None:
        out["matches"] = list(outcome.matches)
    out["receipt"] = reply.get("receipt")
    if job is not None:
        _psi_state(ids, job).unlink(missing_ok=True)  # an approval runs once
    _show(out, fmt)


@exchange_app.command("extract")
def extract(
    name: Annotated[str, typer.Argument(help="Dataset name")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write (.csv or .parquet)")],
    purpose: Annotated[str | None, typer.Option("--purpose", help="Purpose (consent)")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Fetch an approved extract job")] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Receive a masked copy watermarked for you, where policy allows 可用可取."""
    kind = "parquet" if output.suffix.lower() == ".parquet" else "csv"
    body = {"dataset": name, "format": kind, "purpose": purpose, "job": job}
    resp = _client.connect().request("POST", "/v1/exchange/extract", json=body)
    if resp.status_code == 202:
        reply = resp.json()
        _show({"job": reply["job"], "status": reply["status"]}, fmt)
        return
    output.write_bytes(resp.content)
    _show({"job": resp.headers.get("X-Quanguard-Job"), "status": "done", "output": str(output),
           "bytes": len(resp.content)}, fmt)


@exchange_app.command("consent")
def consent(
    name: Annotated[str, typer.Argument(help="Dataset name")],
    ids: Annotated[Path, typer.Option("--ids", help="Subject identifiers, one per line")],
    purpose: Annotated[str, typer.Option("--purpose", help="Purpose, or * for all")],
    state: Annotated[str, typer.Option("--state", help="granted or withdrawn")],
    fmt: _Format = OutputFormat.table,
) -> None:
    """Record subjects' consent for a purpose (provider); stored as keyed hashes."""
    body = {"subjects": _ids(ids), "purpose": purpose, "state": state}
    _show(_client.connect().post(f"/v1/exchange/datasets/{name}/consent", json=body), fmt)


@exchange_app.command("budget")
def budget(name: Annotated[str, typer.Argument(help="Dataset name")], fmt: _Format = OutputFormat.table) -> None:
    """Your organisation's ε/δ budget on a dataset."""
    _show(_client.connect().get(f"/v1/exchange/datasets/{name}/budget"), fmt)


@exchange_app.command("receipt-key")
def receipt_key(fmt: _Format = OutputFormat.table) -> None:
    """Print the service's receipt-signing public key (hex) to pin for verify-receipt."""
    key = _client.connect().get("/v1/exchange/receipt-key")
    if fmt is OutputFormat.json:
        emit(key)
    else:
        console().print(key["public_key"], soft_wrap=True)


@exchange_app.command("verify-receipt")
def verify_receipt(
    file: Annotated[Path, typer.Argument(help="A receipt, or a job's JSON output holding one")],
    public_key: Annotated[str | None, typer.Option("--public-key", help="Pinned service key (hex, or a file holding it)")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="The extract file the receipt covers")] = None,
    fmt: _Format = OutputFormat.table,
) -> None:
    """Check a receipt offline: signature, key, and result digest. Exit 0 if it holds, 1 if not."""
    from exchange import ReceiptInvalid
    from exchange import verify_receipt as _verify

    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
        pinned = None
        if public_key:
            text = Path(public_key).read_text().strip() if Path(public_key).is_file() else public_key
            pinned = bytes.fromhex(text)
        blob = data.read_bytes() if data else None
    except (OSError, ValueError) as exc:
        raise ReceiptInvalid(f"cannot read the receipt or key: {exc}") from exc
    receipt = doc.get("receipt", doc) if isinstance(doc, dict) else doc
    result_rows = None
    if isinstance(doc, dict) and "receipt" in doc and isinstance(receipt, dict) \
            and receipt.get("kind") == "aggregate":
        result_rows = doc.get("result")
        if result_rows is None:
            raise ReceiptInvalid("the job output has no result to check against the receipt")
    _verify(receipt, result=result_rows, public_key=pinned, data=blob)
    named = {k: receipt[k] for k in ("consumer", "consumer_org", "purpose", "rule_id",
                                     "policy_version", "approved_by") if k in receipt}
    _show({"valid": True, "version": receipt.get("version"), "job": receipt.get("job"),
           "kind": receipt.get("kind"), "dataset": receipt.get("dataset"), **named,
           "key_id": receipt.get("key_id"), "signature_alg": receipt.get("signature_alg", "ed25519"),
           "pinned": pinned is not None, "result_checked": result_rows is not None or blob is not None},
          fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(exchange_app, name="exchange")
