"""Masker invariants on arbitrary tables: rows, order, untouched cells, constant batches."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.keys import Keyring
from desensitize.masker import Masker
from desensitize.plan import ColumnInfo, build_plan
from desensitize.profiles import load_profiles
from tests.conftest import active_suite

POLICY = Path(__file__).resolve().parents[2] / "policies" / "masking.yaml"
PROFILES = load_profiles(POLICY)
KEY = Keyring(b"\x42" * 32, active_suite())

cells = st.one_of(st.none(), st.text(max_size=12))
ENTITIES = [None, "PERSON", "PHONE_NUMBER", "LOCATION", "EMAIL_ADDRESS", "CN_LICENSE_PLATE", "IP_ADDRESS"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(ENTITIES), min_size=1, max_size=5),
    st.data(),
    st.sampled_from(["共享", "分析", "开放"]),
    st.integers(1, 7),
)
def test_masker_keeps_shape_and_untouched_cells(entities: list[str], data: st.DataObject, profile: str,
                                                 batch: int) -> None:
    n = data.draw(st.integers(0, 20))
    names = [f"c{i}" for i in range(len(entities))]
    cols = {name: data.draw(st.lists(cells, min_size=n, max_size=n)) for name in names}
    table = pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()})
    plan = build_plan([ColumnInfo(nm, e, "L3" if e else None) for nm, e in zip(names, entities, strict=True)],
                      PROFILES.get(profile))
    masker = Masker(plan, keyring=KEY)
    out_batches = list(masker.mask_stream(table.to_batches(max_chunksize=batch)))
    kept = [c.name for c in plan.columns if c.op != "suppress"]
    assert sum(b.num_rows for b in out_batches) == n
    assert all(b.schema.names == kept for b in out_batches)
    if not out_batches:
        return
    out = pa.Table.from_batches(out_batches)
    for c in plan.columns:
        if c.op == "keep":
            assert out.column(c.name).to_pylist() == cols[c.name]
        elif c.op != "suppress":
            before, after = cols[c.name], out.column(c.name).to_pylist()
            assert [v is None for v in before] == [v is None for v in after]
            assert all(a == "" for b, a in zip(before, after, strict=True) if b == "")
