"""The registry format grew (version-2 plans); records written before still detect."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.watermark.attacks import sample_table
from tests.watermark.conftest import SECRET
from watermark import IssuedCopy, Plan, detect_table, embed_table, registry
from watermark.hashing import (
    codeword,
    codeword_hex,
    column_salt,
    key_fingerprint,
    mix,
    row_hashes,
    virtual_keys,
)
from watermark.masked import embed_masked
from watermark.numeric import embed_numeric

OLD_PLAN: dict[str, Any] = {"key_mode": "primary", "key_columns": ["id"],
            "numeric_columns": ["income", "area", "tax"], "masked_columns": ["phone"],
            "gamma": 8, "code_bits": 256, "min_digits": 3}


def _old_copy(table: pa.Table, recipient: str) -> pa.Table:
    """A copy marked the way earlier releases did (last digit in {1,2,3} / {6,7,8})."""
    code = codeword(SECRET, recipient, 256)
    h = row_hashes(virtual_keys([table.column("id").combine_chunks()]), SECRET)
    cols = {}
    for name in table.column_names:
        arr = table.column(name).combine_chunks()
        sel = mix(h, column_salt(SECRET, name))
        if name in OLD_PLAN["numeric_columns"]:
            arr = embed_numeric(arr, sel, code, gamma=8, min_digits=3).array
        elif name in OLD_PLAN["masked_columns"]:
            arr = embed_masked(arr, sel, code, gamma=8).array
        cols[name] = arr
    return pa.table(cols)


def _session() -> Session:
    engine = create_engine("sqlite://")
    registry.METADATA.create_all(engine)
    return Session(engine)


def test_a_version_1_record_is_read_back_and_still_names_its_recipient() -> None:
    table = sample_table(4000, seed=21)
    leaked = _old_copy(table, "old-recipient")
    with _session() as session, session.begin():
        for r in ("old-recipient", "someone-else"):
            session.execute(registry.COPIES.insert().values(
                id=f"id-{r}", dataset="people", recipient=r,
                issued_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), issued_by="t",
                columns=table.column_names, plan=OLD_PLAN,
                codeword=codeword_hex(codeword(SECRET, r, 256)),
                key_fingerprint=key_fingerprint(SECRET), output_digest="0" * 64, rows=4000,
                marked_cells=2000, canary_keys=[]))
        copies = [c.copy for c in registry.list_copies(session, "people")]
    assert all(c.plan.version == 1 and c.rows == 4000 for c in copies)
    assert copies[0].plan == Plan.from_dict(OLD_PLAN)
    v = detect_table(leaked.take(pa.array(np.random.default_rng(1).permutation(4000)[:1500])),
                     SECRET, copies)
    assert v.verdict == "match" and v.recipient == "old-recipient"
    assert [c.recipient for c in v.candidates if c.accused] == ["old-recipient"]


def test_a_current_plan_round_trips_through_the_registry_and_mixes_with_old_ones() -> None:
    table = sample_table(3000, seed=22)
    marked, rep = embed_table(table, SECRET, "new-recipient")
    assert rep.plan.version == 3 and rep.plan.sources and rep.plan.carriers
    with _session() as session, session.begin():
        registry.add_copy(session, dataset="people", report=rep, columns=table.column_names,
                          output_digest="0" * 64, issued_by="t")
        session.execute(registry.COPIES.insert().values(
            id="old", dataset="people", recipient="old-recipient",
            issued_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), issued_by="t",
            columns=table.column_names, plan=OLD_PLAN,
            codeword=codeword_hex(codeword(SECRET, "old-recipient", 256)),
            key_fingerprint=key_fingerprint(SECRET), output_digest="0" * 64, rows=3000,
            marked_cells=1, canary_keys=[]))
        records = registry.list_copies(session, "people")
    new = next(r for r in records if r.recipient == "new-recipient")
    assert new.copy.plan == rep.plan and new.copy.rows == 3000
    assert new.to_dict()["plan"]["version"] == 3
    copies = [r.copy for r in records]
    for suspect in (marked, marked.drop_columns(["id"])):
        v = detect_table(suspect, SECRET, copies)
        assert v.recipient == "new-recipient"
        assert [c.recipient for c in v.candidates if c.accused] == ["new-recipient"]
    assert detect_table(_old_copy(table, "old-recipient"), SECRET, copies).recipient == \
        "old-recipient"


def test_a_version_2_plan_keeps_its_level_split() -> None:
    # Copies issued before version 3 put half of the numeric marks on the coarsest level;
    # their plans are read with that split, not the new one.
    from dataclasses import replace

    from watermark import Embedder

    table = sample_table(4000, seed=22)
    _, rep = embed_table(table, SECRET, "v3-recipient")
    old_plan = replace(rep.plan, version=2)
    emb = Embedder(SECRET, "v2-recipient", plan=old_plan)
    old = pa.Table.from_batches([emb.mark(b) for b in table.to_batches()])
    copies = [IssuedCopy(r, "people", old_plan, codeword_hex(codeword(SECRET, r, 256)),
                         key_fingerprint(SECRET)) for r in ("v2-recipient", "someone-else")]
    assert old_plan.version == 2 and rep.plan.version == 3
    v = detect_table(old, SECRET, copies)
    assert v.recipient == "v2-recipient" and v.p_value is not None and v.p_value < 1e-6
