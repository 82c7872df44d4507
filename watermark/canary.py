"""Per-recipient canary rows (伪行) for tables too small to carry a statistical mark.

A canary row is plausible but fake: each column takes its value from a different,
keyed-randomly chosen real row, and the first key column is re-drawn character by
character (digits stay digits, letters stay letters) so the row matches no real record.
The registry keeps the keyed 64-bit hashes of the canary keys; a suspect row whose key
hashes to one of them is a canary of that recipient.
"""

from __future__ import annotations

import hashlib
import string

import numpy as np
import pyarrow as pa

from watermark.hashing import subkey
from watermark.models import Plan


def _scramble(text: str, rng: np.random.Generator) -> str:
    out = []
    for ch in text:
        if ch.isdigit() and ch.isascii():
            out.append(str(int(rng.integers(0, 10))))
        elif ch in string.ascii_lowercase:
            out.append(string.ascii_lowercase[int(rng.integers(0, 26))])
        elif ch in string.ascii_uppercase:
            out.append(string.ascii_uppercase[int(rng.integers(0, 26))])
        else:
            out.append(ch)
    return "".join(out)


def make_canaries(sample: pa.RecordBatch, plan: Plan, secret: bytes, recipient: str,
                  count: int) -> pa.RecordBatch:
    """``count`` fake rows with the schema of ``sample``, keyed by secret and recipient."""
    seed = hashlib.blake2b(recipient.encode(), key=subkey(secret, "canary"),
                           digest_size=16).digest()
    rng = np.random.default_rng(int.from_bytes(seed, "big"))
    n = sample.num_rows
    columns = {name: sample.column(name).to_pylist() for name in sample.schema.names}
    first_key = plan.key_columns[0] if plan.key_columns else None
    taken = {str(v) for v in columns[first_key]} if first_key else set()
    rows: dict[str, list[object]] = {name: [] for name in sample.schema.names}
    for _ in range(count):
        for name in sample.schema.names:
            value = columns[name][int(rng.integers(0, n))]
            if name == first_key and value is not None:
                for _attempt in range(20):
                    candidate = _scramble(str(value), rng)
                    if candidate not in taken:
                        break
                taken.add(candidate)
                value = candidate if sample.schema.field(name).type == pa.string() \
                    else pa.scalar(candidate).cast(sample.schema.field(name).type).as_py()
            rows[name].append(value)
    return pa.RecordBatch.from_arrays(
        [pa.array(rows[name], type=sample.schema.field(name).type)
         for name in sample.schema.names], schema=sample.schema)
