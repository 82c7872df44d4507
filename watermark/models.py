"""Values of the watermark package: parameters, plans, issued copies, reports, verdicts."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

from watermark.errors import WatermarkError

# The allowed range of every numeric parameter, inclusive. Params (and check_alpha for a
# detection) hold every caller to them — the CLI, HTTP (whose OpenAPI schema states them)
# and the Python API refuse the same values with the same message.
#: gamma: one cell in ``gamma`` carries a mark. At the default level a copy needs about 40
#: marks, so 10 000 already asks for 400 000 cells; larger values leave no real table
#: traceable (and the selection period must stay far inside 64 bits).
GAMMA_MAX = 10_000
#: canaries: fake rows for a table too small to carry marks. One found in a leak names its
#: recipient (the exchange appends 3); 1 000 is more fake rows than such a table has real
#: ones and takes well under a second to make.
CANARIES_MAX = 1_000
#: alpha, in [ALPHA_MIN, 1): a p-value of 256 recovered bits is at least 2**-256, so a
#: level much below 1e-30 needs nearly every bit of a copy and can hardly ever accuse;
#: far below it the bits a detection needs overflow.
ALPHA_MIN = 1e-30
CODE_BITS_MIN, CODE_BITS_MAX = 64, 4096
MIN_DIGITS_MAX = 15  # a double carries 15 significant decimal digits
MAX_RECIPIENTS_MAX = 1_000_000
MAX_STEP_MAX = 1_000_000  # as the watermark policy's max_step


def _shown(value: object) -> str:
    """``value`` for an error message: a huge number is described, not echoed."""
    if isinstance(value, int) and value.bit_length() > 100:
        return f"a {int(value.bit_length() * math.log10(2)) + 1}-digit number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integer(name: str, value: object, low: int, high: int, meaning: str) -> None:
    if not _is_int(value) or not low <= value <= high:  # type: ignore[operator]
        raise WatermarkError(f"{name} must be an integer from {low} to {high} ({meaning}), "
                             f"got {_shown(value)}")


def check_alpha(alpha: object, name: str = "alpha") -> float:
    """``alpha`` as a float if it is an accusation level in [ALPHA_MIN, 1), else
    ``WatermarkError`` naming ``name`` and the range (NaN and infinities included)."""
    if not _is_real(alpha) or not ALPHA_MIN <= alpha < 1:  # type: ignore[operator]
        raise WatermarkError(f"{name} must be at least {ALPHA_MIN:g} and below 1 (the chance "
                             f"of naming an innocent recipient), got {_shown(alpha)}")
    return float(alpha)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Params:
    """What the caller may configure for an embedding.

    Every number has a range (the constants above), refused with ``WatermarkError``
    naming it: ``gamma`` 1..10 000, ``code_bits`` 64..4 096, ``min_digits`` 1..15,
    ``canaries`` 0..1 000, ``max_recipients`` 1..1 000 000, ``alpha`` [1e-30, 1),
    ``max_rel_error`` (0, 0.1], ``max_drift`` (0, 1), ``max_step`` a power of ten up to
    1 000 000.

    ``gamma``: about one cell in ``gamma`` of each marked column carries a bit.
    ``code_bits``: length of every recipient codeword.
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
    The usability bounds come from the watermark policy (``policies/watermark.yaml``).
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
        _integer("gamma", self.gamma, 1, GAMMA_MAX,
                 "about one cell in gamma of a marked column carries a mark")
        _integer("code_bits", self.code_bits, CODE_BITS_MIN, CODE_BITS_MAX,
                 "length of a recipient codeword")
        _integer("min_digits", self.min_digits, 1, MIN_DIGITS_MAX,
                 "significant digits a number needs to be marked")
        _integer("canaries", self.canaries, 0, CANARIES_MAX,
                 "fake rows appended to a table too small to carry marks")
        _integer("max_recipients", self.max_recipients, 1, MAX_RECIPIENTS_MAX,
                 "recipients a detection tests")
        check_alpha(self.alpha)
        if not _is_real(self.max_rel_error) or not 0 < self.max_rel_error <= 0.1:
            raise WatermarkError(f"max_rel_error must be above 0 and at most 0.1, "
                                 f"got {_shown(self.max_rel_error)}")
        if not _is_real(self.max_drift) or not 0 < self.max_drift < 1:
            raise WatermarkError(f"max_drift must be above 0 and below 1, "
                                 f"got {_shown(self.max_drift)}")
        if (not _is_int(self.max_step) or not 1 <= self.max_step <= MAX_STEP_MAX
                or 10 ** round(math.log10(self.max_step)) != self.max_step):
            raise WatermarkError(f"max_step must be a power of ten from 1 to {MAX_STEP_MAX} "
                                 f"(1, 10, 100, ...), got {_shown(self.max_step)}")


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
