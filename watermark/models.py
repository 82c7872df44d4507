"""Values of the watermark package: parameters, plans, issued copies, reports, verdicts."""

from __future__ import annotations

import math
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
    ``max_rel_error``: the usability bound — no value moves by more than this share of
    itself (a numeric mark of size ``10**e`` is put only on values ``|v| >= 10**e /
    max_rel_error``); the sum of every column is rebalanced so its mean drifts by well
    under ``max_drift``.
    ``max_step``: the largest move of a numeric mark (a power of ten): marks at ±100 survive
    rounding to 100 but are only put where the profile allows coarse moves.
    ``date_shift``: dates may move by one day (within their month) to carry a mark.
    ``mark_masked``: masked values carry marks in which of two equally private renderings
    they take (:mod:`watermark.masked`; the same mixture the ``mask`` operator's
    ``variants`` option writes unmarked).
    ``mark_pseudonyms``: keyed hash pseudonyms carry marks (:mod:`watermark.pseudonym`);
    ``pseudonyms``: further columns of pseudonyms or fakes (phone numbers, ID numbers, bank
    cards made up by the ``fake`` operator) that may carry marks the same way.
    These bounds come from the watermark policy (``policies/watermark.yaml``).
    """

    gamma: int = 8
    code_bits: int = 256
    min_digits: int = 3
    key_columns: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    canaries: int = 0
    alpha: float = 1e-6
    max_recipients: int = 1000
    max_rel_error: float = 0.02
    max_drift: float = 0.001
    max_step: int = 10
    date_shift: bool = True
    mark_masked: bool = True
    mark_pseudonyms: bool = True
    pseudonyms: tuple[str, ...] = ()

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
        if not 0 < self.max_rel_error <= 0.1:
            raise WatermarkError(f"max_rel_error must be in (0, 0.1], got {self.max_rel_error}")
        if not 0 < self.max_drift < 1:
            raise WatermarkError(f"max_drift must be in (0, 1), got {self.max_drift}")
        if self.max_step < 1 or 10 ** round(math.log10(self.max_step)) != self.max_step:
            raise WatermarkError(f"max_step must be a power of ten (1, 10, 100, ...), "
                                 f"got {self.max_step}")


@dataclass(frozen=True)
class Carrier:
    """One marked column and how it carries bits.

    ``kind``: "numeric" (parity of ``round(v / 10**e)`` for ``e`` in ``levels``, moved by
    ``±10**e``), "date" (parity of the day number, moved by one day inside its month),
    "category" (which of the equivalent spellings in ``variants``), "pattern" (which of two
    renderings of a masked value; ``patterns``: the standard mask count per length),
    "pseudonym" (which of two keyed characters; ``form``: see :mod:`watermark.pseudonym`),
    or "masked" (parity of the number of mask characters: copies of earlier releases,
    read only). ``bucket``: for a numeric column
    that also serves row identity, the exponent of the bucket ``floor(|v| / 10**bucket)``
    that no mark may change.
    """

    name: str
    kind: str
    levels: tuple[int, ...] = ()
    bucket: int | None = None
    variants: tuple[tuple[str, ...], ...] = ()  # category: the classes of equal spellings
    patterns: tuple[tuple[int, int], ...] = ()  # pattern: (length, standard mask count)
    form: str = ""  # pseudonym: hex | digit | luhn | id18


@dataclass(frozen=True)
class Source:
    """A way to find a row again: a keyed hash of these columns in these forms.

    ``forms``: per column, "exact" (canonical text), "bucket:E" (``floor(|v| / 10**E)``),
    "month" (the year and month of a date) or "class" (a category's normalised spelling).
    The primary key is a source of one exact column; quasi-identifier sets are sources of
    a few stable columns.
    """

    columns: tuple[str, ...]
    forms: tuple[str, ...]
    role: str = "qi"  # "key" | "qi"


@dataclass(frozen=True)
class Plan:
    """Where the marks of one copy live; stored with the copy, needed to detect it.

    ``version`` 1 is the last-digit scheme of earlier releases (one row key, numeric and
    masked columns); registry records without a version are read as version 1 and still
    detected the old way. Version 2 adds ``carriers`` (every marked column with its
    levels), ``sources`` (primary key and quasi-identifier sets to find rows by) and the
    usability bound ``max_rel_error``. Version 3 gives the coarsest level of a numeric
    carrier more of the marks, and marks masked values ("pattern") and pseudonyms by
    value; version-2 records keep their level split and their "masked" carriers.
    """

    key_mode: str  # "primary" | "virtual"
    key_columns: tuple[str, ...]
    numeric_columns: tuple[str, ...]
    masked_columns: tuple[str, ...]
    gamma: int
    code_bits: int
    min_digits: int
    version: int = 1
    carriers: tuple[Carrier, ...] = ()
    sources: tuple[Source, ...] = ()
    max_rel_error: float = 0.0

    @property
    def marked_columns(self) -> tuple[str, ...]:
        if self.version >= 2:
            return tuple(c.name for c in self.carriers)
        return self.numeric_columns + self.masked_columns

    @property
    def date_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.carriers if c.kind == "date")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        out: dict[str, Any] = {}
        for k, v in d.items():
            if k == "carriers":
                out[k] = [{**c, "levels": list(c["levels"]),
                           "variants": [list(x) for x in c["variants"]],
                           "patterns": [list(x) for x in c["patterns"]]} for c in v]
            elif k == "sources":
                out[k] = [{**s, "columns": list(s["columns"]), "forms": list(s["forms"])}
                          for s in v]
            else:
                out[k] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        """A plan from its registry JSON; records written before version 2 stay version 1."""
        return cls(
            key_mode=str(d["key_mode"]),
            key_columns=tuple(d["key_columns"]),
            numeric_columns=tuple(d["numeric_columns"]),
            masked_columns=tuple(d["masked_columns"]),
            gamma=int(d["gamma"]),
            code_bits=int(d["code_bits"]),
            min_digits=int(d["min_digits"]),
            version=int(d.get("version", 1)),
            carriers=tuple(Carrier(str(c["name"]), str(c["kind"]),
                                   tuple(int(x) for x in c.get("levels", ())),
                                   None if c.get("bucket") is None else int(c["bucket"]),
                                   tuple(tuple(str(s) for s in x)
                                         for x in c.get("variants", ())),
                                   tuple((int(x[0]), int(x[1]))
                                         for x in c.get("patterns", ())),
                                   str(c.get("form", "")))
                           for c in d.get("carriers", ())),
            sources=tuple(Source(tuple(s["columns"]), tuple(s["forms"]), str(s.get("role", "qi")))
                          for s in d.get("sources", ())),
            max_rel_error=float(d.get("max_rel_error", 0.0)),
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
    rows: int = 0  # rows of the issued copy (0: unknown)


@dataclass(frozen=True)
class ColumnReport:
    """Distortion of one marked column."""

    name: str
    kind: str  # "numeric" | "date" | "category" | "masked"
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
    statistic: str = "combined"  # which test gave the p-value (a carrier or "combined")
    statistics: int = 1  # tests per recipient the p-value was corrected for


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
