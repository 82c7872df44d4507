"""Values of the watermark package: parameters, plans, issued copies, reports, verdicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Params:
    """What the caller may configure for an embedding.

    ``gamma``: about one cell in ``gamma`` of each marked column carries a bit.
    ``code_bits``: length of every recipient codeword (>= 64).
    ``min_digits``: numeric cells need this many significant digits to be marked.
    ``key_columns``: primary-key column(s); empty = detect an ID column, else a virtual key.
    ``columns``: columns to mark; empty = detect numeric and masked columns.
    ``canaries``: number of per-recipient fake rows to append (for small tables).
    ``alpha``: accusation level; ``max_recipients``: how many recipients detection will
    test (sizes the "table too small" check).
    """

    gamma: int = 8
    code_bits: int = 256
    min_digits: int = 3
    key_columns: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    canaries: int = 0
    alpha: float = 1e-6
    max_recipients: int = 1000

    def __post_init__(self) -> None:
        from watermark.errors import WatermarkError

        if self.gamma < 1:
            raise WatermarkError(f"gamma must be >= 1, got {self.gamma}")
        if self.code_bits < 64:
            raise WatermarkError(f"code_bits must be >= 64, got {self.code_bits}")
        if not 0 < self.alpha < 1:
            raise WatermarkError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.canaries < 0:
            raise WatermarkError(f"canaries must be >= 0, got {self.canaries}")


@dataclass(frozen=True)
class Plan:
    """Where the marks of one copy live; stored with the copy, needed to detect it."""

    key_mode: str  # "primary" | "virtual"
    key_columns: tuple[str, ...]
    numeric_columns: tuple[str, ...]
    masked_columns: tuple[str, ...]
    gamma: int
    code_bits: int
    min_digits: int

    @property
    def marked_columns(self) -> tuple[str, ...]:
        return self.numeric_columns + self.masked_columns

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(
            key_mode=str(d["key_mode"]),
            key_columns=tuple(d["key_columns"]),
            numeric_columns=tuple(d["numeric_columns"]),
            masked_columns=tuple(d["masked_columns"]),
            gamma=int(d["gamma"]),
            code_bits=int(d["code_bits"]),
            min_digits=int(d["min_digits"]),
        )


@dataclass(frozen=True)
class IssuedCopy:
    """One registered copy: what the detector tests a suspect against."""

    recipient: str
    dataset: str
    plan: Plan
    codeword: str  # hex
    key_fingerprint: str
    canary_keys: tuple[str, ...] = ()  # keyed digests of the canary rows' keys
    copy_id: str = ""


@dataclass(frozen=True)
class ColumnReport:
    """Distortion of one marked column."""

    name: str
    kind: str  # "numeric" | "masked"
    values: int
    marked: int
    changed: int
    mean_before: float | None = None
    mean_after: float | None = None
    relative_shift: float | None = None
    unflippable: int = 0


@dataclass(frozen=True)
class EmbedReport:
    """What an embedding did: counts, per-column distortion, the plan and the code."""

    recipient: str
    rows: int
    marked_cells: int
    changed_cells: int
    canary_rows: int
    columns: tuple[ColumnReport, ...]
    plan: Plan
    codeword: str
    key_fingerprint: str
    canary_keys: tuple[str, ...] = ()
    formats_kept: bool = True  # measured: every marked value kept its length and point

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["plan"] = self.plan.to_dict()
        return d


@dataclass(frozen=True)
class Candidate:
    """One tested recipient."""

    recipient: str
    datasets: tuple[str, ...]
    bits: int
    agreement: int
    p_value: float
    p_adjusted: float
    accused: bool
    canary_rows: int = 0


@dataclass(frozen=True)
class Verdict:
    """Outcome of a detection; ``evidence`` holds rows seen, bits, agreement, p-value."""

    verdict: str  # "match" | "none"
    recipient: str | None
    p_value: float | None
    candidates: tuple[Candidate, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "recipient": self.recipient,
            "p_value": self.p_value,
            "candidates": [asdict(c) for c in self.candidates],
            "evidence": dict(self.evidence),
            "message": self.message,
        }
