"""Masking operators: a registry of small vectorised units.

    mask, redact, replace, keep, suppress   (basic.py)
    hash, encrypt                           (crypto.py)
    fpe                                     (fpe.py, FF1 in ff1.py)
    generalize                              (generalize.py)
    fake                                    (fake.py)
    noise                                   (noise.py)

``apply_operator(name, values, params, ctx)`` runs one operator over a string
array: nulls and empty strings pass through untouched, the rest is transformed.
``invert_operator`` reverses the reversible ones (encrypt, fpe).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from desensitize.errors import OperatorError
from desensitize.operators._base import OpContext, Operator, Param
from desensitize.operators.basic import KEEP, MASK, REDACT, REPLACE, SUPPRESS
from desensitize.operators.crypto import ENCRYPT, HASH
from desensitize.operators.fake import FAKE
from desensitize.operators.fpe import FF1_SM4, FPE
from desensitize.operators.generalize import GENERALIZE
from desensitize.operators.noise import NOISE

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # loaded on first use: declaring an operator needs no Arrow
    from desensitize.operators._libs import pa, pc

OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (MASK, REDACT, REPLACE, KEEP, SUPPRESS, HASH, ENCRYPT, FPE, FF1_SM4, GENERALIZE,
               FAKE, NOISE)
}


def get_operator(name: str) -> Operator:
    try:
        return OPERATORS[name]
    except KeyError:
        known = " ".join(sorted(OPERATORS))
        raise OperatorError(f"unknown operator {name!r} (known: {known})") from None


def _run(fn: Any, values: pa.Array, params: dict[str, Any], ctx: OpContext) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    if len(values) <= 64:  # a few values: which to run on, without kernel calls
        present = [bool(v) for v in values.to_pylist()]
        if not any(present):
            return values
        if all(present):
            out = fn(values, params, ctx)
            if len(out) != len(values):  # pragma: no cover - operator contract
                raise OperatorError("operator returned a different number of values")
            return out
    todo = pc.and_(pc.is_valid(values), pc.greater(pc.binary_length(values), 0))
    todo = pc.fill_null(todo, False)
    count = pc.sum(todo).as_py() or 0
    if count == 0:
        return values
    subset = values if count == len(values) else values.filter(todo)
    out = fn(subset, params, ctx)
    if len(out) != len(subset):  # pragma: no cover - operator contract
        raise OperatorError("operator returned a different number of values")
    if count == len(values):
        return out
    return pc.replace_with_mask(values, todo, out)


def apply_operator(
    name: str,
    values: pa.Array | pa.ChunkedArray,
    params: Mapping[str, Any] | None = None,
    ctx: OpContext | None = None,
    *,
    inverse: bool = False,
) -> pa.Array:
    """Run operator ``name`` over ``values`` (strings), or with ``inverse`` its reverse (only
    encrypt and fpe have one: OperatorError for the others); see the module docstring."""
    op = get_operator(name)
    fn = op.inverse if inverse else op.fn
    if fn is None:
        raise OperatorError(f"operator {name} is not reversible (only encrypt and fpe are)")
    return _run(fn, values, op.normalize(params), ctx or OpContext())


def invert_operator(name: str, values: pa.Array | pa.ChunkedArray,
                    params: Mapping[str, Any] | None = None, ctx: OpContext | None = None) -> pa.Array:
    """Reverse a reversible operator (encrypt, fpe); OperatorError for the others."""
    return apply_operator(name, values, params, ctx, inverse=True)


__all__ = [
    "OPERATORS",
    "OpContext",
    "Operator",
    "Param",
    "apply_operator",
    "get_operator",
    "invert_operator",
]
