"""Operator declarations: parameters, context, and the registry entry type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from desensitize.errors import KeyMaterialError, OperatorError
from desensitize.keys import Keyring

if TYPE_CHECKING:
    import pyarrow as pa
else:  # loaded on first use: declaring an operator needs no Arrow
    from desensitize.operators._libs import pa


@dataclass(frozen=True)
class Param:
    """One documented operator parameter."""

    name: str
    types: tuple[type, ...]
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class OpContext:
    """What an operator may use besides the values: keys, the entity, the column."""

    keyring: Keyring | None = None
    entity: str | None = None
    column: str | None = None

    def key(self, purpose: str) -> bytes:
        if self.keyring is None:
            raise KeyMaterialError(
                f"operator needs a key ({purpose}); pass --key-file or set QUANGUARD_KEY_DIR"
            )
        return self.keyring.derive(purpose)


# fn(values, params, ctx) -> array of the same length.  ``values`` holds only
# non-null, non-empty strings; nulls and empty cells never reach an operator.
OpFn = Callable[["pa.Array", Mapping[str, Any], OpContext], "pa.Array"]


@dataclass(frozen=True)
class Operator:
    """A masking operator: name, documentation, parameters and its vectorised function."""

    name: str
    doc: str
    fn: OpFn
    params: tuple[Param, ...] = ()
    keyed: bool = False
    reversible: bool = False
    drops_column: bool = False
    inverse: OpFn | None = field(default=None, repr=False)

    def normalize(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Params with defaults filled; unknown names and wrong types are errors."""
        given = dict(params or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            names = " ".join(sorted(known)) or "(none)"
            raise OperatorError(
                f"operator {self.name}: unknown parameter {', '.join(unknown)} (known: {names})"
            )
        out: dict[str, Any] = {}
        for p in self.params:
            value = given.get(p.name, p.default)
            if value is not None and not isinstance(value, p.types):
                want = "/".join(t.__name__ for t in p.types)
                raise OperatorError(f"operator {self.name}: parameter {p.name} must be {want}")
            if isinstance(value, bool) and bool not in p.types:
                raise OperatorError(f"operator {self.name}: parameter {p.name} must not be a boolean")
            if p.choices is not None and value is not None and value not in p.choices:
                raise OperatorError(
                    f"operator {self.name}: parameter {p.name} must be one of "
                    f"{' '.join(map(str, p.choices))}"
                )
            out[p.name] = value
        return out


def strings(values: list[str | None]) -> pa.Array:
    return pa.array(values, pa.string())
