"""Mask and unmask use cases: scan → decide by policy → mask → audit → commit.

Every call is recorded in the audit trail with who, the profile, the columns, the
row count and the SHA-256 digests of input and output — never values or keys.
A refused call is recorded too.  The profile is the one asked for, else the
policy's ``mask_profile`` obligation, else the default (共享).

``unmask`` reverses ``encrypt``/``fpe`` columns and is allowed only when the policy
says ``allow`` for action ``unmask`` at the dataset's grade (``approval_required``
is a refusal here: the approval flow lives in the exchange).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from desensitize.errors import PlanError
from desensitize.operators import OpContext, invert_operator
from desensitize.operators.crypto import ENC_PREFIXES
from desensitize.pipeline import MaskResult, run_mask
from desensitize.plan import load_plan_file
from desensitize.tableio import detect_format, open_table, open_writer, write_error
from quanguard.auth import Principal
from quanguard.errors import InvalidInput
from quanguard.gate import authorize
from quanguard.policy.model import Resource
from quanguard.usecases import json_records as jr

if TYPE_CHECKING:
    from desensitize import DatasetReport
    from desensitize.keys import Keyring
    from desensitize.plan import MaskPlan
    from desensitize.tableio import TableSource
    from quanguard.container import Container
    from quanguard.gate import AuditOrigin, RequestContext
    from quanguard.policy.model import Decision

__all__ = ["MAX_RECORDS", "TEXT_SUFFIXES", "MaskOutcome", "UnmaskOutcome", "is_text_path", "mask_file",
           "mask_records", "mask_text_file", "records_table", "sha256_file", "temp_path", "unmask_file",
           "unmask_records"]

MAX_RECORDS = 100_000


@dataclass(frozen=True)
class MaskOutcome:
    profile: str
    result: MaskResult
    input_sha256: str
    output_sha256: str
    dataset_grade: str | None
    encoding: str | None = None  # of a CSV/TSV/text output, when known

    def to_dict(self) -> dict[str, object]:
        return {"profile": self.profile, "dataset_grade": self.dataset_grade,
                "input_sha256": self.input_sha256, "output_sha256": self.output_sha256,
                **self.result.to_dict()}


@dataclass(frozen=True)
class UnmaskOutcome:
    columns: tuple[str, ...]
    rows: int
    input_sha256: str
    output_sha256: str

    def to_dict(self) -> dict[str, object]:
        return {"columns": list(self.columns), "rows": self.rows,
                "input_sha256": self.input_sha256, "output_sha256": self.output_sha256}


def sha256_file(path: str) -> str:
    if "://" in path or not os.path.isfile(path):
        return hashlib.sha256(path.encode()).hexdigest()
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _ctx_kw(ctx: RequestContext | None) -> AuditOrigin:
    return {"source_ip": getattr(ctx, "source_ip", None), "request_id": getattr(ctx, "request_id", None)}


def _gate(container: Container, principal: Principal, action: str, dataset: str, grade: str | None,
            owner_org: str | None, ctx: RequestContext | None) -> Decision:
    """The one gate: ``approval_required`` is a refusal here (the approval flow lives in
    the exchange); a refusal is recorded by the gate."""
    resource = Resource(grade=grade, dataset=dataset, owner_org=owner_org or principal.org)
    return authorize(container, principal, action, resource, ctx)


def _scan(container: Container, source: TableSource, sample: int) -> DatasetReport:
    return container.scanner.grade_batches(source.sample_batches(sample), sampled=True)


def mask_file(
    container: Container, principal: Principal, src: str, dst: str, *, profile: str | None = None,
    plan_file: str | None = None, key_file: str | None = None, encoding: str | None = None,
    out_encoding: str | None = None, dataset: str | None = None, owner_org: str | None = None,
    sample: int = 10_000, ctx: RequestContext | None = None, progress: Callable[[int], None] | None = None,
    on_plan: Callable[[MaskPlan], None] | None = None, table: str | None = None, sheet: str | None = None,
) -> MaskOutcome:
    """Mask table ``src`` into ``dst`` (same format unless ``dst``'s says otherwise)."""
    name = dataset or Path(src.split("#")[-1]).stem or "dataset"
    source = open_table(src, encoding=encoding, table=table, sheet=sheet)
    if same_target(source.path, dst, table):
        raise InvalidInput("the output would overwrite the input; choose another -o")
    plan_profile, overrides = load_plan_file(plan_file) if plan_file else (None, None)
    report = _scan(container, source, sample)
    decision = _gate(container, principal, "mask", name, report.dataset_grade, owner_org, ctx)
    chosen = profile or plan_profile or decision.mask_profile
    service = container.masker
    plan = service.plan(report, chosen, overrides)
    if on_plan is not None:
        on_plan(plan)
    keyring = service.keyring(key_file)
    finder = service.finder_for(plan)
    fmt = detect_format(dst)
    enc = out_encoding or (source.encoding if fmt == source.format else None)
    masker_schema = None
    if fmt == "parquet":
        from desensitize.masker import Masker

        masker_schema = Masker(plan, keyring=keyring, span_finder=finder).output_schema(source.native_schema)
    with open_writer(dst, fmt, enc, masker_schema, table=None if "#" in dst else table,
                     sheet=sheet) as writer:
        result = run_mask(source.iter_batches(strings=fmt != "parquet" or source.format != "parquet"),
                          writer, plan, keyring=keyring, span_finder=finder,
                          quasi_identifiers=service.quasi_identifiers(report), progress=progress)
    outcome = MaskOutcome(plan.profile.name, result, sha256_file(src), sha256_file(dst),
                          report.dataset_grade, enc or ("utf-8" if fmt in ("csv", "tsv") else None))
    _record(container, principal, "mask", name, outcome, decision, ctx)
    return outcome


def _policy_profile(decision: Decision) -> str:
    return str(decision.mask_profile or "")


def same_target(src_path: str, dst: str, table: str | None) -> bool:
    if "://" in dst:
        base, _, frag = dst.partition("#")
        return src_path == f"{base}#{frag or table}"
    if "://" in src_path:
        return False
    return os.path.exists(dst) and os.path.samefile(src_path, dst)


def _record(container: Container, principal: Principal, action: str, name: str, outcome: MaskOutcome,
            decision: Decision, ctx: RequestContext | None) -> None:
    r = outcome.result
    with container.unit_of_work() as session:
        container.audit.record(
            session, actor=principal, action=action, dataset=name, fields=tuple(r.plan.masked_columns),
            grade=outcome.dataset_grade, rows=r.stats.rows, decision=decision,
            result_digest=outcome.output_sha256, **_ctx_kw(ctx),
            labels={"profile": outcome.profile, "input_sha256": outcome.input_sha256,
                    "output_sha256": outcome.output_sha256,
                    "k_before": str(r.k_before.k), "k_after": str(r.k_after.k),
                    "policy_profile": _policy_profile(decision)},
        )


def _json_text(v: object) -> str | None:
    import json

    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def records_table(records: Sequence[object]) -> pa.Table:
    """Flat records → a string table (column order: first appearance)."""
    if len(records) > MAX_RECORDS:
        from quanguard.errors import TooLarge

        raise TooLarge(f"at most {MAX_RECORDS:,} records per request; stream NDJSON/CSV instead")
    names: dict[str, None] = {}
    rows: list[dict[str, object]] = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise jr.record_error(i, "is not a JSON object")
        rows.append(r)
        names.update(dict.fromkeys(map(str, r)))
    if not names:
        raise InvalidInput("no records (or only empty objects) to mask")
    cols = {n: pa.array([_json_text(r.get(n)) for r in rows], pa.string()) for n in names}
    return pa.table(cols)


def _leaf_table(records: Sequence[object]) -> tuple[pa.Table, list[dict[str, tuple[jr.Path, object]]]]:
    """Records → a string table with one column per leaf path, and each record's leaves."""
    if len(records) > MAX_RECORDS:
        from quanguard.errors import TooLarge

        raise TooLarge(f"at most {MAX_RECORDS:,} records per request; stream NDJSON/CSV instead")
    per = [jr.leaves(r, i) for i, r in enumerate(records)]
    names: dict[str, None] = {}
    for leaves in per:
        names.update(dict.fromkeys(leaves))
    if not names:
        raise InvalidInput("no records (or only empty objects) to mask")
    cols = {n: pa.array([_json_text(lv[n][1]) if n in lv else None for lv in per], pa.string())
            for n in names}
    return pa.table(cols), per


def mask_records(
    container: Container, principal: Principal, records: Sequence[object], *,
    profile: str | None = None, dataset: str | None = None, ctx: RequestContext | None = None, body_sha256: str = "",
) -> tuple[list[object], MaskOutcome]:
    """Mask JSON records, nested objects and arrays in place: a masked leaf becomes a
    string, every other value keeps its JSON type, no key is added."""
    import copy
    import json

    from desensitize.risk import k_anonymity

    table, per = _leaf_table(records)
    name = dataset or "records"
    report = container.scanner.grade_batches(table.slice(0, 10_000).to_batches(), sampled=True)
    decision = _gate(container, principal, "mask", name, report.dataset_grade, None, ctx)
    service = container.masker
    plan = service.plan(report, profile or decision.mask_profile)
    masked, stats = service.mask_table(table, plan)
    touched = [c.name for c in plan.columns if c.touches and c.op != "suppress"]
    dropped = [n for n in plan.dropped_columns if n in table.column_names]
    cols = {n: masked.column(n).to_pylist() for n in touched if n in masked.column_names}
    out = []
    for i, r in enumerate(records):
        row = copy.deepcopy(r)
        leaves = per[i]
        for n, values in cols.items():
            if n in leaves and leaves[n][1] is not None:
                jr.put(row, leaves[n][0], values[i])
        # deepest first, so removing an array element's key never shifts another path
        for n in sorted((n for n in dropped if n in leaves), key=lambda n: -len(leaves[n][0])):
            jr.drop(row, leaves[n][0])
        out.append(row)
    qi = service.quasi_identifiers(report)
    from desensitize.pipeline import MaskResult

    result = MaskResult(plan, stats, k_anonymity(table.to_batches(), qi),
                        k_anonymity(masked.to_batches(), [q for q in qi if q in masked.column_names]),
                        tuple(masked.column_names))
    digest = hashlib.sha256(json.dumps(out, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    outcome = MaskOutcome(plan.profile.name, result, body_sha256, digest, report.dataset_grade)
    _record(container, principal, "mask", name, outcome, decision, ctx)
    return out, outcome


# -- unmask ------------------------------------------------------------------------------

def _parse_columns(columns: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for spec in columns:
        for part in str(spec).split(","):
            if not part.strip():
                continue
            name, _, entity = part.strip().partition(":")
            out[name.strip()] = entity.strip() or None
    if not out:
        raise InvalidInput("name the columns to unmask (--columns 身份证号[,姓名] or NAME:ENTITY)")
    return out


def _unmask_column(col: pa.Array, name: str, entity: str | None, report: DatasetReport | None, keyring: Keyring) -> pa.Array:
    values = [v for v in col.to_pylist() if v]
    if values and all(v.startswith(ENC_PREFIXES) for v in values):  # AES-SIV or SM4 SIV
        return invert_operator("encrypt", col, None, OpContext(keyring, None, name))
    if entity is None and report is not None:
        entity = next((c.entity for c in report.columns if c.name == name), None)
    # values that were masked instead of encrypted (on_error: mask) stay as they are
    return invert_operator("fpe", col, {"on_error": "mask"}, OpContext(keyring, entity, name))


def unmask_file(
    container: Container, principal: Principal, src: str, dst: str, columns: Sequence[str], *,
    key_file: str | None = None, dataset: str | None = None, owner_org: str | None = None,
    ctx: RequestContext | None = None,
) -> UnmaskOutcome:
    """Reverse encrypt/fpe columns of ``src`` into ``dst``; policy action ``unmask``."""
    wanted = _parse_columns(columns)
    name = dataset or Path(src.split("#")[-1]).stem or "dataset"
    source = open_table(src)
    missing = [c for c in wanted if c not in source.column_names]
    if missing:
        raise PlanError(f"no column(s) {', '.join(missing)} in {Path(src).name} "
                        f"(columns: {', '.join(source.column_names)})")
    report = _scan(container, source, 2_000)
    decision = _gate(container, principal, "unmask", name, report.dataset_grade, owner_org, ctx)
    keyring = container.masker.keyring(key_file)
    rows = 0
    with open_writer(dst, detect_format(dst), source.encoding) as writer:
        for batch in source.iter_batches():
            arrays = [(_unmask_column(col, n, wanted[n], report, keyring) if n in wanted else col)
                      for n, col in zip(batch.schema.names, batch.columns, strict=True)]
            writer.write(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names))
            rows += batch.num_rows
    outcome = UnmaskOutcome(tuple(wanted), rows, sha256_file(src), sha256_file(dst))
    with container.unit_of_work() as session:
        container.audit.record(session, actor=principal, action="unmask", dataset=name,
                               fields=tuple(wanted), grade=report.dataset_grade, rows=rows,
                               decision=decision, result_digest=outcome.output_sha256, **_ctx_kw(ctx),
                               labels={"input_sha256": outcome.input_sha256,
                                       "output_sha256": outcome.output_sha256})
    return outcome


def unmask_records(
    container: Container, principal: Principal, records: Sequence[object], columns: Sequence[str], *,
    dataset: str | None = None, ctx: RequestContext | None = None, body_sha256: str = "",
) -> list[dict[str, object]]:
    """Reverse encrypt/fpe columns of JSON records; policy action ``unmask``."""
    wanted = _parse_columns(columns)
    table = records_table(records)
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise PlanError(f"no column(s) {', '.join(missing)} in the records")
    name = dataset or "records"
    report = container.scanner.grade_batches(table.slice(0, 2_000).to_batches(), sampled=True)
    decision = _gate(container, principal, "unmask", name, report.dataset_grade, None, ctx)
    keyring = container.masker.keyring()
    cols = {n: _unmask_column(table.column(n).combine_chunks(), n, wanted[n], report, keyring).to_pylist()
            for n in wanted}
    rows = [r for r in records if isinstance(r, dict)]  # all of them: records_table checked
    out = [{k: (cols[k][i] if k in cols else v) for k, v in r.items()} for i, r in enumerate(rows)]
    with container.unit_of_work() as session:
        container.audit.record(session, actor=principal, action="unmask", dataset=name,
                               fields=tuple(wanted), grade=report.dataset_grade, rows=len(records),
                               decision=decision, **_ctx_kw(ctx), labels={"input_sha256": body_sha256})
    return out


def temp_path(container: Container, suffix: str) -> str:
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=container.settings.data_dir)
    os.close(fd)
    return tmp


# -- free text ---------------------------------------------------------------------------

TEXT_SUFFIXES = (".txt", ".text", ".log", ".md")
_TEXT_BATCH = 2_000


def is_text_path(path: str) -> bool:
    return "://" not in path and Path(path).suffix.lower() in TEXT_SUFFIXES


def mask_text_file(
    container: Container, principal: Principal, src: str, dst: str, *, profile: str | None = None,
    key_file: str | None = None, encoding: str | None = None, dataset: str | None = None,
    owner_org: str | None = None, ctx: RequestContext | None = None, progress: Callable[[int], None] | None = None,
    on_plan: Callable[[MaskPlan], None] | None = None,
) -> MaskOutcome:
    """Mask a text file line by line (each line one record), span by span; line endings,
    encoding and every character outside a finding are kept."""
    from desensitize.masker import Masker
    from desensitize.plan import SPANS, ColumnPlan, MaskPlan
    from desensitize.risk import KResult
    from desensitize.tableio import detect_text_encoding

    name = dataset or Path(src).stem or "text"
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise InvalidInput("the output would overwrite the input; choose another -o")
    enc = encoding or detect_text_encoding(src)
    decision = _gate(container, principal, "mask", name, None, owner_org, ctx)
    service = container.masker
    chosen = service.profiles().get(profile or decision.mask_profile)
    plan = MaskPlan(chosen, (ColumnPlan("text", SPANS, {}, None, None, f"{chosen.name}: spans"),))
    if on_plan is not None:
        on_plan(plan)
    masker = Masker(plan, keyring=service.keyring(key_file), span_finder=service.span_finder())
    out_dir = Path(dst).resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{Path(dst).name}.", suffix=".part", dir=out_dir)
    except OSError as exc:
        raise write_error(Path(dst), exc) from None
    try:
        with open(src, encoding=enc, newline="") as fin, os.fdopen(fd, "w", encoding=enc, newline="") as fout:
            while lines := [line for _, line in zip(range(_TEXT_BATCH), fin, strict=False)]:
                bodies = [line.rstrip("\r\n") for line in lines]
                masked = masker.mask_batch(pa.record_batch({"text": pa.array(bodies, pa.string())}))
                for line, body, new in zip(lines, bodies, masked.column(0).to_pylist(), strict=True):
                    fout.write(new + line[len(body):])
                if progress is not None:
                    progress(len(lines))
        os.replace(tmp, dst)
    except UnicodeError:
        Path(tmp).unlink(missing_ok=True)
        raise InvalidInput(f"{Path(src).name}: not valid {enc} text (wrong or mixed encoding)") from None
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is not None and exc.filename not in (tmp, dst):
            raise  # reading the source: not the output's fault
        raise write_error(Path(dst), exc) from None  # a full disk (exit 7), a folder refusing it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    none = KResult(None, 0, masker.stats.rows, ())
    result = MaskResult(plan, masker.stats, none, none, ("text",))
    outcome = MaskOutcome(chosen.name, result, sha256_file(src), sha256_file(dst), None, enc)
    _record(container, principal, "mask", name, outcome, decision, ctx)
    return outcome
